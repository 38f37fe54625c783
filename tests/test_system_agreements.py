"""System-wide schools and agreements: a parent's agreement that `covers` its facilities, named by a
facility's window as `parent-slug/key`, validated with located errors, applied as ONE agreement of the
parent linked to services across the family, and removed only as the rows under it allow."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexus_config import LoadResult, Problem, load_configuration
from nexus_config.headers import FileHeader, batches, file_header
from plan_apply.actual import AppliedConfiguration
from plan_apply.apply import ApplyOptions, apply_plan
from plan_apply.database import tables as t
from plan_apply.database.engine import engine_for, upgrade_schema
from plan_apply.database.reads import read_actual_state
from plan_apply.export import read_export, render_export, write_export
from plan_apply.incremental import clean_organizations, config_hash_of
from plan_apply.moves import as_taken, taking_fingerprint
from plan_apply.plan import Action, Change, Plan

from .support.actors import Nexus, book, rows, scalar, school_answers
from .support.harness import plan_folder

WriteTree = Callable[..., Path]

SYSTEM = """\
apiVersion: nexus/v1
kind: Organization
metadata:
  slug: northwind
profile:
  name: Northwind Health
  type: health_system
schools:
  - key: state-u
    name: State University
    contact_email: placements@state.example.edu
agreements:
  - key: state-nursing
    school: state-u
    name: State nursing, system-wide
    covers: all
    start_date: 2027-01-01
    end_date: 2027-12-31
    services: [er, icu]
    disciplines: [nursing]
    submit: true
"""

LAKE = """\
apiVersion: nexus/v1
kind: Organization
metadata:
  slug: lake
  parent: northwind
  labels: {region: north}
profile:
  name: Lake Hospital
  type: hospital
services:
  - key: er
    name: Emergency
    disciplines: [nursing, medicine]
    capacity:
      - key: spring
        name: Spring
        workflow: coordinator_scheduled
        agreement: northwind/state-nursing
        disciplines: [nursing]
        start_date: 2027-02-01
        end_date: 2027-05-01
        slots: 4
"""

HILL = """\
apiVersion: nexus/v1
kind: Organization
metadata:
  slug: hill
  parent: northwind
  labels: {region: south}
profile:
  name: Hill Hospital
  type: hospital
schools:
  - key: state-u
    name: State University
    contact_email: placements@state.example.edu
services:
  - key: icu
    name: Intensive care
    disciplines: [nursing]
    capacity:
      - key: fall
        name: Fall
        workflow: coordinator_scheduled
        agreement: northwind/state-nursing
        disciplines: [nursing]
        start_date: 2027-09-01
        end_date: 2027-12-01
        slots: 2
  - key: lab
    name: Laboratory
    disciplines: [nursing]
"""


def family(**edits: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The three files, each with its `(old, new)` edits (`old` must occur exactly once)."""
    files = {"northwind.yaml": SYSTEM, "lake.yaml": LAKE, "hill.yaml": HILL}
    for name, changes in edits.items():
        text = files[f"{name}.yaml"]
        for old, new in changes:
            assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {name}"
            text = text.replace(old, new)
        files[f"{name}.yaml"] = text
    return files


def loaded(write_tree: WriteTree, files: dict[str, str]) -> tuple[Path, LoadResult]:
    tree = write_tree(files)
    return tree, load_configuration([tree])


def only_error(result: LoadResult) -> Problem:
    assert len(result.errors) == 1, [p.as_text() for p in result.problems]
    return result.errors[0]


def line_of(text: str, fragment: str) -> int:
    assert text.count(fragment) == 1, fragment
    return text[: text.index(fragment)].count("\n") + 1


# --- validation ------------------------------------------------------------------------------------------


def test_a_family_sharing_the_systems_agreement_and_school_is_valid(write_tree: WriteTree) -> None:
    _, result = loaded(write_tree, family())
    assert result.ok and not result.problems, [p.as_text() for p in result.problems]


def test_a_window_names_a_parents_agreement_only_by_its_qualified_key(write_tree: WriteTree) -> None:
    files = family(lake=(("agreement: northwind/state-nursing", "agreement: state-nursing"),))
    tree, result = loaded(write_tree, files)
    problem = only_error(result)
    assert problem.message == (
        'agreement "state-nursing" is not declared in organization "lake" '
        '(did you mean "northwind/state-nursing"?)'
    )
    assert (problem.file, problem.line, problem.pointer) == (
        str(tree / "lake.yaml"),
        line_of(files["lake.yaml"], "agreement: state-nursing"),
        "/services/0/capacity/0/agreement",
    )


