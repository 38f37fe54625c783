"""The domain's exceptions to a plain diff, one rule each, tested pure from hand-made records."""

from __future__ import annotations

from typing import Any

import pytest

from plan_apply.guards import (
    MassDeleteLimit,
    agreement_update_notes,
    changed_fields,
    comparable_fields,
    drifted,
    is_mass_delete,
    must_archive,
    plan_mass_delete_refusal,
    protection_refusal,
    slots_refusal,
)
from plan_apply.records import Record, address_of

ORG = "acme"


def record(type_: str, key: str = "", parent: str | None = None, **attributes: Any) -> Record:
    """A record of `type_` in the organization `acme`; `fields` default to empty, the rest as given."""
    address = address_of(ORG, type_, key, parent)
    parent_address = address_of(ORG, "service", parent) if parent is not None else None
    fields = attributes.pop("fields", {})
    return Record(address, type_, ORG, key, fields, parent=parent_address, **attributes)


def by_address(*records: Record) -> dict[str, Record]:
    return {r.address: r for r in records}


# comparable_fields: what the configuration owns of an item


def test_only_fields_both_sides_know_are_compared() -> None:
    desired = record("school", "state-u", fields={"name": "State U", "protect": True})
    actual = record("school", "state-u", fields={"name": "State University"})
    assert comparable_fields(desired, actual) == ["name"]


def test_a_staff_members_name_is_the_persons_and_never_compared() -> None:
    desired = record("staff", "ann@example.org", fields={"name": "Ann", "roles": ["admin"]})
    actual = record("staff", "ann@example.org", fields={"name": "Ann B."})
    assert comparable_fields(desired, actual) == ["roles"]


@pytest.mark.parametrize("status", [None, "draft"])
def test_submit_is_compared_while_the_agreement_is_a_draft(status: str | None) -> None:
    desired = record("agreement", "a1", fields={"name": "A1", "submit": True})
    actual = record("agreement", "a1", fields={"name": "A1", "submit": False}, status=status)
    assert comparable_fields(desired, actual) == ["name", "submit"]


@pytest.mark.parametrize("status", ["pending_school", "active", "changes_proposed", "closed"])
def test_submit_is_moot_once_the_agreement_went_to_the_school(status: str) -> None:
    desired = record("agreement", "a1", fields={"name": "A1", "submit": True})
    actual = record("agreement", "a1", fields={"name": "A1", "submit": False}, status=status)
    assert comparable_fields(desired, actual) == ["name"]


# changed_fields


def test_changed_fields_are_the_owned_fields_whose_values_differ() -> None:
    desired = record("service", "icu", fields={"name": "ICU", "disciplines": ["nursing"], "extra": 1})
    actual = record("service", "icu", fields={"name": "ICU", "disciplines": ["medicine"]})
    assert changed_fields(desired, actual) == ["disciplines"]


def test_lists_and_mappings_compare_by_value() -> None:
    desired = record(
        "service", "icu", fields={"disciplines": ["nursing"], "contact": {"email": "a@example.org"}}
    )
    actual = record(
        "service", "icu", fields={"disciplines": ["nursing"], "contact": {"email": "a@example.org"}}
    )
    assert changed_fields(desired, actual) == []


# must_archive: live data is archived, never deleted


def test_a_removed_capacity_window_with_booked_rotations_is_archived() -> None:
    window = record("capacity", "fall", parent="icu", rotations=3)
    assert must_archive(window, by_address(window)) == (
        "archived, not deleted: 3 rotation(s) are booked on it"
    )


def test_a_removed_capacity_window_without_rotations_is_deleted() -> None:
    window = record("capacity", "fall", parent="icu")
    assert must_archive(window, by_address(window)) is None


def test_a_removed_service_with_rotations_booked_in_its_windows_is_archived() -> None:
    service = record("service", "icu")
    windows = [record("capacity", f"w{n}", parent="icu", rotations=n) for n in (1, 2)]
    elsewhere = record("capacity", "w9", parent="er", rotations=7)
    reason = must_archive(service, by_address(service, *windows, elsewhere))
    assert reason == "archived, not deleted: 3 rotation(s) are booked in its capacity windows"


def test_a_removed_service_holding_unmanaged_windows_is_archived() -> None:
    service = record("service", "icu")
    window = record("capacity", "legacy", parent="icu", managed=False)
    reason = must_archive(service, by_address(service, window))
    assert reason == "archived, not deleted: it holds 1 capacity window(s) nexus does not manage"


