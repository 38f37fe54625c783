"""What the subprocess tests share: running the real `nexus` with the fault injector, throwaway PostgreSQL
databases, gates that hold processes at a statement until the test lets them go, and per-organization snapshots of every row.

A snapshot replaces surrogate ids by natural keys (so a row created again after a rollback compares
equal even though a PostgreSQL sequence moved on), inlines the shared rows an organization points at
(the person behind a staff row), and reduces timestamps to "set" (they differ between runs).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from nexus_config import load_configuration
from plan_apply.database import tables as t
from plan_apply.database.engine import engine_for, upgrade_schema
from plan_apply.diff import PlanOptions
from plan_apply.plan import Plan
from plan_apply.planner import build_plan

__all__ = [
    "FAULTS",
    "NEXUS",
    "Arrival",
    "Finished",
    "ForkServer",
    "Gate",
    "Snapshot",
    "advisory_locks",
    "base_rows",
    "fault_env",
    "gates_env",
    "plan_folder",
    "postgres_database",
    "restore_rows",
    "run_nexus",
    "snapshot",
    "start_nexus",
    "without_history",
]

FAULTS = Path(__file__).resolve().parent / "faults"
NEXUS = str(Path(sys.executable).with_name("nexus"))

Snapshot = Mapping[str, tuple[str, ...]]
"""Per organization slug: its rows (every table, history included) as sorted canonical JSON lines."""

# How a row is known without its surrogate id: its natural key (foreign keys resolved recursively).
_NATURAL: dict[str, tuple[str, ...]] = {
    "organizations": ("slug",),
    "people": ("email",),
    "schools": ("slug",),
    "documents": ("sha256",),
    "profiles": ("org_id",),
    "staff": ("org_id", "person_id"),
    "steps": ("org_id", "key"),
    "services": ("org_id", "key"),
    "service_steps": ("service_id", "step_id"),
    "partnerships": ("org_id", "school_key"),
    "invitations": ("org_id", "school_key", "email"),
    "agreements": ("org_id", "key"),
    "agreement_services": ("agreement_id", "service_id"),
    "capacity_windows": ("service_id", "key"),
    "rotations": ("capacity_window_id", "student", "start_date"),
}
_SHARED = {"people", "schools", "documents"}  # not an organization's own: inlined where referenced
_VOLATILE = {("apply_log", "plan_hash")}  # differs between two runs of the same apply (created_at)


def fault_env(**faults: str | int | float) -> dict[str, str]:
    """The environment of a `nexus` process with the fault injector on PYTHONPATH and `faults` armed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_FAULT_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(FAULTS), os.environ.get("PYTHONPATH", "")) if p)
    env.pop("NEXUS_DATABASE_URL", None)
    env.update(GITHUB_SHA="0" * 40, NEXUS_ACTOR="harness")  # history rows alike wherever nexus runs
    env.update({f"NEXUS_FAULT_{name.upper()}": str(value) for name, value in faults.items()})
    return env


@dataclass(frozen=True)
class Finished:
    args: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_nexus(args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 120) -> Finished:
    """Run the installed `nexus` console script (a real process) and wait for it."""
    done = subprocess.run(
        [NEXUS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env or fault_env()),
        check=False,
    )
    return Finished(args, done.returncode, done.stdout, done.stderr)


