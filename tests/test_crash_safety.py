"""Crash safety on SQLite and PostgreSQL: the apply process killed (SIGKILL) just before any one of its SQL
statements or COMMITs, or just after a COMMIT returned, in a three-organization apply, leaves every
organization wholly before or wholly after (all its rows, history included); the next apply converges
(exit 0, then `plan --detailed-exitcode` exits 0) with exactly one history row per organization and no
lock left behind. A connection killed under the apply (`pg_terminate_backend`) fails that organization
cleanly, without a traceback or a password, and a re-apply converges too.

The fixture has creates (a whole new child organization), updates, deletes, an archive (a capacity window
with a booked rotation), a rename (`previous_keys`), an adoption (a staff row made in the UI) and an
agreement submission. Kill points run through a fork server (tests/support/faults/forkserver.py: real
processes that skip the interpreter start-up), two at a time on their own databases; the statement count
and a few kill points are checked against the installed `nexus` console script too.
"""

from __future__ import annotations

import json
import shutil
import signal
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from plan_apply.apply import lock_key
from plan_apply.database.engine import engine_for

from .conftest import POSTGRES_ADMIN_URL
from .support.harness import (
    ForkServer,
    Gate,
    Snapshot,
    advisory_locks,
    base_rows,
    fault_env,
    gates_env,
    postgres_database,
    restore_rows,
    run_nexus,
    snapshot,
    start_nexus,
    without_history,
)

pytestmark = pytest.mark.slow

SLUGS = ["east", "north", "west"]
CANARY = "Cr4shCanary"

BEFORE = {
    slug: f"""
    apiVersion: nexus/v1
    kind: Organization
    metadata: {{slug: {slug}}}
    profile: {{name: {slug.title()} Clinic, type: clinic}}
    staff: [{{email: lead@{slug}.example.org, name: Lead, role: admin}}, {{email: old@{slug}.example.org, role: viewer}}]
    steps: [{{key: hipaa, stage: onboarding, name: HIPAA, type: upload}}, {{key: gone, stage: offboarding, name: Gone, type: checkbox}}]
    schools: [{{key: state-u, name: State University, contact_email: placements@state.example.edu}}]
    agreements:
      - {{key: state, school: state-u, name: State, start_date: 2027-01-01, services: [er, fm], disciplines: [nursing]}}
    services:
      - key: er
        name: Emergency
        disciplines: [nursing, medicine]
        steps: [hipaa, gone]
        capacity:
          - {{key: spring, name: Spring, workflow: coordinator_scheduled, agreement: state, disciplines: [nursing],
              start_date: 2027-02-01, end_date: 2027-05-01, slots: 3}}
          - {{key: booked, name: Booked, workflow: student_requested, disciplines: [medicine],
              start_date: 2027-02-01, end_date: 2027-05-01, slots: 3}}
      - {{key: fm, name: Family Medicine, disciplines: [nursing]}}
    """
    for slug in ("east", "west")
}
AFTER = {
    slug: f"""
    apiVersion: nexus/v1
    kind: Organization
    metadata: {{slug: {slug}, labels: {{wave: two}}}}
    profile: {{name: {slug.title()} Community Clinic, type: clinic}}
    staff: [{{email: lead@{slug}.example.org, name: Lead, role: coordinator}}, {{email: new@{slug}.example.org, role: admin}},
            {{email: ui@{slug}.example.org, role: viewer}}]
    steps: [{{key: hipaa, stage: onboarding, name: HIPAA training, type: upload, all_services: true}}]
    schools: [{{key: state-u, name: State University, contact_email: placements@state.example.edu}}]
    agreements:
      - {{key: state, school: state-u, name: State, start_date: 2027-01-01, services: [emergency, fm], disciplines: [nursing],
         submit: true}}
    services:
      - key: emergency
        previous_keys: [er]
        name: Emergency Medicine
        disciplines: [nursing, medicine]
        steps: [hipaa]
        capacity:
          - {{key: spring, name: Spring, workflow: coordinator_scheduled, agreement: state, disciplines: [nursing],
              start_date: 2027-02-01, end_date: 2027-05-01, slots: 5}}
          - {{key: summer, name: Summer, workflow: student_requested, disciplines: [medicine],
              start_date: 2027-06-01, end_date: 2027-08-01, slots: 2}}
      - {{key: fm, name: Family Medicine, disciplines: [nursing]}}
    """
    for slug in ("east", "west")
}
AFTER["north"] = """
    apiVersion: nexus/v1
    kind: Organization
    metadata: {slug: north, parent: east}
    profile: {name: North Outpatient, type: clinic}
    staff: [{email: lead@north.example.org, name: North Lead, role: admin}]
    services:
      - key: peds
        name: Pediatrics
        disciplines: [nursing]
        capacity:
          - {key: fall, name: Fall, workflow: student_requested, disciplines: [nursing],
             start_date: 2027-09-01, end_date: 2027-12-01, slots: 4}
    """


