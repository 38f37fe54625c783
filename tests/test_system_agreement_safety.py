"""System-wide agreements beside a live platform and a hostile but realistic user: a school answering
between plan and apply, saved plans outliving the tree they were made from, facilities changing systems,
`covers` dropping a facility whose windows are booked, and applies of part of a family. Each race is
ordered by events (harness gates), never by durations."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plan_apply import batching
from plan_apply.apply import apply_plan
from plan_apply.database.engine import engine_for

from .conftest import _truncate_postgres
from .support.actors import book, execute, rows
from .support.harness import Finished, Gate, fault_env, finish, gates_env, run_nexus, start_nexus
from .test_batches import tree_plan
from .test_live_races import _race
from .test_system_agreements import SYSTEM, family, moved_tree

SYSTEM_AGREEMENTS = SYSTEM[SYSTEM.index("agreements:") :]

WriteTree = Callable[..., Path]

TRANSACTION = r"BEGIN IMMEDIATE|set_config\('lock_timeout'"
"""The first statement of an organization's write transaction (SQLite, PostgreSQL): a process held
before it has planned and holds no lock."""


def _apply(tree: Path, url: str, *more: str) -> list[str]:
    return ["apply", str(tree), "--auto-approve", "--database-url", url, "--lock-timeout", "60", *more]


def _edited(files: dict[str, str], slug: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, str]:
    document = json.loads(files[f"{slug}.yaml"])
    edit(document)
    return {**files, f"{slug}.yaml": json.dumps(document)}


def _school_answers(url: str, org: str, key: str, status: str) -> None:
    """The school's answer to one organization's agreement (several may share a key)."""
    touched = execute(
        url,
        "UPDATE agreements SET status = :s WHERE key = :k "
        "AND org_id = (SELECT id FROM organizations WHERE slug = :o)",
        {"s": status, "k": key, "o": org},
    )
    assert touched == 1


def _agreements(url: str) -> list[tuple[Any, ...]]:
    return sorted(
        rows(
            url,
            "SELECT o.slug, a.key, a.status, a.name FROM agreements a JOIN organizations o ON o.id = a.org_id",
        )
    )


def _raced(tree: Path, url: str, answer: Callable[[], None]) -> Finished:
    """Apply `tree`, letting the platform write `answer` once the apply has planned and before its first
    transaction begins."""
    planned = Gate(TRANSACTION)
    process = start_nexus(_apply(tree, url), fault_env(gates=gates_env(planned)))
    try:
        planned.arrivals(1)
        answer()
    finally:
        planned.close()
    return finish(process)


def _refused_as_changed_since(done: Finished) -> None:
    """The apply failed as a plan made before the platform's write fails: told, never a traceback."""
    assert "Traceback" not in done.output
    assert done.returncode == 1, done.output
    assert "changed since" in done.output, done.output


# --- the row taken over from another organization of the family -----------------------------------------


def test_a_school_closing_a_facilitys_agreement_before_the_system_takes_it_over_is_seen_under_the_lock(
    write_tree: WriteTree, database_url: str
) -> None:
    """Moving lake's agreement to the system with new terms re-submits it; the school closed it after the
    plan: the move must be refused as stale, never re-open the closed agreement."""
    assert (
        run_nexus(_apply(write_tree(moved_tree(frozenset(), adopt=True), "a"), database_url)).returncode == 0
    )
    moved = _edited(
        moved_tree(frozenset({"lake"}), adopt=True),
        "northwind",
        lambda d: d["agreements"][0].update(name="State nursing, system-wide"),
    )
    done = _raced(
        write_tree(moved, "b"),
        database_url,
        lambda: _school_answers(database_url, "lake", "state-2027", "closed"),
    )
    _refused_as_changed_since(done)
    assert ("lake", "state-2027", "closed", "State nursing") in _agreements(database_url)


