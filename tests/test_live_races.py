"""Apply beside a live platform (issue 13): the web UI, students and schools write without nexus's advisory
lock, so apply must make the database itself serialize with them. Each race opens a real second session
that BEGINs and makes the platform's write, starts `nexus apply` as a process, waits until that apply is
either blocked on a row lock (pg_locks/pg_stat_activity) or finished, then COMMITs and checks the outcome.
Nothing sleeps: the order is released by what the server reports.

On SQLite there is nothing to race: apply's `BEGIN IMMEDIATE` and the platform's writer exclude each
other for the whole transaction (the last test shows it).
"""

from __future__ import annotations

import datetime
import sqlite3
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from .conftest import _truncate_postgres
from .support.actors import book, rows, scalar
from .support.harness import Finished, fault_env, finish, run_nexus, start_nexus

ORG = """
apiVersion: nexus/v1
kind: Organization
metadata: {slug: harbor}
profile: {name: Harbor Clinic, type: clinic}
schools: [{key: state-u, name: State University, contact_email: placements@state.example.edu}]
agreements:
  - {key: state, school: state-u, name: State nursing, start_date: 2027-01-01, end_date: END,
     services: [er], disciplines: [nursing], submit: true}
services:
  - key: er
    name: Emergency
    disciplines: [nursing]
    capacity:
      - {key: spring, name: Spring, workflow: student_requested, disciplines: [nursing],
         start_date: 2027-02-01, end_date: 2027-05-01, slots: SLOTS}
"""


@pytest.fixture
def url(postgres_upgraded: str) -> str:
    _truncate_postgres(postgres_upgraded)
    return postgres_upgraded


@pytest.fixture
def tree(tmp_path: Path) -> Callable[..., Path]:
    def make(slots: int = 4, end: str = "2027-12-31") -> Path:
        root = tmp_path / f"config-{slots}-{end}"
        root.mkdir(exist_ok=True)
        text = textwrap.dedent(ORG).lstrip().replace("SLOTS", str(slots)).replace("END", end)
        (root / "harbor.yaml").write_text(text, encoding="utf-8")
        return root

    return make


def _apply(tree: Path, url: str) -> list[str]:
    return ["apply", str(tree), "--auto-approve", "--database-url", url, "--lock-timeout", "60"]