def _tree(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for slug, text in files.items():
        (root / f"{slug}.yaml").write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def _seed_live_data(url: str) -> None:
    """A booked rotation (so a window is archived, not deleted) and staff made in the UI (adopted)."""
    engine = engine_for(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO rotations (capacity_window_id, student, start_date, end_date) "
                "SELECT id, 'A Student', '2027-02-01', '2027-02-28' FROM capacity_windows WHERE key = 'booked'"
            )
        )
        for slug in ("east", "west"):
            connection.execute(
                sa.text("INSERT INTO people (email) VALUES (:e)"), {"e": f"ui@{slug}.example.org"}
            )
            connection.execute(
                sa.text(
                    "INSERT INTO staff (org_id, person_id, role, managed) SELECT o.id, p.id, 'viewer', false "
                    "FROM organizations o, people p WHERE o.slug = :s AND p.email = :e"
                ),
                {"s": slug, "e": f"ui@{slug}.example.org"},
            )
    engine.dispose()


def _no_locks_within(url: str, seconds: float) -> bool:
    """A SIGKILLed client's backend notices the closed socket and ends, releasing its locks, at once:
    taking every organization's lock (waiting at most `seconds`) shows it, then nothing holds one."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{seconds}s'")
            for slug in sorted(SLUGS):
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(slug)})
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()
    return advisory_locks(url) == 0


@dataclass
class Lane:
    """One worker: a fork server and a database of its own, reset to the base state before each trial."""

    server: ForkServer
    url: str
    reset: Callable[[], None]


@dataclass
class Bench:
    backend: str
    before: Path
    after: Path
    initial: Snapshot
    final: Snapshot
    statements: int
    commits: int
    lanes: list[Lane] = field(default_factory=list)

    def apply_args(self, url: str) -> list[str]:
        return [
            "apply",
            str(self.after),
            "--auto-approve",
            "--allow-mass-delete",
            "--full",
            "--database-url",
            url,
        ]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def bench(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    """The base state (BEFORE applied, live data seeded), what an uninterrupted apply of AFTER makes of it
    (counted: N statements and COMMITs, C COMMITs), and two lanes to run kill points on."""
    backend = request.param
    work = tmp_path_factory.mktemp(f"crash-{backend}")
    before = _tree(work / "before", BEFORE)
    after = _tree(work / "after", AFTER)
    with _databases(request, backend, work) as (base_url, lane_urls):
        assert run_nexus(["apply", str(before), "--auto-approve", "--database-url", base_url]).returncode == 0
        _seed_live_data(base_url)
        initial = snapshot(base_url)
        reset = _resetter(backend, base_url)
        count = work / "count.json"
        bench = Bench(backend, before, after, initial, {}, 0, 0)
        reset(lane_urls[0])
        done = run_nexus(bench.apply_args(lane_urls[0]), fault_env(count_to=str(count)))
        assert done.returncode == 0, done.stderr
        assert all(word in done.stdout for word in ("~>", "x ", "<=", "+ ", "- ", "~ ")), done.stdout
        counted = json.loads(count.read_text())
        bench.statements, bench.commits = counted["statements"], counted["commits"]
        bench.final = snapshot(lane_urls[0])
        assert set(bench.final) == set(SLUGS) and set(initial) == {"east", "west"}
        for i, url in enumerate(lane_urls):
            server = ForkServer(work / f"lane-{i}")
            bench.lanes.append(Lane(server, url, lambda url=url: reset(url)))  # type: ignore[misc]
        try:
            yield bench
        finally:
            for lane in bench.lanes:
                lane.server.close()


@contextmanager
def _databases(request: pytest.FixtureRequest, backend: str, work: Path) -> Iterator[tuple[str, list[str]]]:
    """The database the base state is made in, and two for the lanes (on PostgreSQL the base state is
    made in the first lane's and kept as rows; a DROP DATABASE costs a checkpoint)."""
    if backend == "sqlite":
        base, *lanes = [
            f"sqlite:///{work / name}" for name in ("base.sqlite", "lane-0.sqlite", "lane-1.sqlite")
        ]
        assert run_nexus(["db", "upgrade", "--database-url", base]).returncode == 0
        yield base, lanes
        return
    request.getfixturevalue("postgres_server_url")  # skips (or fails in CI) without a server
    with postgres_database(POSTGRES_ADMIN_URL) as first, postgres_database(POSTGRES_ADMIN_URL) as second:
        yield first, [first, second]


def _resetter(backend: str, base_url: str) -> Callable[[str], None]:
    """Make a database hold exactly what the base holds now."""
    if backend == "sqlite":
        base_file = base_url.removeprefix("sqlite:///")

        def copy(url: str) -> None:
            target = url.removeprefix("sqlite:///")
            for suffix in ("-journal", "-wal", "-shm"):
                Path(target + suffix).unlink(missing_ok=True)
            shutil.copyfile(base_file, target)

        return copy
    rows = base_rows(base_url)

    def restore(url: str) -> None:
        engine = sa.create_engine(url)
        restore_rows(engine, rows)
        engine.dispose()

    return restore


@dataclass(frozen=True)
class Trial:
    point: str
    torn: tuple[str, ...]  # organizations found neither wholly before nor wholly after


def _trial(bench: Bench, lane: Lane, point: str, **fault: int) -> Trial:
    """Kill one apply at `fault`, look at every organization, then re-apply and check it converged."""
    lane.reset()
    killed = lane.server.run(bench.apply_args(lane.url), **fault)
    assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr[-800:])
    if bench.backend == "postgresql":
        assert _no_locks_within(lane.url, 5), (point, "an advisory lock outlived the killed apply")
    state = snapshot(lane.url)
    torn = tuple(
        slug for slug in SLUGS if state.get(slug) not in (bench.initial.get(slug), bench.final.get(slug))
    )
    again = lane.server.run([*bench.apply_args(lane.url), "--lock-timeout", "5"])
    assert again.returncode == 0, (point, again.output[-800:])
    assert "Traceback" not in again.output
    check = lane.server.run(["plan", str(bench.after), "--detailed-exitcode", "--database-url", lane.url])
    assert check.returncode == 0, (point, check.output[-800:])
    converged = snapshot(lane.url)
    assert without_history(converged) == without_history(bench.final), point
    # One apply's worth of history per organization: the killed run's commits plus the re-apply's, never twice.
    assert converged == bench.final, (point, "history differs from one uninterrupted apply")
    return Trial(point, torn)


