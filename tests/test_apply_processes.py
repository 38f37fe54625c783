"""Families applied in worker processes (PostgreSQL, a plan large enough): the same transactions, the same
results reported as each commits, a failed parent's children not attempted, and a worker that dies leaves
what it had not reported failed with its outcome unknown, never a hang."""

from __future__ import annotations

import os
import re
import select
import signal
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from plan_apply.apply import ApplyProcesses, ApplyResult, OrgResult, apply_plan
from plan_apply.apply_processes import ENDED_ABRUPTLY, NOT_ATTEMPTED, WorkerTraceback
from plan_apply.database.engine import engine_for

from .conftest import _truncate_postgres
from .support.actors import rows, scalar, write_lock_held
from .support.harness import plan_folder, start_nexus
from .test_live_fleet import PDFS, facility

pytestmark = pytest.mark.postgres

SITES = 40


@pytest.fixture
def url(postgres_upgraded: str) -> str:
    _truncate_postgres(postgres_upgraded)
    return postgres_upgraded


def _fleet(root: Path, extra: dict[str, str] | None = None) -> Path:
    (root / "sites").mkdir(parents=True)
    for n, pdf in enumerate(PDFS):
        (root / "sites" / f"signed-{n}.pdf").write_bytes(pdf)
    for n in range(SITES):
        (root / "sites" / f"site-{n:02d}.yaml").write_text(facility(n), encoding="utf-8")
    for name, text in (extra or {}).items():
        (root / "sites" / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def _in_processes(url: str, root: Path, lock_timeout: float = 30.0, **kwargs: object) -> ApplyResult:
    engine = engine_for(url, lock_timeout, purpose="apply")
    try:
        plan = plan_folder(engine, root)
        return apply_plan(engine, plan, jobs=2, processes=ApplyProcesses(url, minimum=0), **kwargs)  # type: ignore[arg-type]
    finally:
        engine.dispose()


def test_a_fleet_applied_in_worker_processes_lands_whole_and_reports_each_organization_once(
    url: str, tmp_path: Path
) -> None:
    root = _fleet(tmp_path / "fleet")
    reported: list[str] = []
    result = _in_processes(url, root, on_result=lambda r: reported.append(r.slug))
    slugs = [f"site-{n:02d}" for n in range(SITES)]
    assert [(r.slug, r.status) for r in result.organizations] == [(s, "applied") for s in slugs]
    assert sorted(reported) == slugs
    assert scalar(url, "SELECT count(*) FROM documents") == 3
    assert rows(url, "SELECT org_slug FROM apply_log ORDER BY org_slug") == [(s,) for s in slugs]
    engine = engine_for(url)
    try:
        assert not plan_folder(engine, root).has_changes
    finally:
        engine.dispose()


def _member(slug: str, parent: str | None) -> str:
    return f"""
        apiVersion: nexus/v1
        kind: Organization
        metadata: {{slug: {slug}{f", parent: {parent}" if parent else ""}}}
        profile: {{name: {slug}, type: hospital}}
        """


def test_in_worker_processes_a_child_whose_parent_failed_is_not_attempted(url: str, tmp_path: Path) -> None:
    family = {"alpha.yaml": _member("alpha", None), "alpha-east.yaml": _member("alpha-east", "alpha")}
    root = _fleet(tmp_path / "fleet", family)
    with write_lock_held(url, "alpha"):
        result = _in_processes(url, root, lock_timeout=0.2)
    status = {r.slug: (r.status, r.message) for r in result.organizations}
    assert status["alpha"][0] == "failed" and "being applied by another session" in status["alpha"][1]
    assert status["alpha-east"] == ("skipped", "not applied: its parent alpha was not applied")
    assert {s for s, (state, _) in status.items() if state == "applied"} == {
        f"site-{n:02d}" for n in range(SITES)
    }


def _waiting_worker(url: str, deadline: float) -> int:
    """The pid of the worker process whose session waits for an organization's lock (its application_name
    says; not a row lock, which two workers storing the same document may wait for in turn)."""
    while time.monotonic() < deadline:
        waiting = rows(
            url,
            "SELECT a.application_name FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
            "WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name LIKE 'nexus apply %'",
        )
        if waiting:
            found = re.search(r" pid (\d+)$", str(waiting[0][0]))
            assert found, waiting
            return int(found.group(1))
        time.sleep(0.05)  # polling the server's own report, not waiting for time to pass
    raise AssertionError("no worker came to wait for the held lock")


def test_a_worker_killed_mid_apply_leaves_what_it_started_unknown_and_the_rest_not_attempted(
    url: str, tmp_path: Path
) -> None:
    root = _fleet(tmp_path / "fleet")
    outcome: list[ApplyResult] = []
    reported: list[OrgResult] = []
    with write_lock_held(url, "site-05"):
        applying = threading.Thread(
            target=lambda: outcome.append(
                _in_processes(url, root, lock_timeout=600, on_result=reported.append)
            )
        )
        applying.start()
        os.kill(_waiting_worker(url, time.monotonic() + 120), signal.SIGKILL)
        applying.join()
    (result,) = outcome
    status = {r.slug: (r.status, r.message) for r in result.organizations}
    assert status["site-05"] == ("failed", ENDED_ABRUPTLY)
    assert {state for state, _ in status.values()} <= {"applied", "failed"}
    unknown = {slug for slug, (_, message) in status.items() if message == ENDED_ABRUPTLY}
    untried = {slug for slug, (_, message) in status.items() if message == NOT_ATTEMPTED}
    applied = {slug for slug, (state, _) in status.items() if state == "applied"}
    assert len(unknown) <= 2 and untried and applied | unknown | untried == set(status)
    assert {"site-00", "site-04"} <= applied  # committed before the lock, in the killed worker's run
    logged = {str(slug) for (slug,) in rows(url, "SELECT org_slug FROM apply_log")}
    assert applied <= logged <= applied | (unknown - {"site-05"})  # the other worker's may have committed
    assert sorted(r.slug for r in reported) == sorted(status)


def _ends(pid: int, within: float) -> bool:
    """Whether process `pid` (not a child of this one) ends, released by its own exit (a pidfd becomes
    readable then); `within` only bounds a hang."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True  # already gone
    try:
        readable, _, _ = select.select([handle], [], [], within)
        return bool(readable)
    finally:
        os.close(handle)


@pytest.mark.skipif(
    not hasattr(os, "pidfd_open"), reason="waits for a process's exit through a pidfd (Linux)"
)
def test_workers_of_a_killed_apply_end_with_it_and_commit_nothing_more(url: str, tmp_path: Path) -> None:
    """Killed (the OOM killer, a CI cancel that signals one pid): its workers must not go on writing."""
    root = tmp_path / "many"
    root.mkdir()
    for n, pdf in enumerate(PDFS):
        (root / f"signed-{n}.pdf").write_bytes(pdf)
    for n in range(110):  # enough for the command to apply in processes
        (root / f"site-{n:03d}.yaml").write_text(
            facility(n).replace(f"site-{n:02d}", f"site-{n:03d}"), "utf-8"
        )
    with write_lock_held(url, "site-050"):
        command = [
            "apply",
            str(root),
            "--auto-approve",
            "--database-url",
            url,
            "--jobs",
            "2",
            "--lock-timeout",
            "600",
        ]
        apply = start_nexus(command, os.environ)
        worker = _waiting_worker(url, time.monotonic() + 120)
        apply.kill()
        apply.wait()
        assert _ends(worker, within=60), "a worker outlived the apply that started it"
    logged = {str(slug) for (slug,) in rows(url, "SELECT org_slug FROM apply_log")}
    assert "site-050" not in logged and "site-049" in logged


def _unexpected(exc: BaseException) -> str:
    raise RuntimeError(f"describing failed too: {exc}")


class _Unrebuildable(Exception):
    """An error whose pickled form does not rebuild it (its constructor takes two arguments)."""

    def __init__(self, slug: str, why: str) -> None:
        super().__init__(f"{slug}: {why}")


def _unrebuildable(exc: BaseException) -> str:
    raise _Unrebuildable("site-05", "cannot describe")


@contextmanager
def _site_05_refused(url: str) -> Iterator[None]:
    """A trigger makes site-05's history row fail: its transaction fails like any database error."""
    statements = [
        "CREATE FUNCTION refuse_site_05() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.org_slug = 'site-05' THEN RAISE EXCEPTION 'no history for site-05'; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER refuse_site_05 BEFORE INSERT ON apply_log FOR EACH ROW EXECUTE FUNCTION refuse_site_05()",
    ]
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as admin:
        for statement in statements:
            admin.execute(statement)
        try:
            yield
        finally:
            admin.execute("DROP TRIGGER refuse_site_05 ON apply_log")
            admin.execute("DROP FUNCTION refuse_site_05()")


def test_what_goes_wrong_unexpectedly_in_a_worker_is_raised_after_the_other_runs_are_applied(
    url: str, tmp_path: Path
) -> None:
    root = _fleet(tmp_path / "fleet")
    with _site_05_refused(url), pytest.raises(RuntimeError, match="describing failed too") as raised:
        _in_processes(url, root, describe_error=_unexpected)
    assert isinstance(raised.value.__cause__, WorkerTraceback)
    assert "_unexpected" in str(raised.value.__cause__)  # where it went wrong, in the worker
    # site-05's run (sites 00 to 15) stops there; the other runs (16 to 39) are applied whole.
    assert scalar(url, "SELECT count(*) FROM apply_log") == 5 + (SITES - 16)


def test_an_error_that_does_not_survive_pickling_is_raised_by_name_and_breaks_no_other_run(
    url: str, tmp_path: Path
) -> None:
    root = _fleet(tmp_path / "fleet")
    with _site_05_refused(url), pytest.raises(RuntimeError, match="_Unrebuildable: site-05: cannot describe"):
        _in_processes(url, root, describe_error=_unrebuildable)
    assert scalar(url, "SELECT count(*) FROM apply_log") == 5 + (SITES - 16)


def test_a_report_that_fails_is_raised_after_the_workers_finish_and_nothing_hangs(
    url: str, tmp_path: Path
) -> None:
    root = _fleet(tmp_path / "fleet")

    def on_result(result: OrgResult) -> None:
        if result.slug == "site-03":
            raise RuntimeError("the terminal went away")

    with pytest.raises(RuntimeError, match="the terminal went away"):
        _in_processes(url, root, on_result=on_result)
    assert scalar(url, "SELECT count(*) FROM apply_log") == SITES  # the workers went on to the end
