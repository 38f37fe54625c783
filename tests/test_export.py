"""`nexus export`: the database's state as v1 files; export then plan changes nothing (CLI.md).

Rows created in the web UI export too and plan as `adopt` with no field changes (ownership moves to the
configuration); after one apply the plan is empty. Writes stay inside the output directory.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexus_config.rewrite import format_text
from plan_apply.apply import ApplyOptions, apply_plan
from plan_apply.database.engine import engine_for
from plan_apply.export import read_export, render_export, write_export
from plan_apply.factor import factored_documents
from plan_apply.plan import Action

from .conftest import EXAMPLES
from .strategies import organization, repeated_family
from .support.harness import plan_folder
from .test_cli_plan_apply import Run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from fleet import write_fleet

SCENARIOS = Path(__file__).parent / "scenarios"
EXAMPLE_SLUGS = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str], database_url: str) -> Run:
    return Run(capsys, database_url)


def _sql(url: str, *statements: str) -> None:
    engine = engine_for(url)
    with engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)
    engine.dispose()


def _plan_json(nexus: Run, tree: Path) -> dict[str, Any]:
    assert nexus("plan", str(tree), "--format", "json", "--full") == 0, nexus.err
    return dict(json.loads(nexus.out))


def _export(nexus: Run, out: Path, *slugs: str, force: bool = False) -> int:
    args = ["export", "--out", str(out), *(a for s in slugs for a in ("--org", s))]
    return nexus(*args, *(["--force"] if force else []))


def test_export_then_plan_is_empty_for_every_example_organization(nexus: Run, tmp_path: Path) -> None:
    assert nexus("apply", str(EXAMPLES), "--auto-approve", "-q") == 0
    out = tmp_path / "export"
    assert _export(nexus, out, *EXAMPLE_SLUGS) == 0, nexus.err
    assert sorted(p.name for p in out.iterdir()) == EXAMPLE_SLUGS
    assert nexus("plan", str(out), "--detailed-exitcode", "--full") == 0, nexus.out
    for original in EXAMPLES.rglob("*.pdf"):
        slug = original.relative_to(EXAMPLES).parts[0]
        assert (out / slug / "documents" / original.name).read_bytes() == original.read_bytes()


def test_exported_files_are_canonical_in_format_order_and_leave_defaults_out(
    nexus: Run, tmp_path: Path
) -> None:
    assert nexus("apply", str(EXAMPLES), "--auto-approve", "-q") == 0
    out = tmp_path / "export"
    assert _export(nexus, out, *EXAMPLE_SLUGS) == 0, nexus.err
    for slug in EXAMPLE_SLUGS:
        text = (out / slug / "organization.yaml").read_text(encoding="utf-8")
        assert text.startswith(
            "# yaml-language-server: $schema=https://nexus.dev/schemas/v1/nexus.schema.json\n"
        )
        assert not format_text("x.yaml", text).changed
        for default in (
            "completed_by: student",
            "visibility: published",
            "max_group_size: 1\n",
            "allow_specific_dates: false",
            "all_services: false",
            "submit: false",
            "protect: false",
            ": null",
            ": []",
        ):
            assert default not in text, (slug, default)
        sections = [line.split(":")[0] for line in text.splitlines() if line[:1].isalpha()]
        order = [
            "apiVersion",
            "kind",
            "metadata",
            "profile",
            "staff",
            "steps",
            "services",
            "schools",
            "agreements",
        ]
        assert sections == [s for s in order if s in sections]
    window = (
        (out / "northstar-st-olaf" / "organization.yaml")
        .read_text()
        .split("key: em-augsburg-pa-fall-2026")[1]
    )
    assert window.split("\n      - key:")[0].splitlines()[1:] == [
        "        name: Augsburg PA — EM block, Fall 2026",
        "        workflow: coordinator_scheduled",
        "        agreement: augsburg-pa-2026-2027",
        "        disciplines: [physician_assistant]",
        "        start_date: 2026-09-08",
        "        end_date: 2026-12-18",
        "        slots: 4",
        "        protect: true",
    ]


def test_the_modeline_points_at_the_schema_of_the_repository_exported_into(
    nexus: Run, tmp_path: Path
) -> None:
    assert nexus("apply", str(EXAMPLES / "prairie-family-clinic"), "--auto-approve", "-q") == 0
    schema = tmp_path / "repo" / "schemas" / "v1" / "nexus.schema.json"
    schema.parent.mkdir(parents=True)
    schema.write_text("{}")
    assert _export(nexus, tmp_path / "repo" / "orgs", "prairie-family-clinic") == 0, nexus.err
    text = (tmp_path / "repo" / "orgs" / "prairie-family-clinic" / "organization.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../../schemas/v1/nexus.schema.json\n")


def test_export_of_a_child_brings_its_parent(nexus: Run, tmp_path: Path) -> None:
    assert nexus("apply", str(EXAMPLES), "--auto-approve", "-q") == 0
    assert _export(nexus, tmp_path / "out", "northstar-lakeside") == 0, nexus.err
    assert "also exporting northstar-health: a parent of an organization asked for" in nexus.err
    # The system's agreement covers St. Olaf too: its `covers` names an organization of the exported tree.
    assert "also exporting northstar-st-olaf: a facility a system-wide agreement covers" in nexus.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "northstar-health",
        "northstar-lakeside",
        "northstar-st-olaf",
    ]
    assert nexus("plan", str(tmp_path / "out"), "--detailed-exitcode", "--full") == 0


def test_unknown_organization_is_an_error_with_a_suggestion(nexus: Run, tmp_path: Path) -> None:
    assert nexus("apply", str(EXAMPLES), "--auto-approve", "-q") == 0
    assert _export(nexus, tmp_path / "out", "northstar-lakesid") == 1
    assert 'did you mean "northstar-lakeside"' in nexus.err
    assert not (tmp_path / "out").exists()


def _scenario(nexus: Run, name: str, tmp_path: Path) -> Path:
    """Apply a scenario's `before/` configuration and run its seed (changes made outside nexus)."""
    scenario = next(SCENARIOS.glob(f"{name}-*"))
    assert nexus("apply", str(scenario / "before"), "--auto-approve", "-q") == 0, nexus.err
    seed = scenario / "seed.sql"
    if seed.exists():
        lines = [ln for ln in seed.read_text(encoding="utf-8").splitlines() if not ln.startswith("--")]
        _sql(nexus.url, *(s for s in "\n".join(lines).split(";\n") if s.strip()))
    return scenario


