"""How a plan's changes are worded in every human format: symbols, field lines, counts, the summary."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from plan_apply.plan import Action, Change, OrgPlan, Plan

__all__ = [
    "ACTION_NAMES",
    "SYMBOLS",
    "field_lines",
    "org_counts",
    "summary_line",
    "unmanaged_sentence",
    "value_text",
]

SYMBOLS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.DELETE: "-",
    Action.ARCHIVE: "x",
    Action.ADOPT: "<=",
    Action.RENAME: "~>",
}
ACTION_NAMES = ("create", "update", "delete", "archive", "adopt", "rename")


def value_text(value: Any) -> str:
    """A field's value as JSON (strings quoted, keys sorted): unambiguous and one line."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def summary_line(plan: Plan) -> str:
    """ "Plan: 1 to create, …": the totals every format ends (or starts) with."""
    counts = plan.summary
    return "Plan: " + ", ".join(f"{counts[action]} to {action}" for action in ACTION_NAMES) + "."


def field_lines(change: Change) -> list[tuple[str, str]]:
    """(field, "before → after") pairs; creates and deletes list their non-empty values."""
    if change.action is Action.CREATE:
        return [(k, value_text(v)) for k, v in change.after.items() if v not in (None, [], {})]
    if change.action in (Action.DELETE, Action.ARCHIVE):
        return [
            (k, value_text(change.before[k])) for k in ("name", "role") if change.before.get(k) is not None
        ]
    names = list(dict.fromkeys([*change.before, *change.after]))
    return [(n, f"{value_text(change.before.get(n))} → {value_text(change.after.get(n))}") for n in names]


def org_counts(org: OrgPlan) -> str:
    """ "2 to create, 1 to update" for one organization, in the order its changes come."""
    counts: dict[str, int] = {}
    for change in org.changes:
        counts[change.action.value] = counts.get(change.action.value, 0) + 1
    return ", ".join(f"{n} to {a}" for a, n in counts.items()) or "no changes"


def unmanaged_sentence(unmanaged: Mapping[str, int]) -> str:
    """The rows an organization's plan left alone because the configuration does not own them."""
    parts = [f"{n} {section}" for section, n in unmanaged.items() if n]
    return f"unmanaged rows left alone: {', '.join(parts)}" if parts else ""
