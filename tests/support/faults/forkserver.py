"""Test-only fork server: imports nexus once, then runs each requested command in a forked child.

A kill-point test runs `nexus apply` a hundred times or more; a fresh interpreter spends most of each
run importing. Each child here is still a real process with its own database connections that SIGKILL
ends mid-statement; only the imports are shared (done before any connection exists). Protocol: one JSON
request per line on stdin, {"args": [...], "env": {...}, "stdout": FILE, "stderr": FILE}; one JSON reply
per line on stdout, {"returncode": N} (-9 for SIGKILL, like subprocess).
"""

import atexit
import json
import os
import sys
from typing import Any

import sitecustomize  # type: ignore[import-not-found]  # the injector (this folder is on PYTHONPATH)

sitecustomize._install()

import alembic.command  # noqa: E402  (what `nexus plan|apply` import lazily, imported once here)
import alembic.runtime.migration  # noqa: E402
import alembic.script  # noqa: E402, F401
import psycopg  # noqa: E402, F401
import sqlalchemy.dialects.postgresql.psycopg  # noqa: E402
import sqlalchemy.dialects.sqlite.pysqlite  # noqa: E402, F401

import nexus_config  # noqa: E402, F401
import plan_apply.apply  # noqa: E402
import plan_apply.cli  # noqa: E402
import plan_apply.planner  # noqa: E402
import plan_apply.progress  # noqa: E402
import plan_apply.views.markdown  # noqa: E402
import plan_apply.views.text  # noqa: E402


def _child(request: dict[str, Any]) -> int:
    os.environ.update(request.get("env", {}))
    sitecustomize.arm()
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    try:
        plan_apply.cli.main(request["args"])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()  # as a normal exit would (the injector writes its count here)
    return code


def serve() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                code = _child(request)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"returncode": code}), flush=True)


if __name__ == "__main__":
    serve()
