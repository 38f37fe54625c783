"""Incremental plans skip organizations whose files and database rows are unchanged since their last
apply, and never hide drift: any write to the database, through nexus or not, makes them compared again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from .test_cli_plan_apply import ORG, OTHER, Run

PARENT = """
apiVersion: nexus/v1
kind: Organization
metadata: {slug: valley-health}
profile: {name: Valley Health, type: health_system}
steps: [{key: hipaa, stage: onboarding, name: HIPAA, type: upload}]
"""
CHILD = """
apiVersion: nexus/v1
kind: Organization
metadata: {slug: valley-east, parent: valley-health}
profile: {name: Valley East, type: hospital}
services: [{key: er, name: Emergency, disciplines: [medicine], steps: [hipaa]}]
"""


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str], database_url: str) -> Run:
    return Run(capsys, database_url)


@pytest.fixture
def tree(write_tree: Callable[..., Path]) -> Path:
    return write_tree(
        {
            "lakeview.yaml": ORG.replace(", PROTECT", ""),
            "hillcrest.yaml": OTHER,
            "valley/health.yaml": PARENT,
            "valley/east.yaml": CHILD,
        }
    )


def _skipped(nexus: Run, *args: str) -> set[str]:
    assert nexus("plan", *args, "--format", "json") == 0, nexus.err
    plan = json.loads(nexus.out)
    return {o["slug"] for o in plan["organizations"] if o.get("skipped")}


def _sql(url: str, statement: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(statement))
    engine.dispose()


def test_unchanged_organizations_are_skipped_after_an_apply(nexus: Run, tree: Path) -> None:
    assert _skipped(nexus, str(tree)) == set()
    assert nexus("apply", str(tree), "--auto-approve") == 0
    assert _skipped(nexus, str(tree)) == {"lakeview", "hillcrest", "valley-health", "valley-east"}
    assert nexus("plan", str(tree)) == 0
    assert "4 organizations unchanged since the last apply" in nexus.out


def test_full_compares_every_organization(nexus: Run, tree: Path) -> None:
    assert nexus("apply", str(tree), "--auto-approve") == 0
    assert _skipped(nexus, str(tree), "--full") == set()


def test_a_write_that_bypasses_nexus_is_never_hidden(nexus: Run, tree: Path) -> None:
    assert nexus("apply", str(tree), "--auto-approve") == 0
    _sql(nexus.url, "UPDATE capacity_windows SET slots = 9 WHERE key = 'spring'")
    assert _skipped(nexus, str(tree)) == {"hillcrest", "valley-health", "valley-east"}
    plan = json.loads(nexus.out)
    changes = [c for o in plan["organizations"] for c in o["changes"]]
    assert [(c["address"], c["cause"]) for c in changes] == [
        ("lakeview/services/er/capacity/spring", "drift")
    ]


def test_a_booked_rotation_makes_the_organization_compared_again(nexus: Run, tree: Path) -> None:
    assert nexus("apply", str(tree), "--auto-approve") == 0
    _sql(
        nexus.url,
        "INSERT INTO rotations (capacity_window_id, student, start_date, end_date) "
        "SELECT id, 'A Student', '2027-02-01', '2027-02-28' FROM capacity_windows WHERE key = 'open'",
    )
    assert "lakeview" not in _skipped(nexus, str(tree))


def test_a_changed_file_makes_its_organization_compared_again(nexus: Run, tree: Path) -> None:
    assert nexus("apply", str(tree), "--auto-approve") == 0
    path = tree / "hillcrest.yaml"
    path.write_text(path.read_text().replace("Hillcrest Clinic", "Hillcrest Family Clinic"))
    assert _skipped(nexus, str(tree)) == {"lakeview", "valley-health", "valley-east"}


def test_a_changed_parent_makes_its_children_compared_again(nexus: Run, tree: Path) -> None:
    assert nexus("apply", str(tree), "--auto-approve") == 0
    path = tree / "valley" / "health.yaml"
    path.write_text(path.read_text().replace("name: HIPAA,", "name: HIPAA training,"))
    assert _skipped(nexus, str(tree)) == {"lakeview", "hillcrest"}


def test_a_new_file_adding_to_an_unchanged_organization_is_not_missed(nexus: Run, tree: Path) -> None:
    assert nexus("apply", str(tree), "--auto-approve") == 0
    (tree / "hillcrest-staff.yaml").write_text(
        "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: hillcrest}\n"
        "staff: [{email: ann@hillcrest.example.org, role: admin}]\n"
    )
    assert "hillcrest" not in _skipped(nexus, str(tree))
    changes = [c["address"] for o in json.loads(nexus.out)["organizations"] for c in o["changes"]]
    assert changes == ["hillcrest/staff/ann@hillcrest.example.org"]


def test_an_apply_that_left_a_change_pending_is_compared_again(nexus: Run, tree: Path) -> None:
    assert nexus("apply", str(tree), "--auto-approve") == 0
    _sql(nexus.url, "UPDATE agreements SET status = 'changes_proposed' WHERE key = 'state'")
    path = tree / "lakeview.yaml"
    path.write_text(path.read_text().replace("name: State nursing", "name: State"))
    assert nexus("apply", str(tree), "--auto-approve") == 0
    assert "lakeview" not in _skipped(nexus, str(tree))


TEMPLATES = """
apiVersion: nexus/v1
kind: Organization
metadata: {slug: valley-health}
templates:
  - {key: family-medicine, name: Family Medicine, disciplines: [medicine], steps: [hipaa]}
  - {key: pediatrics, name: Pediatrics, disciplines: [nursing]}
