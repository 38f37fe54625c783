"""Test-only fault injector, put on PYTHONPATH of a `nexus` subprocess (see tests/test_kill_points.py).

NEXUS_KILL_AT=k: SIGKILL the process just before its k-th SQL statement (BEGIN and COMMIT included).
NEXUS_COUNT_TO=FILE: write how many statements ran, at exit.
"""

import atexit
import os
import signal

_kill_at = int(os.environ.get("NEXUS_KILL_AT", "0") or 0)
_count_to = os.environ.get("NEXUS_COUNT_TO")

if _kill_at or _count_to:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _seen = [0]

    def _tick() -> None:
        _seen[0] += 1
        if _seen[0] == _kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    @event.listens_for(Engine, "before_cursor_execute")
    def _before_statement(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        _tick()

    @event.listens_for(Engine, "commit")
    def _before_commit(conn):  # type: ignore[no-untyped-def]
        _tick()

    def _write_count() -> None:
        if _count_to:
            with open(_count_to, "w") as stream:
                stream.write(str(_seen[0]))

    atexit.register(_write_count)
