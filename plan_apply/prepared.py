"""What an organization's transaction writes that the database has no say in, computed ahead.

An apply commits one transaction per organization, and each commit waits for the disk (SQLite's fsync,
PostgreSQL's flush of its log) with the interpreter free. The next organization's new rows (bound as the
driver takes them) and log entry are computed then, on another thread, from its plan alone: the wait
overlaps work the apply does anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect

from plan_apply.database.packed import Packed
from plan_apply.database.writes import created_row
from plan_apply.incremental import config_hash_of
from plan_apply.plan import Action, Change, OrgPlan
from plan_apply.sections import section_of

__all__ = ["Prepared", "logged_changes", "logged_summary", "prepared"]


@dataclass(frozen=True, slots=True)
class Prepared:
    rows: Mapping[str, Mapping[str, Any]]
    """The rows of created items, by address (`writes.created_row`)."""
    log_changes: Packed
    """The apply log's changes when every change is written (none left alone), packed."""
    log_summary: dict[str, int]
    config_hash: str | None
    """The identity of the files it is applied from (`incremental.config_hash_of`), None without files."""


def prepared(org: OrgPlan, dialect: Dialect) -> Prepared:
    """What `org`'s transaction will write that depends on its plan only, bound for `dialect`."""
    rows = {}
    for change in org.changes:
        if change.action is Action.CREATE:
            section = section_of(change.type)
            if not (section.root or section.single):
                rows[change.address] = created_row(section, change, dialect)
    return Prepared(
        rows,
        Packed.of(logged_changes(org.changes, ())),
        logged_summary(org.changes, ()),
        config_hash_of(org.config_files) if org.config_files else None,
    )


def logged_summary(written: Sequence[Change], left_alone: Sequence[Change]) -> dict[str, int]:
    """The apply log's counts: changes written by action, and those left alone (never counted written)."""
    counts = {
        a: sum(1 for c in written if c.action.value == a) for a in sorted({c.action.value for c in written})
    }
    if left_alone:
        counts["left alone"] = len(left_alone)
    return counts


def logged_changes(written: Sequence[Change], left_alone: Sequence[Change]) -> list[dict[str, Any]]:
    """The apply log's changes: those written as planned, then those left alone marked so."""
    return [c.to_json() for c in written] + [{**c.to_json(), "left_alone": True} for c in left_alone]
