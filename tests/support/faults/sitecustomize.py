"""Test-only fault injector: put this folder on PYTHONPATH of a `nexus` process (it is never installed).

It listens to SQLAlchemy's events, so it sees exactly the statements nexus sends. Each variable arms one
fault; without any, importing it changes nothing. `arm()` reads them again (the fork server calls it in
each child, after setting that child's variables).

NEXUS_FAULT_COUNT_TO=FILE    at exit, write JSON {"statements": N, "commits": C}: N counts every
                             statement and every COMMIT (the kill points), C the COMMITs that returned.
NEXUS_FAULT_KILL_AT=k        SIGKILL this process just before its k-th statement or COMMIT.
NEXUS_FAULT_KILL_AFTER_COMMIT=c  SIGKILL it just after its c-th COMMIT returned.
NEXUS_FAULT_KILL_IN_WORKER=k SIGKILL a planning worker process (not the main one) just before its k-th
                             statement.
NEXUS_FAULT_BARRIER=DSN|KEY  before the first statement, wait until the test releases
                             pg_advisory_lock(KEY) (so all workers start their race together).
NEXUS_FAULT_SLEEP_AFTER=RE and NEXUS_FAULT_SLEEP=SECONDS
                             sleep after the first statement matching the regular expression RE
                             (widens a race window: after the plan's first SELECT, after a lock...).
NEXUS_FAULT_SLEEPS=[[RE, SECONDS], ...]  the same for several expressions (JSON), each once.
NEXUS_FAULT_TERMINATE_COMMIT_AFTER=RE  at the first COMMIT after a statement matching RE (e.g. an
                             organization's lock), a second session pg_terminate_backend()s this
                             process's backend first, so that COMMIT meets a dead connection.
NEXUS_FAULT_SERVER=1         listen even with nothing armed yet (the fork server arms per child).
"""

import atexit
import json
import os
import re
import signal
import time

_armed: dict = {}
_seen: dict = {"statements": 0, "commits": 0}


def arm() -> None:
    """(Re)read the NEXUS_FAULT_* variables and start counting from zero."""
    get = os.environ.get
    _armed.clear()
    _armed.update(
        kill_at=int(get("NEXUS_FAULT_KILL_AT", "0") or 0),
        kill_after_commit=int(get("NEXUS_FAULT_KILL_AFTER_COMMIT", "0") or 0),
        kill_in_worker=int(get("NEXUS_FAULT_KILL_IN_WORKER", "0") or 0),
        terminate_commit_after=get("NEXUS_FAULT_TERMINATE_COMMIT_AFTER"),
        terminate_pending=False,
        count_to=get("NEXUS_FAULT_COUNT_TO"),
        barrier=get("NEXUS_FAULT_BARRIER"),
        sleeps=[
            [pattern, float(seconds)] for pattern, seconds in json.loads(get("NEXUS_FAULT_SLEEPS") or "[]")
        ],
        waited=False,
    )
    if get("NEXUS_FAULT_SLEEP_AFTER"):
        _armed["sleeps"].append([get("NEXUS_FAULT_SLEEP_AFTER"), float(get("NEXUS_FAULT_SLEEP", "0") or 0)])
    _seen.update(statements=0, commits=0)


def _tick() -> None:
    _seen["statements"] += 1
    if _seen["statements"] == _armed["kill_at"]:
        os.kill(os.getpid(), signal.SIGKILL)
    if _seen["statements"] == _armed["kill_in_worker"] and _in_worker():
        os.kill(os.getpid(), signal.SIGKILL)


def _in_worker() -> bool:
    import multiprocessing

    return multiprocessing.current_process().name != "MainProcess"


def _wait_for_barrier() -> None:
    import psycopg

    dsn, key = _armed["barrier"].rsplit("|", 1)
    with psycopg.connect(dsn, autocommit=True) as side:
        side.execute("SELECT pg_advisory_lock_shared(%s)", (int(key),))
        side.execute("SELECT pg_advisory_unlock_shared(%s)", (int(key),))


def _terminate_own_backend(conn) -> None:  # type: ignore[no-untyped-def]
    import psycopg

    info = conn.connection.dbapi_connection.info
    dsn = " ".join(
        f"{k}={v}" for k, v in info.get_parameters().items() if k in ("host", "port", "dbname", "user")
    )
    with psycopg.connect(dsn, autocommit=True) as side:
        side.execute("SELECT pg_terminate_backend(%s)", (info.backend_pid,))
        while side.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (info.backend_pid,)).fetchone():
            time.sleep(0.01)


def _install() -> None:
    """Listen to SQLAlchemy's events (once per process)."""
    if _seen.get("installed"):
        return
    _seen["installed"] = 1
    from sqlalchemy import event
    from sqlalchemy.engine import Connection, Engine

    @event.listens_for(Engine, "before_cursor_execute")
    def _before_statement(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if _armed["barrier"] and not _armed["waited"]:
            _armed["waited"] = True
            _wait_for_barrier()
        if _armed["terminate_commit_after"] and re.search(_armed["terminate_commit_after"], statement):
            _armed["terminate_pending"] = True
        _tick()

    @event.listens_for(Engine, "after_cursor_execute")
    def _after_statement(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        for entry in _armed["sleeps"]:
            if entry[1] is not None and re.search(entry[0], statement):
                seconds, entry[1] = entry[1], None  # once
                time.sleep(seconds)

    @event.listens_for(Engine, "commit")
    def _before_commit(conn):  # type: ignore[no-untyped-def]
        _tick()
        if _armed["terminate_pending"]:
            _armed["terminate_pending"] = False
            _armed["terminate_commit_after"] = None
            _terminate_own_backend(conn)

    commit_impl = Connection._commit_impl

    def _commit_then_maybe_die(self):  # type: ignore[no-untyped-def]
        commit_impl(self)
        _seen["commits"] += 1
        if _seen["commits"] == _armed["kill_after_commit"]:
            os.kill(os.getpid(), signal.SIGKILL)

    Connection._commit_impl = _commit_then_maybe_die

    def _write_count() -> None:
        if _armed["count_to"]:
            with open(_armed["count_to"], "w") as stream:
                json.dump({"statements": _seen["statements"], "commits": _seen["commits"]}, stream)

    atexit.register(_write_count)


arm()
_FAULTS = (
    "kill_at",
    "kill_after_commit",
    "kill_in_worker",
    "count_to",
    "barrier",
    "sleeps",
    "terminate_commit_after",
)
if os.environ.get("NEXUS_FAULT_SERVER") or any(_armed[name] for name in _FAULTS):
    _install()
