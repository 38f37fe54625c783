"""What showing a shared change once may never hide: a difference a reviewer needs (held, drift, risk,
notes, values) keeps organizations apart or is said of the group, every organization's own change stays
listed, and the counts the views give add up to the plan's."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plan_apply.plan import Action, Change, OrgPlan, Plan, PlanProblem
from plan_apply.views.escape import escape_markdown
from plan_apply.views.fields import ACTION_NAMES, SYMBOLS
from plan_apply.views.groups import group_title, grouped
from plan_apply.views.markdown import render_markdown
from plan_apply.views.text import render_text

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _update(slug: str, **fields: Any) -> Change:
    """An agreement's end date moved in organization `slug`, with `fields` of the change replaced."""
    moved = Change(
        f"{slug}/agreements/state-u",
        "agreement",
        Action.UPDATE,
        {"end_date": "2027-06-30"},
        {"end_date": "2027-12-31"},
    )
    return replace(moved, **fields)


def _plan(*organizations: OrgPlan) -> Plan:
    return Plan("2026-11-28T12:00:00Z", "sqlite:///nexus.db", organizations)


def _same_change(slugs: tuple[str, ...], **fields: Any) -> tuple[OrgPlan, ...]:
    return tuple(OrgPlan(slug, "s", (_update(slug, **fields),)) for slug in slugs)


def test_markdown_says_a_shared_change_is_held_for_the_school() -> None:
    text = render_markdown(_plan(*_same_change(("mercy-000", "mercy-001"), pending=False)))
    shared = [line for line in text.splitlines() if line.startswith("- **update** agreements/state-u")]
    assert len(shared) == 1 and "**held**: apply leaves it alone" in shared[0], text


def test_markdown_tells_a_held_shared_change_from_the_same_change_applied() -> None:
    plan = _plan(
        *_same_change(("mercy-000", "mercy-001"), pending=False),
        *_same_change(("mercy-002", "mercy-003")),
    )
    shared = [line for line in render_markdown(plan).splitlines() if line.startswith("- **update**")]
    assert len(shared) == 2 and len(set(shared)) == 2, shared


def test_the_row_summing_organizations_with_only_shared_changes_counts_their_drift_and_review() -> None:
    drifted = _same_change(
        ("mercy-000", "mercy-001", "mercy-002"),
        cause="drift",
        risk="review",
        notes=("this reverts a change made in the web UI; set `end_date: 2027-06-30` to keep it",),
    )
    text = render_markdown(_plan(*drifted))
    assert "| 3 with only shared changes | 0 | 3 | 0 | 0 | 0 | 0 | 3 | 3 | review |" in text, text


def test_the_row_summing_organizations_cut_from_the_table_counts_their_drift() -> None:
    organizations = tuple(
        OrgPlan(
            f"mercy-{n:03d}", "s", (_update(f"mercy-{n:03d}", cause="drift", after={"end_date": str(n)}),)
        )
        for n in range(103)
    )
    text = render_markdown(_plan(*organizations))
    assert "| … and 3 more | 0 | 3 | 0 | 0 | 0 | 0 | 3 | 0 |  |" in text, text


# Laws, for any plan: what each organization is shown is its own change, and the counts add up

SLUGS = ("mercy-1", "mercy-10", "mercy-2", "lakeview", "mercy")
"""Slugs that are prefixes of one another, so a change or note of one can look like another's."""
WHERE = ("services/fm", "services/fm/capacity/fall", "agreements/state-u", "staff/ann@x.org", "")


VALUES: list[dict[str, Any]] = [{}, {"slots": 8}, {"slots": 4}, {"name": "A"}, {"name": "mercy-1/x"}]
NOTES = (
    "renamed from {slug}/services/er",
    "renamed from mercy-1/services/er",
    "fewer slots: 8 → 4 (0 booked)",
    "this reverts a change made in the web UI; set `slots: 8` to keep it",
)


def _change_fields(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "type": draw(st.sampled_from(["service", "capacity"])),
        "action": draw(st.sampled_from(list(Action))),
        "before": draw(st.sampled_from(VALUES)),
        "after": draw(st.sampled_from(VALUES)),
        "cause": draw(st.sampled_from(["config", "drift"])),
        "risk": draw(st.sampled_from(["low", "review", "destructive"])),
        "notes": tuple(draw(st.lists(st.sampled_from(NOTES), max_size=2))),
        "title": draw(st.sampled_from(["", "Family Medicine", "{slug}"])),
        "pending": draw(st.booleans()),
    }


@st.composite
def _plans(draw: st.DrawFn) -> Plan:
    """Plans where organizations often make the same change, or nearly: one field of it differs."""
    common = {where: _change_fields(draw) for where in WHERE}
    organizations = []
    for slug in draw(st.lists(st.sampled_from(SLUGS), min_size=1, max_size=5, unique=True)):
        changes = []
        for where in draw(st.lists(st.sampled_from(WHERE), max_size=4, unique=True)):
            fields = dict(common[where])
            if draw(st.booleans()):  # nearly the same change: one field drawn afresh
                name = draw(st.sampled_from(sorted(fields)))
                fields[name] = _change_fields(draw)[name]
            fields["notes"] = tuple(note.format(slug=slug) for note in fields["notes"])
            fields["title"] = fields["title"].format(slug=slug)
            changes.append(Change(f"{slug}/{where}" if where else slug, **fields))
        problems = (PlanProblem("slots below booked rotations"),) if draw(st.booleans()) else ()
        organizations.append(OrgPlan(slug, "s", tuple(changes), problems=problems))
    return _plan(*organizations)