def test_a_school_closing_the_systems_agreement_before_a_facility_takes_it_back_is_seen_under_the_lock(
    write_tree: WriteTree, database_url: str
) -> None:
    assert (
        run_nexus(
            _apply(write_tree(moved_tree(frozenset({"lake"}), adopt=True), "a"), database_url)
        ).returncode
        == 0
    )
    back = _edited(
        moved_tree(frozenset(), adopt=True), "lake", lambda d: d["agreements"][0].update(name="Lake nursing")
    )
    done = _raced(
        write_tree(back, "b"),
        database_url,
        lambda: _school_answers(database_url, "northwind", "state-system", "closed"),
    )
    _refused_as_changed_since(done)
    assert ("northwind", "state-system", "closed", "State nursing") in _agreements(database_url)


def test_moving_an_agreement_with_new_terms_leaves_the_schools_proposal_alone(
    write_tree: WriteTree, database_url: str
) -> None:
    """The school proposed changes to lake's agreement; the system takes it over with other terms. Without
    --counter-propose the proposal stands: the row moves, its terms and status stay the school's."""
    assert (
        run_nexus(_apply(write_tree(moved_tree(frozenset(), adopt=True), "a"), database_url)).returncode == 0
    )
    _school_answers(database_url, "lake", "state-2027", "changes_proposed")
    moved = _edited(
        moved_tree(frozenset({"lake"}), adopt=True),
        "northwind",
        lambda d: d["agreements"][0].update(name="State nursing, system-wide"),
    )
    done = run_nexus(_apply(write_tree(moved, "b"), database_url))
    assert "Traceback" not in done.output
    assert ("northwind", "state-system", "changes_proposed", "State nursing") in _agreements(database_url), (
        done.output
    )


@pytest.mark.postgres
def test_a_school_closing_a_facilitys_agreement_while_the_system_takes_it_over_waits_for_the_lock(
    write_tree: WriteTree, postgres_upgraded: str
) -> None:
    """The school's answer is uncommitted when the apply reaches the row it takes over: the apply waits
    for it (the row is locked before it is read), sees it and refuses, never re-opening it."""
    url = postgres_upgraded
    _truncate_postgres(url)
    assert run_nexus(_apply(write_tree(moved_tree(frozenset(), adopt=True), "a"), url)).returncode == 0
    moved = _edited(
        moved_tree(frozenset({"lake"}), adopt=True),
        "northwind",
        lambda d: d["agreements"][0].update(name="State nursing, system-wide"),
    )
    done = _race(
        url,
        write_tree(moved, "b"),
        "UPDATE agreements SET status = 'closed' WHERE key = 'state-2027' "
        "AND org_id = (SELECT id FROM organizations WHERE slug = 'lake')",
    )
    _refused_as_changed_since(done)
    assert ("lake", "state-2027", "closed", "State nursing") in _agreements(url)


def test_a_saved_plan_moving_an_agreement_to_the_system_applies(
    write_tree: WriteTree, database_url: str, tmp_path: Path
) -> None:
    assert (
        run_nexus(_apply(write_tree(moved_tree(frozenset(), adopt=True), "a"), database_url)).returncode == 0
    )
    saved = tmp_path / "plan.json"
    tree = write_tree(moved_tree(frozenset({"lake"}), adopt=True), "b")
    planned = run_nexus(["plan", str(tree), "--out", str(saved), "--database-url", database_url])
    assert planned.returncode == 0, planned.output
    done = run_nexus(["apply", "--plan", str(saved), "--database-url", database_url])
    assert done.returncode == 0, done.output
    assert (
        run_nexus(["plan", str(tree), "--database-url", database_url, "--detailed-exitcode"]).returncode == 0
    )


# --- applying part of a family ---------------------------------------------------------------------------


def _ids(url: str) -> list[tuple[Any, ...]]:
    return sorted(
        rows(
            url,
            "SELECT a.id, o.slug, a.key, a.status FROM agreements a JOIN organizations o ON o.id = a.org_id",
        )
    )


