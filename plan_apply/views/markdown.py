"""The markdown view: a plan as a pull-request comment a clinical education director can read.

Errors and risky changes in words first, a table per organization, then collapsible details; cut to a
character budget (GitHub refuses comments over 65,536). User text is escaped with `escape_markdown`,
`code_span` or `fenced`: nothing breaks out of the comment, and nobody is mentioned.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from plan_apply.plan import Action, Change, OrgPlan, Plan
from plan_apply.views.escape import FENCE, code_span, escape_markdown, fenced
from plan_apply.views.fields import ACTION_NAMES, SYMBOLS, field_lines, org_counts, summary_line, value_text

__all__ = ["MARKDOWN_BUDGET", "TABLE_ROWS", "render_markdown", "render_plan", "sentence"]

MARKDOWN_BUDGET = 60_000


def _short(value: Any, limit: int = 80) -> str:
    shown = value_text(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def sentence(change: Change) -> str:
    """One line a clinical education director reads: "Emergency Medicine › Spring block: 4 → 6 slots"."""
    title = change.title or change.address
    action = change.action
    if action is Action.CREATE:
        return f"{title}: new {change.type}"
    if action is Action.DELETE:
        return f"{title}: deleted"
    if action is Action.ARCHIVE:
        return f"{title}: archived"
    parts = []
    for name in dict.fromkeys([*change.before, *change.after]):
        before, after = change.before.get(name), change.after.get(name)
        if name == "archived":
            parts.append("restored from the archive")
        elif name == "slots":
            parts.append(f"{before} → {after} slots")
        elif name == "key":
            parts.append(f"renamed {before} → {after}")
        else:
            parts.append(f"{name} {_short(before, 40)} → {_short(after, 40)}")
    verb = {Action.ADOPT: "adopted", Action.RENAME: "renamed", Action.UPDATE: "updated"}[action]
    return f"{title}: " + ("; ".join(parts) if parts else verb)


def _diff_line(change: Change) -> Iterable[str]:
    marker = {"+": "+", "-": "-", "~": "!", "x": "-", "<=": "+", "~>": "!"}[SYMBOLS[change.action]]
    yield f"{marker} {change.action.value:<7} {change.address}"
    for name, shown in field_lines(change):
        yield f"#         {name}: {shown}"
    for note in change.notes:
        yield f"#         ({note})"
    if not change.pending:
        yield "#         (held: apply leaves it alone)"


class _Budget:
    """Markdown assembled section by section under a character budget (GitHub refuses > 65,536)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def fits(self, text: str, reserve: int = 0) -> bool:
        return self.size + len(text) + 1 + reserve <= self.limit

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text) + 1

    def text(self) -> str:
        return "\n".join(self.parts) + "\n"


_RISK_ORDER = {"destructive": 0, "review": 1, "low": 2}
_TAIL_RESERVE = 600
TABLE_ROWS = 100
"""Organizations listed one per row at most; the rest are summed in one row (details get the room)."""


def _org_row(org: OrgPlan) -> str:
    counts = dict.fromkeys(ACTION_NAMES, 0)
    for change in org.changes:
        counts[change.action.value] += 1
    drift = sum(1 for c in org.changes if c.cause == "drift")
    review = sum(1 for c in org.changes if c.risk != "low")
    status = "error" if org.problems else ("review" if review else "")
    cells = " | ".join(str(counts[a]) for a in ACTION_NAMES)
    return f"| {code_span(org.slug)} | {cells} | {drift} | {review} | {status} |"


def _errors(out: _Budget, plan: Plan, omitted: list[str]) -> None:
    problems = [(o.slug, p) for o in plan.organizations for p in o.problems]
    if not problems:
        return
    out.add("")
    out.add("#### Errors: these organizations cannot be applied as configured")
    out.add("")
    for i, (slug, problem) in enumerate(problems):
        where = f" ({code_span(f'{problem.file}:{problem.line}')})" if problem.file else ""
        line = f"- {code_span(slug)}: {escape_markdown(problem.message)}{where}"
        if not out.fits(line, _TAIL_RESERVE * 4):
            omitted.append(f"{len(problems) - i} more errors")
            return
        out.add(line)