def test_rows_made_in_the_web_ui_export_as_adoptions_and_one_apply_leaves_nothing(
    nexus: Run, tmp_path: Path
) -> None:
    _scenario(nexus, "004", tmp_path)
    out = tmp_path / "out"
    assert _export(nexus, out, "lakeview") == 0, nexus.err
    text = (out / "lakeview" / "organization.yaml").read_text()
    assert "key: radiology" in text and "key: summer-ui" in text and "lee@lakeview.example.org" in text
    changes = [c for org in _plan_json(nexus, out)["organizations"] for c in org["changes"]]
    assert {c["address"] for c in changes} == {
        "lakeview/steps/parking",
        "lakeview/services/radiology",
        "lakeview/services/emergency/capacity/summer-ui",
        "lakeview/staff/lee@lakeview.example.org",
    }
    assert all(c["action"] == Action.ADOPT and c["before"] == c["after"] == {} for c in changes)
    assert nexus("apply", str(out), "--auto-approve", "-q") == 0
    assert nexus("plan", str(out), "--detailed-exitcode", "--full") == 0


def test_archived_rows_are_not_exported(nexus: Run, tmp_path: Path) -> None:
    scenario = _scenario(nexus, "005", tmp_path)
    assert nexus("apply", str(scenario / "config"), "--auto-approve", "-q") == 0
    archived = _rows(nexus.url, "SELECT key FROM capacity_windows WHERE archived_at IS NOT NULL")
    assert archived
    out = tmp_path / "out"
    assert _export(nexus, out, "lakeview") == 0, nexus.err
    text = (out / "lakeview" / "organization.yaml").read_text()
    for (key,) in archived:
        assert f"key: {key}\n" not in text
    assert nexus("plan", str(out), "--detailed-exitcode", "--full") == 0


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = engine_for(url)
    with engine.connect() as connection:
        rows = [tuple(r) for r in connection.execute(sa.text(query))]
    engine.dispose()
    return rows