def test_applying_only_a_facility_takes_the_systems_agreement_back_keeping_the_schools_answer(
    write_tree: WriteTree, database_url: str
) -> None:
    assert (
        run_nexus(
            _apply(write_tree(moved_tree(frozenset({"lake"}), adopt=True), "a"), database_url)
        ).returncode
        == 0
    )
    _school_answers(database_url, "northwind", "state-system", "active")
    (system_id,) = [i for i, slug, *_ in _ids(database_url) if slug == "northwind"]
    done = run_nexus(
        _apply(write_tree(moved_tree(frozenset(), adopt=True), "b"), database_url, "--org", "lake")
    )
    assert done.returncode == 0, done.output
    assert (system_id, "lake", "state-2027", "active") in _ids(database_url), done.output


def test_applying_only_the_system_takes_a_facilitys_agreement_over_keeping_the_schools_answer(
    write_tree: WriteTree, database_url: str
) -> None:
    assert (
        run_nexus(_apply(write_tree(moved_tree(frozenset(), adopt=True), "a"), database_url)).returncode == 0
    )
    _school_answers(database_url, "lake", "state-2027", "active")
    (lake_id,) = [i for i, slug, *_ in _ids(database_url) if slug == "lake"]
    tree = write_tree(moved_tree(frozenset({"lake"}), adopt=True), "b")
    done = run_nexus(_apply(tree, database_url, "--org", "northwind"))
    assert done.returncode == 0, done.output
    assert (lake_id, "northwind", "state-system", "active") in _ids(database_url), done.output
    assert run_nexus(_apply(tree, database_url)).returncode == 0
    again = run_nexus(["plan", str(tree), "--database-url", database_url, "--detailed-exitcode"])
    assert again.returncode == 0, again.output


def test_linking_a_facilitys_service_to_the_systems_agreement_is_not_called_a_web_ui_revert(
    write_tree: WriteTree, database_url: str
) -> None:
    assert (
        run_nexus(_apply(write_tree(moved_tree(frozenset(), adopt=True), "a"), database_url)).returncode == 0
    )
    tree = write_tree(moved_tree(frozenset({"lake"}), adopt=True), "b")
    planned = run_nexus(["plan", str(tree), "--database-url", database_url])
    assert planned.returncode == 0, planned.output
    assert 'agreements: [] → ["northwind/agreements/state-system"]' in planned.stdout
    assert "reverts a change made in the web UI" not in planned.stdout


# --- facilities leaving the tree, the system, or the agreement's `covers` --------------------------------

ER_AT_HILL = ("  - key: lab", "  - key: er\n    name: Emergency\n    disciplines: [nursing]\n  - key: lab")


def test_a_covered_facility_left_out_of_the_tree_keeps_its_links_and_the_schools_answer(
    write_tree: WriteTree, database_url: str
) -> None:
    """nexus never touches an organization outside the tree: the system's agreement is not re-submitted
    for links only that facility's apply could remove (and never would)."""
    files = family(hill=(ER_AT_HILL,))
    assert run_nexus(_apply(write_tree(files, "a"), database_url)).returncode == 0
    _school_answers(database_url, "northwind", "state-nursing", "active")
    del files["lake.yaml"]
    tree = write_tree(files, "b")
    planned = run_nexus(["plan", str(tree), "--database-url", database_url, "--detailed-exitcode"])
    assert planned.returncode == 0, planned.output
    assert ("northwind", "state-nursing", "active", "State nursing, system-wide") in _agreements(database_url)


