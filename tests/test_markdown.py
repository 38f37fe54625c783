"""The pull-request comment: small plans in full, huge ones cut to fit, user text always escaped."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from nexus_config import load_configuration
from plan_apply.actual import ActualOrganization, ActualState, fingerprint_of
from plan_apply.diff import make_plan
from plan_apply.plan import Action, Change, OrgPlan, Plan
from plan_apply.views.markdown import MARKDOWN_BUDGET, render_markdown
from plan_apply.views.text import render_text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from fleet import write_fleet

GOLDENS = Path(__file__).parent / "goldens"


def _first_apply_plan(folder: Path, organizations: int) -> Plan:
    """A first apply of `organizations` facilities, made from a small generated fleet (pure: no database)."""
    state = load_configuration([folder]).state
    slugs = list(state.organizations)
    actual = ActualState({s: ActualOrganization(s, None, {}, fingerprint_of(s, [])) for s in slugs})
    plan = make_plan(state, actual, slugs, created_at="2026-11-28T12:00:00Z", database="sqlite:///nexus.db")
    copies = []
    for n in range(organizations):
        template = plan.organizations[n % len(plan.organizations)]
        slug = f"{template.slug}-{n:04d}"
        copies.append(
            replace(
                template,
                slug=slug,
                changes=tuple(
                    replace(c, address=slug + c.address[len(template.slug) :]) for c in template.changes
                ),
            )
        )
    return replace(plan, organizations=tuple(copies))


@pytest.fixture(scope="module")
def thousand(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    folder = tmp_path_factory.mktemp("fleet") / "fleet"
    write_fleet(folder, 3, seed=3, shared=False)  # the fleet the golden was made from (generator 3)
    return _first_apply_plan(folder, 1000)


def _golden(name: str, text: str) -> None:
    path = GOLDENS / name
    if os.environ.get("NEXUS_UPDATE_GOLDENS") or not path.exists():
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed: NEXUS_UPDATE_GOLDENS=1 rewrites it"


def test_a_1000_organization_first_apply_fits_in_one_comment(thousand: Plan) -> None:
    text = render_markdown(thousand)
    assert len(thousand.changes) > 100_000
    assert len(text) <= MARKDOWN_BUDGET
    assert text.startswith("<!-- nexus-plan -->\n")
    assert f"**Plan: {thousand.summary['create']} to create" in text
    assert "1,000 with only shared changes" in text and "Cut to fit a pull-request comment" in text
    _golden("markdown-1000-organizations.md", text)


def test_risky_changes_come_before_everything_else_even_when_cut(thousand: Plan) -> None:
    last = thousand.organizations[-1]
    doomed = Change(
        f"{last.slug}/services/emergency",
        "service",
        Action.DELETE,
        {"name": "Emergency"},
        {},
        risk="destructive",
        title="Emergency",
    )
    plan = replace(
        thousand, organizations=(*thousand.organizations[:-1], replace(last, changes=(*last.changes, doomed)))
    )
    text = render_markdown(plan)
    assert len(text) <= MARKDOWN_BUDGET
    assert text.index("**delete** Emergency: deleted") < text.index("| organization |")


HOSTILE = "Bad </details><img src=x onerror=alert(1)> [x](javascript:alert(1)) @org/team ```\x1b[2J\r|"


def _hostile_plan() -> Plan:
    change = Change(
        "site/services/bad",
        "service",
        Action.UPDATE,
        {"name": "Old"},
        {"name": HOSTILE},
        risk="review",
        notes=(HOSTILE,),
        title=HOSTILE,
    )
    return Plan("2026-11-28T12:00:00Z", "sqlite:///nexus.db", (OrgPlan("site", "sha256:x", (change,)),))


def test_markdown_escapes_user_text() -> None:
    text = render_markdown(_hostile_plan())
    assert text.count("```") == 2  # the one diff block opens and closes; user text cannot add a fence
    prose = text.split("```")[0] + text.split("```")[2]  # inside the code block nothing is interpreted
    assert "</details><img" not in prose
    assert "<img" not in prose
    assert "[x](javascript" not in prose
    assert "@org/team" in prose and re.findall(r"(?<!`)@org/team", prose) == []  # a mention only as code
    assert "\x1b" not in text and "\r" not in text
    _golden("markdown-hostile.md", text)


def test_text_output_shows_control_characters_escaped() -> None:
    text = render_text(_hostile_plan())
    assert "\x1b" not in text and "\r" not in text
    assert "\\x1b[2J" in text