def test_a_window_may_not_name_an_agreement_that_does_not_cover_its_organization(
    write_tree: WriteTree,
) -> None:
    files = family(northwind=(("covers: all", "covers: {labels: {region: south}}"),))
    tree, result = loaded(write_tree, files)
    (problem,) = [p for p in result.errors if p.file == str(tree / "lake.yaml")]
    assert problem.message == (
        'agreement "northwind/state-nursing" does not cover organization "lake"; add it to the '
        "agreement's `covers`"
    )
    assert (problem.file, problem.pointer) == (str(tree / "lake.yaml"), "/services/0/capacity/0/agreement")


def test_a_window_may_not_name_an_agreement_of_an_organization_outside_its_parent_chain(
    write_tree: WriteTree,
) -> None:
    files = family(lake=(("agreement: northwind/state-nursing", "agreement: hill/state-nursing"),))
    _, result = loaded(write_tree, files)
    assert only_error(result).message.startswith(
        'agreement "hill/state-nursing": "hill" is not a parent of organization "lake"'
    )


def test_a_system_agreements_service_must_be_a_service_of_a_covered_facility(write_tree: WriteTree) -> None:
    files = family(
        northwind=(("services: [er, icu]", "services: [er, lab]"), ("covers: all", "covers: [lake]")),
        hill=(("agreement: northwind/state-nursing", "agreement: local"),),
    )
    tree, result = loaded(write_tree, files)
    problems = [p for p in result.errors if p.file == str(tree / "northwind.yaml")]
    assert [(p.message, p.pointer, p.line) for p in problems] == [
        (
            'service "lab" is not declared in any organization agreement "state-nursing" covers',
            "/agreements/0/services/1",
            line_of(files["northwind.yaml"], "services: [er, lab]"),
        )
    ]


def test_covers_names_only_descendants(write_tree: WriteTree) -> None:
    files = family(northwind=(("covers: all", "covers: [lake, hil]"),))
    tree, result = loaded(write_tree, files)
    problems = [p for p in result.errors if p.code == "ref.covers"]
    assert [(p.file, p.pointer, p.message) for p in problems] == [
        (
            str(tree / "northwind.yaml"),
            "/agreements/0/covers/1",
            'organization "hil" is not a facility of "northwind" (its `parent` chain does not lead here) '
            '(did you mean "hill"?)',
        )
    ]


def test_a_facilitys_agreement_may_name_a_school_of_its_system(write_tree: WriteTree) -> None:
    own = (
        "agreements:\n  - key: local\n    school: state-u\n    name: Local\n    start_date: 2027-01-01\n"
        "    services: [er]\n    disciplines: [nursing]\n"
    )
    files = family(lake=(("services:\n", own + "services:\n"),))
    _, result = loaded(write_tree, files)
    assert result.ok, [p.as_text() for p in result.problems]


def test_a_facilitys_own_agreement_is_not_named_by_its_own_slug(write_tree: WriteTree) -> None:
    files = family(lake=(("agreement: northwind/state-nursing", "agreement: lake/state-nursing"),))
    _, result = loaded(write_tree, files)
    assert only_error(result).message == (
        'agreement "lake/state-nursing" is this organization\'s own: name it by its key alone ("state-nursing")'
    )


# --- plan and apply --------------------------------------------------------------------------------------


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str], database_url: str) -> Nexus:
    return Nexus(capsys, database_url)


def apply(nexus: Nexus, write_tree: WriteTree, files: dict[str, str]) -> int:
    return nexus("apply", str(write_tree(files)), "--auto-approve")


def links(url: str) -> list[tuple[str, str, str, str]]:
    """(agreement's organization, agreement, service's organization, service) of every link."""
    return sorted(
        rows(
            url,
            "SELECT ao.slug, a.key, so.slug, s.key FROM agreement_services l "
            "JOIN agreements a ON a.id = l.agreement_id JOIN organizations ao ON ao.id = a.org_id "
            "JOIN services s ON s.id = l.service_id JOIN organizations so ON so.id = s.org_id",
        )
    )