def start_nexus(args: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [NEXUS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(env)
    )


def finish(process: subprocess.Popen[str], timeout: float = 180) -> Finished:
    stdout, stderr = process.communicate(timeout=timeout)
    assert isinstance(process.args, list)
    return Finished(process.args[1:], process.returncode, stdout, stderr)


class ForkServer:
    """`nexus` runs forked from one process that imported everything once (tests/support/faults/
    forkserver.py): real processes, a fraction of the start-up time. One command at a time."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, str(FAULTS / "forkserver.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=fault_env(),
            cwd=workdir,
        )

    def run(self, args: Sequence[str], **faults: str | int | float) -> Finished:
        out, err = self.workdir / "stdout", self.workdir / "stderr"
        request = {
            "args": list(args),
            "env": {f"NEXUS_FAULT_{k.upper()}": str(v) for k, v in faults.items()},
            "stdout": str(out),
            "stderr": str(err),
        }
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        return Finished(args, reply["returncode"], out.read_text(), err.read_text())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


# --- PostgreSQL -------------------------------------------------------------------------------------------


@contextmanager
def postgres_database(admin_url: str, migrate: bool = True, prefix: str = "nexus_harness") -> Iterator[str]:
    """A fresh database on the server of `admin_url` (migrated to head unless `migrate` is false),
    dropped afterwards; its name starts with `prefix`, so a leftover tells whose it was."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        if migrate:
            engine = engine_for(url)
            with engine.connect() as connection:
                upgrade_schema(connection)
            engine.dispose()
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


class Gate:
    """Holds `nexus` processes at a statement until the test lets them go on: ordering by events, never
    by durations. A process armed with `fault_env(gates=gates_env(...))` connects to the gate's socket
    when it reaches the statement and waits; `arrivals(n)` returns once n processes are there (so a
    process held after taking a lock proves the lock is held), `go(arrival)` lets one go on."""

    def __init__(self, statement: str, where: str = "before", timeout: float = 120) -> None:
        self.folder = tempfile.mkdtemp(prefix="nexus-gate-")  # short: a socket path has ~100 bytes
        self.rule = [statement, where, os.path.join(self.folder, "gate")]
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.rule[2])
        self.server.listen(64)
        self.server.settimeout(timeout)  # a process that never comes fails the test instead of hanging it
        self.waiting: list[Arrival] = []

    def arrivals(self, count: int) -> list[Arrival]:
        """Wait until `count` more processes are at the gate (held there), and say who they are."""
        arrived: list[Arrival] = []
        for _ in range(count):
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                raise TimeoutError(f"{len(arrived)} of {count} processes reached {self.rule[:2]}") from None
            with connection.makefile("r", encoding="utf-8") as stream:
                pid, statement = stream.readline().rstrip("\n").split(" ", 1)
            arrival = Arrival(int(pid), statement, connection)
            arrived.append(arrival)
            self.waiting.append(arrival)
        return arrived

    def go(self, *arrivals: Arrival) -> None:
        for arrival in arrivals or list(self.waiting):
            arrival.connection.sendall(b"go\n")
            arrival.connection.close()
            self.waiting.remove(arrival)

    def close(self) -> None:
        """Let everyone still held go on (a failing test must not leave processes hanging)."""
        self.go()
        self.server.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass(frozen=True)
class Arrival:
    pid: int
    statement: str
    connection: socket.socket


def gates_env(*gates: Gate) -> str:
    """The NEXUS_FAULT_GATES value arming `gates` in one process."""
    return json.dumps([gate.rule for gate in gates])


# --- rows ---------------------------------------------------------------------------------------------------

Rows = dict[str, list[dict[str, Any]]]


def base_rows(url: str) -> Rows:
    """Every row of every nexus table, as the database holds it (to restore it later)."""
    engine = engine_for(url)
    with engine.connect() as connection:
        rows = {
            table.name: [dict(r._mapping) for r in connection.execute(sa.select(table))]
            for table in t.metadata.sorted_tables
        }
    engine.dispose()
    return rows


