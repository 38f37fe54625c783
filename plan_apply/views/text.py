"""The text view: plans, problems and the apply history as a terminal (or a CI log) shows them.

Every string from files, the environment or the database goes through `escape_terminal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from plan_apply.plan import Action, Plan
from plan_apply.views.color import Paint
from plan_apply.views.escape import escape_terminal
from plan_apply.views.fields import SYMBOLS, field_lines, org_counts, summary_line, unmanaged_sentence

if TYPE_CHECKING:
    from nexus_config.problems import Problem
    from plan_apply.history import HistoryEntry

__all__ = ["located_lines", "render_history", "render_plan", "render_problems", "render_text"]

_COLORS = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.DELETE: "red",
    Action.ARCHIVE: "magenta",
    Action.ADOPT: "cyan",
    Action.RENAME: "yellow",
}


def render_text(plan: Plan, style: Paint | None = None, *, name_database: bool = False) -> str:
    """The plan for a terminal: a legend, then per organization one line per change with fields; with
    `name_database`, first the database it was compared against."""
    paint = style or (lambda text, color: text)
    lines = [f"Against {escape_terminal(plan.database)}", ""] if name_database else []
    lines += ["Legend: + create, ~ update, - delete, x archive, <= adopt, ~> rename", ""]
    skipped = [org.slug for org in plan.organizations if org.skipped]
    for org in plan.organizations:
        if org.skipped:
            continue
        lines.append(paint(escape_terminal(f"{org.slug}: {org_counts(org)}"), "bold"))
        for problem in org.problems:
            where = f"{problem.file}:{problem.line}:{problem.column}: " if problem.file else ""
            lines.append(paint(f"  ! {escape_terminal(where + 'error: ' + problem.message)}", "red"))
        for change in org.changes:
            cause = "  (drift: changed outside nexus)" if change.cause == "drift" else ""
            risk = "  [review]" if change.risk == "review" else ""
            held = "" if change.pending else "  [held: apply leaves it alone]"
            symbol = SYMBOLS[change.action]
            lines.append(
                paint(f"  {symbol:>2} {escape_terminal(change.address)}", _COLORS[change.action])
                + cause
                + risk
                + held
            )
            for name, shown in field_lines(change):
                lines.append(f"        {escape_terminal(name)}: {escape_terminal(shown)}")
            for note in change.notes:
                lines.append(paint(f"        # {escape_terminal(note)}", "dim"))
        for note in org.notes:
            lines.append(paint(f"  # {escape_terminal(note)}", "dim"))
        unmanaged = unmanaged_sentence(org.unmanaged)
        if unmanaged:
            lines.append(paint(f"  {unmanaged}", "dim"))
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


def render_plan(plan: Plan, paint: Paint) -> str:
    """`plan --format text`: the plan, naming the database it was compared against."""
    return render_text(plan, paint, name_database=True)


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