def test_a_first_apply_of_a_family_writes_one_agreement_linked_across_it(
    nexus: Nexus, write_tree: WriteTree, database_url: str
) -> None:
    assert apply(nexus, write_tree, family()) == 0, nexus.output
    assert rows(
        database_url, "SELECT o.slug, a.key FROM agreements a JOIN organizations o ON o.id = a.org_id"
    ) == [("northwind", "state-nursing")]
    assert links(database_url) == [
        ("northwind", "state-nursing", "hill", "icu"),
        ("northwind", "state-nursing", "lake", "er"),
    ]
    assert sorted(
        rows(
            database_url,
            "SELECT c.key, a.key FROM capacity_windows c JOIN agreements a ON a.id = c.agreement_id",
        )
    ) == [("fall", "state-nursing"), ("spring", "state-nursing")]
    assert nexus("plan", str(write_tree(family())), "--detailed-exitcode") == 0, nexus.output


def test_a_school_the_system_and_a_facility_both_partner_with_is_invited_once(
    nexus: Nexus, write_tree: WriteTree, database_url: str
) -> None:
    assert apply(nexus, write_tree, family()) == 0, nexus.output
    assert scalar(database_url, "SELECT count(*) FROM invitations WHERE school_key = 'state-u'") == 1


def test_a_school_a_facility_invited_is_not_invited_again_when_its_system_partners_with_it(
    nexus: Nexus, write_tree: WriteTree, database_url: str
) -> None:
    system = SYSTEM.split("schools:\n")[0]
    facility = HILL.split("    capacity:\n")[0]
    assert apply(nexus, write_tree, {"northwind.yaml": system, "hill.yaml": facility}) == 0, nexus.output
    assert rows(database_url, "SELECT o.slug FROM invitations i JOIN organizations o ON o.id = i.org_id") == [
        ("hill",)
    ]
    partnering = system + SYSTEM.split("agreements:\n")[0][len(system) :]
    assert apply(nexus, write_tree, {"northwind.yaml": partnering, "hill.yaml": facility}) == 0, nexus.output
    assert scalar(database_url, "SELECT count(*) FROM partnerships WHERE school_key = 'state-u'") == 2
    assert scalar(database_url, "SELECT count(*) FROM invitations WHERE school_key = 'state-u'") == 1


def test_covering_one_more_service_re_submits_the_system_agreement(
    nexus: Nexus, write_tree: WriteTree, database_url: str
) -> None:
    assert apply(nexus, write_tree, family()) == 0, nexus.output
    school_answers(database_url, "state-nursing", "active")
    files = family(northwind=(("services: [er, icu]", "services: [er, icu, lab]"),))
    assert nexus("plan", str(write_tree(files))) == 0, nexus.output
    assert "re-submits the agreement to the school" in nexus.output
    assert "hill/lab" in nexus.output
    assert apply(nexus, write_tree, files) == 0, nexus.output
    assert scalar(database_url, "SELECT status FROM agreements") == "pending_school"
    assert ("northwind", "state-nursing", "hill", "lab") in links(database_url)
    assert nexus("plan", str(write_tree(files)), "--detailed-exitcode") == 0, nexus.output


def test_a_system_agreement_a_facilitys_booked_window_uses_is_archived_not_deleted(
    nexus: Nexus, write_tree: WriteTree, database_url: str
) -> None:
    assert apply(nexus, write_tree, family(northwind=(("submit: true", "submit: false"),))) == 0, nexus.output
    book(database_url, "spring", ["ada"], org="lake")
    files = family(lake=(("    capacity:\n", "    capacity: []\n    unused:\n"),))
    files["northwind.yaml"] = SYSTEM.split("agreements:\n")[0] + "agreements: []\n"
    files["lake.yaml"] = LAKE.split("    capacity:\n")[0] + "    capacity: []\n"
    files["hill.yaml"] = (
        HILL.replace("agreement: northwind/state-nursing", "workflow_gone: x").split("    capacity:\n")[0]
        + "    capacity: []\n  - key: lab\n    name: Laboratory\n    disciplines: [nursing]\n"
    )
    assert nexus("plan", str(write_tree(files))) == 0, nexus.output
    assert "archived, not deleted: still used by hill/services/icu/capacity/fall, " in nexus.output
    assert apply(nexus, write_tree, files) == 0, nexus.output
    assert rows(database_url, "SELECT key, archived_at IS NOT NULL FROM agreements") == [
        ("state-nursing", True)
    ]
    assert scalar(database_url, "SELECT count(*) FROM rotations") == 1
    assert nexus("plan", str(write_tree(files)), "--detailed-exitcode") == 0, nexus.output


