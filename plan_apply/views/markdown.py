"""The markdown view: a plan as a pull-request comment a clinical education director can read.

Errors and risky changes in words first, a table per organization, then collapsible details; cut to a
character budget (GitHub refuses comments over 65,536). User text is escaped with `escape_markdown`,
`code_span` or `fenced`: nothing breaks out of the comment, and nobody is mentioned.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from plan_apply.plan import Action, Change, OrgPlan, Plan
from plan_apply.reach import REACH_PREFIX
from plan_apply.views.escape import FENCE, code_span, escape_markdown, escape_prose, fenced
from plan_apply.views.fields import ACTION_NAMES, SYMBOLS, field_lines, org_counts, summary_line, value_text
from plan_apply.views.groups import Group, Grouping, group_title, grouped
from plan_apply.views.timeline import gantt

__all__ = ["MARKDOWN_BUDGET", "SHARED_SLUGS", "TABLE_ROWS", "render_markdown", "render_plan", "sentence"]

MARKDOWN_BUDGET = 60_000


def _short(value: Any, limit: int = 80) -> str:
    shown = value_text(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _list_diff(name: str, before: list[Any], after: list[Any]) -> str:
    """ "+ hipaa-2027, − badge-photo": what a list gains and loses (steps by their key)."""

    def shown(value: Any) -> str:
        text = value if isinstance(value, str) else value_text(value)
        return text.rsplit("/", 1)[-1] if name == "steps" else _short(text, 40).strip('"')

    changes = [f"+ {shown(v)}" for v in after if v not in before]
    changes += [f"− {shown(v)}" for v in before if v not in after]
    return ", ".join(changes) or "reordered"


def sentence(change: Change, title: str | None = None) -> str:
    """One line a clinical education director reads: "Emergency Medicine › Spring block: 4 → 6 slots"
    (`title` names the item otherwise, e.g. a change several organizations share)."""
    title = title or change.title or change.address
    action = change.action
    if action is Action.CREATE:
        return f"{title}: new {change.type}"
    if action is Action.DELETE and change.type == "staff" and change.notes:
        return f"{title}: " + "; ".join(change.notes)  # the membership ends, never the person's account
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
        elif isinstance(before, list) and isinstance(after, list):
            parts.append(f"{name} {_list_diff(name, before, after)}")
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

    def room(self, reserve: int = 0) -> int:
        """The characters a part may have and still fit, keeping `reserve` free."""
        return self.limit - self.size - 1 - reserve

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
    return _row(code_span(org.slug), [org])


def _row(label: str, organizations: list[OrgPlan]) -> str:
    """One table row: the organizations' changes by action, how many are drift and need review, and
    whether any of them cannot be applied (a summed row hides none of that)."""
    changes = [c for o in organizations for c in o.changes]
    counts = {a: sum(1 for c in changes if c.action.value == a) for a in ACTION_NAMES}
    drift = sum(1 for c in changes if c.cause == "drift")
    review = sum(1 for c in changes if c.risk != "low")
    status = "error" if any(o.problems for o in organizations) else ("review" if review else "")
    cells = " | ".join(str(counts[a]) for a in ACTION_NAMES)
    return f"| {label} | {cells} | {drift} | {review} | {status} |"


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


def _label(change: Change) -> str:
    """The action as a reviewer reads it: a staff row deleted is a membership removed."""
    if change.action is Action.DELETE and change.type == "staff":
        return "remove"
    return change.action.value


_HELD = " — **held**: apply leaves it alone"
"""Said of a change apply will not make as things stand (a school's proposal), wherever it is listed."""


def _risky_line(change: Change, title: str | None = None) -> str:
    why = "; ".join(change.notes)
    if change.action in (Action.ARCHIVE, Action.DELETE) and why:
        name = title or change.title or change.address
        line = f"- **{_label(change)}** {escape_markdown(name)}: {escape_prose(why)}"
    else:
        line = f"- **{_label(change)}** {escape_markdown(sentence(change, title))}"
        line += f" — {escape_prose(why)}" if why else ""
    return line + (_HELD if not change.pending else "")


def _risky(out: _Budget, plan: Plan, grouping: Grouping, omitted: list[str]) -> None:
    groups = {(g.slugs[0], g.change.address): g for g in grouping.groups}
    risky = sorted(
        (
            (slug, c)
            for slug, c in _changes(plan)
            if (c.risk != "low" or _reaches_others(c))
            and (not grouping.is_shared(slug, c) or (slug, c.address) in groups)
        ),
        key=lambda item: (_RISK_ORDER[item[1].risk], item[1].address),
    )
    if not risky:
        return
    out.add("")
    out.add("#### Changes that need a careful look")
    out.add("")
    for i, (slug, change) in enumerate(risky):
        group = groups.get((slug, change.address))
        if group is None:
            line = _risky_line(change) + f" {code_span(change.address)}"
        else:
            line = _risky_line(group.change, group_title(group))
            line += f" — in **{len(group.slugs):,}** organizations"
        if not out.fits(line, _TAIL_RESERVE * 3):
            omitted.append(f"{len(risky) - i} more changes that need a careful look")
            return
        out.add(line)


def _reaches_others(change: Change) -> bool:
    """A change to a step other organizations' services use (its reach was counted at plan time)."""
    return any(note.startswith(REACH_PREFIX) for note in change.notes)


def _changes(plan: Plan) -> list[tuple[str, Change]]:
    return [(org.slug, change) for org in plan.organizations for change in org.changes]


SHARED_SLUGS = 100
"""Organizations listed (folded) under a shared change; the rest are counted."""


def _shared(out: _Budget, grouping: Grouping, omitted: list[str], listed_at_most: int | None) -> None:
    if not grouping.groups:
        return
    out.add("")
    out.add("#### Changes shared by several organizations, each shown once")
    for c, cohort in enumerate(grouping.cohorts):
        lines = [_shared_line(group) for group in cohort.groups]
        room = out.room(_TAIL_RESERVE * 3)
        head = _cohort_head(cohort.slugs, listed_at_most, room - sum(len(line) + 1 for line in lines))
        head = head or _cohort_head(cohort.slugs, 0, room)  # names give way first, then changes
        if head is None:
            omitted.append(f"the shared changes of {len(grouping.cohorts) - c} more groups of organizations")
            return
        out.add(head)
        for i, line in enumerate(lines):
            if not out.fits(line, _TAIL_RESERVE * 3):
                omitted.append(
                    f"{len(cohort.groups) - i} more changes shared by {len(cohort.slugs):,} organizations"
                )
                return
            out.add(line)


def _shared_line(group: Group) -> str:
    change = group.change
    line = f"- **{_label(change)}** {escape_markdown(sentence(change, group_title(group)))}"
    line += f" — {escape_prose('; '.join(change.notes))}" if change.notes else ""
    return line + (_HELD if not change.pending else "")


def _cohort_head(slugs: tuple[str, ...], listed_at_most: int | None, room: int) -> str | None:
    """The folded list of the organizations sharing some changes: `listed_at_most` of them named (all
    when None), fewer if they would not fit in `room` characters (what they share matters more than
    their names), the rest counted; None when not even the count fits."""
    summary = f"In {len(slugs):,} organizations"
    folded = f"\n<details><summary>{summary}</summary>\n\n{{}}\n\n</details>\n"
    left = room - len(folded) - len(f" and {len(slugs):,} more")
    names: list[str] = []
    for slug in slugs[:listed_at_most]:
        name = code_span(slug)
        left -= len(name) + 2
        if left < 0:
            break
        names.append(name)
    if names:
        rest = len(slugs) - len(names)
        return folded.format(", ".join(names) + (f" and {rest:,} more" if rest else ""))
    text = f"\n{summary} (too many to name here):\n"
    return text if len(text) <= room else None


def _table(out: _Budget, changed: list[OrgPlan], grouping: Grouping, omitted: list[str]) -> None:
    if not changed:
        return
    out.add("")
    out.add("| organization | create | update | delete | archive | adopt | rename | drift | review | |")
    out.add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    alone = [o for o in changed if o.problems or o.notes or grouping.own(o)]
    only_shared = [o for o in changed if not (o.problems or o.notes or grouping.own(o))]
    ranked = sorted(
        alone,
        key=lambda o: (not o.problems, -sum(c.risk != "low" for c in o.changes), -len(o.changes), o.slug),
    )
    for i, org in enumerate(ranked):
        row = _org_row(org)
        if i >= TABLE_ROWS or not out.fits(row, _TAIL_RESERVE * 2):
            rest = ranked[i:]
            out.add(_row(f"… and {len(rest)} more", rest))
            omitted.append(f"{len(rest)} organizations' rows (their totals are in the last row)")
            break
        out.add(row)
    if only_shared:
        out.add(_row(f"{len(only_shared):,} with only shared changes", only_shared))


def _details(out: _Budget, changed: list[OrgPlan], grouping: Grouping, omitted: list[str]) -> None:
    with_changes = [(o, grouping.own(o)) for o in changed if o.notes or grouping.own(o)]
    for i, (org, own) in enumerate(with_changes):
        shared = len(org.changes) - len(own)
        also = f" ({shared} of them shared, above)" if shared else ""
        block = [
            "",
            f"<details><summary>{escape_markdown(org.slug)}: {escape_markdown(org_counts(org) + also)}</summary>",
            "",
            FENCE + "diff",
            *(fenced(line) for change in own for line in _diff_line(change)),
            *(fenced(f"# {note}") for note in org.notes),
            FENCE,
            "</details>",
        ]
        text = "\n".join(block)
        if not out.fits(text, _TAIL_RESERVE):
            omitted.append(f"the details of {len(with_changes) - i} organization(s)")
            return
        out.add(text)


def _timeline(out: _Budget, plan: Plan, grouping: Grouping, omitted: list[str]) -> None:
    lines, left_out = gantt(plan, grouping)
    if not lines:
        return
    more = [f"{left_out:,} more windows change; they are not drawn.", ""] if left_out else []
    block = "\n".join(
        [
            "",
            "<details><summary>Capacity windows this plan changes, before and after</summary>",
            "",
            FENCE + "mermaid",
            *(fenced(line) for line in lines),
            FENCE,
            "",
            *more,
            "</details>",
        ]
    )
    if not out.fits(block, _TAIL_RESERVE * 2):
        omitted.append("the timeline of capacity windows")
        return
    out.add(block)


def render_markdown(
    plan: Plan, budget: int = MARKDOWN_BUDGET, *, name_database: bool = False, every_slug: bool = False
) -> str:
    """A pull-request comment: a hidden marker (so CI updates one comment), the totals, errors and risky
    changes in words, a table per organization, then collapsible details; cut to `budget` characters,
    always keeping the summary and saying what was left out. With `name_database`, the database it was
    compared against comes first; with `every_slug`, every organization sharing a change is listed (as far
    as the budget allows)."""
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
    grouping = grouped(shown)
    _errors(out, plan, omitted)
    _risky(out, plan, grouping, omitted)
    _timeline(out, plan, grouping, omitted)
    _shared(out, grouping, omitted, None if every_slug else SHARED_SLUGS)
    listed = [o for o in shown if o.changes or o.problems or o.notes]  # a change withheld says why in notes
    _table(out, listed, grouping, omitted)
    _details(out, listed, grouping, omitted)
    if omitted:
        out.add("")
        out.add(
            "_Cut to fit a pull-request comment: "
            + escape_markdown("; ".join(omitted))
            + " not shown here. The full plan is in the plan artifact, or run `nexus plan --format text`._"
        )
    return out.text()


def render_plan(plan: Plan, paint: Any = None, *, every_slug: bool = False) -> str:
    """`plan --format markdown`: the comment, naming the database it was compared against."""
    return render_markdown(plan, name_database=True, every_slug=every_slug)
