"""Plans a reviewer reads at fleet scale: a change shared by many organizations shown once, and the
wording of what a change really does (how far a parent's step reaches, a membership ending, an edit
made in the web UI undone, slots taken from booked windows, capacity windows on a timeline)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from nexus_config import load_configuration
from plan_apply.actual import ActualOrganization, ActualState, fingerprint_of
from plan_apply.diff import PlanOptions, make_plan, org_plan
from plan_apply.plan import Action, Change, OrgPlan, Plan
from plan_apply.planner import plan_tree
from plan_apply.records import Record, address_of
from plan_apply.views.markdown import render_markdown
from plan_apply.views.text import render_text

from .test_cli_plan_apply import Run

STEPS_ADDED = Change(
    "",
    "service",
    Action.UPDATE,
    {"steps": ["mercy-health/steps/badge"]},
    {"steps": ["mercy-health/steps/badge", "mercy-health/steps/hipaa-2027"]},
    title="Family Medicine",
)


def _fleet_plan(
    facilities: int, change: Change = STEPS_ADDED, where: str = "services/family-medicine"
) -> Plan:
    """`facilities` organizations, each with the same change at `where`."""
    organizations = tuple(
        OrgPlan(
            f"mercy-{n:03d}",
            "sha256:state",
            changes=(Change(**{**_fields(change), "address": f"mercy-{n:03d}/{where}"}),),
        )
        for n in range(facilities)
    )
    return Plan("2026-11-28T12:00:00Z", "sqlite:///nexus.db", organizations)


def _fields(change: Change) -> dict[str, Any]:
    return {name: getattr(change, name) for name in Change.__slots__}


# Grouping: one change to something shared reads as one change


def test_a_200_facility_plan_with_the_same_change_renders_in_a_few_lines_of_text() -> None:
    text = render_text(_fleet_plan(200))
    assert len(text.splitlines()) <= 12, text
    assert "in 200 organizations: mercy-000, mercy-001, mercy-002 and 197 more" in text
    assert text.count("services/family-medicine") == 1


def test_text_lists_every_organization_sharing_a_change_when_asked() -> None:
    text = render_text(_fleet_plan(200), every_slug=True)
    assert "mercy-199" in text and "more" not in text


def test_a_200_facility_plan_with_the_same_change_renders_in_a_few_lines_of_markdown() -> None:
    text = render_markdown(_fleet_plan(200))
    assert len(text.splitlines()) <= 30, text
    assert "- **update** services/family-medicine: steps + hipaa-2027" in text
    assert "<details><summary>In 200 organizations</summary>" in text
    assert "| 200 with only shared changes | 0 | 200 |" in text


def test_markdown_lists_at_most_a_hundred_organizations_under_a_shared_change() -> None:
    text = render_markdown(_fleet_plan(240))
    assert "`mercy-099` and 140 more" in text and "`mercy-100`" not in text


def test_changes_that_differ_between_organizations_are_shown_per_organization() -> None:
    plan = _fleet_plan(3)
    other = Change(
        **{**_fields(STEPS_ADDED), "address": "mercy-001/services/family-medicine", "after": {"steps": []}}
    )
    plan = Plan(plan.created_at, plan.database, (plan.organizations[0], OrgPlan("mercy-001", "s", (other,))))
    text = render_text(plan)
    assert "Shared by several organizations" not in text
    assert "mercy-000/services/family-medicine" in text and "mercy-001/services/family-medicine" in text


def test_an_organization_with_changes_of_its_own_lists_them_and_counts_the_shared_ones() -> None:
    plan = _fleet_plan(3)
    own = Change("mercy-002/schools/state-u", "school", Action.CREATE, {}, {"name": "State U"})
    third = plan.organizations[2]
    plan = Plan(
        plan.created_at,
        plan.database,
        (*plan.organizations[:2], OrgPlan(third.slug, "s", (*third.changes, own))),
    )
    text = render_text(plan)
    assert "mercy-002: 1 to update, 1 to create (1 of them shared, above)" in text
    assert "2 organizations have only the shared changes above." in text


def test_a_service_named_differently_in_each_facility_still_shares_its_change() -> None:
    plan = _fleet_plan(3)
    named = [
        OrgPlan(
            o.slug,
            "s",
            tuple(Change(**{**_fields(c), "title": f"Family Medicine {o.slug}"}) for c in o.changes),
        )
        for o in plan.organizations
    ]
    text = render_text(Plan(plan.created_at, plan.database, tuple(named)))
    assert "in 3 organizations: mercy-000, mercy-001, mercy-002" in text


def test_notes_naming_an_organizations_own_items_are_shared_as_addresses_within_it() -> None:
    renamed = Change(
        "",
        "service",
        Action.RENAME,
        {"key": "fm"},
        {"key": "family-medicine"},
        notes=("renamed from {slug}/services/fm; the row (and its history) is kept",),
    )
    organizations = tuple(
        OrgPlan(
            slug,
            "s",
            (
                Change(
                    **{
                        **_fields(renamed),
                        "address": f"{slug}/services/family-medicine",
                        "notes": (renamed.notes[0].format(slug=slug),),
                    }
                ),
            ),
        )
        for slug in ("mercy-000", "mercy-001")
    )
    text = render_text(Plan("t", "d", organizations))
    assert "in 2 organizations: mercy-000, mercy-001" in text
    assert "# renamed from services/fm; the row (and its history) is kept" in text


def test_a_capacity_window_moved_in_many_organizations_is_drawn_once() -> None:
    moved = Change(
        "",
        "capacity",
        Action.UPDATE,
        {"start_date": "2027-01-04", "end_date": "2027-06-30"},
        {"start_date": "2027-02-01", "end_date": "2027-07-31"},
    )
    text = render_markdown(_fleet_plan(60, moved, "services/er/capacity/spring"))
    assert text.count("    section ") == 1
    assert "    section services/er/capacity/spring (in 60 organizations)\n" in text


def test_the_plan_json_stays_per_organization_when_views_group_changes() -> None:
    plan = _fleet_plan(200)
    assert sum(len(org["changes"]) for org in plan.to_json_dict()["organizations"]) == 200


def test_a_risky_change_shared_by_many_organizations_is_one_line_with_its_count() -> None:
    fewer = Change(
        "",
        "capacity",
        Action.UPDATE,
        {"slots": 8},
        {"slots": 4},
        risk="review",
        notes=("fewer slots: 8 → 4 (0 booked)",),
    )
    text = render_markdown(_fleet_plan(50, fewer, "services/er/capacity/fall"))
    risky = [
        line
        for line in text.splitlines()
        if line.startswith("- **update**") and "in **50** organizations" in line
    ]
    assert len(risky) == 1, text


# Reach: a parent's step says how far it reaches


PARENT = """apiVersion: nexus/v1
kind: Organization
metadata: {slug: mercy-health}
profile: {name: Mercy Health, type: health_system}
steps:
  - {key: conduct, stage: onboarding, name: Code of conduct, type: checkbox, completed_by: student, all_services: true}
  - {key: hipaa-2027, stage: onboarding, name: HIPAA 2027, type: checkbox, completed_by: student}
