"""The JSON view: plans, problems and the apply history for machines, each an object with a
`format_version` (CLI.md: fields may be added; none removed or renamed without raising it)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plan_apply.plan import Plan

if TYPE_CHECKING:
    from nexus_config.problems import Problem
    from plan_apply.history import HistoryEntry

__all__ = ["FORMAT_VERSION", "render_history", "render_json", "render_plan", "render_problems"]

FORMAT_VERSION = 1


def _dumps(value: Any, *, sort_keys: bool = True) -> str:
    return json.dumps(value, indent=2, sort_keys=sort_keys, ensure_ascii=False) + "\n"


def render_json(plan: Plan) -> str:
    """The plan JSON of CLI.md: exactly what `plan --out` writes."""
    return plan.to_json()


def render_plan(plan: Plan, paint: Any = None) -> str:
    """`plan --format json` (never coloured)."""
    return render_json(plan)


def render_problems(problems: Sequence[Problem]) -> str:
    """Configuration problems (CLI.md: file, line, column, path, message) and whether the input is valid."""
    return _dumps(
        {
            "format_version": FORMAT_VERSION,
            "valid": not any(p.severity == "error" for p in problems),
            "problems": [p.as_json() for p in problems],
        },
        sort_keys=False,
    )


def render_history(entries: Sequence[HistoryEntry]) -> str:
    """Past applies, newest first: an audit trail a script can read."""
    return _dumps(
        {
            "format_version": FORMAT_VERSION,
            "applies": [
                {
                    "id": e.id,
                    "organization": e.organization,
                    "started_at": e.started_at,
                    "finished_at": e.finished_at,
                    "actor": e.actor,
                    "commit": e.commit,
                    "plan_hash": e.plan_hash,
                    "summary": e.summary,
                    "changes": e.changes,
                }
                for e in entries
            ],
        }
    )