def _risky(out: _Budget, plan: Plan, omitted: list[str]) -> None:
    risky = sorted(
        (c for c in plan.changes if c.risk != "low"), key=lambda c: (_RISK_ORDER[c.risk], c.address)
    )
    if not risky:
        return
    out.add("")
    out.add("#### Changes that need a careful look")
    out.add("")
    for i, change in enumerate(risky):
        why = "; ".join(change.notes)
        if change.action in (Action.ARCHIVE, Action.DELETE) and why:
            line = f"- **{change.action.value}** {escape_markdown(change.title or change.address)}: {escape_markdown(why)}"
        else:
            line = f"- **{change.action.value}** {escape_markdown(sentence(change))}"
            line += f" ({escape_markdown(why)})" if why else ""
        line += " — changed in the database outside nexus (drift)" if change.cause == "drift" else ""
        line += " — **held**: apply leaves it alone" if not change.pending else ""
        line += f" {code_span(change.address)}"
        if not out.fits(line, _TAIL_RESERVE * 3):
            omitted.append(f"{len(risky) - i} more changes that need a careful look")
            return
        out.add(line)


def _table(out: _Budget, changed: list[OrgPlan], omitted: list[str]) -> None:
    if not changed:
        return
    out.add("")
    out.add("| organization | create | update | delete | archive | adopt | rename | drift | review | |")
    out.add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    ranked = sorted(
        changed,
        key=lambda o: (not o.problems, -sum(c.risk != "low" for c in o.changes), -len(o.changes), o.slug),
    )
    for i, org in enumerate(ranked):
        row = _org_row(org)
        if i >= TABLE_ROWS or not out.fits(row, _TAIL_RESERVE * 2):
            rest = ranked[i:]
            counts = {a: sum(1 for o in rest for c in o.changes if c.action.value == a) for a in ACTION_NAMES}
            cells = " | ".join(str(counts[a]) for a in ACTION_NAMES)
            out.add(f"| … and {len(rest)} more | {cells} | | | |")
            omitted.append(f"{len(rest)} organizations' rows (their totals are in the last row)")
            return
        out.add(row)


def _details(out: _Budget, changed: list[OrgPlan], omitted: list[str]) -> None:
    with_changes = [o for o in changed if o.changes]
    for i, org in enumerate(with_changes):
        block = [
            "",
            f"<details><summary>{escape_markdown(org.slug)}: {escape_markdown(org_counts(org))}</summary>",
            "",
            FENCE + "diff",
            *(fenced(line) for change in org.changes for line in _diff_line(change)),
            FENCE,
            "</details>",
        ]
        text = "\n".join(block)
        if not out.fits(text, _TAIL_RESERVE):
            omitted.append(f"the details of {len(with_changes) - i} organization(s)")
            return
        out.add(text)


def render_markdown(plan: Plan, budget: int = MARKDOWN_BUDGET, *, name_database: bool = False) -> str:
    """A pull-request comment: a hidden marker (so CI updates one comment), the totals, errors and risky
    changes in words, a table per organization, then collapsible details; cut to `budget` characters,
    always keeping the summary and saying what was left out. With `name_database`, the database it was
    compared against comes first."""
    out = _Budget(budget)
    out.add("<!-- nexus-plan -->")
    out.add("### nexus plan")
    out.add("")
    if name_database:
        out.add(f"Against {code_span(plan.database)}.")
        out.add("")
    out.add(f"**{summary_line(plan)}**")
    shown = [o for o in plan.organizations if not o.skipped]
    changed = [o for o in shown if o.changes or o.problems]
    facts = [f"{len(changed)} organization(s) with changes or errors"]
    if len(shown) > len(changed):
        facts.append(f"{len(shown) - len(changed)} without")
    if len(shown) < len(plan.organizations):
        facts.append(
            f"{len(plan.organizations) - len(shown)} unchanged since their last apply (not compared)"
        )
    out.add("")
    out.add(", ".join(facts) + ".")
    omitted: list[str] = []
    _errors(out, plan, omitted)
    _risky(out, plan, omitted)
    _table(out, changed, omitted)
    _details(out, changed, omitted)
    if omitted:
        out.add("")
        out.add(
            "_Cut to fit a pull-request comment: "
            + escape_markdown("; ".join(omitted))
            + " not shown here. The full plan is in the plan artifact, or run `nexus plan --format text`._"
        )
    return out.text()


def render_plan(plan: Plan, paint: Any = None) -> str:
    """`plan --format markdown`: the comment, naming the database it was compared against."""
    return render_markdown(plan, name_database=True)