# --- moving agreements between the facilities and the system ---------------------------------------------

FACILITIES = ("lake", "hill")


def _window(key: str, agreement: str) -> dict[str, Any]:
    return {
        "key": key,
        "name": key.title(),
        "workflow": "coordinator_scheduled",
        "agreement": agreement,
        "disciplines": ["nursing"],
        "start_date": "2027-02-01",
        "end_date": "2027-05-01",
        "slots": 40,
    }


def _agreement(key: str, **more: Any) -> dict[str, Any]:
    return {
        "key": key,
        "school": "state-u",
        "name": "State nursing",
        "start_date": "2027-01-01",
        "services": ["er"],
        "disciplines": ["nursing"],
        "submit": True,
        **more,
    }


def moved_tree(system: frozenset[str], adopt: bool) -> dict[str, str]:
    """The family with the facilities in `system` scheduled under the system's agreement and the others
    under their own; with `adopt`, each agreement names the ones it replaces in `previous_keys`."""
    local = [f for f in FACILITIES if f not in system]
    parent: dict[str, Any] = {
        "apiVersion": "nexus/v1",
        "kind": "Organization",
        "metadata": {"slug": "northwind"},
        "profile": {"name": "Northwind Health", "type": "health_system"},
        "schools": [{"key": "state-u", "name": "State University", "contact_email": "p@state.example.edu"}],
        "agreements": [],
    }
    if system:
        previous = {"previous_keys": [f"{f}/state-2027" for f in sorted(system)]} if adopt else {}
        parent["agreements"] = [_agreement("state-system", covers=sorted(system), **previous)]
    files = {"northwind.yaml": json.dumps(parent)}
    for facility in FACILITIES:
        own = facility not in system
        # Taking the system's agreement back: the first facility, once the system declares it no more.
        back = adopt and not system and facility == local[0]
        previous = {"previous_keys": ["northwind/state-system"]} if back else {}
        reference = "state-2027" if own else "northwind/state-system"
        files[f"{facility}.yaml"] = json.dumps(
            {
                "apiVersion": "nexus/v1",
                "kind": "Organization",
                "metadata": {"slug": facility, "parent": "northwind"},
                "profile": {"name": facility.title(), "type": "hospital"},
                "services": [
                    {
                        "key": "er",
                        "name": "Emergency",
                        "disciplines": ["nursing"],
                        "capacity": [_window("w1", reference), _window("w2", reference)],
                    }
                ],
                "agreements": [_agreement("state-2027", **previous)] if own else [],
            }
        )
    return files


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("moves") / "template.db"
    engine = engine_for(f"sqlite:///{path}")
    with engine.connect() as connection:
        upgrade_schema(connection)
    engine.dispose()
    return path


def _apply_tree(engine: sa.Engine, folder: Path, files: dict[str, str]) -> Plan:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    plan = plan_folder(engine, folder)
    assert not plan.has_problems, [p.message for o in plan.organizations for p in o.problems]
    result = apply_plan(engine, plan, ApplyOptions(actor="law"))
    assert result.ok, result
    assert plan_folder(engine, folder).changes == ()
    return plan


def _exported_plan(engine: sa.Engine, folder: Path, slug: str) -> Plan:
    """The plan of what `nexus export --org slug` writes, against the same database."""
    with engine.connect() as connection:
        state, contents, added = read_export(connection, [slug])
    exported = render_export(state, [slug, *added], contents, "../schema.json")
    write_export(str(folder), exported.files, force=False)
    return plan_folder(engine, folder)


