"""The diff, pure: hand-made desired records against hand-made rows, one behaviour each, no database."""

from __future__ import annotations

from typing import Any

from plan_apply.actual import ActualOrganization
from plan_apply.diff import PlanOptions, mass_delete_checked, org_plan
from plan_apply.order import FORWARD_ACTIONS, REMOVALS
from plan_apply.plan import Action, Change, OrgPlan, Plan
from plan_apply.records import Record, address_of

ORG = "mercy"
SCOPES = {"organization", "schools", "steps", "services", "agreements", "staff", "services/er/capacity"}


def record(type_: str, key: str, service: str | None = None, **fields: Any) -> Record:
    """A desired record (a capacity window under `service`)."""
    parent = address_of(ORG, "service", service) if service else None
    return Record(address_of(ORG, type_, key, service), type_, ORG, key, fields, parent=parent)


def row(
    type_: str, key: str, service: str | None = None, facts: dict[str, Any] | None = None, **fields: Any
) -> Record:
    """A row of the database, with facts of the actual side (`managed`, `rotations`, `status`, ...)."""
    parent = address_of(ORG, "service", service) if service else None
    return Record(
        address_of(ORG, type_, key, service), type_, ORG, key, fields, parent=parent, **(facts or {})
    )


def planned(desired: list[Record], rows: list[Record], scopes: set[str] = SCOPES, **options: Any) -> OrgPlan:
    actual = ActualOrganization(ORG, 1, {r.address: r for r in rows}, "sha256:state", revision=3)
    return org_plan(ORG, desired, scopes, actual, {}, PlanOptions(**options))


def actions(plan: OrgPlan) -> list[tuple[str, Action]]:
    return [(c.address, c.action) for c in plan.changes]


def test_plan_creates_an_item_the_database_lacks() -> None:
    plan = planned([record("school", "augsburg", name="Augsburg")], [])
    assert actions(plan) == [("mercy/schools/augsburg", Action.CREATE)]
    assert plan.changes[0].after == {"name": "Augsburg"}


def test_plan_lists_nothing_for_an_item_that_matches() -> None:
    plan = planned([record("school", "augsburg", name="A")], [row("school", "augsburg", name="A")])
    assert plan.changes == ()


def test_plan_updates_only_the_fields_that_differ() -> None:
    plan = planned(
        [record("step", "badge", name="Badge", due_days=7)], [row("step", "badge", name="Badge", due_days=3)]
    )
    assert actions(plan) == [("mercy/steps/badge", Action.UPDATE)]
    assert (plan.changes[0].before, plan.changes[0].after) == ({"due_days": 3}, {"due_days": 7})


def test_plan_renames_an_item_found_under_a_previous_key() -> None:
    badge = record("step", "badge-photo", name="Badge")
    renamed = Record(badge.address, "step", ORG, "badge-photo", badge.fields, previous_keys=("badge",))
    plan = planned([renamed], [row("step", "badge", name="Badge")])
    assert actions(plan) == [("mercy/steps/badge-photo", Action.RENAME)]
    assert (plan.changes[0].before, plan.changes[0].after) == ({"key": "badge"}, {"key": "badge-photo"})


def test_plan_moves_capacity_windows_with_their_renamed_service() -> None:
    service = record("service", "emergency", name="Emergency")
    renamed = Record(service.address, "service", ORG, "emergency", service.fields, previous_keys=("er",))
    window = record("capacity", "spring", "emergency", name="Spring", slots=4)
    scopes = SCOPES | {"services/emergency/capacity"}
    plan = planned(
        [renamed, window],
        [row("service", "er", name="Emergency"), row("capacity", "spring", "er", name="Spring", slots=4)],
        scopes,
    )
    assert actions(plan) == [("mercy/services/emergency", Action.RENAME)]


def test_plan_adopts_an_unmanaged_item_it_declares() -> None:
    plan = planned(
        [record("school", "augsburg", name="Augsburg")],
        [row("school", "augsburg", facts={"managed": False}, name="augsburg u.")],
    )
    assert actions(plan) == [("mercy/schools/augsburg", Action.ADOPT)]
    assert plan.changes[0].after == {"name": "Augsburg"}


def test_plan_deletes_a_managed_item_the_configuration_dropped() -> None:
    plan = planned([], [row("school", "augsburg", name="Augsburg")])
    assert actions(plan) == [("mercy/schools/augsburg", Action.DELETE)]
    assert plan.changes[0].risk == "destructive"