"""
FACILITY = """apiVersion: nexus/v1
kind: Organization
metadata: {{slug: mercy-{n:03d}, parent: mercy-health}}
profile: {{name: Mercy {n}, type: hospital}}
services:
  - {{key: family-medicine, name: Family Medicine, disciplines: [medicine], steps: [hipaa-2027]}}
  - {{key: icu, name: ICU, disciplines: [nursing]}}
"""


def _fleet(write_tree: Callable[..., Path], facilities: int) -> Path:
    files = {"mercy-health.yaml": PARENT}
    files |= {f"mercy-{n:03d}.yaml": FACILITY.format(n=n) for n in range(facilities)}
    return write_tree(files)


def _first_plan(tree: Path) -> Plan:
    state = load_configuration([tree]).state
    slugs = list(state.organizations)
    actual = ActualState({s: ActualOrganization(s, None, {}, fingerprint_of(s, [])) for s in slugs})
    return make_plan(state, actual, slugs, created_at="2026-11-28T12:00:00Z", database="sqlite:///nexus.db")


def _notes(plan: Plan, address: str) -> tuple[str, ...]:
    return next(c.notes for c in plan.changes if c.address == address)


def test_a_parent_step_for_all_services_says_how_many_services_and_facilities_it_reaches(
    write_tree: Callable[..., Path],
) -> None:
    plan = _first_plan(_fleet(write_tree, 3))
    assert _notes(plan, "mercy-health/steps/conduct") == ("reaches 6 services in 3 facilities",)


def test_a_parent_step_listed_by_childrens_services_counts_only_those_services(
    write_tree: Callable[..., Path],
) -> None:
    plan = _first_plan(_fleet(write_tree, 3))
    assert _notes(plan, "mercy-health/steps/hipaa-2027") == ("reaches 3 services in 3 facilities",)


def test_a_plan_made_in_batches_counts_the_reach_over_the_whole_tree(
    write_tree: Callable[..., Path], sqlite_template: Path, tmp_path: Path
) -> None:
    tree = _fleet(write_tree, 150)  # more than one batch of a hundred organizations
    database = tmp_path / "empty.db"
    database.write_bytes(sqlite_template.read_bytes())
    url = f"sqlite:///{database}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            planned = plan_tree([tree], connection, database=url, full=True)
    finally:
        engine.dispose()
    assert planned.plan is not None
    assert _notes(planned.plan, "mercy-health/steps/conduct") == ("reaches 300 services in 150 facilities",)


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str], sqlite_template: Path, tmp_path: Path) -> Run:
    database = tmp_path / "nexus.db"
    database.write_bytes(sqlite_template.read_bytes())
    return Run(capsys, f"sqlite:///{database}")


def _shared_step_added(nexus: Run, write_tree: Callable[..., Path]) -> Path:
    """Five facilities applied, then each adds the parent's step to its Family Medicine."""
    assert nexus("apply", str(_fleet(write_tree, 5)), "--auto-approve") == 0
    files = {"mercy-health.yaml": PARENT}
    files |= {
        f"mercy-{n:03d}.yaml": FACILITY.format(n=n).replace(
            "steps: [hipaa-2027]", "steps: [hipaa-2027, conduct]"
        )
        for n in range(5)
    }
    return write_tree(files, root="changed")