def test_a_removed_service_with_only_empty_managed_windows_is_deleted() -> None:
    service = record("service", "icu")
    window = record("capacity", "fall", parent="icu")
    assert must_archive(service, by_address(service, window)) is None


@pytest.mark.parametrize("status", ["pending_school", "active", "changes_proposed", "closed"])
def test_a_removed_agreement_the_school_has_seen_is_archived(status: str) -> None:
    agreement = record("agreement", "a1", status=status)
    assert must_archive(agreement, by_address(agreement)) == (
        f"archived, not deleted: the agreement is {status} with the school"
    )


def test_a_removed_draft_agreement_with_booked_windows_under_it_is_archived() -> None:
    agreement = record("agreement", "a1", status="draft")
    booked = record("capacity", "fall", parent="icu", fields={"agreement": "a1"}, rotations=2)
    unmanaged = record("capacity", "old", parent="icu", fields={"agreement": "a1"}, managed=False)
    empty = record("capacity", "spring", parent="icu", fields={"agreement": "a1"})
    other = record("capacity", "summer", parent="icu", fields={"agreement": "a2"}, rotations=5)
    reason = must_archive(agreement, by_address(agreement, booked, unmanaged, empty, other))
    assert reason == (
        "archived, not deleted: 2 capacity window(s) with booked rotations are scheduled under it"
    )


def test_a_removed_draft_agreement_a_window_still_uses_is_archived() -> None:
    agreement = record("agreement", "a1")
    window = record("capacity", "spring", parent="icu", fields={"agreement": "a1"})
    assert must_archive(agreement, by_address(agreement, window)) == (
        "archived, not deleted: still used by acme/services/icu/capacity/spring"
    )


def test_a_removed_draft_agreement_whose_windows_go_too_is_deleted() -> None:
    agreement = record("agreement", "a1")
    window = record("capacity", "spring", parent="icu", fields={"agreement": "a1"})
    assert must_archive(agreement, by_address(agreement, window), deleted={window.address}) is None


@pytest.mark.parametrize("type_", ["school", "step", "staff", "profile"])
def test_other_removed_items_are_deleted(type_: str) -> None:
    item = record(type_, "x", rotations=4, status="active")
    assert must_archive(item, by_address(item)) is None


# protection_refusal


@pytest.mark.parametrize("action", ["delete", "archive"])
def test_removing_a_protected_item_is_refused_with_how_to_release_it(action: str) -> None:
    school = record("school", "state-u", protected=True)
    assert protection_refusal(school, action) == (
        f"acme/schools/state-u is protected and would be {action}d: to remove it, first apply a "
        "configuration that declares it with `protect: false`, then remove it"
    )


def test_removing_an_unprotected_item_is_not_refused() -> None:
    assert protection_refusal(record("school", "state-u"), "delete") is None


# slots_refusal


def test_lowering_slots_below_booked_rotations_is_refused() -> None:
    desired = record("capacity", "fall", parent="icu", fields={"slots": 2})
    actual = record("capacity", "fall", parent="icu", fields={"slots": 6}, rotations=4)
    assert slots_refusal(desired, actual) == (
        'capacity window "fall" has 4 rotation(s) booked; slots cannot go down to 2'
    )


def test_lowering_slots_to_exactly_the_booked_rotations_is_allowed() -> None:
    desired = record("capacity", "fall", parent="icu", fields={"slots": 4})
    actual = record("capacity", "fall", parent="icu", fields={"slots": 6}, rotations=4)
    assert slots_refusal(desired, actual) is None


def test_a_window_without_a_slot_count_is_not_refused() -> None:
    desired = record("capacity", "fall", parent="icu", fields={"slots": None})
    actual = record("capacity", "fall", parent="icu", rotations=4)
    assert slots_refusal(desired, actual) is None


def test_slots_are_only_a_capacity_window_rule() -> None:
    desired = record("service", "icu", fields={"slots": 0})
    actual = record("service", "icu", rotations=4)
    assert slots_refusal(desired, actual) is None


# agreement_update_notes: the school's approval is the school's


