"""Renderers: Plan → text (terminal), JSON (machines), markdown (pull-request comments).

Pure functions of the plan: they never query anything. User text is escaped for where it goes:
control characters never reach a terminal, markdown/HTML never breaks out of a PR comment.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from plan_apply.plan import Action, Change, OrgPlan, Plan

__all__ = [
    "SYMBOLS",
    "color_enabled",
    "escape_markdown",
    "escape_terminal",
    "render_json",
    "render_markdown",
    "render_text",
    "sentence",
    "summary_line",
]

SYMBOLS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.DELETE: "-",
    Action.ARCHIVE: "x",
    Action.ADOPT: "<=",
    Action.RENAME: "~>",
}
_COLORS = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.DELETE: "red",
    Action.ARCHIVE: "magenta",
    Action.ADOPT: "cyan",
    Action.RENAME: "yellow",
}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
MARKDOWN_BUDGET = 60_000


def color_enabled(stream: Any, choice: str) -> bool:
    """--color beats NO_COLOR beats FORCE_COLOR beats "is it a terminal" (and TERM=dumb)."""
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


def escape_terminal(text: str) -> str:
    """Control characters (escape sequences, carriage returns, bidi overrides) shown as \\x.. codes."""
    return _CONTROL.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", text
    )


def _value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def summary_line(plan: Plan) -> str:
    counts = plan.summary
    parts = [
        f"{counts['create']} to create",
        f"{counts['update']} to update",
        f"{counts['delete']} to delete",
        f"{counts['archive']} to archive",
        f"{counts['adopt']} to adopt",
        f"{counts['rename']} to rename",
    ]
    return "Plan: " + ", ".join(parts) + "."


def _field_lines(change: Change) -> list[tuple[str, str]]:
    """(field, "before → after") pairs; creates and deletes list their non-empty values."""
    if change.action is Action.CREATE:
        return [(k, _value(v)) for k, v in change.after.items() if v not in (None, [], {})]
    if change.action in (Action.DELETE, Action.ARCHIVE):
        return [(k, _value(change.before[k])) for k in ("name", "role") if change.before.get(k) is not None]
    names = list(dict.fromkeys([*change.before, *change.after]))
    return [(n, f"{_value(change.before.get(n))} → {_value(change.after.get(n))}") for n in names]


def _org_counts(org: OrgPlan) -> str:
    counts: dict[str, int] = {}
    for change in org.changes:
        counts[change.action.value] = counts.get(change.action.value, 0) + 1
    return ", ".join(f"{n} to {a}" for a, n in counts.items()) or "no changes"


def _unmanaged_sentence(unmanaged: Mapping[str, int]) -> str:
    parts = [f"{n} {section}" for section, n in unmanaged.items() if n]
    return f"unmanaged rows left alone: {', '.join(parts)}" if parts else ""


def render_text(plan: Plan, style: Callable[[str, str], str] | None = None) -> str:
    """The plan for a terminal: a legend, then per organization one line per change with fields."""
    paint = style or (lambda text, color: text)
    lines = [
        "Legend: + create, ~ update, - delete, x archive, <= adopt, ~> rename",
        "",
    ]
    skipped = [org.slug for org in plan.organizations if org.skipped]
    for org in plan.organizations:
        if org.skipped:
            continue
        lines.append(paint(escape_terminal(f"{org.slug}: {_org_counts(org)}"), "bold"))
        for problem in org.problems:
            where = f"{problem.file}:{problem.line}:{problem.column}: " if problem.file else ""
            lines.append(paint(f"  ! {escape_terminal(where + 'error: ' + problem.message)}", "red"))
        for change in org.changes:
            symbol = SYMBOLS[change.action]
            cause = "  (drift: changed outside nexus)" if change.cause == "drift" else ""
            risk = "  [review]" if change.risk == "review" else ""
            lines.append(
                paint(f"  {symbol:>2} {escape_terminal(change.address)}", _COLORS[change.action])
                + cause
                + risk
            )
            for name, shown in _field_lines(change):
                lines.append(f"        {escape_terminal(name)}: {escape_terminal(shown)}")
            for note in change.notes:
                lines.append(paint(f"        # {escape_terminal(note)}", "dim"))
        for note in org.notes:
            lines.append(paint(f"  # {escape_terminal(note)}", "dim"))
        unmanaged = _unmanaged_sentence(org.unmanaged)
        if unmanaged:
            lines.append(paint(f"  {unmanaged}", "dim"))
        lines.append("")
    if skipped:
        noun = "organization" if len(skipped) == 1 else "organizations"
        lines.append(
            f"{len(skipped)} {noun} unchanged since the last apply (files and database): skipped; "
            "--full compares them anyway."
        )
        lines.append("")
    if not plan.has_changes and not plan.has_problems:
        lines.append("No changes. The database matches the configuration.")
    else:
        lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


def render_json(plan: Plan) -> str:
    """The plan JSON of CLI.md: exactly what `plan --out` writes."""
    return plan.to_json()


def escape_markdown(text: str) -> str:
    """Text safe inside a markdown table cell or paragraph: no HTML, links, mentions or breakouts."""
    text = escape_terminal(text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"([\\`*_{}\[\]#!|~])", r"\\\1", text)
    text = text.replace("@", "@\u200b")
    return text.replace("\n", " ")


def code_span(text: str) -> str:
    """Inline code: nothing inside is interpreted, so only backticks and control characters matter."""
    return "`" + escape_terminal(text).replace("`", "'").replace("\n", " ") + "`"


def _short(value: Any, limit: int = 80) -> str:
    shown = _value(value)
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


FENCE = "`" * 3


def _diff_line(change: Change) -> Iterable[str]:
    marker = {"+": "+", "-": "-", "~": "!", "x": "-", "<=": "+", "~>": "!"}[SYMBOLS[change.action]]
    yield f"{marker} {change.action.value:<7} {change.address}"
    for name, shown in _field_lines(change):
        yield f"#         {name}: {shown}"
    for note in change.notes:
        yield f"#         ({note})"


def _fenced(line: str) -> str:
    """A line safe inside a fenced block: no control characters, and no fence to break out with."""
    return escape_terminal(line).replace(FENCE, "'''")


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


ACTION_NAMES = ("create", "update", "delete", "archive", "adopt", "rename")
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
            f"<details><summary>{escape_markdown(org.slug)}: {escape_markdown(_org_counts(org))}</summary>",
            "",
            FENCE + "diff",
            *(_fenced(line) for change in org.changes for line in _diff_line(change)),
            FENCE,
            "</details>",
        ]
        text = "\n".join(block)
        if not out.fits(text, _TAIL_RESERVE):
            omitted.append(f"the details of {len(with_changes) - i} organization(s)")
            return
        out.add(text)


def render_markdown(plan: Plan, budget: int = MARKDOWN_BUDGET) -> str:
    """A pull-request comment: a hidden marker (so CI updates one comment), the totals, errors and risky
    changes in words, a table per organization, then collapsible details; cut to `budget` characters,
    always keeping the summary and saying what was left out."""
    out = _Budget(budget)
    out.add("<!-- nexus-plan -->")
    out.add("### nexus plan")
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