def test_plan_names_a_few_organizations_sharing_a_change(nexus: Run, write_tree: Callable[..., Path]) -> None:
    assert nexus("plan", str(_shared_step_added(nexus, write_tree))) == 0
    assert "in 5 organizations: mercy-000, mercy-001, mercy-002 and 2 more\n" in nexus.out


def test_plan_verbose_names_every_organization_sharing_a_change(
    nexus: Run, write_tree: Callable[..., Path]
) -> None:
    assert nexus("plan", str(_shared_step_added(nexus, write_tree)), "--verbose") == 0
    assert "in 5 organizations: mercy-000, mercy-001, mercy-002, mercy-003, mercy-004\n" in nexus.out


# Wording decided at plan time


ORG = "mercy"
SCOPES = {"organization", "schools", "steps", "services", "agreements", "staff", "services/er/capacity"}


def _row(type_: str, key: str, service: str | None = None, **facts: Any) -> Record:
    parent = address_of(ORG, "service", service) if service else None
    fields = facts.pop("fields")
    return Record(address_of(ORG, type_, key, service), type_, ORG, key, fields, parent=parent, **facts)


def _planned(desired: list[Record], rows: list[Record]) -> OrgPlan:
    actual = ActualOrganization(ORG, 1, {r.address: r for r in rows}, "sha256:state", revision=3)
    return org_plan(ORG, desired, SCOPES, actual, {}, PlanOptions())


