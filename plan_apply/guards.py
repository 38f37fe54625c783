"""The domain's exceptions to a plain diff, one small rule each: what belongs to whom.

Rotations are live data (archive, never delete; no fewer slots than booked); protection outlives the
file; a school's approval is the school's (re-submission is said aloud, proposals are never
overwritten silently, closed agreements stay closed); mass deletes need consent.

The rules on a matched pair (a desired record and its row) are `Guard`s run as one pipeline,
`verdict_on`, whose findings combine into a `Verdict`. Every matched pair meets every guard, whatever its
action: a rename or an adoption changes the row's fields exactly as an update would, so it is said and
refused exactly as an update is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from plan_apply.records import Record
from plan_apply.yaml_text import inline_yaml

__all__ = [
    "PIPELINE",
    "Guard",
    "MassDeleteLimit",
    "Verdict",
    "actual_value",
    "agreement_review",
    "agreement_update_notes",
    "changed_fields",
    "closed_agreement",
    "comparable_fields",
    "dependents_refusal",
    "drift",
    "drift_notes",
    "drifted",
    "fewer_slots",
    "is_mass_delete",
    "managed_items",
    "mass_delete_refusal",
    "must_archive",
    "plan_mass_delete_refusal",
    "protection_refusal",
    "resubmits",
    "slots_floor",
    "slots_refusal",
    "still_refers",
    "verdict_on",
]

_SPARSE: Mapping[str, Mapping[str, Any]] = {"service": {"agreements": []}}
"""Fields a row carries only when they say something (a facility's services' links to its system's
agreements): absent reads as their empty value, so rows that do not use them read as they always did."""

_TERMS = ("school", "start_date", "end_date", "services", "disciplines", "document")


def comparable_fields(desired: Record, actual: Record) -> list[str]:
    """The fields a plan may change on this item (what the configuration owns of it)."""
    sparse = _SPARSE.get(desired.type, {})
    names = [
        name for name in desired.fields if name in actual.fields or name in sparse or desired.type == "staff"
    ]
    if desired.type == "staff":
        # A person's name is the person's (one row for the whole platform, which several organizations
        # may list under other names): it is written when nexus creates the person, never compared after.
        names = [n for n in names if n != "name"]
    if desired.type == "agreement" and actual.status not in (None, "draft"):
        # Once submitted, an agreement cannot be withdrawn by configuration: `submit` is moot.
        names = [n for n in names if n != "submit"]
    return names


def _refers(record: Record, name: str, value: str) -> bool:
    field = record.fields.get(name)
    return value in field if isinstance(field, list) else field == value


def still_refers(
    row: Record, name: str, value: str, claimed: Mapping[str, Record], gone: AbstractSet[str]
) -> bool:
    """Whether `row` still points at `value` (in its field `name`) once the plan is applied: it is not
    removed by the plan, and the plan does not write it (`claimed`: the desired record each row becomes,
    also renamed) to point elsewhere (a row nexus does not manage,
    or an agreement the school holds, is not written)."""
    if row.address in gone or not _refers(row, name, value):
        return False
    want = claimed.get(row.address)
    rewritten = (
        want is not None
        and row.managed
        and not row.archived
        and row.status not in ("closed", "changes_proposed")
        and not _refers(want, name, value)
    )
    return not rewritten


def _named(rows: Iterable[Record]) -> str:
    return ", ".join(r.address for r in rows)


def must_archive(
    actual: Record,
    records: Mapping[str, Record],
    claimed: Mapping[str, Record] | None = None,
    deleted: AbstractSet[str] = frozenset(),
) -> str | None:
    """Why a removed item is archived rather than deleted (live data, or a row the plan does not
    remove, points at it and the database refuses to cascade into it), or None. `deleted` are the
    rows this plan deletes (children are decided before their parents), `claimed` the desired record
    each row becomes."""
    claimed = claimed or {}
    if actual.type == "capacity" and actual.rotations:
        return f"archived, not deleted: {actual.rotations} rotation(s) are booked on it"
    if actual.type == "service":
        windows = [r for r in records.values() if r.type == "capacity" and r.parent == actual.address]
        booked = sum(r.rotations for r in windows)
        unmanaged = sum(1 for r in windows if not r.managed)
        if booked:
            return f"archived, not deleted: {booked} rotation(s) are booked in its capacity windows"
        if unmanaged:
            return f"archived, not deleted: it holds {unmanaged} capacity window(s) nexus does not manage"
        covering = [
            r
            for r in records.values()
            if r.type == "agreement" and still_refers(r, "services", actual.key, claimed, deleted)
        ]
        if covering:
            return f"archived, not deleted: still covered by {_named(covering)}, which keep their services"
        system = actual.fields.get("agreements")
        if system:
            return f"archived, not deleted: still covered by {', '.join(system)}, of a parent organization"
    if actual.type == "agreement":
        if actual.status not in (None, "draft"):
            return f"archived, not deleted: the agreement is {actual.status} with the school"
        kept = [
            r
            for r in records.values()
            if r.type == "capacity"
            and r.fields.get("agreement") == actual.key
            and (r.rotations or not r.managed)
        ]
        if kept:
            return f"archived, not deleted: {len(kept)} capacity window(s) with booked rotations are scheduled under it"
        facilities = actual.extra.get("used_by", ())
        if facilities:
            booked = sum(rotations for _, rotations in facilities)
            return f"archived, not deleted: still used by {', '.join(a for a, _ in facilities)}" + (
                f" ({booked} rotation(s) booked)" if booked else ""
            )
        using = [
            r
            for r in records.values()
            if r.type == "capacity" and still_refers(r, "agreement", actual.key, claimed, deleted)
        ]
        if using:
            return f"archived, not deleted: still used by {_named(using)}"
    return None


def dependents_refusal(
    actual: Record,
    records: Mapping[str, Record],
    claimed: Mapping[str, Record],
    deleted: AbstractSet[str],
    removed: AbstractSet[str],
) -> str | None:
    """A row that cannot be archived is never removed from under rows the plan does not change: a step
    services still link (also another organization's; nexus's own services archived, now or before, let
    go of it), a school live agreements still name (`removed`: archived or deleted by this plan)."""
    if actual.type == "step":
        linking = [
            r.address
            for r in records.values()
            if r.type == "service"
            and not (r.managed and r.archived)  # nexus's own archived service lets go of it (on delete)
            and still_refers(r, "steps", actual.address, claimed, removed)
        ]
        linking += list(actual.extra.get("linked_by", ()))
        if linking:
            return (
                f"{actual.address} is still linked by {', '.join(sorted(linking))}, which this plan does not "
                "change: unlink it there first, or keep the step"
            )
    if actual.type == "school":
        naming = [
            r
            for r in records.values()
            if r.type == "agreement"
            and not r.archived
            and still_refers(r, "school", actual.key, claimed, removed)
        ]
        if naming:
            return (
                f"{actual.address} is still named by {_named(naming)}, which this plan does not change: "
                "remove or change them first, or keep the school"
            )
    return None


def protection_refusal(actual: Record, action: str) -> str | None:
    """A protected item is never deleted or archived; the message says how to release it."""
    if not actual.protected:
        return None
    return (
        f"{actual.address} is protected and would be {action}d: to remove it, first apply a configuration "
        "that declares it with `protect: false`, then remove it"
    )


def slots_refusal(desired: Record, actual: Record) -> str | None:
    """`slots` may not go below the rotations already booked on the window."""
    slots = desired.fields.get("slots")
    if desired.type == "capacity" and isinstance(slots, int) and slots < actual.rotations:
        return (
            f'capacity window "{desired.key}" has {actual.rotations} rotation(s) booked; '
            f"slots cannot go down to {slots}"
        )
    return None


def resubmits(actual: Record, changed: Sequence[str]) -> bool:
    """Changing the terms of an agreement the school accepted sends it back to the school."""
    terms = [f for f in changed if f in _TERMS or f in ("name", "description", "reminder_days")]
    return actual.type == "agreement" and actual.status == "active" and bool(terms)


def agreement_update_notes(actual: Record, changed: list[str]) -> tuple[list[str], bool]:
    """Notes for an agreement update, and whether it needs a reviewer (re-submission, proposal)."""
    notes: list[str] = []
    review = False
    if resubmits(actual, changed):
        notes.append("re-submits the agreement to the school: its status goes from active to pending_school")
        review = True
    if actual.status == "changes_proposed":
        proposed = sorted((actual.proposed or {}).items())
        proposal = (
            ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in proposed) or "see the platform"
        )
        notes.append(
            f"the school proposed changes ({proposal}); apply leaves this agreement alone unless "
            "--counter-propose is given"
        )
        review = True
    if "submit" in changed and actual.status in (None, "draft"):
        notes.append("submits the agreement to the school for approval (status pending_school)")
    return notes, review


@dataclass(frozen=True, slots=True)
class MassDeleteLimit:
    """More than `items` removals in one plan (all organizations together), or more than `fraction` of
    an organization's managed items (two or more), is mass."""

    items: int = 10
    fraction: float = 0.25