ONE_DOCUMENT = """
apiVersion: nexus/v1
kind: Organization
metadata: {slug: lakeview}
profile: {name: Lakeview, type: hospital}
schools: [{key: state, name: State, contact_email: a@state.example.edu}]
services: [{key: er, name: ER, disciplines: [nursing]}]
agreements:
  - {key: one, school: state, name: One, start_date: 2027-01-01, services: [er], disciplines: [nursing],
     document: one/signed.pdf}
  - {key: two, school: state, name: Two, start_date: 2027-01-01, services: [er], disciplines: [nursing],
     document: two/signed.pdf}
"""


def test_two_documents_with_one_name_are_both_kept(nexus: Run, write_tree: Any, tmp_path: Path) -> None:
    tree = write_tree(
        {"lakeview.yaml": ONE_DOCUMENT, "one/signed.pdf": b"%PDF-1.4 one", "two/signed.pdf": b"%PDF-1.4 two"}
    )
    assert nexus("apply", str(tree), "--auto-approve", "-q") == 0, nexus.err
    out = tmp_path / "out"
    assert _export(nexus, out, "lakeview") == 0, nexus.err
    assert (out / "lakeview" / "documents" / "signed.pdf").read_bytes() == b"%PDF-1.4 one"
    assert (out / "lakeview" / "documents" / "2" / "signed.pdf").read_bytes() == b"%PDF-1.4 two"
    assert nexus("plan", str(out), "--detailed-exitcode", "--full") == 0


def test_export_refuses_existing_files_unless_forced(nexus: Run, tmp_path: Path) -> None:
    assert nexus("apply", str(EXAMPLES / "prairie-family-clinic"), "--auto-approve", "-q") == 0
    out = tmp_path / "out"
    assert _export(nexus, out, "prairie-family-clinic") == 0
    target = out / "prairie-family-clinic" / "organization.yaml"
    target.write_text("# edited by hand\n")
    assert _export(nexus, out, "prairie-family-clinic") == 1
    assert "already exist" in nexus.err and "--force" in nexus.err
    assert target.read_text() == "# edited by hand\n"
    assert _export(nexus, out, "prairie-family-clinic", force=True) == 0
    assert target.read_text().startswith("# yaml-language-server:")
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_export_never_writes_through_a_symlink(nexus: Run, tmp_path: Path) -> None:
    assert nexus("apply", str(EXAMPLES / "prairie-family-clinic"), "--auto-approve", "-q") == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "prairie-family-clinic").symlink_to(elsewhere, target_is_directory=True)
    assert _export(nexus, out, "prairie-family-clinic") == 1
    assert "symlink" in nexus.err
    (out / "prairie-family-clinic").unlink()
    (out / "prairie-family-clinic").mkdir()
    (out / "prairie-family-clinic" / "documents").symlink_to(elsewhere, target_is_directory=True)
    assert _export(nexus, out, "prairie-family-clinic", force=True) == 1
    (out / "prairie-family-clinic" / "documents").unlink()
    (out / "prairie-family-clinic" / "organization.yaml").symlink_to(elsewhere / "victim.yaml")
    assert _export(nexus, out, "prairie-family-clinic", force=True) == 1
    linked_out = tmp_path / "linked-out"
    linked_out.symlink_to(elsewhere, target_is_directory=True)
    assert _export(nexus, linked_out, "prairie-family-clinic") == 1
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in (out / "prairie-family-clinic").iterdir()) == ["organization.yaml"]