def test_removing_a_staff_member_says_the_membership_ends_and_the_account_stays() -> None:
    plan = _planned([], [_row("staff", "sam@mercy.org", fields={"name": "Sam", "role": "viewer"})])
    change = plan.changes[0]
    assert change.notes == ("membership ends; the person keeps their account",)
    text = render_markdown(Plan("t", "d", (plan,)))
    assert "- **remove** Sam (`sam@mercy.org`): membership ends; the person keeps their account" in text
    assert "deleted" not in text


def test_a_change_undoing_a_web_ui_edit_says_what_to_write_to_keep_it() -> None:
    desired = _row("capacity", "fall", "er", fields={"slots": 10})
    row = _row("capacity", "fall", "er", fields={"slots": 8}, applied={"slots": 10})
    plan = _planned([desired], [row])
    assert "this reverts a change made in the web UI; set `slots: 8` to keep it" in plan.changes[0].notes
    assert "set `slots: 8` to keep it" in render_markdown(Plan("t", "d", (plan,)))


def test_a_web_ui_value_with_backticks_is_quoted_whole_in_what_to_write_to_keep_it() -> None:
    desired = _row("service", "er", fields={"name": "ER"})
    row = _row("service", "er", fields={"name": "Dr. `Smith` ER"}, applied={"name": "ER"})
    plan = _planned([desired], [row])
    keep = 'set `name: "Dr. \\u0060Smith\\u0060 ER"` to keep it'
    assert keep in plan.changes[0].notes[0]
    assert keep in render_markdown(Plan("t", "d", (plan,)))


def test_a_slot_reduction_shows_the_rotations_booked_beside_it() -> None:
    desired = _row("capacity", "fall", "er", fields={"slots": 4})
    plan = _planned([desired], [_row("capacity", "fall", "er", fields={"slots": 8}, rotations=3)])
    assert plan.changes[0].notes == ("fewer slots: 8 → 4 (3 booked)",)


# The timeline of capacity windows


def _window(n: int, action: Action, before: dict[str, Any], after: dict[str, Any]) -> Change:
    return Change(f"mercy/services/er/capacity/w{n}", "capacity", action, before, after)


def test_markdown_draws_the_capacity_windows_a_plan_moves_before_and_after() -> None:
    moved = _window(
        1,
        Action.UPDATE,
        {"start_date": "2027-01-04", "end_date": "2027-06-30"},
        {"start_date": "2027-02-01", "end_date": "2027-07-31"},
    )
    text = render_markdown(Plan("t", "d", (OrgPlan("mercy", "s", (moved,)),)))
    assert "```mermaid\ngantt\n" in text
    assert "    before :done, 2027-01-04, 2027-06-30\n    after :active, 2027-02-01, 2027-07-31\n" in text


def test_the_timeline_draws_at_most_forty_windows_and_says_how_many_it_left_out() -> None:
    dates = {"start_date": "2027-01-04", "end_date": "2027-06-30"}
    windows = tuple(_window(n, Action.CREATE, {}, dates) for n in range(45))
    text = render_markdown(Plan("t", "d", (OrgPlan("mercy", "s", windows),)))
    assert text.count(":active, 2027-01-04") == 40
    assert "5 more windows change; they are not drawn." in text


def test_a_window_whose_dates_do_not_change_is_not_drawn() -> None:
    slots = _window(1, Action.UPDATE, {"slots": 4}, {"slots": 6})
    assert "mermaid" not in render_markdown(Plan("t", "d", (OrgPlan("mercy", "s", (slots,)),)))


# Templates: a template edit is one change, named for the template, with its reach

FROM_TEMPLATE = Change(**{**_fields(STEPS_ADDED), "template": "mercy-health/family-medicine"})


def test_a_shared_change_from_a_template_is_titled_by_the_template_in_markdown() -> None:
    text = render_markdown(_fleet_plan(240, FROM_TEMPLATE))
    assert "- **update** template mercy-health/family-medicine: steps + hipaa-2027\n" in text
    assert "<details><summary>In 240 organizations</summary>" in text


def test_a_shared_change_from_a_template_is_titled_by_the_template_in_text() -> None:
    text = render_text(_fleet_plan(240, FROM_TEMPLATE))
    assert "   ~ template mercy-health/family-medicine\n" in text
    assert "in 240 organizations: mercy-000, mercy-001, mercy-002 and 237 more" in text


