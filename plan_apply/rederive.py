"""Every change of a plan checked again, under the apply lock, against the rows it would write.

A saved plan is untrusted input: its integrity hash proves only that whoever wrote the file could hash
it. So apply does not take a change's word for what it may do: each change meets, against the state read
under the lock, the same guards the diff applies (protection, rotations, ownership, a closed agreement,
slots above bookings), and one refusal refuses the whole organization. A plan made by `plan` passes
these by construction; a hand-edited one cannot do what no configuration could.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import replace

from plan_apply.actual import ActualOrganization
from plan_apply.guards import must_archive, protection_refusal, slots_refusal
from plan_apply.plan import Action, Change, OrgPlan
from plan_apply.records import Record

__all__ = ["refusals_under_lock"]


def refusals_under_lock(org: OrgPlan, actual: ActualOrganization) -> list[str]:
    """Why the organization's changes may not be written to `actual` (the state read under the lock);
    empty when every change is one a plan of this state could hold."""
    records = dict(actual.records)
    renamed = {c.address: _row_address(c) for c in org.changes if c.action is Action.RENAME}
    for new, old in renamed.items():  # a window of a renamed service is planned under the new name
        records.update({new + a[len(old) :]: r for a, r in actual.records.items() if a.startswith(old + "/")})
    # What the plan leaves of the rows a removal depends on, as the diff saw it: the rows it rewrites
    # (by the row's address) and the rows it deletes.
    claimed = {
        _row_address(c): replace(row, fields={**row.fields, **c.after})
        for c in org.changes
        if c.action in (Action.UPDATE, Action.RENAME, Action.ADOPT) and (row := records.get(_row_address(c)))
    }
    deleted = frozenset(_row_address(c) for c in org.changes if c.action is Action.DELETE)
    refusals: list[str] = []
    for change in org.changes:
        refusal = _refusal(change, records, claimed, deleted)
        if refusal:
            refusals.append(refusal)
    return refusals


def _row_address(change: Change) -> str:
    old = change.before.get("key")
    if change.action is Action.RENAME and isinstance(old, str):
        address = change.address[: -len(change.address.rsplit("/", 1)[1])] + old
        holder = change.before.get("org")
        if isinstance(holder, str):  # taken over from another organization of the family
            address = holder + address[len(address.split("/", 1)[0]) :]
        return address
    return change.address


def _refusal(
    change: Change, records: Mapping[str, Record], claimed: Mapping[str, Record], deleted: AbstractSet[str]
) -> str | None:
    row = records.get(_row_address(change))
    match change.action:
        case Action.CREATE:
            if row is not None and change.type not in ("organization", "profile"):
                return f"{change.address} already exists: a plan cannot create it again"
            return None
        case Action.DELETE | Action.ARCHIVE:
            return _removal_refusal(change, row, records, claimed, deleted)
        case Action.UPDATE | Action.RENAME | Action.ADOPT:
            return _update_refusal(change, row)


def _only_moves(change: Change) -> bool:
    """A rename, or a move to another organization of the family, linking the same services: the row's
    terms and the school's answer stay as they are."""
    return set(change.after) <= {"key", "org", "services"} and change.after.get(
        "services"
    ) == change.before.get("services")


def _removal_refusal(
    change: Change,
    row: Record | None,
    records: Mapping[str, Record],
    claimed: Mapping[str, Record],
    deleted: AbstractSet[str],
) -> str | None:
    if row is None:
        return None  # found under a name this plan gives it, or not at all (the writer refuses that)
    if not row.managed:
        return f"{change.address} was made outside nexus: a plan never removes it"
    refusal = protection_refusal(row, change.action.value)
    if refusal:
        return refusal
    if change.action is Action.DELETE:
        reason = must_archive(row, records, claimed, deleted - {row.address})
        if reason:
            return f"{change.address} cannot be deleted ({reason})"
    return None


def _update_refusal(change: Change, row: Record | None) -> str | None:
    if row is None:
        return None  # under a service this plan renames, or not at all (the writer refuses that)
    if not row.managed and change.action is not Action.ADOPT:
        return f"{change.address} was made outside nexus: only a configuration that declares it adopts it"
    if row.managed and change.action is Action.ADOPT:
        return f"{change.address} is already managed by nexus: there is nothing to adopt"
    if row.type == "agreement" and row.status == "closed" and not _only_moves(change):
        return f"{change.address}: the school closed this agreement; a plan never changes it"
    if "slots" in change.after:
        desired = Record(row.address, row.type, row.org, row.key, {**row.fields, **change.after})
        return slots_refusal(desired, row)
    return None