def _moved_to_southwind(write_tree: WriteTree, database_url: str) -> Path:
    """lake, applied under northwind beside a system that shares nothing, then moved to that system: the
    tree of the move."""
    files = family(hill=(ER_AT_HILL,))
    files["southwind.yaml"] = (
        "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: southwind}\n"
        "profile: {name: Southwind Health, type: health_system}\n"
    )
    assert run_nexus(_apply(write_tree(files, "a"), database_url)).returncode == 0
    files["lake.yaml"] = (
        files["lake.yaml"]
        .replace("parent: northwind", "parent: southwind")
        .replace(
            "workflow: coordinator_scheduled\n        agreement: northwind/state-nursing\n",
            "workflow: student_requested\n",
        )
    )
    return write_tree(files, "b")


def _links(database_url: str) -> list[tuple[Any, ...]]:
    return sorted(
        rows(
            database_url,
            "SELECT o.slug, s.key FROM agreement_services l JOIN services s ON s.id = l.service_id "
            "JOIN organizations o ON o.id = s.org_id",
        )
    )


def test_a_facility_moved_to_another_system_leaves_its_old_systems_agreement(
    write_tree: WriteTree, database_url: str
) -> None:
    """Its windows no longer name the old system's agreement: its services are unlinked from it by its own
    transaction (the new system declares no agreements), and the next plan is empty."""
    tree = _moved_to_southwind(write_tree, database_url)
    assert run_nexus(_apply(tree, database_url)).returncode == 0
    again = run_nexus(["plan", str(tree), "--full", "--database-url", database_url, "--detailed-exitcode"])
    assert again.returncode == 0, again.output
    assert _links(database_url) == [("hill", "er"), ("hill", "icu")]