def _sections(text: str) -> dict[str, list[list[str]]]:
    """The change blocks of the text view under each heading (an organization's, or a list of the
    organizations sharing the changes below it)."""
    found: dict[str, list[list[str]]] = {}
    head = ""
    for line in text.splitlines():
        if line and not line.startswith(" "):
            head = line
            found[head] = []
        elif line.startswith("  ") and line[2:4].strip() in SYMBOLS.values():
            found[head].append([line])
        elif line.startswith("        ") and found.get(head):
            found[head][-1].append(line)
    return found


def _seen(block: list[str], slug: str) -> list[str]:
    """A change block as said of any organization (its own slug left out of addresses and notes)."""
    first, *rest = block
    symbol, address, marks = re.fullmatch(r"\s*(\S+) (\S+)(.*)", first).groups()  # type: ignore[union-attr]
    where = "the organization itself" if address == slug else address.removeprefix(slug + "/")
    return [f"{symbol} {where}{marks}", *(line.replace(slug + "/", "") for line in rest)]


@SETTINGS
@given(_plans())
def test_every_change_of_every_organization_is_shown_as_it_is_in_the_text_plan(plan: Plan) -> None:
    sections = _sections(render_text(plan, every_slug=True))
    cohorts = {
        head: blocks
        for head, blocks in sections.items()
        if head.startswith("in ") and " organizations: " in head
    }
    for org in plan.organizations:
        alone = _sections(render_text(_plan(org)))
        (own_head,) = [head for head in alone if head.startswith(org.slug + ": ")]
        shown = [
            _seen(b, org.slug)
            for head, blocks in sections.items()
            if head.startswith(org.slug + ": ")
            for b in blocks
        ]
        shown += [
            _seen(b, org.slug)
            for head, blocks in cohorts.items()
            if org.slug in head.split(": ", 1)[1].split(", ")
            for b in blocks
        ]
        expected = [_seen(b, org.slug) for b in alone[own_head]]
        assert sorted(shown) == sorted(expected), (org.slug, shown, expected)


def _table_cells(text: str) -> list[list[str]]:
    rows = [
        line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| organization")
    ]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


@SETTINGS
@given(_plans())
def test_the_markdown_table_adds_up_to_the_plans_totals(plan: Plan) -> None:
    cells = _table_cells(render_markdown(plan))
    totals = {action: sum(int(row[1 + i]) for row in cells) for i, action in enumerate(ACTION_NAMES)}
    assert totals == plan.summary
    assert sum(int(row[7]) for row in cells) == sum(c.cause == "drift" for c in plan.changes)
    assert sum(int(row[8]) for row in cells) == sum(c.risk != "low" for c in plan.changes)
    errors = sum(o.problems != () for o in plan.organizations)
    assert sum(row[9] == "error" for row in cells if row[0].startswith("`")) <= errors


@SETTINGS
@given(_plans())
def test_the_text_plan_names_or_counts_every_organization_with_a_change(plan: Plan) -> None:
    text = render_text(plan, every_slug=True)
    heads = {
        line.split(": ", 1)[0] for line in text.splitlines() if ": " in line and not line.startswith(" ")
    }
    listed = {
        slug
        for line in text.splitlines()
        if line.startswith("in ") and " organizations: " in line
        for slug in line.split(": ", 1)[1].split(", ")
    }
    only_shared = [o.slug for o in plan.organizations if o.changes and o.slug not in heads]
    assert set(only_shared) <= listed
    counted = re.search(r"^([\d,]+) organizations? ha(?:s|ve) only the shared changes above\.$", text, re.M)
    assert (int(counted.group(1)) if counted else 0) == len(only_shared)


def test_a_verbose_comment_keeps_a_shared_change_when_its_organizations_are_too_many_to_name() -> None:
    slugs = tuple(f"mercy-facility-{n:05d}" for n in range(5000))
    text = render_markdown(_plan(*_same_change(slugs)), every_slug=True)
    assert '- **update** agreements/state-u: end\\_date "2027-06-30" → "2027-12-31"' in text, text
    assert "`mercy-facility-00100`" in text and "more" in text and len(text) <= 60_000


def test_markdown_says_what_an_organization_notes_even_when_its_changes_are_all_shared() -> None:
    note = "mercy-001/agreements/pa-2027: the school closed this agreement; changes to it are not applied"
    organizations = _same_change(("mercy-000", "mercy-001"))
    plan = _plan(organizations[0], replace(organizations[1], notes=(note,)))
    text = render_markdown(plan)
    assert "the school closed this agreement; changes to it are not applied" in text, text
    assert "| 1 with only shared changes |" in text


def test_markdown_says_what_an_organization_notes_when_it_has_no_change() -> None:
    note = "mercy-000/agreements/pa-2027: the school closed this agreement; changes to it are not applied"
    text = render_markdown(_plan(OrgPlan("mercy-000", "s", notes=(note,))))
    assert "the school closed this agreement; changes to it are not applied" in text, text


@SETTINGS
@given(_plans(), st.integers(min_value=2_500, max_value=6_000))
def test_a_comment_cut_to_its_budget_says_what_it_left_out(plan: Plan, budget: int) -> None:
    text = render_markdown(plan, budget)
    assert len(text) <= budget
    grouping = grouped(plan)
    missing = [o.slug for o in plan.organizations if grouping.own(o) and f"<summary>{o.slug}: " not in text]
    missing += [g.where for g in grouping.groups if f"** {escape_markdown(group_title(g))}" not in text]
    assert not missing or "_Cut to fit a pull-request comment: " in text, missing