def _rotations(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                sa.text(
                    "SELECT r.id, o.slug, c.key, c.archived_at IS NULL FROM rotations r "
                    "JOIN capacity_windows c ON c.id = r.capacity_window_id JOIN services s ON s.id = c.service_id "
                    "JOIN organizations o ON o.id = s.org_id ORDER BY r.id"
                )
            )
        ]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(
            st.frozensets(st.sampled_from(FACILITIES)),
            st.lists(st.tuples(st.sampled_from(FACILITIES), st.sampled_from(["w1", "w2"])), max_size=3),
            st.booleans(),
        ),
        min_size=2,
        max_size=4,
    ),
    adopt=st.booleans(),
)
def test_no_rotation_is_lost_when_agreements_move_between_the_facilities_and_the_system(
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_file: Path,
    steps: list[tuple[frozenset[str], list[tuple[str, str]], bool]],
    adopt: bool,
) -> None:
    work = tmp_path_factory.mktemp("move")
    shutil.copyfile(sqlite_file, work / "db.sqlite")
    engine = engine_for(f"sqlite:///{work / 'db.sqlite'}")
    try:
        booked: list[tuple[Any, ...]] = []
        for i, (system, bookings, accepted) in enumerate(steps):
            _apply_tree(engine, work / "tree", moved_tree(system, adopt))
            # Every rotation booked so far is still there, on the same live window of the same facility.
            assert _rotations(engine) == booked
            with engine.begin() as connection:
                if accepted:
                    connection.execute(
                        sa.text("UPDATE agreements SET status = 'active' WHERE status <> 'draft'")
                    )
                for n, (facility, window) in enumerate(bookings):
                    connection.execute(
                        sa.text(
                            "INSERT INTO rotations (capacity_window_id, student, start_date, end_date, status) "
                            "SELECT c.id, :s, '2027-02-01', '2027-02-28', 'scheduled' FROM capacity_windows c "
                            "JOIN services s ON s.id = c.service_id JOIN organizations o ON o.id = s.org_id "
                            "WHERE o.slug = :o AND c.key = :w"
                        ),
                        {"s": f"student {i}.{n}", "o": facility, "w": window},
                    )
            booked = _rotations(engine)
            # Export of a facility: the system's agreement written once, at the parent; planning it is empty.
            assert _exported_plan(engine, work / f"export-{i}", "lake").changes == ()
    finally:
        engine.dispose()


