"""The capacity windows a plan changes, drawn before and after: a mermaid `gantt` chart, which GitHub
and GitLab render in a comment. Only what the plan holds is drawn (rendering never queries): a window
created, removed, or whose dates change; a date alone (the other one unchanged) is a milestone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from plan_apply.plan import Action, Change, Plan
from plan_apply.views.groups import Grouping, group_title

__all__ = ["BARS", "gantt"]

BARS = 40
"""Windows drawn at most (a chart is for seeing the shape of a change); the rest are counted."""
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_UNSAFE = re.compile(r"[^\w .,/()›'-]")
_DATES = ("start_date", "end_date")


def _label(text: str) -> str:
    """Text mermaid reads as a name: no `:`, `#`, `;` or anything else with a meaning to it."""
    return _UNSAFE.sub(" ", text).strip() or "window"


def _date(side: Mapping[str, Any], name: str) -> str | None:
    value = side.get(name)
    return value if isinstance(value, str) and _DATE.fullmatch(value) else None


def _bars(change: Change) -> list[str]:
    """The tasks of one window: its span before (done) and after (active), or its moved dates."""
    before = [_date(change.before, n) for n in _DATES]
    after = [_date(change.after, n) for n in _DATES]
    if change.action is Action.CREATE:
        return [f"new :active, {after[0]}, {after[1]}"] if all(after) else []
    if change.action in (Action.DELETE, Action.ARCHIVE):
        return [f"{change.action.value}d :crit, {before[0]}, {before[1]}"] if all(before) else []
    if all(before) and all(after):
        return [f"before :done, {before[0]}, {before[1]}", f"after :active, {after[0]}, {after[1]}"]
    tasks = []
    for name, was, will in zip(_DATES, before, after, strict=True):
        if was and will:
            word = name.split("_")[0]
            tasks += [f"{word} before :milestone, done, {was}, 0d", f"{word} after :milestone, {will}, 0d"]
    return tasks


def gantt(plan: Plan, grouping: Grouping) -> tuple[list[str], int]:
    """The chart's lines (without the fence; none when the plan moves no window's dates) and how many
    windows were left out of it; a change several organizations share is drawn once."""
    drawn: list[tuple[str, list[str]]] = []
    first = {(g.slugs[0], g.change.address): g for g in grouping.groups}
    for org in plan.organizations:
        for change in org.changes:
            if change.type != "capacity":
                continue
            group = first.get((org.slug, change.address))
            if group is None and grouping.is_shared(org.slug, change):
                continue
            tasks = _bars(change)
            if not tasks:
                continue
            name = change.address
            if group is not None:
                name = f"{group_title(group)} (in {len(group.slugs):,} organizations)"
            drawn.append((name, tasks))
    if not drawn:
        return [], 0
    lines = ["gantt", "    dateFormat YYYY-MM-DD", "    axisFormat %b %Y"]
    for name, tasks in drawn[:BARS]:
        lines.append(f"    section {_label(name)}")
        lines += [f"    {task}" for task in tasks]
    return lines, max(0, len(drawn) - BARS)
