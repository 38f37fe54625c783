"""What showing a shared change once may never hide: a difference a reviewer needs (held, drift, risk,
notes, values) keeps organizations apart or is said of the group, every organization's own change stays
listed, and the counts the views give add up to the plan's."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from plan_apply.plan import Action, Change, OrgPlan, Plan
from plan_apply.views.markdown import render_markdown


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
