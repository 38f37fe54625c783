"""The text view: plans, problems and the apply history as a terminal (or a CI log) shows them.

Every string from files, the environment or the database goes through `escape_terminal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from plan_apply.plan import Action, Change, Plan
from plan_apply.views.color import Paint
from plan_apply.views.escape import escape_terminal
from plan_apply.views.fields import SYMBOLS, field_lines, org_counts, summary_line, unmanaged_sentence
from plan_apply.views.groups import Grouping, group_title, grouped, listed_slugs

if TYPE_CHECKING:
    from nexus_config.problems import Problem
    from plan_apply.history import HistoryEntry

__all__ = ["SHOWN_SLUGS", "located_lines", "render_history", "render_plan", "render_problems", "render_text"]

_COLORS = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.DELETE: "red",
    Action.ARCHIVE: "magenta",
    Action.ADOPT: "cyan",
    Action.RENAME: "yellow",
}


SHOWN_SLUGS = 3
"""Organizations named beside a shared change (the rest counted) unless every one is asked for."""


def _change_lines(change: Change, shown: str, paint: Paint, where: str = "") -> list[str]:
    """One change: its symbol and address (`shown`), what it changes, why."""
    cause = "  (drift: changed outside nexus)" if change.cause == "drift" else ""
    risk = "  [review]" if change.risk == "review" else ""
    held = "" if change.pending else "  [held: apply leaves it alone]"
    symbol = SYMBOLS[change.action]
    lines = [
        paint(f"  {symbol:>2} {escape_terminal(shown)}", _COLORS[change.action]) + where + cause + risk + held
    ]
    for name, value in field_lines(change):
        lines.append(f"        {escape_terminal(name)}: {escape_terminal(value)}")
    for note in change.notes:
        lines.append(paint(f"        # {escape_terminal(note)}", "dim"))
    return lines


def _shared_lines(grouping: Grouping, paint: Paint, every_slug: bool) -> list[str]:
    if not grouping.groups:
        return []
    lines = [paint("Shared by several organizations (each change shown once):", "bold")]
    for cohort in grouping.cohorts:
        slugs = listed_slugs(cohort.slugs, len(cohort.slugs) if every_slug else SHOWN_SLUGS)
        lines.append(paint(f"in {len(cohort.slugs):,} organizations: {escape_terminal(slugs)}", "bold"))
        for group in cohort.groups:
            lines += _change_lines(group.change, group_title(group), paint)
    return [*lines, ""]


def render_text(
    plan: Plan, style: Paint | None = None, *, name_database: bool = False, every_slug: bool = False
) -> str:
    """The plan for a terminal: a legend, the changes several organizations share (each once, naming a
    few of them, or `every_slug`), then per organization one line per change of its own with fields;
    with `name_database`, first the database it was compared against."""
    paint = style or (lambda text, color: text)
    lines = [f"Against {escape_terminal(plan.database)}", ""] if name_database else []
    lines += ["Legend: + create, ~ update, - delete, x archive, <= adopt, ~> rename", ""]
    grouping = grouped(plan)
    lines += _shared_lines(grouping, paint, every_slug)
    skipped = [org.slug for org in plan.organizations if org.skipped]
    only_shared = 0
    for org in plan.organizations:
        if org.skipped:
            continue
        own = grouping.own(org)
        unmanaged = unmanaged_sentence(org.unmanaged)
        if org.changes and not own and not (org.problems or org.notes or unmanaged):
            only_shared += 1
            continue
        shared = len(org.changes) - len(own)
        also = f" ({shared} of them shared, above)" if shared else ""
        lines.append(paint(escape_terminal(f"{org.slug}: {org_counts(org)}{also}"), "bold"))
        for problem in org.problems:
            where = f"{problem.file}:{problem.line}:{problem.column}: " if problem.file else ""
            lines.append(paint(f"  ! {escape_terminal(where + 'error: ' + problem.message)}", "red"))
        for change in own:
            lines += _change_lines(change, change.address, paint)
        for note in org.notes:
            lines.append(paint(f"  # {escape_terminal(note)}", "dim"))
        if unmanaged:
            lines.append(paint(f"  {unmanaged}", "dim"))
        lines.append("")
    if only_shared:
        noun = "organization has" if only_shared == 1 else "organizations have"
        lines.append(f"{only_shared:,} {noun} only the shared changes above.")
        lines.append("")
    if skipped:
        noun = "organization" if len(skipped) == 1 else "organizations"
        lines.append(f"{len(skipped)} {noun} unchanged since the last apply (files and database): skipped.")
        lines.append("")
    if not plan.has_changes and not plan.has_problems:
        lines.append("No changes. The database matches the configuration.")
    else:
        lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


def render_plan(plan: Plan, paint: Paint, *, every_slug: bool = False) -> str:
    """`plan --format text`: the plan, naming the database it was compared against."""
    return render_text(plan, paint, name_database=True, every_slug=every_slug)


def located_lines(plan: Plan) -> list[str]:
    """`FILE:LINE:COLUMN: error: MESSAGE` for each located plan-time problem: what CI problem matchers
    read (on stderr, whatever the format of stdout)."""
    return [
        escape_terminal(f"{p.file}:{p.line}:{p.column}: error: {p.message}")
        for org in plan.organizations
        for p in org.problems
        if p.file
    ]


def render_problems(problems: Sequence[Problem]) -> str:
    """The located lines of configuration problems (a problem repeated in a file folded into one), then a
    count: the GCC problem-matcher form, every string from the files escaped for a terminal."""
    from nexus_config.problems import problems_to_text

    return problems_to_text(problems, escape_terminal)


def render_history(entries: Sequence[HistoryEntry]) -> str:
    """Past applies as an aligned table, newest first."""
    if not entries:
        return "No applies recorded.\n"
    rows = [("WHEN (UTC)", "ORGANIZATION", "WHO", "COMMIT", "CHANGES")]
    for e in entries:
        summary = ", ".join(f"{n} {a}" for a, n in sorted(e.summary.items())) or "none"
        rows.append((e.started_at, e.organization, e.actor, (e.commit or "-")[:12], summary))
    cells = [[escape_terminal(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines) + "\n"