def test_a_facility_moved_to_a_system_planned_in_another_batch_leaves_its_old_systems_agreement(
    write_tree: WriteTree, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fleet is planned in batches of whole families, which the files alone tell apart: the facility
    moving from one family to another is planned with both, as if the fleet were planned at once."""
    tree = _moved_to_southwind(write_tree, database_url)
    at_once = tree_plan(database_url, tree).plan
    monkeypatch.setattr(batching, "BATCH_ORGANIZATIONS", 1)
    batched = tree_plan(database_url, tree).plan
    assert batched is not None and at_once is not None
    assert batched.to_json() == at_once.to_json()
    engine = engine_for(database_url)
    try:
        assert apply_plan(engine, batched).ok
    finally:
        engine.dispose()
    assert _links(database_url) == [("hill", "er"), ("hill", "icu")]
    again = tree_plan(database_url, tree).plan
    assert again is not None and not any(org.changes for org in again.organizations)


# --- a move and an edit at once ----------------------------------------------------------------------------


def test_moving_an_active_agreement_to_the_system_with_new_terms_re_submits_it(
    write_tree: WriteTree, database_url: str
) -> None:
    assert (
        run_nexus(_apply(write_tree(moved_tree(frozenset(), adopt=True), "a"), database_url)).returncode == 0
    )
    _school_answers(database_url, "lake", "state-2027", "active")
    moved = _edited(
        moved_tree(frozenset({"lake"}), adopt=True),
        "northwind",
        lambda d: d["agreements"][0].update(end_date="2027-12-31"),
    )
    tree = write_tree(moved, "b")
    planned = run_nexus(["plan", str(tree), "--database-url", database_url])
    assert "re-submits the agreement to the school" in planned.stdout, planned.output
    assert run_nexus(_apply(tree, database_url)).returncode == 0
    assert ("northwind", "state-system", "pending_school", "State nursing") in _agreements(database_url)


def test_widening_a_moved_agreement_to_another_facility_re_submits_it(
    write_tree: WriteTree, database_url: str
) -> None:
    """The school approved lake's agreement for lake alone: covering hill's service as well goes back to it."""
    assert (
        run_nexus(_apply(write_tree(moved_tree(frozenset(), adopt=True), "a"), database_url)).returncode == 0
    )
    _school_answers(database_url, "lake", "state-2027", "active")
    both = _edited(
        moved_tree(frozenset({"lake", "hill"}), adopt=True),
        "northwind",
        lambda d: d["agreements"][0].update(previous_keys=["lake/state-2027"]),
    )
    tree = write_tree(both, "b")
    planned = run_nexus(["plan", str(tree), "--database-url", database_url])
    assert "re-submits the agreement to the school" in planned.stdout, planned.output
    assert run_nexus(_apply(tree, database_url)).returncode == 0
    assert ("northwind", "state-system", "pending_school", "State nursing") in _agreements(database_url)
    again = run_nexus(["plan", str(tree), "--database-url", database_url, "--detailed-exitcode"])
    assert again.returncode == 0, again.output


# --- a facility's links to an agreement the school has answered ------------------------------------------

ICU_AT_LAKE = ("services:\n", "services:\n  - {key: icu, name: ICU, disciplines: [nursing]}\n")


def test_applying_only_a_facility_never_links_a_service_to_an_agreement_the_school_accepted(
    write_tree: WriteTree, database_url: str
) -> None:
    """Covering lake's new service re-submits the system's agreement, in the system's apply: lake's alone
    must not add it to terms the school accepted without it."""
    assert run_nexus(_apply(write_tree(family(), "a"), database_url)).returncode == 0
    _school_answers(database_url, "northwind", "state-nursing", "active")
    tree = write_tree(family(lake=(ICU_AT_LAKE,)), "b")
    done = run_nexus(_apply(tree, database_url, "--org", "lake"))
    assert "Traceback" not in done.output
    assert done.returncode == 1, done.output
    assert "apply northwind first" in done.output
    assert ("lake", "icu") not in _linked(database_url)


def _notes(plan_json: str, slug: str) -> list[str]:
    (org,) = [o for o in json.loads(plan_json)["organizations"] if o["slug"] == slug]
    return [note for change in org.get("changes", ()) for note in change.get("notes", ())]


def test_a_plan_of_only_a_facility_says_its_system_must_re_submit_the_answered_agreement_first(
    write_tree: WriteTree, database_url: str
) -> None:
    """What the facility's apply would refuse is said by its plan: choosing the system too, the note goes."""
    assert run_nexus(_apply(write_tree(family(), "a"), database_url)).returncode == 0
    _school_answers(database_url, "northwind", "state-nursing", "active")
    tree = write_tree(family(lake=(ICU_AT_LAKE,)), "b")
    plan = ["plan", str(tree), "--database-url", database_url, "--format", "json"]
    alone = run_nexus([*plan, "--org", "lake"])
    assert alone.returncode == 0, alone.output
    assert _notes(alone.stdout, "lake") == [
        "joins northwind/agreements/state-nursing, which is active with the school: northwind's apply "
        "re-submits it first; until then lake's apply is refused (apply northwind first, or both)"
    ]
    both = run_nexus([*plan, "--org", "lake", "--org", "northwind"])
    assert both.returncode == 0, both.output
    assert not any("refused" in note for note in _notes(both.stdout, "lake")), both.stdout


def test_a_plan_of_only_a_facility_says_its_systems_new_agreement_must_be_applied_first(
    write_tree: WriteTree, database_url: str
) -> None:
    unlinked = "workflow: coordinator_scheduled\n        agreement: northwind/state-nursing\n"
    without = family(
        northwind=((SYSTEM_AGREEMENTS, ""),),
        lake=((unlinked, "workflow: student_requested\n"),),
        hill=((unlinked, "workflow: student_requested\n"),),
    )
    assert run_nexus(_apply(write_tree(without, "a"), database_url)).returncode == 0
    tree = write_tree(family(), "b")
    alone = run_nexus(
        ["plan", str(tree), "--database-url", database_url, "--format", "json", "--org", "lake"]
    )
    assert alone.returncode == 0, alone.output
    assert _notes(alone.stdout, "lake") == [
        "links northwind/agreements/state-nursing, which does not exist yet: northwind's apply creates it; "
        "until then lake's apply is refused (apply northwind first, or both)"
    ]
    done = run_nexus(_apply(tree, database_url, "--org", "lake"))
    assert done.returncode == 1 and "apply its organization first" in done.output, done.output
    whole = run_nexus(["plan", str(tree), "--database-url", database_url, "--format", "json"])
    assert "refused" not in whole.stdout, whole.stdout


def test_a_school_accepting_between_the_systems_apply_and_the_facilitys_never_accepts_a_service_it_never_saw(
    write_tree: WriteTree, database_url: str
) -> None:
    assert run_nexus(_apply(write_tree(family(), "a"), database_url)).returncode == 0
    _school_answers(database_url, "northwind", "state-nursing", "active")
    tree = write_tree(family(lake=(ICU_AT_LAKE,)), "b")
    assert run_nexus(_apply(tree, database_url, "--org", "northwind")).returncode == 0
    _school_answers(database_url, "northwind", "state-nursing", "active")  # what it saw: no lake/icu
    done = run_nexus(_apply(tree, database_url, "--org", "lake"))
    assert done.returncode == 1, done.output
    assert ("lake", "icu") not in _linked(database_url)
    assert run_nexus(_apply(tree, database_url)).returncode == 0  # the whole family: re-submitted, linked
    assert ("lake", "icu") in _linked(database_url)
    assert ("northwind", "state-nursing", "pending_school", "State nursing, system-wide") in _agreements(
        database_url
    )


def _linked(url: str) -> list[tuple[Any, ...]]:
    return rows(
        url,
        "SELECT o.slug, s.key FROM agreement_services l JOIN services s ON s.id = l.service_id "
        "JOIN organizations o ON o.id = s.org_id",
    )


def test_covers_dropping_a_facility_with_booked_windows_under_the_agreement_keeps_them_and_says_it(
    write_tree: WriteTree, database_url: str
) -> None:
    """lake leaves `covers` while its windows (no longer managed here) stay booked under the agreement:
    the plan shows lake's service unlinked and the agreement re-submitted for review; no rotation is lost."""
    assert run_nexus(_apply(write_tree(family(), "a"), database_url)).returncode == 0
    _school_answers(database_url, "northwind", "state-nursing", "active")
    book(database_url, "spring", ["ada"], org="lake")
    files = family(
        northwind=(
            ("covers: all", "covers: {labels: {region: south}}"),
            ("services: [er, icu]", "services: [icu]"),
        )
    )
    files["lake.yaml"] = files["lake.yaml"].split("    capacity:\n")[0]
    tree = write_tree(files, "b")
    planned = run_nexus(["plan", str(tree), "--database-url", database_url])
    assert planned.returncode == 0, planned.output
    assert 'agreements: ["northwind/agreements/state-nursing"] → []' in planned.stdout
    assert "[review]" in planned.stdout and "re-submits the agreement to the school" in planned.stdout
    assert run_nexus(_apply(tree, database_url)).returncode == 0
    assert rows(
        database_url,
        "SELECT c.key, a.key, count(r.id) FROM capacity_windows c JOIN agreements a ON a.id = c.agreement_id "
        "JOIN rotations r ON r.capacity_window_id = c.id GROUP BY c.key, a.key",
    ) == [("spring", "state-nursing", 1)]


def test_a_closed_agreement_moves_to_the_system_and_stays_closed(
    write_tree: WriteTree, database_url: str
) -> None:
    """The plan shows the move (its terms withheld): apply makes it, keeping the school's answer."""
    assert (
        run_nexus(_apply(write_tree(moved_tree(frozenset(), adopt=True), "a"), database_url)).returncode == 0
    )
    _school_answers(database_url, "lake", "state-2027", "closed")
    tree = write_tree(moved_tree(frozenset({"lake"}), adopt=True), "b")
    done = run_nexus(_apply(tree, database_url))
    assert done.returncode == 0, done.output
    assert ("northwind", "state-system", "closed", "State nursing") in _agreements(database_url)