@pytest.mark.parametrize(
    "field",
    [
        "school",
        "start_date",
        "end_date",
        "services",
        "disciplines",
        "document",
        "name",
        "description",
        "reminder_days",
    ],
)
def test_changing_the_terms_of_an_active_agreement_re_submits_it_for_review(field: str) -> None:
    notes, review = agreement_update_notes(record("agreement", "a1", status="active"), [field])
    assert notes == ["re-submits the agreement to the school: its status goes from active to pending_school"]
    assert review


def test_changing_nothing_of_the_terms_of_an_active_agreement_needs_no_review() -> None:
    assert agreement_update_notes(record("agreement", "a1", status="active"), ["protect"]) == ([], False)


def test_an_agreement_the_school_proposed_changes_to_is_left_alone_and_says_what_was_proposed() -> None:
    actual = record(
        "agreement", "a1", status="changes_proposed", proposed={"end_date": "2027-06-30", "name": "Née"}
    )
    notes, review = agreement_update_notes(actual, ["name"])
    assert notes == [
        'the school proposed changes (end_date: "2027-06-30", name: "Née"); apply leaves this agreement '
        "alone unless --counter-propose is given"
    ]
    assert review


def test_a_proposal_without_details_points_to_the_platform() -> None:
    notes, _ = agreement_update_notes(record("agreement", "a1", status="changes_proposed"), ["name"])
    assert "(see the platform)" in notes[0]


@pytest.mark.parametrize("status", [None, "draft"])
def test_submitting_a_draft_agreement_is_said_without_review(status: str | None) -> None:
    notes, review = agreement_update_notes(record("agreement", "a1", status=status), ["submit"])
    assert notes == ["submits the agreement to the school for approval (status pending_school)"]
    assert not review


def test_submit_on_an_agreement_already_with_the_school_says_nothing() -> None:
    assert agreement_update_notes(record("agreement", "a1", status="pending_school"), ["submit"]) == (
        [],
        False,
    )


# is_mass_delete


def test_more_removals_than_the_item_limit_in_the_whole_plan_is_a_mass_delete() -> None:
    assert plan_mass_delete_refusal("acme", 1, 11, MassDeleteLimit()) is not None
    assert plan_mass_delete_refusal("acme", 1, 10, MassDeleteLimit()) is None
    assert plan_mass_delete_refusal("acme", 0, 11, MassDeleteLimit()) is None  # nothing of acme's
    assert not is_mass_delete(11, 1000, MassDeleteLimit())  # one organization: only its share counts


def test_more_than_the_fraction_of_managed_items_is_a_mass_delete() -> None:
    assert is_mass_delete(3, 10, MassDeleteLimit())
    assert not is_mass_delete(2, 8, MassDeleteLimit())


def test_a_single_removal_is_never_a_mass_delete_by_fraction() -> None:
    assert not is_mass_delete(1, 1, MassDeleteLimit())


def test_removals_with_nothing_managed_are_judged_by_the_whole_plans_count_only() -> None:
    assert not is_mass_delete(5, 0, MassDeleteLimit(items=4))
    assert plan_mass_delete_refusal("acme", 5, 5, MassDeleteLimit(items=4)) is not None


def test_the_mass_delete_limit_is_configurable() -> None:
    assert not is_mass_delete(9, 10, MassDeleteLimit(items=100, fraction=1.0))
    assert is_mass_delete(2, 10, MassDeleteLimit(items=100, fraction=0.1))


# drifted: someone changed the database since nexus last applied


def test_a_field_changed_in_the_database_since_the_last_apply_has_drifted() -> None:
    actual = record("school", "state-u", fields={"name": "Renamed"}, applied={"name": "State U"})
    assert drifted(actual, ["name"])


def test_a_field_as_nexus_last_applied_it_has_not_drifted() -> None:
    actual = record("school", "state-u", fields={"name": "State U"}, applied={"name": "State U"})
    assert not drifted(actual, ["name"])


def test_a_field_nexus_never_applied_has_not_drifted() -> None:
    actual = record("school", "state-u", fields={"name": "Renamed"}, applied={"contact": "x"})
    assert not drifted(actual, ["name"])


def test_an_item_nexus_never_applied_has_not_drifted() -> None:
    assert not drifted(record("school", "state-u", fields={"name": "Renamed"}), ["name"])


def test_drift_is_only_judged_on_the_fields_asked_about() -> None:
    actual = record("school", "state-u", fields={"name": "Renamed", "city": "X"}, applied={"name": "State U"})
    assert not drifted(actual, ["city"])
