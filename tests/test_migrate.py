"""`nexus migrate`: nexus/v1beta1 → nexus/v1 in place, keeping comments; lossless or nothing is written.

Law (hypothesis): migrating any v1beta1 organization loads to the same desired records.
"""

from __future__ import annotations

import difflib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexus_config import load_configuration
from nexus_config.migrate import migrate_tree
from nexus_config.rewrite import format_text
from plan_apply.records import desired_records

from .conftest import EXAMPLES
from .strategies import organization
from .test_cli_plan_apply import Run

GOLDEN = Path(__file__).parent / "goldens" / "migrate" / "riverbend-rehab" / "organization.yaml"


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(capsys, "")


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    copy = tmp_path / "orgs"
    shutil.copytree(EXAMPLES, copy)
    return copy


def _records(paths: list[Path]) -> dict[str, list[Any]]:
    """What plans compare, per organization: independent of where (or in which version) it was said."""
    loaded = load_configuration(paths)
    assert loaded.ok, [p.as_text() for p in loaded.errors]
    result = {}
    for slug, org in loaded.state.organizations.items():
        records, scopes = desired_records(org, loaded.state)
        result[slug] = sorted(
            (r.address, json.dumps(r.fields, sort_keys=True), r.previous_keys, r.parent) for r in records
        ) + sorted(scopes)
    return result


def _deprecations(paths: list[Path]) -> list[str]:
    return [p.message for p in load_configuration(paths).problems if p.code == "version.deprecated"]


def test_migrate_of_riverbend_rehab_matches_the_golden(
    examples: Path, request: pytest.FixtureRequest
) -> None:
    migration = migrate_tree([examples])
    assert migration.ok, [p.as_text() for p in migration.problems]
    [rewrite] = migration.rewrites
    assert rewrite.file == str(examples / "riverbend-rehab" / "organization.yaml")
    assert rewrite.after is not None
    if request.config.getoption("--update-goldens"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(rewrite.after, encoding="utf-8")
    expected = GOLDEN.read_text(encoding="utf-8")
    if rewrite.after != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), rewrite.after.splitlines(True)))
        pytest.fail(f"{GOLDEN} differs (run pytest --update-goldens to accept):\n{diff}")


def test_the_golden_is_canonical_v1_with_the_v1_modeline() -> None:
    text = GOLDEN.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../../../schemas/v1/nexus.schema.json\n")
    assert "apiVersion: nexus/v1\n" in text
    assert "workflow_type:" not in text and "\n    service:" not in text and "\ncapacity:" not in text
    assert "expires_after_days: 730   # AHA cards are valid for two years" in text  # comments kept
    assert "submit: false   # waiting for UNH to join the platform" in text
    assert not format_text("x.yaml", text).changed


def test_migrated_examples_load_to_the_same_desired_state_without_a_warning(
    nexus: Run, examples: Path
) -> None:
    before = _records([examples])
    assert _deprecations([examples])
    assert nexus("migrate", str(examples), database=False) == 0
    assert "migrated " + str(examples / "riverbend-rehab" / "organization.yaml") in nexus.err
    assert _records([examples]) == before
    assert _deprecations([examples]) == []
    assert nexus("migrate", str(examples), database=False) == 0
    assert "nothing to migrate" in nexus.err


def test_migrate_check_and_diff_write_nothing(nexus: Run, examples: Path) -> None:
    target = examples / "riverbend-rehab" / "organization.yaml"
    original = target.read_text()
    assert nexus("migrate", "--check", str(examples), database=False) == 1
    assert f"would rewrite {target}" in nexus.err
    assert nexus("migrate", "--diff", str(examples), database=False) == 1
    assert "-apiVersion: nexus/v1beta1\n+apiVersion: nexus/v1\n" in nexus.out
    assert target.read_text() == original