@contextmanager
def _platform(url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A session of the platform's own (the web UI, a student, a school): no nexus lock, its own BEGIN."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as session:
        yield session


def _blocked_or_done(url: str, process: subprocess.Popen[str], timeout: float = 60) -> bool:
    """Wait until the apply process has finished or its backend waits on a row or transaction lock held by
    another session; True when it was blocked."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as watch:
        while process.poll() is None:
            waiting = watch.execute(
                "SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
                "WHERE a.application_name LIKE 'nexus apply%%' AND NOT l.granted "
                "AND l.locktype IN ('relation', 'tuple', 'transactionid')"
            ).fetchone()
            if waiting and waiting[0]:
                return True
            if time.monotonic() > deadline:
                raise TimeoutError("apply neither finished nor blocked")
            time.sleep(0.01)  # polling the server's own report, not waiting for time to pass
    return False


def _race(url: str, tree: Path, write: str) -> Finished:
    """Apply `tree` while a platform transaction that made `write` is open; commit it once apply is
    blocked on it (or done), then let apply finish."""
    with _platform(url) as session:
        session.execute(write)
        process = start_nexus(_apply(tree, url), fault_env())
        try:
            _blocked_or_done(url, process)
        finally:
            session.commit()
    return finish(process)


pg = pytest.mark.postgres


@pg
def test_slots_never_fall_below_rotations_booked_while_apply_runs(
    url: str, tree: Callable[..., Path]
) -> None:
    assert run_nexus(_apply(tree(slots=4), url)).returncode == 0
    book(url, "spring", ["s1", "s2"])
    done = _race(
        url,
        tree(slots=3),
        "INSERT INTO rotations (capacity_window_id, student, start_date, end_date, status) "
        "SELECT id, s, '2027-02-01', '2027-02-28', 'scheduled' FROM capacity_windows, "
        "(VALUES ('s3'), ('s4')) AS v(s) WHERE key = 'spring'",
    )
    assert "Traceback" not in done.output
    booked = scalar(url, "SELECT count(*) FROM rotations")
    slots = scalar(url, "SELECT slots FROM capacity_windows")
    assert booked == 4
    assert slots >= booked, done.output


@pg
def test_a_school_accepting_during_apply_never_accepts_terms_it_never_saw(
    url: str, tree: Callable[..., Path]
) -> None:
    assert run_nexus(_apply(tree(), url)).returncode == 0
    assert scalar(url, "SELECT status FROM agreements") == "pending_school"
    done = _race(url, tree(end="2028-06-30"), "UPDATE agreements SET status = 'active' WHERE key = 'state'")
    assert "Traceback" not in done.output
    (status, end) = rows(url, "SELECT status, end_date FROM agreements")[0]
    assert (status, end) != ("active", datetime.date(2028, 6, 30)), done.output


@pg
def test_a_window_deleted_during_apply_is_not_reported_applied_nor_hidden_from_the_next_plan(
    url: str, tree: Callable[..., Path]
) -> None:
    assert run_nexus(_apply(tree(), url)).returncode == 0
    done = _race(url, tree(slots=5), "DELETE FROM capacity_windows WHERE key = 'spring'")
    assert "Traceback" not in done.output
    assert scalar(url, "SELECT count(*) FROM capacity_windows") == 0
    assert done.returncode == 1, done.output
    again = run_nexus(["plan", str(tree(slots=5)), "--database-url", url, "--detailed-exitcode"])
    assert again.returncode == 2, again.output
    assert "harbor/services/er/capacity/spring" in again.stdout


@pg
def test_a_person_the_platform_creates_while_apply_creates_them_too_is_one_person_on_both_staffs(
    url: str, tree: Callable[..., Path]
) -> None:
    """The platform signs Dana up while apply makes her Harbor's staff: apply waits for that insert and
    uses her row (no second person, no failed apply)."""
    root = tree()
    with (root / "harbor.yaml").open("a", encoding="utf-8") as file:
        file.write("staff: [{email: dana@harbor.example, name: Dana Reyes, role: admin}]\n")
    done = _race(url, root, "INSERT INTO people (email, name) VALUES ('dana@harbor.example', 'Dana R.')")
    assert done.returncode == 0, done.output
    assert rows(url, "SELECT p.email, p.name FROM staff s JOIN people p ON p.id = s.person_id") == [
        ("dana@harbor.example", "Dana R.")
    ]
    assert scalar(url, "SELECT count(*) FROM people") == 1


def test_on_sqlite_the_platforms_writer_and_apply_exclude_each_other(
    tmp_path: Path, sqlite_template: Path, tree: Callable[..., Path]
) -> None:
    """SQLite has one writer: while a student's booking is uncommitted, apply cannot begin its write
    transaction (`BEGIN IMMEDIATE`), so it fails cleanly; once committed, the plan sees the booking."""
    path = tmp_path / "platform.db"
    path.write_bytes(sqlite_template.read_bytes())
    url = f"sqlite:///{path}"
    assert run_nexus(_apply(tree(slots=4), url)).returncode == 0
    book(url, "spring", ["s1", "s2"])
    student = sqlite3.connect(path, isolation_level=None)
    try:
        student.execute("BEGIN IMMEDIATE")
        student.execute(
            "INSERT INTO rotations (capacity_window_id, student, start_date, end_date, status) "
            "SELECT id, s.column1, '2027-02-01', '2027-02-28', 'scheduled' FROM capacity_windows, "
            "(VALUES ('s3'), ('s4')) AS s WHERE key = 'spring'"
        )
        blocked = run_nexus(
            ["apply", str(tree(slots=3)), "--auto-approve", "--database-url", url, "--lock-timeout", "0.2"]
        )
        assert blocked.returncode == 1 and "Traceback" not in blocked.output
        assert scalar(url, "SELECT slots FROM capacity_windows") == 4
        student.execute("COMMIT")
    finally:
        student.close()
    after = run_nexus(["apply", str(tree(slots=3)), "--auto-approve", "--database-url", url])
    assert after.returncode == 1 and "has 4 rotation(s) booked" in after.output
    assert scalar(url, "SELECT slots FROM capacity_windows") == 4