def test_export_keeps_unsafe_names_from_the_database_inside_the_output(nexus: Run, tmp_path: Path) -> None:
    tree = tmp_path / "config"
    tree.mkdir()
    (tree / "lakeview.yaml").write_text(ONE_DOCUMENT.replace("two/signed.pdf", "one/signed.pdf"))
    (tree / "one").mkdir()
    (tree / "one" / "signed.pdf").write_bytes(b"%PDF-1.4 one")
    assert nexus("apply", str(tree), "--auto-approve", "-q") == 0, nexus.err
    _sql(
        nexus.url,
        "UPDATE documents SET name = '../../escaped.pdf'",
        "INSERT INTO services (org_id, key, name, disciplines, protected, managed) VALUES "
        "((SELECT id FROM organizations WHERE slug = 'lakeview'), '../ui/key', 'UI', '[\"nursing\"]', false, false)",
        "INSERT INTO organizations (slug, labels, managed) VALUES ('../escape', '{}', false)",
    )
    out = tmp_path / "out"
    assert _export(nexus, out, "../escape") == 1
    assert "not a valid slug" in nexus.err
    assert not out.exists()
    assert _export(nexus, out, "lakeview") == 1  # written, but '../ui/key' is no valid key: reported
    assert "'../../escaped.pdf' is not a safe file name; written as '_.._escaped.pdf'" in nexus.err
    assert "key" in nexus.err and "error" in nexus.err
    written = sorted(
        str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".db"
    )
    assert written == [
        "config/lakeview.yaml",
        "config/one/signed.pdf",
        "out/lakeview/documents/_.._escaped.pdf",
        "out/lakeview/organization.yaml",
    ]
    assert "key: ../ui/key" in (out / "lakeview" / "organization.yaml").read_text()


# --- the law, over generated organizations --------------------------------------------------------------

UNMANAGEABLE = ["organizations", "profiles", "staff", "steps", "services", "capacity_windows", "partnerships"]
LAW = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _apply(engine: sa.Engine, folder: Path) -> None:
    plan = plan_folder(engine, folder)
    assert not plan.has_problems, plan.to_json()
    assert apply_plan(engine, plan, ApplyOptions(actor="law")).ok


@LAW
@given(document=organization(plain=True), unmanaged=st.sets(st.sampled_from(UNMANAGEABLE)))
def test_export_then_plan_changes_nothing(
    sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    document: dict[str, Any],
    unmanaged: set[str],
) -> None:
    """Export then plan creates, updates, deletes, archives and renames nothing; rows nexus does not
    manage (`unmanaged`: as if made in the web UI) are adopted with no field changes; then apply, and
    the plan is empty."""
    folder = tmp_path_factory.mktemp("law")
    shutil.copyfile(sqlite_template, folder / "db.sqlite")
    engine = engine_for(f"sqlite:///{folder / 'db.sqlite'}")
    try:
        (folder / "config").mkdir()
        (folder / "config" / "org.yaml").write_text(
            json.dumps(document, ensure_ascii=False), encoding="utf-8"
        )
        _apply(engine, folder / "config")
        with engine.begin() as connection:
            for table in sorted(unmanaged):
                connection.exec_driver_sql(f"UPDATE {table} SET managed = false")
        with engine.connect() as connection:
            state, contents, added = read_export(connection, ["generated-org"])
        exported = render_export(state, ["generated-org", *added], contents, "../schema.json")
        write_export(str(folder / "out"), exported.files, force=False)
        plan = plan_folder(engine, folder / "out")
        assert all(c.action is Action.ADOPT and not c.before and not c.after for c in plan.changes), (
            plan.to_json()
        )
        if not unmanaged:
            assert plan.changes == ()
        assert apply_plan(engine, plan, ApplyOptions(actor="law")).ok
        assert plan_folder(engine, folder / "out").changes == ()
    finally:
        engine.dispose()
    assert not os.path.exists(folder / "out" / "generated-org" / "documents")