def is_mass_delete(removals: int, managed: int, limit: MassDeleteLimit) -> bool:
    """Whether this much of one organization is a mass delete (its share of the managed items)."""
    return removals >= 2 and managed > 0 and removals / managed > limit.fraction


def changed_fields(desired: Record, actual: Record) -> list[str]:
    """The owned fields whose values differ (lists and mappings compare by value)."""
    return [n for n in comparable_fields(desired, actual) if desired.fields.get(n) != actual_value(actual, n)]


def actual_value(actual: Record, name: str) -> Any:
    """A row's field, a sparse field it leaves out as its empty value."""
    return actual.fields.get(name, _SPARSE.get(actual.type, {}).get(name))


def drifted(actual: Record, fields: list[str]) -> bool:
    """Someone changed these fields in the database since nexus last applied them."""
    if actual.applied is None:
        return False
    applied: Mapping[str, Any] = actual.applied
    return any(name in applied and applied[name] != actual_value(actual, name) for name in fields)


def managed_items(records: Iterable[Record]) -> int:
    """What a mass delete is measured against: the managed rows (not the organization or its profile)."""
    return sum(1 for r in records if r.managed and r.type not in ("organization", "profile"))


def mass_delete_refusal(slug: str, removals: int, managed: int, limit: MassDeleteLimit) -> str | None:
    """Removing this much of an organization needs consent: the message says how to give it."""
    if not removals or not is_mass_delete(removals, managed, limit):
        return None
    return (
        f"this plan would delete or archive {removals} of {managed} managed items of "
        f'"{slug}": check the configuration, then re-run with --allow-mass-delete'
    )


