"""System-wide schools and agreements: a parent's agreement that `covers` its facilities, named by a
facility's window as `parent-slug/key`, validated with located errors, applied as ONE agreement of the
parent linked to services across the family, and removed only as the rows under it allow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from nexus_config import LoadResult, Problem, load_configuration

from .support.actors import Nexus, book, rows, scalar, school_answers

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