def test_a_shared_change_from_a_template_of_another_key_names_the_service_too() -> None:
    text = render_text(_fleet_plan(3, FROM_TEMPLATE, "services/fm"))
    assert "   ~ services/fm (template mercy-health/family-medicine)\n" in text


def test_the_same_change_from_a_template_and_written_by_hand_is_not_one_group() -> None:
    plan = _fleet_plan(4, FROM_TEMPLATE)
    by_hand = tuple(
        OrgPlan(o.slug, "s", tuple(Change(**{**_fields(c), "template": ""}) for c in o.changes))
        for o in plan.organizations[2:]
    )
    text = render_text(Plan(plan.created_at, plan.database, (*plan.organizations[:2], *by_hand)))
    assert "in 2 organizations: mercy-000, mercy-001\n   ~ template mercy-health/family-medicine" in text
    assert "in 2 organizations: mercy-002, mercy-003\n   ~ services/family-medicine" in text


SYSTEM = """apiVersion: nexus/v1
kind: Organization
metadata: {slug: mercy-health}
profile: {name: Mercy Health, type: health_system}
steps:
  - {key: hipaa-2027, stage: onboarding, name: HIPAA 2027, type: checkbox, completed_by: student}
"""
TEMPLATES = """apiVersion: nexus/v1
kind: Organization
metadata: {{slug: mercy-health}}
templates:
  - {{key: family-medicine, name: Family Medicine, description: {description}, disciplines: [medicine]}}
"""
USER = """apiVersion: nexus/v1
kind: Organization
metadata: {{slug: mercy-{n:03d}, parent: mercy-health}}
profile: {{name: Mercy {n}, type: hospital}}
services:
  - {{key: family-medicine, template: mercy-health/family-medicine{own}}}
  - {{key: icu, name: ICU, disciplines: [nursing]}}
"""


def _template_fleet(
    write_tree: Callable[..., Path], facilities: int, description: str, own: dict[int, str] | None = None
) -> Path:
    """A health system with a Family Medicine template, and `facilities` facilities using it (`own`: what
    some of them write beside `template:`)."""
    files = {"mercy-health.yaml": SYSTEM, "templates.yaml": TEMPLATES.format(description=description)}
    files |= {f"mercy-{n:03d}.yaml": USER.format(n=n, own=(own or {}).get(n, "")) for n in range(facilities)}
    return write_tree(files)


def _planned_json(nexus: Run, tree: Path, *options: str) -> list[dict[str, Any]]:
    assert nexus("plan", str(tree), "--format", "json", *options) == 0, nexus.output
    return [c for org in json.loads(nexus.out)["organizations"] for c in org["changes"]]


def test_a_service_update_made_by_its_template_names_the_template(
    nexus: Run, write_tree: Callable[..., Path]
) -> None:
    assert nexus("apply", str(_template_fleet(write_tree, 2, "Primary care.")), "--auto-approve") == 0
    changes = _planned_json(nexus, _template_fleet(write_tree, 2, "Primary care for every age."))
    assert [c["template"] for c in changes] == ["mercy-health/family-medicine"] * 2


def test_a_field_the_facility_overrides_is_not_from_the_template(
    nexus: Run, write_tree: Callable[..., Path]
) -> None:
    own = {0: ", description: Rural care."}
    assert nexus("apply", str(_template_fleet(write_tree, 1, "Primary care.", own)), "--auto-approve") == 0
    changes = _planned_json(
        nexus, _template_fleet(write_tree, 1, "Primary care.", {0: ", description: Urban."})
    )
    assert [c["after"] for c in changes] == [{"description": "Urban."}]
    assert "template" not in changes[0]


def test_a_change_to_a_template_field_and_an_own_field_at_once_is_not_from_the_template(
    nexus: Run, write_tree: Callable[..., Path]
) -> None:
    before = {0: ", location: Building A"}
    assert nexus("apply", str(_template_fleet(write_tree, 1, "Primary care.", before)), "--auto-approve") == 0
    tree = _template_fleet(write_tree, 1, "Primary care for every age.", {0: ", location: Building B"})
    changes = _planned_json(nexus, tree)
    assert [sorted(c["after"]) for c in changes] == [["description", "location"]]
    assert "template" not in changes[0] and changes[0]["notes"] == []


