"""Concurrent applies on PostgreSQL, with real `nexus` processes held and released at statements by gates.

Applies of one organization serialize on its transaction-scoped advisory lock and re-check the plan's
fingerprint under it, so none loses another's update: every apply either lands (history gets its row,
whose "before" is the previous apply's "after") or fails cleanly (exit 1, "changed since" or a lock
message naming the holder, no traceback). Applies of different organizations run side by side. A saved
plan raced by another apply is refused, including the plan made while the organization did not exist
(Terraform's hole #24078) and the one raced inside the window between its own check and its lock.
Every ordering is made by events (a process held at a statement until the test lets it go), never by
sleeping: the outcomes asserted are exact, and the tests are as fast on a loaded machine as on an idle one.
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from plan_apply.apply import ApplyOptions, apply_plan, lock_key
from plan_apply.database import tables as t
from plan_apply.database.engine import engine_for
from plan_apply.planner import plan_tree

from .conftest import _truncate_postgres
from .support.harness import (
    Finished,
    Gate,
    advisory_locks,
    fault_env,
    finish,
    gates_env,
    run_nexus,
    snapshot,
    start_nexus,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WORKERS = 8
ROUNDS = [(8,), (1,) * 8, (2,) * 4]
"""Per round, how the workers are let go: in groups, each group once the previous one has finished. A group
plans together, then queues on the organization's lock: one of it lands, the rest find it changed."""
LOCKING = r"set_config\('lock_timeout'"  # the apply's first statement after planning: its lock
ORG = """
apiVersion: nexus/v1
kind: Organization
metadata: {{slug: {slug}}}
profile: {{name: {name}, type: clinic}}
services:
  - key: er
    name: Emergency
    disciplines: [nursing]
    capacity:
      - {{key: spring, name: Spring, workflow: student_requested, disciplines: [nursing],
         start_date: 2027-02-01, end_date: 2027-05-01, slots: {slots}}}
"""


@pytest.fixture
def url(postgres_upgraded: str) -> str:
    """The session's PostgreSQL database, emptied (these tests are PostgreSQL's: SQLite has one writer)."""
    _truncate_postgres(postgres_upgraded)
    return postgres_upgraded


@pytest.fixture
def org_tree(tmp_path: Path) -> Callable[..., Path]:
    """A folder holding one organization's file with the given capacity slots."""

    def make(folder: str, slug: str = "harbor", slots: int = 3, name: str = "Harbor Clinic") -> Path:
        root = tmp_path / folder
        root.mkdir(parents=True, exist_ok=True)
        (root / f"{slug}.yaml").write_text(
            textwrap.dedent(ORG.format(slug=slug, slots=slots, name=name)).lstrip(), encoding="utf-8"
        )
        return root

    return make


def _apply(tree: Path, url: str, *extra: str) -> list[str]:
    return ["apply", str(tree), "--auto-approve", "--database-url", url, *extra]


def _started(commands: list[list[str]], *gates: Gate) -> list[subprocess.Popen[str]]:
    return [start_nexus(command, fault_env(gates=gates_env(*gates))) for command in commands]


def _finished(processes: list[subprocess.Popen[str]], *gates: Gate) -> list[Finished]:
    for gate in gates:
        gate.close()
    return [finish(process) for process in processes]


def _history(url: str, slug: str) -> list[dict[str, object]]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        log = t.apply_log
        rows = connection.execute(
            sa.select(log.c.changes, log.c.started_at, log.c.finished_at)
            .where(log.c.org_slug == slug)
            .order_by(log.c.id)
        ).all()
    engine.dispose()
    return [{"changes": r.changes, "started_at": r.started_at, "finished_at": r.finished_at} for r in rows]