def restore_rows(engine: sa.Engine, rows: Rows) -> None:
    """Make a PostgreSQL database hold exactly `rows` again, fast (no DROP/CREATE DATABASE, which
    checkpoints): triggers off, delete, insert, sequences reset."""
    with engine.begin() as connection:
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
        for table in t.metadata.sorted_tables:  # DELETE: cheaper than TRUNCATE for a few rows
            connection.execute(sa.delete(table))
        for table in t.metadata.sorted_tables:
            if rows[table.name]:
                connection.execute(sa.insert(table), rows[table.name])
            if "id" in table.c:
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f'coalesce((SELECT max(id) FROM "{table.name}"), 1), '
                    f'(SELECT max(id) FROM "{table.name}") IS NOT NULL)'
                )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return "<set>"
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def snapshot(url: str) -> Snapshot:
    """Per organization, every row that is its own (history included), ids replaced by natural keys."""
    engine = engine_for(url)
    with engine.connect() as connection:
        raw = {
            table.name: {
                r._mapping.get("id", i): dict(r._mapping)
                for i, r in enumerate(connection.execute(sa.select(table)))
            }
            for table in t.metadata.sorted_tables
        }
    engine.dispose()
    referenced = {
        (table.name, column.name): next(iter(column.foreign_keys)).column.table.name
        for table in t.metadata.sorted_tables
        for column in table.c
        if column.foreign_keys
    }

    def identity(table: str, key: Any) -> Any:
        row = raw[table].get(key)
        if row is None:
            return ["<missing>", table, key]
        if table in _SHARED:
            return {c: _plain(v) for c, v in row.items() if c != "id"}
        return [table, *(resolve(table, c, row[c]) for c in _NATURAL[table])]

    def resolve(table: str, column: str, value: Any) -> Any:
        target = referenced.get((table, column))
        if target is None or value is None:
            return _plain(value)
        return identity(target, value)

    def owner(table: str, row: Mapping[str, Any]) -> str | None:
        if table == "organizations":
            return str(row["slug"])
        if table == "apply_log":
            return str(row["org_slug"])
        if "org_id" in row:
            return str(raw["organizations"][row["org_id"]]["slug"])
        for column in ("service_id", "agreement_id", "capacity_window_id"):
            if column in row:
                target = referenced[(table, column)]
                return owner(target, raw[target][row[column]])
        return None

    by_org: dict[str, list[str]] = defaultdict(list)
    history: dict[str, int] = defaultdict(int)
    for table in t.metadata.sorted_tables:
        if table.name in _SHARED:
            continue
        for key in sorted(raw[table.name], key=lambda k: (str(type(k)), k)):
            row = raw[table.name][key]
            org = owner(table.name, row)
            assert org is not None, (table.name, row)
            shown: dict[str, Any] = {}
            for column, value in row.items():
                if column == "id" and table.name != "apply_log":
                    continue
                if (table.name, column) in _VOLATILE or (table.name, column) == ("apply_log", "id"):
                    value = "<set>" if value is not None else None
                    if column == "id":
                        history[org] += 1
                        value = history[org]  # the n-th apply of this organization
                shown[column] = resolve(table.name, column, value) if column != "id" else value
            by_org[org].append(json.dumps([table.name, shown], sort_keys=True, default=str))
    return {org: tuple(sorted(lines)) for org, lines in by_org.items()}


def without_history(state: Snapshot) -> Snapshot:
    return {
        org: tuple(line for line in lines if not line.startswith('["apply_log"'))
        for org, lines in state.items()
    }


def plan_folder(engine: sa.Engine, folder: Path) -> Plan:
    """The plan of every organization under `folder` (mass deletes allowed, a fixed clock), through the
    API: what the law and round-trip tests apply and re-plan."""
    loaded = load_configuration([folder])
    assert loaded.ok, [p.as_text() for p in loaded.errors]
    with engine.connect() as connection:
        return build_plan(
            connection,
            loaded.state,
            list(loaded.state.organizations),
            database="sqlite:///nexus.db",
            options=PlanOptions(allow_mass_delete=True),
            created_at=lambda: "2026-11-28T12:00:00Z",
        )


def advisory_locks(url: str) -> int:
    """Advisory locks held on this PostgreSQL database (by anyone)."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        held = connection.execute(
            sa.text(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND d.datname = current_database()"
            )
        ).scalar_one()
    engine.dispose()
    return int(held)
