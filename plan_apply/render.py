"""Renderers: Plan → text (terminal), JSON (machines), markdown (pull-request comments).

Pure functions of the plan: they never query anything. User text is escaped for where it goes:
control characters never reach a terminal, markdown/HTML never breaks out of a PR comment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from plan_apply.plan import Action, Change, OrgPlan, Plan

__all__ = [
    "SYMBOLS",
    "escape_markdown",
    "escape_terminal",
    "render_json",
    "render_markdown",
    "render_text",
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


def _diff_line(change: Change) -> Iterable[str]:
    marker = {"+": "+", "-": "-", "~": "!", "x": "-", "<=": "+", "~>": "!"}[SYMBOLS[change.action]]
    yield f"{marker} {change.action.value:<7} {change.address}"
    for name, shown in _field_lines(change):
        yield f"#         {name}: {shown}"
    for note in change.notes:
        yield f"#         ({note})"


def render_markdown(plan: Plan, budget: int = MARKDOWN_BUDGET) -> str:
    """A pull-request comment: a hidden marker, a summary table, risky changes first, then details."""
    head = ["<!-- nexus-plan -->", "### nexus plan", "", summary_line(plan), ""]
    head += [
        "| organization | create | update | delete | archive | adopt | rename | drift | review |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for org in plan.organizations:
        counts = dict.fromkeys(("create", "update", "delete", "archive", "adopt", "rename"), 0)
        for change in org.changes:
            counts[change.action.value] += 1
        drift = sum(1 for c in org.changes if c.cause == "drift")
        review = sum(1 for c in org.changes if c.risk != "low")
        head.append(
            f"| {escape_markdown(org.slug)} | "
            + " | ".join(str(counts[a]) for a in counts)
            + f" | {drift} | {review} |"
        )
    risky = [c for c in plan.changes if c.risk != "low"]
    problems = [(o.slug, p) for o in plan.organizations for p in o.problems]
    body: list[str] = [""]
    if problems:
        body.append("**Errors: these organizations cannot be applied as configured**")
        body.append("")
        body.extend(f"- {code_span(slug)}: {escape_markdown(p.message)}" for slug, p in problems)
        body.append("")
    if risky:
        body.append("**Changes that need a careful look**")
        body.append("")
        for change in risky:
            why = "; ".join(change.notes) or change.action.value
            body.append(
                f"- **{change.action.value}** `{escape_markdown(change.address)}`: {escape_markdown(why)}"
            )
        body.append("")
    details: list[str] = []
    for org in plan.organizations:
        if not org.changes:
            continue
        details.append(
            f"<details><summary>{escape_markdown(org.slug)}: {escape_markdown(_org_counts(org))}</summary>"
        )
        details.append("")
        details.append("```diff")
        for change in org.changes:
            details.extend(line.replace("```", "'''") for line in _diff_line(change))
        details.append("```")
        details.append("</details>")
        details.append("")
    text = "\n".join(head + body + details) + "\n"
    if len(text) <= budget:
        return text
    shortened = "\n".join(head + body[: max(1, len(body))])
    tail = (
        "\n\n_The full plan is longer than a comment allows: download the plan artifact or run "
        "`nexus plan --format text` to see every change._\n"
    )
    if len(shortened) + len(tail) > budget:
        shortened = shortened[: budget - len(tail) - 200].rsplit("\n", 1)[0] + "\n\n_(list cut short)_"
    return shortened + tail