def test_migrate_writes_nothing_when_any_file_has_errors(nexus: Run, examples: Path) -> None:
    target = examples / "riverbend-rehab" / "organization.yaml"
    original = target.read_text()
    (examples / "broken.yaml").write_text(
        "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: x}\nprofil: {}\n"
    )
    assert nexus("migrate", str(examples), database=False) == 1
    assert 'unknown field "profil"' in nexus.err
    assert "nothing was migrated" in nexus.err
    assert target.read_text() == original


BETA_WINDOW_ELSEWHERE = """
apiVersion: nexus/v1beta1
kind: Organization
metadata: {slug: lakeview}
profile: {name: Lakeview, type: hospital}
capacity:
  - key: spring
    service: er
    name: Spring
    workflow_type: student_requested
    disciplines: [nursing]
    start_date: 2027-02-01
    end_date: 2027-05-01
    slots: 4
"""
V1_SERVICES = """
apiVersion: nexus/v1
kind: Organization
metadata: {slug: lakeview}
services:
  - key: er
    name: Emergency
    disciplines: [nursing]
"""


def test_migrate_refuses_a_window_whose_service_is_in_another_document(nexus: Run, write_tree: Any) -> None:
    tree = write_tree({"windows.yaml": BETA_WINDOW_ELSEWHERE, "services.yaml": V1_SERVICES})
    assert nexus("migrate", str(tree), database=False) == 1
    assert f'{tree / "windows.yaml"}:7:14: error: capacity window "spring" names service "er"' in nexus.err
    assert f"declared in another document ({tree / 'services.yaml'}:5)" in nexus.err
    assert "move the window there (or move the service here)" in nexus.err
    assert (tree / "windows.yaml").read_text().startswith("apiVersion: nexus/v1beta1")


COMMENTED = """
# yaml-language-server: $schema=../schemas/v1beta1/nexus.schema.json
apiVersion: "nexus/v1beta1"
kind: Organization
metadata: {slug: lakeview}
profile: {name: Lakeview, type: hospital}
steps:
  onboarding:   # what students do before day one
    - key: badge
      name: Badge   # eol
      type: upload
    # a comment between items
    - {key: tb, name: TB test, type: upload}
  application:
    - key: form
      name: Form
      type: checkbox

services:
  - key: er
    name: Emergency
    disciplines: [nursing, medicine]

  - key: icu
    name: ICU
    disciplines: [nursing]
    steps: [badge]   # icu steps

  - key: quiet
    name: No windows
    disciplines: [nursing]

capacity:
  - key: spring
    service: er   # the ER
    name: Spring
    # how students get in
    workflow_type: student_requested
    disciplines: [nursing]
    start_date: 2027-02-01
    end_date: 2027-05-01
    slots: 4

  - key: fall
    name: Fall
    workflow_type: student_requested
    disciplines: [nursing]
    start_date: 2027-09-01
    end_date: 2027-12-01
    slots: 2
    service: icu
"""
COMMENTED_V1 = """
# yaml-language-server: $schema=../schemas/v1/nexus.schema.json
apiVersion: "nexus/v1"
kind: Organization
metadata: {slug: lakeview}
profile: {name: Lakeview, type: hospital}
steps:
  - key: form
    stage: application
    name: Form
    type: checkbox
  # what students do before day one
  - key: badge
    stage: onboarding
    name: Badge   # eol
    type: upload
  # a comment between items
  - {key: tb, stage: onboarding, name: TB test, type: upload}

services:
  - key: er
    name: Emergency
    disciplines: [nursing, medicine]
    capacity:
      - key: spring   # the ER
        name: Spring
        # how students get in
        workflow: student_requested
        disciplines: [nursing]
        start_date: 2027-02-01
        end_date: 2027-05-01
        slots: 4

  - key: icu
    name: ICU
    disciplines: [nursing]
    steps: [badge]   # icu steps
    capacity:
      - key: fall
        name: Fall
        workflow: student_requested
        disciplines: [nursing]
        start_date: 2027-09-01
        end_date: 2027-12-01
        slots: 2

  - key: quiet
    name: No windows
    disciplines: [nursing]
    capacity: []
"""