def test_plan_archives_capacity_window_with_booked_rotations() -> None:
    plan = planned([], [row("capacity", "spring", "er", facts={"rotations": 2}, slots=4)])
    assert actions(plan) == [("mercy/services/er/capacity/spring", Action.ARCHIVE)]
    assert plan.changes[0].notes == ("archived, not deleted: 2 rotation(s) are booked on it",)


def test_plan_never_removes_from_a_section_the_configuration_does_not_declare() -> None:
    plan = planned([], [row("school", "augsburg", name="Augsburg")], scopes={"organization", "staff"})
    assert plan.changes == ()


def test_plan_counts_unmanaged_rows_and_leaves_them_alone() -> None:
    plan = planned([], [row("staff", "a@mercy.org", facts={"managed": False}, name="A")])
    assert plan.changes == ()
    assert plan.unmanaged == {"staff": 1}


def test_plan_refuses_slots_below_the_booked_rotations() -> None:
    plan = planned(
        [record("capacity", "spring", "er", slots=2)],
        [row("capacity", "spring", "er", facts={"rotations": 3}, slots=4)],
    )
    assert [p.message for p in plan.problems] == [
        'capacity window "spring" has 3 rotation(s) booked; slots cannot go down to 2'
    ]


def test_plan_refuses_slots_below_the_booked_rotations_of_an_adopted_window() -> None:
    plan = planned(
        [record("capacity", "spring", "er", slots=2)],
        [row("capacity", "spring", "er", facts={"rotations": 3, "managed": False}, slots=4)],
    )
    assert actions(plan) == [("mercy/services/er/capacity/spring", Action.ADOPT)]
    assert len(plan.problems) == 1


def test_plan_sends_fewer_slots_to_review() -> None:
    plan = planned([record("capacity", "spring", "er", slots=3)], [row("capacity", "spring", "er", slots=5)])
    assert plan.changes[0].risk == "review"
    assert plan.changes[0].notes == ("fewer slots: 5 → 3 (0 booked)",)


def test_plan_refuses_to_remove_a_protected_item() -> None:
    plan = planned([], [row("service", "er", facts={"protected": True}, name="ER")])
    assert actions(plan) == [("mercy/services/er", Action.DELETE)]
    assert "mercy/services/er is protected and would be deleted" in plan.problems[0].message


def test_plan_needs_consent_for_a_mass_delete() -> None:
    rows = [row("staff", f"{n}@mercy.org", name=n) for n in "abc"]
    plan = planned([], rows)
    assert [p.message for p in plan.problems] == [
        'this plan would delete or archive 3 of 3 managed items of "mercy": check the configuration, '
        "then re-run with --allow-mass-delete"
    ]


def test_plan_with_consent_proposes_a_mass_delete_without_a_problem() -> None:
    rows = [row("staff", f"{n}@mercy.org", name=n) for n in "abc"]
    plan = planned([], rows, allow_mass_delete=True)
    assert len(plan.changes) == 3
    assert plan.problems == ()


def test_plan_restores_an_archived_item() -> None:
    plan = planned(
        [record("school", "augsburg", name="A")],
        [row("school", "augsburg", facts={"archived": True}, name="A")],
    )
    change = plan.changes[0]
    assert (change.action, change.before, change.after) == (
        Action.UPDATE,
        {"archived": True},
        {"archived": False},
    )
    assert change.notes == ("restores an archived item",)


def test_plan_withholds_changes_to_an_agreement_the_school_closed() -> None:
    plan = planned(
        [record("agreement", "pa-2027", name="PA 2027")],
        [row("agreement", "pa-2027", facts={"status": "closed"}, name="PA")],
    )
    assert plan.changes == ()
    assert plan.notes == (
        "mercy/agreements/pa-2027: the school closed this agreement; changes to it are not applied",
    )


def test_plan_sends_the_resubmission_of_an_active_agreement_to_review() -> None:
    plan = planned(
        [record("agreement", "pa-2027", name="PA 2027")],
        [row("agreement", "pa-2027", facts={"status": "active"}, name="PA")],
    )
    assert plan.changes[0].risk == "review"
    assert plan.changes[0].notes == (
        "re-submits the agreement to the school: its status goes from active to pending_school",
    )


def test_plan_marks_a_change_that_undoes_an_outside_edit_as_drift() -> None:
    plan = planned(
        [record("school", "augsburg", name="Augsburg")],
        [row("school", "augsburg", facts={"applied": {"name": "Augsburg"}}, name="Augsburg University")],
    )
    assert plan.changes[0].cause == "drift"


