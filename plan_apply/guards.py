"""The domain's exceptions to a plain diff, one small rule each: what belongs to whom.

Rotations are live data (archive, never delete; no fewer slots than booked); protection outlives the
file; a school's approval is the school's (re-submission is said aloud, proposals are never
overwritten silently, closed agreements stay closed); mass deletes need consent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plan_apply.records import Record

__all__ = [
    "MassDeleteLimit",
    "agreement_update_notes",
    "changed_fields",
    "comparable_fields",
    "drifted",
    "is_mass_delete",
    "must_archive",
    "protection_refusal",
    "slots_refusal",
]

_TERMS = ("school", "start_date", "end_date", "services", "disciplines", "document")


def comparable_fields(desired: Record, actual: Record) -> list[str]:
    """The fields a plan may change on this item (what the configuration owns of it)."""
    names = [name for name in desired.fields if name in actual.fields or desired.type == "staff"]
    if desired.type == "agreement" and actual.status not in (None, "draft"):
        # Once submitted, an agreement cannot be withdrawn by configuration: `submit` is moot.
        names = [n for n in names if n != "submit"]
    return names


def must_archive(actual: Record, records: Mapping[str, Record]) -> str | None:
    """Why a removed item is archived rather than deleted (live data depends on it), or None."""
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


def agreement_update_notes(actual: Record, changed: list[str]) -> tuple[list[str], bool]:
    """Notes for an agreement update, and whether it needs a reviewer (re-submission, proposal)."""
    notes: list[str] = []
    review = False
    terms = [f for f in changed if f in _TERMS or f in ("name", "description", "reminder_days")]
    if actual.status == "active" and terms:
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
    """More than `items` removals, or more than `fraction` of the managed items (two or more), is mass."""

    items: int = 10
    fraction: float = 0.25


def is_mass_delete(removals: int, managed: int, limit: MassDeleteLimit) -> bool:
    if removals > limit.items:
        return True
    return removals >= 2 and managed > 0 and removals / managed > limit.fraction


def changed_fields(desired: Record, actual: Record) -> list[str]:
    """The owned fields whose values differ (lists and mappings compare by value)."""
    return [n for n in comparable_fields(desired, actual) if desired.fields.get(n) != actual.fields.get(n)]


def drifted(actual: Record, fields: list[str]) -> bool:
    """Someone changed these fields in the database since nexus last applied them."""
    if actual.applied is None:
        return False
    applied: Mapping[str, Any] = actual.applied
    return any(name in applied and applied[name] != actual.fields.get(name) for name in fields)
