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
NEXUS_FAULT_GATES=[[RE, "before"|"after", SOCKET], ...]  (JSON) just before or after the first statement
                             matching the regular expression RE (each gate once), connect to the Unix
                             socket SOCKET, say "PID STATEMENT", and wait for the test's answer (or its
                             hanging up): the test decides when this process goes on (harness.Gate).
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
from typing import Any

_armed: dict[str, Any] = {}
_seen: dict[str, Any] = {"statements": 0, "commits": 0}


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
        gates=[
            [pattern, where, path, False]
            for pattern, where, path in json.loads(get("NEXUS_FAULT_GATES") or "[]")
        ],
    )
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


def _gates(where: str, statement: str) -> None:
    """Wait at every gate of `where` ("before"/"after") that `statement` opens, each once."""
    for gate in _armed["gates"]:
        pattern, at, path, passed = gate
        if at == where and not passed and re.search(pattern, statement):
            gate[3] = True
            import socket

            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as side:
                side.connect(path)
                side.sendall(f"{os.getpid()} {' '.join(statement.split())[:200]}\n".encode())
                side.recv(16)  # "go", or the test hung up: either way, go on


def _terminate_own_backend(conn) -> None:  # type: ignore[no-untyped-def]
    import psycopg

    info = conn.connection.dbapi_connection.info
    dsn = " ".join(
        f"{k}={v}" for k, v in info.get_parameters().items() if k in ("host", "port", "dbname", "user")
    )
    with psycopg.connect(dsn, autocommit=True) as side:
        # With a timeout, pg_terminate_backend returns once the backend has ended (PostgreSQL 14+).
        side.execute("SELECT pg_terminate_backend(%s, 60000)", (info.backend_pid,))


def _install() -> None:
    """Listen to SQLAlchemy's events (once per process)."""
    if _seen.get("installed"):
        return
    _seen["installed"] = 1
    from sqlalchemy import event
    from sqlalchemy.engine import Connection, Engine

    @event.listens_for(Engine, "before_cursor_execute")
    def _before_statement(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        _gates("before", statement)
        if _armed["terminate_commit_after"] and re.search(_armed["terminate_commit_after"], statement):
            _armed["terminate_pending"] = True
        _tick()

    @event.listens_for(Engine, "after_cursor_execute")
    def _after_statement(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        _gates("after", statement)

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

    Connection._commit_impl = _commit_then_maybe_die  # type: ignore[method-assign]

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
    "gates",
    "terminate_commit_after",
)
if os.environ.get("NEXUS_FAULT_SERVER") or any(_armed[name] for name in _FAULTS):
    _install()