def test_undoing_a_web_ui_edit_of_a_template_field_is_not_from_the_template(
    nexus: Run, write_tree: Callable[..., Path]
) -> None:
    tree = _template_fleet(write_tree, 1, "Primary care.")
    assert nexus("apply", str(tree), "--auto-approve") == 0
    engine = sa.create_engine(nexus.url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE services SET description = 'Edited' WHERE key = 'family-medicine'")
        )
    engine.dispose()
    changes = _planned_json(nexus, tree)
    assert [(c["cause"], c["after"]) for c in changes] == [("drift", {"description": "Primary care."})]
    assert "template" not in changes[0]


def test_a_template_change_says_how_many_services_and_facilities_it_reaches(
    nexus: Run, write_tree: Callable[..., Path]
) -> None:
    own = {0: ", description: Rural care."}  # not changed by the edit, but built from the template
    assert nexus("apply", str(_template_fleet(write_tree, 3, "Primary care.", own)), "--auto-approve") == 0
    # --full: an incremental plan skips the facility whose own description the edit does not reach
    tree = _template_fleet(write_tree, 3, "Primary care for every age.", own)
    changes = _planned_json(nexus, tree, "--full")
    assert {tuple(c["notes"]) for c in changes} == {
        ("template mercy-health/family-medicine reaches 3 services in 3 facilities",)
    }


def test_a_template_user_skipped_for_writing_the_changed_field_itself_leaves_the_reach_unsaid(
    nexus: Run, write_tree: Callable[..., Path]
) -> None:
    own = {0: ", description: Rural care."}
    assert nexus("apply", str(_template_fleet(write_tree, 3, "Primary care.", own)), "--auto-approve") == 0
    changes = _planned_json(nexus, _template_fleet(write_tree, 3, "Primary care for every age.", own))
    assert len(changes) == 2
    assert {tuple(c["notes"]) for c in changes} == {("from template mercy-health/family-medicine",)}


def test_a_template_change_shared_by_facilities_is_one_change_named_for_the_template(
    nexus: Run, write_tree: Callable[..., Path]
) -> None:
    assert nexus("apply", str(_template_fleet(write_tree, 5, "Primary care.")), "--auto-approve") == 0
    tree = _template_fleet(write_tree, 5, "Primary care for every age.")
    assert nexus("plan", str(tree), "--format", "markdown") == 0
    assert (
        '- **update** template mercy-health/family-medicine: description "Primary care." → '
        '"Primary care for every age." — template mercy-health/family-medicine reaches 5 services in 5 '
        "facilities\n"
    ) in nexus.out


def test_a_template_whose_other_users_were_skipped_is_named_without_a_reach(
    nexus: Run, write_tree: Callable[..., Path]
) -> None:
    own = {0: ", description: Rural care."}
    assert nexus("apply", str(_template_fleet(write_tree, 3, "Primary care.", own)), "--auto-approve") == 0
    changes = _planned_json(nexus, _template_fleet(write_tree, 3, "Primary care."))  # the override dropped
    assert [(c["address"], c["notes"]) for c in changes] == [
        ("mercy-000/services/family-medicine", ["from template mercy-health/family-medicine"])
    ]


def test_a_plan_made_in_batches_counts_a_templates_reach_over_the_whole_tree(
    nexus: Run, write_tree: Callable[..., Path]
) -> None:
    assert nexus("apply", str(_template_fleet(write_tree, 150, "Primary care.")), "--auto-approve") == 0
    changes = _planned_json(nexus, _template_fleet(write_tree, 150, "Primary care for every age."), "--full")
    assert len(changes) == 150
    assert {tuple(c["notes"]) for c in changes} == {
        ("template mercy-health/family-medicine reaches 150 services in 150 facilities",)
    }