"""


def _user(slug: str, template: str) -> str:
    return (
        f"apiVersion: nexus/v1\nkind: Organization\nmetadata: {{slug: {slug}, parent: valley-health}}\n"
        f"profile: {{name: {slug}, type: clinic}}\nservices: [{{key: clinic, template: {template}}}]\n"
    )


@pytest.fixture
def templated_tree(write_tree: Callable[..., Path]) -> Path:
    return write_tree(
        {
            "hillcrest.yaml": OTHER,
            "valley/health.yaml": PARENT,
            "valley/templates.yaml": TEMPLATES,
            "valley/east.yaml": CHILD,
            "valley/north.yaml": _user("valley-north", "family-medicine"),
            "valley/south.yaml": _user("valley-south", "pediatrics"),
        }
    )


def test_a_changed_template_makes_exactly_its_users_compared_again(nexus: Run, templated_tree: Path) -> None:
    assert nexus("apply", str(templated_tree), "--auto-approve") == 0
    path = templated_tree / "valley" / "templates.yaml"
    path.write_text(path.read_text().replace("name: Family Medicine", "name: Family Practice"))
    assert _skipped(nexus, str(templated_tree)) == {"hillcrest", "valley-east", "valley-south"}
    changes = [c["address"] for o in json.loads(nexus.out)["organizations"] for c in o["changes"]]
    assert changes == ["valley-north/services/clinic"]


def test_a_template_change_in_a_field_its_user_writes_itself_leaves_the_user_skipped(
    nexus: Run, templated_tree: Path
) -> None:
    north = templated_tree / "valley" / "north.yaml"
    north.write_text(
        north.read_text().replace("template: family-medicine}", "template: family-medicine, name: FM}")
    )
    assert nexus("apply", str(templated_tree), "--auto-approve") == 0
    path = templated_tree / "valley" / "templates.yaml"
    path.write_text(path.read_text().replace("name: Family Medicine", "name: Family Practice"))
    assert "valley-north" in _skipped(nexus, str(templated_tree))


def test_a_template_gaining_a_field_its_user_does_not_write_makes_the_user_compared_again(
    nexus: Run, templated_tree: Path
) -> None:
    north = templated_tree / "valley" / "north.yaml"
    north.write_text(
        north.read_text().replace("template: family-medicine}", "template: family-medicine, name: FM}")
    )
    assert nexus("apply", str(templated_tree), "--auto-approve") == 0
    path = templated_tree / "valley" / "templates.yaml"
    path.write_text(path.read_text().replace("name: Family Medicine,", "name: Family Medicine, location: B,"))
    assert "valley-north" not in _skipped(nexus, str(templated_tree))
    changes = [c for o in json.loads(nexus.out)["organizations"] for c in o["changes"]]
    assert [(c["address"], c["after"]) for c in changes] == [
        ("valley-north/services/clinic", {"location": "B"})
    ]


def test_a_template_redeclared_nearer_makes_its_users_compared_again(
    nexus: Run, templated_tree: Path
) -> None:
    (templated_tree / "valley" / "north.yaml").write_text(
        _user("valley-north", "family-medicine").replace("parent: valley-health", "parent: valley-region")
    )
    region = _user("valley-region", "pediatrics").replace(
        "services: [{key: clinic, template: pediatrics}]", ""
    )
    (templated_tree / "valley" / "region.yaml").write_text(region)
    assert nexus("apply", str(templated_tree), "--auto-approve") == 0
    (templated_tree / "valley" / "region-templates.yaml").write_text(
        "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: valley-region}\n"
        "templates: [{key: family-medicine, name: Regional Family Medicine, disciplines: [medicine]}]\n"
    )
    assert "valley-north" not in _skipped(nexus, str(templated_tree))
    changes = [c for o in json.loads(nexus.out)["organizations"] for c in o["changes"]]
    assert [(c["address"], c["after"].get("name")) for c in changes] == [
        ("valley-north/services/clinic", "Regional Family Medicine")
    ]


def test_templates_in_a_file_shared_with_another_organization_still_skip_what_does_not_use_them(
    nexus: Run, templated_tree: Path
) -> None:
    (templated_tree / "hillcrest.yaml").unlink()
    path = templated_tree / "valley" / "templates.yaml"
    path.write_text(path.read_text() + "---" + OTHER)
    assert nexus("apply", str(templated_tree), "--auto-approve") == 0
    path.write_text(path.read_text().replace("name: Pediatrics", "name: Pediatric Care"))
    assert _skipped(nexus, str(templated_tree)) == {"valley-east", "valley-north"}


def test_a_step_added_beside_templates_makes_every_child_compared_again(
    nexus: Run, templated_tree: Path
) -> None:
    assert nexus("apply", str(templated_tree), "--auto-approve") == 0
    path = templated_tree / "valley" / "templates.yaml"
    path.write_text(
        path.read_text() + "steps: [{key: badge, stage: onboarding, name: Badge, type: upload}]\n"
    )
    assert _skipped(nexus, str(templated_tree)) == {"hillcrest"}