def _run_trials(bench: Bench, points: list[tuple[str, dict[str, int]]]) -> list[Trial]:
    """Each lane runs its share of the kill points in sequence; the two lanes run side by side."""
    shares = [points[i :: len(bench.lanes)] for i in range(len(bench.lanes))]

    def lane_run(index: int) -> list[Trial]:
        lane = bench.lanes[index]
        return [_trial(bench, lane, point, **fault) for point, fault in shares[index]]

    with ThreadPoolExecutor(max_workers=len(bench.lanes)) as pool:
        return [trial for share in pool.map(lane_run, range(len(bench.lanes))) for trial in share]


def test_the_fork_server_counts_the_same_statements_as_the_nexus_script(bench: Bench) -> None:
    lane = bench.lanes[0]
    lane.reset()
    count = lane.server.workdir / "count.json"
    assert lane.server.run(bench.apply_args(lane.url), count_to=str(count)).returncode == 0
    counted = json.loads(count.read_text())
    assert (counted["statements"], counted["commits"]) == (bench.statements, bench.commits)
    assert snapshot(lane.url) == bench.final


def test_sigkill_at_every_statement_and_commit_leaves_each_organization_before_or_after(
    bench: Bench, capsys: pytest.CaptureFixture[str]
) -> None:
    points = [(f"before statement {k}", {"kill_at": k}) for k in range(1, bench.statements + 1)]
    points += [(f"after commit {c}", {"kill_after_commit": c}) for c in range(1, bench.commits + 1)]
    started = time.perf_counter()
    trials = _run_trials(bench, points)
    partial = [(t.point, t.torn) for t in trials if t.torn]
    with capsys.disabled():
        print(
            f"\n[{bench.backend}] kill points tried: {len(trials)} ({bench.statements} statements and COMMITs, "
            f"{bench.commits} after-COMMIT), partial states: {len(partial)}, converged: {len(trials)}/"
            f"{len(trials)}, {time.perf_counter() - started:.1f}s"
        )
    assert 50 <= len(trials) <= 250
    assert partial == []