def test_migrate_keeps_comments_quoting_and_key_order(write_tree: Any) -> None:
    tree = write_tree({"lakeview.yaml": COMMENTED})
    [rewrite] = migrate_tree([tree]).rewrites
    assert rewrite.after == COMMENTED_V1.lstrip("\n")


def test_migrate_keeps_every_service_of_a_capacity_managing_organization_managed(write_tree: Any) -> None:
    """A v1beta1 `capacity:` list makes every service of the organization capacity-managed, also those
    declared in other (v1) documents: after migrating they say `capacity: []`, or windows would be left
    unmanaged that were managed (and deleted) before."""
    beta = BETA_WINDOW_ELSEWHERE.replace(
        "capacity:\n  - key: spring",
        "services: [{key: icu, name: ICU, disciplines: [nursing]}]\ncapacity:\n  - key: spring",
    ).replace("service: er", "service: icu")
    tree = write_tree({"a.yaml": beta, "b.yaml": V1_SERVICES})
    before = _records([tree])
    migration = migrate_tree([tree])
    assert migration.ok, [p.as_text() for p in migration.problems]
    rewritten = {Path(r.file).name: r.after for r in migration.rewrites}
    assert set(rewritten) == {"a.yaml", "b.yaml"}
    assert rewritten["b.yaml"] is not None and rewritten["b.yaml"].endswith(
        "    disciplines: [nursing]\n    capacity: []\n"
    )
    for rewrite in migration.rewrites:
        Path(rewrite.file).write_text(rewrite.after or "")
    assert _records([tree]) == before


def test_migrate_leaves_capacity_unmanaged_when_the_beta_document_had_no_capacity(write_tree: Any) -> None:
    beta = (
        BETA_WINDOW_ELSEWHERE.split("capacity:")[0]
        + "services: [{key: er, name: ER, disciplines: [nursing]}]\n"
    )
    tree = write_tree({"a.yaml": beta})
    [rewrite] = migrate_tree([tree]).rewrites
    assert rewrite.after is not None and "capacity" not in rewrite.after


# --- the law ---------------------------------------------------------------------------------------------


def _beta(document: dict[str, Any], capacity: bool, stages: list[str]) -> dict[str, Any]:
    """A v1 document written as v1beta1 (stages in the given order; top-level capacity or none)."""
    beta = {k: v for k, v in document.items() if k not in ("steps", "services", "agreements", "schools")}
    beta["apiVersion"] = "nexus/v1beta1"
    grouped: dict[str, list[Any]] = {stage: [] for stage in stages}
    for step in document["steps"]:
        grouped[step["stage"]].append({k: v for k, v in step.items() if k != "stage"})
    beta["steps"] = {stage: items for stage, items in grouped.items() if items}
    beta["services"] = [{k: v for k, v in s.items() if k != "capacity"} for s in document["services"]]
    if capacity:
        beta["capacity"] = [
            {"service": s["key"], **{("workflow_type" if k == "workflow" else k): v for k, v in w.items()}}
            for s in document["services"]
            for w in s["capacity"]
        ]
    beta["schools"] = document["schools"]
    beta["agreements"] = document["agreements"]
    return beta


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    document=organization(plain=True),
    capacity=st.booleans(),
    stages=st.permutations(["application", "onboarding", "offboarding"]),
)
def test_migrate_is_lossless(
    tmp_path_factory: pytest.TempPathFactory, document: dict[str, Any], capacity: bool, stages: list[str]
) -> None:
    tree = tmp_path_factory.mktemp("beta")
    beta = _beta(document, capacity, list(stages))
    (tree / "org.yaml").write_text(json.dumps(beta, ensure_ascii=False, indent=1), encoding="utf-8")
    before = _records([tree])
    migration = migrate_tree([tree])
    assert migration.ok, [p.as_text() for p in migration.problems]
    for rewrite in migration.rewrites:
        Path(rewrite.file).write_text(rewrite.after or "", encoding="utf-8")
    assert _records([tree]) == before
    assert _deprecations([tree]) == []