def _agreements(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [
            (*row[:4], bool(row[4]))
            for row in connection.execute(
                sa.text(
                    "SELECT a.id, o.slug, a.key, a.status, a.archived_at IS NULL FROM agreements a "
                    "JOIN organizations o ON o.id = a.org_id ORDER BY a.id"
                )
            )
        ]


def test_a_facilitys_agreement_moves_to_the_system_and_back_keeping_the_schools_answer(
    tmp_path: Path, database_url: str
) -> None:
    engine = engine_for(database_url)
    try:
        _apply_tree(engine, tmp_path / "tree", moved_tree(frozenset(), adopt=True))
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE agreements SET status = 'active'"))
        ids = {slug: row_id for row_id, slug, *_ in _agreements(engine)}
        lake, hill = ids["lake"], ids["hill"]
        plan = _apply_tree(engine, tmp_path / "tree", moved_tree(frozenset({"lake"}), adopt=True))
        (moved,) = [c for c in plan.changes if c.type == "agreement"]
        assert (moved.action.value, moved.before["org"], moved.after["org"]) == (
            "rename",
            "lake",
            "northwind",
        )
        assert "re-submits" not in " ".join(moved.notes)
        assert sorted(_agreements(engine)) == sorted(
            [
                (lake, "northwind", "state-system", "active", True),
                (hill, "hill", "state-2027", "active", True),
            ]
        )
        _apply_tree(engine, tmp_path / "tree", moved_tree(frozenset(), adopt=True))
        assert sorted(_agreements(engine)) == sorted(
            [(lake, "lake", "state-2027", "active", True), (hill, "hill", "state-2027", "active", True)]
        )
    finally:
        engine.dispose()


def test_export_of_a_facility_writes_the_system_agreement_once_at_the_parent_and_plans_nothing(
    tmp_path: Path, sqlite_file: Path
) -> None:
    shutil.copyfile(sqlite_file, tmp_path / "db.sqlite")
    engine = engine_for(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        _apply_tree(engine, tmp_path / "tree", moved_tree(frozenset({"lake", "hill"}), adopt=False))
        assert _exported_plan(engine, tmp_path / "out", "lake").changes == ()
        system = (tmp_path / "out" / "northwind" / "organization.yaml").read_text(encoding="utf-8")
        assert "    covers: [hill, lake]\n    services: [er]\n" in system
        facility = (tmp_path / "out" / "lake" / "organization.yaml").read_text(encoding="utf-8")
        assert "agreements:" not in facility and "agreement: northwind/state-system" in facility
    finally:
        engine.dispose()


def test_a_family_is_planned_whole_when_one_of_its_organizations_is() -> None:
    def config(slug: str, parent: str | None, revision: int) -> AppliedConfiguration:
        files = {f"{slug}.yaml": "sha"}
        return AppliedConfiguration(slug, files, config_hash_of(files), revision, 1, {}, parent)

    applied = {
        "northwind": config("northwind", None, 1),
        "lake": config("lake", "northwind", 2),  # written to since its last apply
        "hill": config("hill", "northwind", 1),
        "other": config("other", None, 1),
    }
    hashes = {"northwind.yaml": "sha", "lake.yaml": "sha", "hill.yaml": "sha", "other.yaml": "sha"}
    assert set(clean_organizations(applied, hashes)) == {"other"}


def test_a_family_that_shares_agreements_is_loaded_and_planned_in_one_batch() -> None:
    headers = {
        "a.yaml": FileHeader((("northwind", None),), shares=True),
        "b.yaml": FileHeader((("lake", "northwind"),)),
        "c.yaml": FileHeader((("hill", "northwind"),)),
        "d.yaml": FileHeader((("other", None),)),
        "e.yaml": FileHeader((("other-child", "other"),)),
    }
    assert [set(b.members) for b in batches(headers, 1)] == [
        {"northwind", "lake", "hill"},
        {"other"},
        {"other-child"},
    ]


@pytest.mark.parametrize(
    ("text", "shares"),
    [
        (SYSTEM, True),
        (LAKE, False),
        ("metadata:\n  slug: lake\nagreements: [{key: a, previous_keys: [northwind/x]}]\n", True),
        (
            "metadata:\n  slug: lake\nagreements:\n  - previous_keys:\n      - old\n      - northwind/x\n",
            True,
        ),
        ("metadata:\n  slug: lake\nagreements:\n  - previous_keys: [old]\n", False),
    ],
)
def test_a_file_says_without_parsing_whether_it_may_share_agreements(text: str, shares: bool) -> None:
    header = file_header(text)
    assert header is not None and header.shares is shares


def test_a_facility_adding_a_service_the_system_agreement_names_re_submits_it(
    nexus: Nexus, write_tree: WriteTree, database_url: str
) -> None:
    assert apply(nexus, write_tree, family()) == 0, nexus.output
    school_answers(database_url, "state-nursing", "active")
    files = family(lake=(("services:\n", "services:\n  - {key: icu, name: ICU, disciplines: [nursing]}\n"),))
    assert nexus("plan", str(write_tree(files))) == 0, nexus.output
    assert "re-submits the agreement to the school" in nexus.output
    assert apply(nexus, write_tree, files) == 0, nexus.output
    assert scalar(database_url, "SELECT status FROM agreements") == "pending_school"
    assert ("northwind", "state-nursing", "lake", "icu") in links(database_url)
    assert nexus("plan", str(write_tree(files)), "--detailed-exitcode") == 0, nexus.output


def test_a_tampered_plan_cannot_move_an_agreement_out_of_another_family(
    tmp_path: Path, sqlite_file: Path
) -> None:
    shutil.copyfile(sqlite_file, tmp_path / "db.sqlite")
    engine = engine_for(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        files = moved_tree(frozenset(), adopt=False)
        files["other.yaml"] = (
            files["lake.yaml"].replace('"lake"', '"other"').replace(', "parent": "northwind"', "")
        )
        files["other.yaml"] = files["other.yaml"].replace(
            '"agreements":',
            '"schools": [{"key": "state-u", "name": "State", "contact_email": "p@s.edu"}], "agreements":',
        )
        _apply_tree(engine, tmp_path / "tree", files)
        plan = plan_folder(engine, tmp_path / "tree")
        stolen = Change(
            "lake/agreements/state-2027-b",
            "agreement",
            Action.RENAME,
            {"key": "state-2027", "org": "other"},
            {"key": "state-2027-b", "org": "lake"},
        )
        # Whoever edits the plan can read the database and fingerprint the row it takes as apply will.
        with engine.connect() as connection:
            state = read_actual_state(connection, ["lake", "other"])
        fingerprint = taking_fingerprint(
            "lake",
            state.organizations["lake"].records.values(),
            [as_taken(state.organizations["other"].records["other/agreements/state-2027"], "lake")],
        )
        organizations = tuple(
            replace(org, changes=(stolen,), state_fingerprint=fingerprint) if org.slug == "lake" else org
            for org in plan.organizations
        )
        result = apply_plan(engine, replace(plan, organizations=organizations), ApplyOptions(actor="law"))
        (lake,) = [r for r in result.organizations if r.slug == "lake"]
        assert lake.status == "failed"
        assert "other is neither a parent nor a facility of lake" in lake.message
        assert ("other", "state-2027") in [(slug, key) for _, slug, key, *_ in _agreements(engine)]
    finally:
        engine.dispose()


def test_a_family_sharing_an_agreement_is_left_clean_by_its_apply(
    nexus: Nexus, write_tree: WriteTree, database_url: str
) -> None:
    """A facility's links to the system's agreement bump the system's revision: nexus's own write, so the
    next incremental plan still skips the whole family."""
    assert apply(nexus, write_tree, family()) == 0, nexus.output
    assert nexus("plan", str(write_tree(family())), "--detailed-exitcode") == 0, nexus.output
    assert "3 unchanged organization(s) skipped" in nexus.output


def test_a_protected_system_agreement_is_never_removed_from_under_its_facilities(
    nexus: Nexus, write_tree: WriteTree, database_url: str
) -> None:
    protected = family(northwind=(("submit: true", "submit: true\n    protect: true"),))
    assert apply(nexus, write_tree, protected) == 0, nexus.output
    files = family(
        lake=(("agreement: northwind/state-nursing", "agreement: none"),),
        hill=(("agreement: northwind/state-nursing", "agreement: none"),),
    )
    for name in ("lake", "hill"):  # the windows leave the agreement: student-requested from now on
        files[f"{name}.yaml"] = files[f"{name}.yaml"].replace(
            "workflow: coordinator_scheduled\n        agreement: none\n", "workflow: student_requested\n"
        )
    files["northwind.yaml"] = SYSTEM.split("agreements:\n")[0] + "agreements: []\n"
    assert apply(nexus, write_tree, files) != 0
    assert "northwind/agreements/state-nursing is protected" in nexus.output
    assert scalar(database_url, "SELECT count(*) FROM agreements WHERE archived_at IS NULL") == 1


@pytest.mark.parametrize(
    ("edit", "message", "pointer"),
    [
        (
            ("start_date: 2027-02-01", "start_date: 2026-12-01"),
            'start_date 2026-12-01 is before agreement "state-nursing" starts (2027-01-01)',
            "/services/0/capacity/0/start_date",
        ),
        (
            ("disciplines: [nursing]\n        start_date", "disciplines: [medicine]\n        start_date"),
            'discipline "medicine" is not covered by agreement "state-nursing" (nursing)',
            "/services/0/capacity/0/disciplines/0",
        ),
    ],
)
def test_a_window_under_the_systems_agreement_keeps_to_its_dates_and_disciplines(
    write_tree: WriteTree, edit: tuple[str, str], message: str, pointer: str
) -> None:
    tree, result = loaded(write_tree, family(lake=(edit,)))
    problem = only_error(result)
    assert (problem.file, problem.message, problem.pointer) == (str(tree / "lake.yaml"), message, pointer)


def test_a_system_with_more_facilities_than_a_statement_binds_still_finds_a_facility_s_invitation(
    engine: sa.Engine,
) -> None:
    # The family's ids are bound to the query of its invitations: SQLite binds at most 32,766 values in one
    # statement (999 before 3.32, set here to keep the family small), PostgreSQL's protocol 65,535.
    from types import SimpleNamespace

    from plan_apply.sections.schools import _invited_in_family

    facilities = 66_000 if engine.dialect.name == "postgresql" else 1_200
    with engine.connect() as connection, connection.begin():
        driver = connection.connection.driver_connection
        if isinstance(driver, sqlite3.Connection):
            driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        o = t.organizations
        key = connection.execute(
            sa.insert(o).values(slug="northwind", labels={}, managed=True)
        ).inserted_primary_key
        assert key is not None
        system = key[0]
        connection.execute(
            sa.insert(o), [{"slug": f"f{n}", "parent_id": system, "labels": {}} for n in range(facilities)]
        )
        last = connection.execute(sa.select(sa.func.max(o.c.id))).scalar_one()
        connection.execute(
            sa.insert(t.invitations).values(
                org_id=last,
                school_key="state-u",
                email="placements@state.example.edu",
                created_at=sa.func.now(),
            )
        )
        ctx: Any = SimpleNamespace(connection=connection, org_id=system)
        assert _invited_in_family(ctx, {"state-u", "city-college"}) == {"state-u"}
        connection.rollback()