def test_sigkill_through_the_installed_script_behaves_like_the_fork_server(bench: Bench) -> None:
    """A kill point in the middle and the last one, with `nexus` started from scratch."""
    lane = bench.lanes[0]
    for k in (bench.statements // 2, bench.statements):
        lane.reset()
        killed = run_nexus(bench.apply_args(lane.url), fault_env(kill_at=k))
        assert killed.returncode == -signal.SIGKILL, (k, killed.stderr[-500:])
        state = snapshot(lane.url)
        assert all(state.get(s) in (bench.initial.get(s), bench.final.get(s)) for s in SLUGS), k
        assert run_nexus(bench.apply_args(lane.url)).returncode == 0
        assert snapshot(lane.url) == bench.final


def test_a_killed_apply_leaves_no_journal_that_blocks_the_next_run(bench: Bench) -> None:
    if bench.backend != "sqlite":
        pytest.skip("SQLite's hot journal; PostgreSQL is covered by the lock checks of every kill point")
    lane = bench.lanes[0]
    lane.reset()
    assert lane.server.run(bench.apply_args(lane.url), kill_at=bench.statements // 2).returncode == -9
    again = lane.server.run([*bench.apply_args(lane.url), "--lock-timeout", "1"])
    assert again.returncode == 0, again.output
    assert not Path(lane.url.removeprefix("sqlite:///") + "-journal").exists()


def _backend_of_apply(url: str) -> int:
    """The backend pid of the `nexus apply` that holds an organization's advisory lock."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    sa.text(
                        "SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'nexus apply %' "
                        "AND a.datname = current_database()"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _password_url(url: str) -> str:
    """The same database with a canary password (trust authentication ignores it)."""
    return sa.engine.make_url(url).set(password=CANARY).render_as_string(hide_password=False)


def test_pg_terminate_backend_mid_apply_fails_cleanly_and_a_reapply_converges(bench: Bench) -> None:
    if bench.backend != "postgresql":
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    lane = bench.lanes[0]
    lane.reset()
    url = _password_url(lane.url)
    locked = Gate("pg_advisory_xact_lock", "after")
    process = start_nexus([*bench.apply_args(url), "--jobs", "1"], fault_env(gates=gates_env(locked)))
    try:
        locked.arrivals(1)  # holds its first organization's lock, mid-apply
        killer = sa.create_engine(lane.url)
        with killer.connect() as connection:
            victim = _backend_of_apply(lane.url)
            assert connection.execute(
                sa.text("SELECT pg_terminate_backend(:p, 60000)"), {"p": victim}
            ).scalar()
        killer.dispose()
    finally:
        locked.close()
    stdout, stderr = process.communicate(timeout=120)
    output = stdout + stderr
    assert process.returncode == 1, output
    assert "Traceback" not in output and CANARY not in output
    assert "connection was lost while applying east" in output
    assert "nothing of it was written" in output
    state = snapshot(lane.url)
    assert state.get("east") == bench.initial["east"]
    assert all(state.get(s) in (bench.initial.get(s), bench.final.get(s)) for s in SLUGS)
    assert lane.server.run(bench.apply_args(url)).returncode == 0
    assert (
        lane.server.run(["plan", str(bench.after), "--detailed-exitcode", "--database-url", url]).returncode
        == 0
    )
    assert without_history(snapshot(lane.url)) == without_history(bench.final)


def test_a_connection_lost_during_commit_is_reported_as_unknown_outcome(bench: Bench) -> None:
    """The COMMIT meets a dead connection (terminated by a second session just before it): nexus cannot
    know whether it happened, says so and does not retry; a plan then shows the truth, and apply converges."""
    if bench.backend != "postgresql":
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    lane = bench.lanes[0]
    lane.reset()
    url = _password_url(lane.url)
    lost = lane.server.run(
        [*bench.apply_args(url), "--jobs", "1"], terminate_commit_after="pg_advisory_xact_lock"
    )
    assert lost.returncode == 1, lost.output
    assert "Traceback" not in lost.output and CANARY not in lost.output
    assert "whether it was applied is unknown" in lost.output and "nexus plan" in lost.output
    state = snapshot(lane.url)
    assert all(state.get(s) in (bench.initial.get(s), bench.final.get(s)) for s in SLUGS)
    assert lane.server.run(bench.apply_args(url)).returncode == 0
    assert (
        lane.server.run(["plan", str(bench.after), "--detailed-exitcode", "--database-url", url]).returncode
        == 0
    )
    assert without_history(snapshot(lane.url)) == without_history(bench.final)
