"""A saved plan read back: exact round trip, and anything tampered with or outside the vocabulary refused.

Pure: plans are made by hand, no database.
"""

from __future__ import annotations

import json
from typing import get_args

import pytest

from plan_apply.plan import Action, Change, OrgPlan, Plan, PlanProblem, integrity_of
from plan_apply.plan_file import ActionName, PlanFileInvalid, TypeName, parsed_plan
from plan_apply.records import TYPES


def _plan(*changes: Change) -> Plan:
    org = OrgPlan(
        "mercy",
        "sha256:state",
        changes=changes,
        unmanaged={"staff": 2},
        problems=(
            PlanProblem("slots too low", "mercy/org.yaml", 7, 9, "mercy/services/er", "/services/0", 1),
        ),
        documents={"sha256:doc": "mercy/agreement.pdf"},
        config_files={"mercy/org.yaml": "sha256:file"},
        notes=("the school closed this agreement",),
        revision=4,
        parent="northstar",
    )
    return Plan(created_at="2026-11-28T12:00:00Z", database="sqlite:///nexus.db", organizations=(org,))


UPDATE = Change(
    "mercy/services/er/capacity/spring",
    "capacity",
    Action.UPDATE,
    {"slots": 6},
    {"slots": 4},
    cause="drift",
    risk="review",
    notes=("fewer slots: 6 → 4",),
    title="Emergency › Spring",
)


def _resealed(raw: dict[str, object]) -> str:
    """A plan file edited, then given a matching integrity hash, so only the edit can be refused."""
    body = {k: v for k, v in raw.items() if k != "integrity"}
    return json.dumps({**body, "integrity": integrity_of(body)})


def test_a_saved_plan_reads_back_exactly() -> None:
    plan = _plan(UPDATE, Change("mercy/staff/a@b.org", "staff", Action.DELETE, {"name": "A"}, {}))
    assert parsed_plan(plan.to_json()) == plan


def test_plan_from_json_delegates_to_the_plan_file() -> None:
    plan = _plan(UPDATE)
    assert Plan.from_json(plan.to_json()) == parsed_plan(plan.to_json())


def test_a_plan_edited_after_it_was_written_is_refused() -> None:
    text = _plan(UPDATE).to_json().replace('"slots": 4', '"slots": 40', 1)
    with pytest.raises(PlanFileInvalid, match="modified after it was written"):
        parsed_plan(text)


def test_a_change_of_an_unknown_type_is_refused() -> None:
    raw = _plan(Change("mercy/widgets/w", "widget", Action.CREATE, {}, {"name": "W"})).to_json_dict()
    with pytest.raises(PlanFileInvalid, match="organizations/0/changes/0/type"):
        parsed_plan(_resealed(raw))


def test_a_change_with_an_unknown_action_is_refused() -> None:
    raw = _plan(UPDATE).to_json_dict()
    raw["organizations"][0]["changes"][0]["action"] = "truncate"
    with pytest.raises(PlanFileInvalid, match="organizations/0/changes/0/action"):
        parsed_plan(_resealed(raw))


def test_a_change_with_an_unknown_risk_is_refused() -> None:
    raw = _plan(UPDATE).to_json_dict()
    raw["organizations"][0]["changes"][0]["risk"] = "catastrophic"
    with pytest.raises(PlanFileInvalid, match="organizations/0/changes/0/risk"):
        parsed_plan(_resealed(raw))


def test_a_plan_of_another_format_version_is_refused() -> None:
    raw = _plan(UPDATE).to_json_dict()
    raw["format_version"] = 2
    with pytest.raises(PlanFileInvalid, match="format_version 2 is not supported"):
        parsed_plan(_resealed(raw))


def test_a_file_that_is_not_json_is_refused() -> None:
    with pytest.raises(PlanFileInvalid, match="invalid JSON"):
        parsed_plan("{not json")


def test_a_saved_plan_accepts_exactly_the_registry_types() -> None:
    assert get_args(TypeName) == TYPES


def test_a_saved_plan_accepts_exactly_the_actions() -> None:
    assert get_args(ActionName) == tuple(action.value for action in Action)


@pytest.mark.parametrize("type_", TYPES)
def test_a_change_of_every_registry_type_reads_back(type_: str) -> None:
    plan = _plan(Change(f"mercy/{type_}/k", type_, Action.CREATE, {}, {"name": "K"}))
    assert parsed_plan(plan.to_json()) == plan


def test_empty_lists_and_maps_are_written_empty_not_left_out() -> None:
    written = json.loads(
        Plan("2026-12-01T00:00:00Z", "sqlite://", (OrgPlan("lakeview", "sha256:0"),)).to_json()
    )
    (org,) = written["organizations"]
    assert (org["changes"], org["problems"], org["notes"], org["documents"], org["config_files"]) == (
        [],
        [],
        [],
        {},
        {},
    )
    assert "revision" not in org and "parent" not in org  # no value, not an empty collection


def test_a_change_from_a_template_reads_back_naming_it() -> None:
    templated = Change(
        "mercy/services/fm",
        "service",
        Action.UPDATE,
        {"description": "Care."},
        {"description": "Primary care."},
        template="northstar/family-medicine",
    )
    assert parsed_plan(_plan(templated).to_json()).changes[0].template == "northstar/family-medicine"