def _slots(url: str, slug: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        value = connection.execute(
            sa.text(
                "SELECT w.slots FROM capacity_windows w JOIN services s ON s.id = w.service_id "
                "JOIN organizations o ON o.id = s.org_id WHERE o.slug = :s AND w.key = 'spring'"
            ),
            {"s": slug},
        ).scalar_one()
    engine.dispose()
    return int(value)


def _slot_change(entry: dict[str, object]) -> tuple[int, int]:
    (change,) = [c for c in entry["changes"] if c["address"].endswith("/capacity/spring")]  # type: ignore[attr-defined]
    return int(change["before"]["slots"]), int(change["after"]["slots"])


def _clean_failure(result: Finished) -> bool:
    text = result.output
    return (
        result.returncode == 1
        and "Traceback" not in text
        and ("changed since" in text or "being applied by another session" in text)
    )


def test_eight_applies_of_one_organization_never_lose_an_update(
    url: str, org_tree: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_nexus(_apply(org_tree("initial"), url)).returncode == 0
    tried = applied = failed = 0
    lost = 0
    expected_slots = 3
    for round_, groups in enumerate(ROUNDS):
        # Every worker of every round wants a value of its own, so each exit 0 is an apply that wrote.
        configs = {
            slots: org_tree(f"round-{round_}-worker-{i}", slots=slots)
            for i, slots in enumerate(range(10 * (round_ + 1), 10 * (round_ + 1) + WORKERS))
        }
        start, locking = Gate("."), Gate(LOCKING)
        processes = _started([_apply(tree, url) for tree in configs.values()], start, locking)
        by_pid = {process.pid: process for process in processes}
        try:
            waiting = start.arrivals(WORKERS)  # all are up, none has read anything yet
            for size in groups:
                group, waiting = waiting[:size], waiting[size:]
                start.go(*group)
                locking.go(*locking.arrivals(size))  # the whole group has planned: now it races for the lock
                for arrival in group:
                    by_pid[arrival.pid].wait(timeout=180)
        finally:
            results = _finished(processes, start, locking)
        tried += len(results)
        succeeded = [r for r in results if r.returncode == 0]
        applied += len(succeeded)
        failed += len(results) - len(succeeded)
        assert len(succeeded) == len(groups), [r.output[-400:] for r in results]  # one per group
        assert all(r.returncode == 0 or _clean_failure(r) for r in results), [
            r.output[-600:] for r in results
        ]
        assert all("Traceback" not in r.output for r in results)
        history = _history(url, "harbor")
        new_rows = history[len(history) - len(succeeded) :]
        assert len(history) == 1 + applied  # the initial apply, then exactly one row per successful apply
        chain = [_slot_change(entry) for entry in new_rows]
        for before, after in chain:  # each apply started from what the previous one left: nothing lost
            lost += before != expected_slots
            expected_slots = after
        assert _slots(url, "harbor") == expected_slots
        assert expected_slots in configs  # exactly one final state: one of the configurations
        assert (
            run_nexus(
                ["plan", str(configs[expected_slots]), "--database-url", url, "--detailed-exitcode"]
            ).returncode
            == 0
        )
        assert advisory_locks(url) == 0
    with capsys.disabled():
        print(
            f"\n[same organization] concurrent applies tried: {tried}, applied: {applied}, "
            f"refused cleanly: {failed}, lost updates: {lost}"
        )
    assert lost == 0
    assert applied == sum(len(groups) for groups in ROUNDS)


def test_eight_applies_of_eight_organizations_all_succeed_side_by_side(
    url: str, org_tree: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    slugs = [f"site-{i}" for i in range(WORKERS)]
    everything = org_tree("all")
    for slug in slugs:
        org_tree("all", slug=slug)
    assert run_nexus(_apply(everything, url)).returncode == 0
    trees = [org_tree(f"only-{slug}", slug=slug, slots=20 + i) for i, slug in enumerate(slugs)]
    locked = Gate("pg_advisory_xact_lock", "after")
    processes = _started([_apply(tree, url) for tree in trees], locked)
    try:
        # Each is held just after taking its organization's lock: all of them there at once is the proof
        # that applies of different organizations do not wait for each other.
        held = locked.arrivals(WORKERS)
        assert advisory_locks(url) == WORKERS
    finally:
        results = _finished(processes, locked)
    assert [r.returncode for r in results] == [0] * WORKERS, [r.output[-400:] for r in results]
    assert [_slots(url, slug) for slug in slugs] == [20 + i for i in range(WORKERS)]
    with capsys.disabled():
        print(
            f"\n[eight organizations] {len(held)} of {WORKERS} applies held their organization's lock at once"
        )
    assert advisory_locks(url) == 0


def test_a_saved_plan_raced_by_another_apply_is_refused_and_writes_nothing(
    url: str, org_tree: Callable[..., Path], tmp_path: Path
) -> None:
    assert run_nexus(_apply(org_tree("initial"), url)).returncode == 0
    refused = _saved_plan_raced_by_another_apply(url, org_tree, tmp_path)
    assert "Traceback" not in refused.output


def test_a_plan_made_before_the_organization_existed_is_refused_once_it_exists(
    url: str, org_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """Terraform #24078: "absent" is part of the fingerprint, so the create cannot run twice."""
    _saved_plan_raced_by_another_apply(url, org_tree, tmp_path)
    assert _slots(url, "harbor") == 9


def _saved_plan_raced_by_another_apply(url: str, org_tree: Callable[..., Path], tmp_path: Path) -> Finished:
    """Save a plan (7 slots), let another apply land first (9 slots), then apply the saved plan: it must
    be refused as stale, and write nothing."""
    saved = tmp_path / "plan.json"
    planned = run_nexus(["plan", str(org_tree("mine", slots=7)), "--out", str(saved), "--database-url", url])
    assert planned.returncode == 0
    assert run_nexus(_apply(org_tree("theirs", slots=9), url)).returncode == 0
    before = snapshot(url)
    refused = run_nexus(["apply", "--plan", str(saved), "--database-url", url])
    assert refused.returncode == 1 and "changed since" in refused.stderr
    assert snapshot(url) == before
    return refused


def test_the_same_saved_plan_cannot_be_applied_twice(
    url: str, org_tree: Callable[..., Path], tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    assert (
        run_nexus(["plan", str(org_tree("mine")), "--out", str(saved), "--database-url", url]).returncode == 0
    )
    assert run_nexus(["apply", "--plan", str(saved), "--database-url", url]).returncode == 0
    before = snapshot(url)
    again = run_nexus(["apply", "--plan", str(saved), "--database-url", url])
    assert again.returncode == 1 and "already applied at" in again.stderr
    assert snapshot(url) == before


def test_a_saved_plan_raced_inside_its_own_window_is_refused_under_the_lock(
    url: str, org_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """The other apply commits after `apply --plan` checked the plan but before it took the lock: only
    the check made again under the lock can see it."""
    assert run_nexus(_apply(org_tree("initial"), url)).returncode == 0
    saved = tmp_path / "plan.json"
    assert (
        run_nexus(
            ["plan", str(org_tree("mine", slots=7)), "--out", str(saved), "--database-url", url]
        ).returncode
        == 0
    )
    checked = Gate(LOCKING)
    (slow,) = _started([["apply", "--plan", str(saved), "--database-url", url]], checked)
    try:
        checked.arrivals(1)  # checked its plan, not locked yet
        other = run_nexus(_apply(org_tree("theirs", slots=9), url))
        assert other.returncode == 0, other.output
    finally:
        (late,) = _finished([slow], checked)
    assert late.returncode == 1, late.output
    assert "changed since" in late.output and "Traceback" not in late.output
    assert _slots(url, "harbor") == 9
    assert len(_history(url, "harbor")) == 2


def _hold_lock(url: str, slug: str, name: str) -> tuple[sa.Engine, sa.Connection]:
    engine = sa.create_engine(url, connect_args={"application_name": name})
    connection = engine.connect()
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(slug)})
    return engine, connection


def test_lock_timeout_fails_the_organization_naming_who_holds_it(
    url: str, org_tree: Callable[..., Path]
) -> None:
    assert run_nexus(_apply(org_tree("initial"), url)).returncode == 0
    engine, holder = _hold_lock(url, "harbor", "migration-script on ops-7")
    try:
        before = snapshot(url)
        waited = run_nexus(_apply(org_tree("mine", slots=7), url, "--lock-timeout", "1"))
        assert waited.returncode == 1 and "Traceback" not in waited.output
        assert "harbor is being applied by another session" in waited.stderr
        assert (
            "migration-script on ops-7" in waited.stderr
            and "gave up after 1s (--lock-timeout)" in waited.stderr
        )
        assert re.search(r"holding it since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", waited.stderr)
        assert snapshot(url) == before
        at_once = run_nexus(_apply(org_tree("mine", slots=7), url, "--lock-timeout", "0"))
        assert at_once.returncode == 1 and "did not wait (--lock-timeout 0)" in at_once.stderr
    finally:
        holder.close()
        engine.dispose()
    assert run_nexus(_apply(org_tree("mine", slots=7), url, "--lock-timeout", "0")).returncode == 0


def test_a_waiting_apply_names_the_nexus_process_that_holds_the_lock(
    url: str, org_tree: Callable[..., Path]
) -> None:
    assert run_nexus(_apply(org_tree("initial"), url)).returncode == 0
    locked = Gate("pg_advisory_xact_lock", "after")
    (first,) = _started([_apply(org_tree("first", slots=5), url)], locked)
    try:
        locked.arrivals(1)  # holds the organization's lock
        second = run_nexus(_apply(org_tree("second", slots=6), url, "--lock-timeout", "0.5"))
    finally:
        (done,) = _finished([first], locked)
    assert second.returncode == 1
    assert re.search(rf"held by nexus apply \S+@\S+ pid {first.pid}\b", second.stderr), second.stderr
    assert done.returncode == 0, done.output
    assert _slots(url, "harbor") == 5


def test_no_advisory_lock_outlives_a_parallel_bulk_apply_through_the_pool(
    url: str, org_tree: Callable[..., Path]
) -> None:
    slugs = [f"site-{i}" for i in range(12)]
    for slug in slugs:
        tree = org_tree("all", slug=slug)
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            result = plan_tree([tree], connection, database="db")
        assert result.plan is not None
        applied = apply_plan(engine, result.plan, ApplyOptions(actor="test"), jobs=4)
        assert applied.ok
        assert advisory_locks(url) == 0  # the pool's connections are still open: nothing kept
        assert isinstance(engine.pool, sa.pool.QueuePool) and engine.pool.checkedin() >= 1
    finally:
        engine.dispose()


def test_nexus_never_takes_a_session_level_advisory_lock() -> None:
    source = "\n".join(p.read_text() for p in (Path(__file__).parents[1] / "plan_apply").rglob("*.py"))
    assert "pg_advisory_xact_lock" in source
    assert not re.search(r"pg_(try_)?advisory_lock\(", source)


def test_history_timestamps_are_timezone_aware(url: str, org_tree: Callable[..., Path]) -> None:
    assert run_nexus(_apply(org_tree("initial"), url)).returncode == 0
    (entry,) = _history(url, "harbor")
    assert isinstance(entry["started_at"], datetime.datetime) and entry["started_at"].tzinfo is not None
    assert json.dumps(entry["changes"])


def test_locks_are_taken_in_sorted_order_and_end_with_the_transaction(url: str) -> None:
    """Two applies locking overlapping sets can never deadlock: everyone locks in the same order."""
    from plan_apply.apply import _lock

    engine = engine_for(url, lock_timeout=5)
    keys: list[int] = []
    sa.event.listen(
        engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, parameters, *rest: (
            keys.append(parameters["key"]) if "advisory" in statement else None
        ),
    )
    try:
        with engine.connect() as connection:
            with connection.begin():
                _lock(connection, ["west", "east", "north", "east"])
                assert keys == [lock_key("east"), lock_key("north"), lock_key("west")]
                assert advisory_locks(url) == 3
            assert advisory_locks(url) == 0  # committed: released, though the connection stays open
    finally:
        engine.dispose()


def test_an_apply_told_not_to_wait_gives_up_at_once_on_a_row_another_session_holds(
    url: str, org_tree: Callable[..., Path]
) -> None:
    """`--lock-timeout 0` means "do not wait" for the rows too, not PostgreSQL's lock_timeout 0 (no limit):
    were it waited for, the run would end only at the harness's timeout, a failure."""
    import psycopg

    assert run_nexus(_apply(org_tree("initial"), url)).returncode == 0
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as holder:
        holder.execute("SELECT id FROM capacity_windows WHERE key = 'spring' FOR UPDATE")
        refused = run_nexus(_apply(org_tree("more", slots=9), url, "--lock-timeout", "0"), timeout=60)
        holder.rollback()
    assert refused.returncode == 1, refused.output
    assert "did not wait (--lock-timeout) for a lock another session holds on harbor's rows" in refused.output
    assert _slots(url, "harbor") == 3