# --- --factor -------------------------------------------------------------------------------------------


def test_factoring_puts_the_shared_value_of_each_field_in_a_template_and_keeps_what_differs() -> None:
    def org(slug: str, parent: str | None, services: list[dict[str, Any]]) -> dict[str, Any]:
        metadata = {"slug": slug, **({"parent": parent} if parent else {})}
        return {"apiVersion": "nexus/v1", "kind": "Organization", "metadata": metadata, "services": services}

    fm = {"key": "fm", "name": "Family Medicine", "disciplines": ["medicine"], "location": "A"}
    documents = {
        "sys": org("sys", None, []),
        "a": org("a", "sys", [fm]),
        "b": org("b", "sys", [{**fm, "location": "B"}]),
        "c": org("c", "sys", [{k: v for k, v in fm.items() if k != "location"}]),
        "d": org("d", "sys", [{"key": "solo", "name": "Solo", "disciplines": ["nursing"]}]),
        "e": org("e", "sys", [fm]),
    }
    factored = factored_documents(documents)
    assert factored["sys"]["templates"] == [
        {"key": "fm", "name": "Family Medicine", "location": "A", "disciplines": ["medicine"]}
    ]
    assert list(factored["sys"]) == ["apiVersion", "kind", "metadata", "templates", "services"]
    assert factored["a"]["services"] == factored["e"]["services"] == [{"key": "fm", "template": "sys/fm"}]
    assert factored["b"]["services"] == [{"key": "fm", "template": "sys/fm", "location": "B"}]
    assert factored["c"]["services"] == [{"key": "fm", "template": "sys/fm", "location": None}]
    assert factored["d"] == documents["d"]  # a key no other facility uses stays as it is


def test_a_factored_export_of_a_fleet_plans_empty_and_is_smaller(nexus: Run, tmp_path: Path) -> None:
    write_fleet(tmp_path / "fleet", 6, seed=5, systems=1, flat=True)
    assert nexus("apply", str(tmp_path / "fleet"), "--auto-approve", "-q") == 0, nexus.err
    slugs = sorted(p.name for p in (tmp_path / "fleet").iterdir() if p.is_dir())
    assert _export(nexus, tmp_path / "flat", *slugs) == 0, nexus.err
    assert (
        nexus("export", "--out", str(tmp_path / "factored"), "--factor", *(f"--org={s}" for s in slugs)) == 0
    )
    sizes = {
        name: sum(p.stat().st_size for p in (tmp_path / name).rglob("*.yaml"))
        for name in ("flat", "factored")
    }
    assert sizes["factored"] < sizes["flat"]
    assert "template: " in (tmp_path / "factored" / slugs[-1] / "organization.yaml").read_text()
    assert nexus("plan", str(tmp_path / "factored"), "--detailed-exitcode", "--full") == 0, nexus.out


@LAW
@given(orgs=repeated_family())
def test_factored_export_then_plan_changes_nothing(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory, orgs: list[dict[str, Any]]
) -> None:
    """A health system and facilities that repeat services, exported with --factor: planning the files
    against the database they came from changes nothing."""
    folder = tmp_path_factory.mktemp("factor")
    shutil.copyfile(sqlite_template, folder / "db.sqlite")
    engine = engine_for(f"sqlite:///{folder / 'db.sqlite'}")
    try:
        for org in orgs:
            (folder / "config" / org["metadata"]["slug"]).mkdir(parents=True)
            (folder / "config" / org["metadata"]["slug"] / "org.yaml").write_text(
                json.dumps(org, ensure_ascii=False), encoding="utf-8"
            )
        _apply(engine, folder / "config")
        slugs = [org["metadata"]["slug"] for org in orgs]
        with engine.connect() as connection:
            state, contents, _ = read_export(connection, slugs)
        exported = render_export(state, slugs, contents, "../schema.json", factor=True)
        write_export(str(folder / "out"), exported.files, force=False)
        assert plan_folder(engine, folder / "out").changes == ()
    finally:
        engine.dispose()