def plan_mass_delete_refusal(slug: str, removals: int, total: int, limit: MassDeleteLimit) -> str | None:
    """Removing more than `limit.items` in one plan, across all its organizations, needs consent."""
    if not removals or total <= limit.items:
        return None
    return (
        f"the whole plan would delete or archive {total} items (more than {limit.items}), {removals} of them "
        f'in "{slug}": check the configuration, then re-run with --allow-mass-delete'
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the guards say about one matched pair; verdicts combine by adding up."""

    refusals: tuple[str, ...] = ()
    """Plan problems at the desired item: the organization cannot be applied as configured."""
    notes: tuple[str, ...] = ()
    """Explanations of the change, for reviewers."""
    org_notes: tuple[str, ...] = ()
    """Explanations for the organization as a whole (a change that is withheld is said there)."""
    review: bool = False
    """A reviewer should read the change (its risk is `review`)."""
    drift: bool = False
    """The row was changed outside nexus since the last apply (its cause is `drift`)."""
    withheld: bool = False
    """The changed fields are not proposed (a rename or an adoption still renames or adopts the row)."""

    def __add__(self, other: Verdict) -> Verdict:
        return Verdict(
            self.refusals + other.refusals,
            self.notes + other.notes,
            self.org_notes + other.org_notes,
            self.review or other.review,
            self.drift or other.drift,
            self.withheld or other.withheld,
        )


NOTHING = Verdict()
"""What a guard with nothing to say returns: one value, so a pair every guard passes builds none."""

Guard = Callable[[Record, Record, Sequence[str]], Verdict]
"""One rule on a desired record, its row, and the fields that differ between them."""


def slots_floor(desired: Record, actual: Record, changed: Sequence[str]) -> Verdict:
    """A window keeps at least as many slots as rotations are booked on it."""
    refusal = slots_refusal(desired, actual)
    return Verdict(refusals=(refusal,)) if refusal else NOTHING


def closed_agreement(desired: Record, actual: Record, changed: Sequence[str]) -> Verdict:
    """The school closed it: configuration never resurrects it (a change to it is said, not applied)."""
    if actual.type != "agreement" or actual.status != "closed":
        return NOTHING
    if not changed:
        return Verdict(withheld=True)
    note = f"{desired.address}: the school closed this agreement; changes to it are not applied"
    return Verdict(org_notes=(note,), withheld=True)


def agreement_review(desired: Record, actual: Record, changed: Sequence[str]) -> Verdict:
    """A re-submission or a pending proposal of the school is said aloud and needs a reviewer."""
    if desired.type != "agreement":
        return NOTHING
    notes, review = agreement_update_notes(actual, list(changed))
    return Verdict(notes=tuple(notes), review=review) if notes or review else NOTHING


def fewer_slots(desired: Record, actual: Record, changed: Sequence[str]) -> Verdict:
    """Taking slots away from a window needs a reviewer, who sees how many are booked beside it."""
    if desired.type != "capacity" or "slots" not in changed:
        return NOTHING
    before = actual.fields.get("slots")
    if desired.fields["slots"] >= (before or 0):
        return NOTHING
    note = f"fewer slots: {before} → {desired.fields['slots']} ({actual.rotations} booked)"
    return Verdict(notes=(note,), review=True)


def drift_notes(actual: Record, changed: Sequence[str]) -> tuple[str, ...]:
    """What a reviewer must write to keep each edit made outside nexus that the change would undo: the
    field and the database's value, in YAML."""
    if actual.applied is None:
        return ()
    applied: Mapping[str, Any] = actual.applied
    return tuple(
        f"this reverts a change made in the web UI; set `{name}: {inline_yaml(actual.fields.get(name))}` "
        "to keep it"
        for name in changed
        if name in applied and applied[name] != actual_value(actual, name)
    )


def drift(desired: Record, actual: Record, changed: Sequence[str]) -> Verdict:
    """Whether the change undoes an edit made outside nexus, and how to keep that edit instead."""
    if not changed:
        return NOTHING
    return Verdict(notes=drift_notes(actual, changed), drift=drifted(actual, list(changed)))


PIPELINE: tuple[Guard, ...] = (slots_floor, closed_agreement, agreement_review, fewer_slots, drift)
"""The guards every matched pair meets (update, rename, adopt alike), in order (their notes are listed in
this order)."""


def verdict_on(desired: Record, actual: Record, changed: Sequence[str]) -> Verdict:
    """Every guard of the pipeline on one matched pair, their verdicts combined."""
    verdict = NOTHING
    for guard in PIPELINE:
        found = guard(desired, actual, changed)
        if found is not NOTHING:
            verdict = found if verdict is NOTHING else verdict + found
    return verdict
