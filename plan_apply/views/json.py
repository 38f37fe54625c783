"""The JSON view: plans, problems and the apply history for machines, each carrying a `format_version`
(CLI.md: fields may be added; none removed or renamed without raising it)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
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


def render_plan(plan: Plan, paint: Any = None, *, every_slug: bool = False) -> Iterable[str]:
    """`plan --format json` (never coloured), in pieces: a plan of any size is written as a stream; it
    lists every organization's changes (shared or not) whatever `every_slug` says."""
    return plan.json_chunks()


def render_problems(problems: Sequence[Problem]) -> str:
    """Configuration problems as CLI.md fixes them: one JSON list of objects (file, line, column, path,
    message), each also carrying the `format_version` of its shape, so a list-reading pipeline keeps working."""
    return _dumps([{"format_version": FORMAT_VERSION, **p.as_json()} for p in problems], sort_keys=False)


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
