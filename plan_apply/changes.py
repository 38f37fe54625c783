"""Turning a matched pair into a `Change`: which action it is, what it writes, and how people call it.

`before`/`after` hold only the fields that change (every field for create and delete), and the status
an agreement's write moves it to; the explanation (`notes`, `risk`, `cause`) comes from the guards' verdict and never drives apply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from plan_apply.guards import Verdict, actual_value, resubmits
from plan_apply.matching import Pair
from plan_apply.plan import Action, Change
from plan_apply.records import Record

__all__ = ["STAFF_REMOVAL", "action_of", "change_of", "created", "removed", "title_of"]


def action_of(pair: Pair) -> Action:
    """What applying the pair does to its row: create it, rename it, adopt it, or update it. A row
    nexus does not manage is adopted, also when it is found under a previous key."""
    if pair.actual is None:
        return Action.CREATE
    if not pair.actual.managed:
        return Action.ADOPT
    if pair.renamed:
        return Action.RENAME
    return Action.UPDATE


def created(desired: Record, title: str) -> Change:
    """A new row with every field of the desired record."""
    return Change(desired.address, desired.type, Action.CREATE, {}, dict(desired.fields), title=title)


def _status(actual: Record, changed: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The status an agreement's write moves it to, said in the plan (apply never decides one)."""
    if resubmits(actual, changed):
        return {"status": actual.status}, {"status": "pending_school"}
    if actual.type == "agreement" and actual.status == "draft" and "submit" in changed:
        return {"status": "draft"}, {"status": "pending_school"}
    return {}, {}


def _identity(pair: Pair, action: Action) -> tuple[dict[str, Any], dict[str, Any], tuple[str, ...]]:
    """What a rename or an adoption changes besides the fields: the key, the owner; and how it is said."""
    assert pair.actual is not None
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    notes: tuple[str, ...] = ()
    if action is Action.ADOPT:
        notes += ("adopts an item created outside nexus: from now on the configuration owns it",)
    if pair.renamed:
        before["key"], after["key"] = pair.actual.key, pair.desired.key
        if pair.actual.org != pair.desired.org:  # an agreement moving between a system and a facility
            before["org"], after["org"] = pair.actual.org, pair.desired.org
            # Its links are written again from the new owner's side (the old owner's let go of them).
            before["services"] = pair.actual.fields.get("services")
            after["services"] = pair.desired.fields.get("services")
        notes += (f"renamed from {pair.actual.address}; the row (and its history) is kept",)
    return before, after, notes


def change_of(pair: Pair, changed: Sequence[str], verdict: Verdict, title: str) -> Change | None:
    """The change that makes a matched row match its desired record, or None when there is none
    (nothing differs, or the guards withhold it). Renames and adoptions are updates that also change
    the row's key or owner: the guards' verdict says the same of them."""
    desired, actual = pair.desired, pair.actual
    assert actual is not None
    action = action_of(pair)
    before, after, notes = _identity(pair, action)
    if not verdict.withheld:
        before |= {n: actual_value(actual, n) for n in changed}
        after |= {n: desired.fields[n] for n in changed}
        was, will = _status(actual, changed)
        before |= was
        after |= will
    if actual.archived:
        before["archived"], after["archived"] = True, False
        notes += ("restores an archived item",)
    if action is Action.UPDATE and not after:
        return None
    return Change(
        desired.address,
        desired.type,
        action,
        before,
        after,
        cause="drift" if verdict.drift else "config",
        risk="review" if verdict.review else "low",
        notes=notes + verdict.notes,
        title=title,
    )


STAFF_REMOVAL = "membership ends; the person keeps their account"
"""What deleting a staff row does: the membership goes, the platform-wide person stays (sections.staff)."""


def removed(actual: Record, reason: str | None, title: str) -> Change:
    """A row nothing desired claims: archived when live data depends on it (`reason`), else deleted
    (for staff, only the membership: said so, since "deleted" would read as the person's account)."""
    notes = (reason,) if reason else ()
    if actual.type == "staff" and not reason:
        notes = (STAFF_REMOVAL,)
    return Change(
        actual.address,
        actual.type,
        Action.ARCHIVE if reason else Action.DELETE,
        dict(actual.fields),
        {},
        risk="destructive",
        notes=notes,
        title=title,
    )


def _name(address: str, desired: Mapping[str, Record], actual: Mapping[str, Record]) -> str:
    record = desired.get(address) or actual.get(address)
    if record is None:
        return address.rsplit("/", 1)[-1]
    name = record.fields.get("name")
    return str(name) if name else record.key or address


def title_of(address: str, type_: str, desired: Mapping[str, Record], actual: Mapping[str, Record]) -> str:
    """The item as a coordinator would say it: "Emergency Medicine › Spring nursing block"."""
    if type_ == "organization":
        return address
    if type_ == "profile":
        return "Profile"
    name = _name(address, desired, actual)
    if type_ == "capacity":
        service = address.split("/capacity/", 1)[0]
        return f"{_name(service, desired, actual)} › {name}"
    if type_ == "staff":
        key = address.rsplit("/", 1)[-1]
        return f"{name} ({key})" if name != key else name
    return name