def test_plan_marks_a_change_of_the_configuration_as_config() -> None:
    plan = planned(
        [record("school", "augsburg", name="Augsburg University")],
        [row("school", "augsburg", facts={"applied": {"name": "Augsburg"}}, name="Augsburg")],
    )
    assert plan.changes[0].cause == "config"


def test_plan_runs_forward_by_type_then_removes_backward() -> None:
    plan = planned(
        [
            record("capacity", "spring", "er", slots=4),
            record("service", "er", name="ER"),
            record("school", "augsburg", name="Augsburg"),
            record("step", "badge", name="Badge"),
        ],
        [
            row("step", "badge", name="Old badge"),
            row("school", "gone", name="Gone"),
            row("staff", "a@mercy.org", name="A"),
        ],
        allow_mass_delete=True,
    )
    assert [(c.type, c.action) for c in plan.changes] == [
        ("school", Action.CREATE),
        ("step", Action.UPDATE),
        ("service", Action.CREATE),
        ("capacity", Action.CREATE),
        ("staff", Action.DELETE),
        ("school", Action.DELETE),
    ]


def test_plan_renames_and_adopts_before_it_updates_and_creates_within_a_type() -> None:
    renamed = Record(
        address_of(ORG, "school", "b"), "school", ORG, "b", {"name": "B"}, previous_keys=("old-b",)
    )
    plan = planned(
        [
            record("school", "a", name="A"),
            renamed,
            record("school", "c", name="C"),
            record("school", "d", name="D"),
        ],
        [
            row("school", "old-b", name="B"),
            row("school", "c", facts={"managed": False}, name="c"),
            row("school", "d", name="d"),
        ],
    )
    assert actions(plan) == [
        ("mercy/schools/b", Action.RENAME),
        ("mercy/schools/c", Action.ADOPT),
        ("mercy/schools/d", Action.UPDATE),
        ("mercy/schools/a", Action.CREATE),
    ]


def test_every_action_has_exactly_one_place_in_the_execution_order() -> None:
    assert sorted([*FORWARD_ACTIONS, *REMOVALS]) == sorted(Action)


def test_plan_titles_a_capacity_window_under_its_service() -> None:
    plan = planned(
        [record("service", "er", name="Emergency"), record("capacity", "spring", "er", name="Spring")], []
    )
    assert [c.title for c in plan.changes] == ["Emergency", "Emergency › Spring"]


def test_plan_carries_the_fingerprint_and_revision_it_was_computed_against() -> None:
    plan = planned([], [])
    assert (plan.state_fingerprint, plan.revision) == ("sha256:state", 3)


def _removing(slug: str, count: int) -> OrgPlan:
    changes = tuple(
        Change(f"{slug}/steps/s{n}", "step", Action.DELETE, {"name": "S"}, {}, risk="destructive")
        for n in range(count)
    )
    return OrgPlan(slug, "sha256:state", changes)


def test_the_whole_plan_is_counted_for_more_than_ten_removals() -> None:
    plan = Plan("2026-01-01T00:00:00Z", "db", tuple(_removing(f"org{n}", 1) for n in range(11)))
    checked = mass_delete_checked(plan, PlanOptions())
    assert all("--allow-mass-delete" in org.problems[0].message for org in checked.organizations)
    assert "11 items" in checked.organizations[0].problems[0].message


def test_counting_the_whole_plan_again_replaces_what_a_part_said() -> None:
    part = mass_delete_checked(Plan("t", "db", tuple(_removing(f"a{n}", 2) for n in range(6))), PlanOptions())
    whole = Plan("t", "db", part.organizations + tuple(_removing(f"b{n}", 2) for n in range(6)))
    checked = mass_delete_checked(whole, PlanOptions())
    assert [len(org.problems) for org in checked.organizations] == [1] * 12
    assert {"24 items" in org.problems[0].message for org in checked.organizations} == {True}


def test_ten_removals_in_one_plan_need_no_consent_and_consent_lifts_eleven() -> None:
    ten = Plan("t", "db", tuple(_removing(f"org{n}", 1) for n in range(10)))
    assert all(org.problems == () for org in mass_delete_checked(ten, PlanOptions()).organizations)
    eleven = Plan("t", "db", tuple(_removing(f"org{n}", 1) for n in range(11)))
    allowed = mass_delete_checked(eleven, PlanOptions(allow_mass_delete=True))
    assert all(org.problems == () for org in allowed.organizations)
