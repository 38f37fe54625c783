"""The database boundary: which URLs nexus accepts (psycopg 3 for PostgreSQL), the schema version check,
`plan` writing nothing (proved with a read-only PostgreSQL role and SQLite's file bytes), SQLite's lock
timeout, and secrets: a password (in userinfo, `?password=`, percent-encoded, in a malformed URL) or a
bound parameter never reaches any output, and no database failure is a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from nexus_config import load_configuration
from plan_apply.apply import ApplyOptions, OrgResult, apply_plan
from plan_apply.database.engine import (
    application_name,
    describe_failure,
    engine_for,
    lock_milliseconds,
    redact,
    upgrade_schema,
)
from plan_apply.errors import DatabaseError
from plan_apply.planner import build_plan

from .conftest import POSTGRES_ADMIN_URL, _truncate_postgres
from .support.harness import Gate, fault_env, finish, gates_env, postgres_database, snapshot, start_nexus
from .test_cli_plan_apply import Run

CANARY = "Zq7canaryPW"
HEAD = "0008"
ORG = """
apiVersion: nexus/v1
kind: Organization
metadata: {{slug: harbor}}
profile: {{name: Harbor Clinic, type: clinic}}
staff: [{{email: lead@harbor.example.org, name: Lead, role: admin}}]
services:
  - key: er
    name: Emergency
    disciplines: [nursing]
    capacity:
      - {{key: spring, name: Spring, workflow: student_requested, disciplines: [nursing],
         start_date: 2027-02-01, end_date: 2027-05-01, slots: {slots}}}
"""


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.delenv("NEXUS_DATABASE_URL", raising=False)
    return Run(capsys, None)  # every command line here names its database


@pytest.fixture
def tree(write_tree: Callable[..., Path]) -> Callable[..., Path]:
    def make(slots: int = 3, root: str = "config") -> Path:
        return write_tree({"harbor.yaml": ORG.format(slots=slots)}, root=root)

    return make


@pytest.fixture
def blank_url(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of the same backend as `database_url` with no schema at all."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'blank.db'}"
        return
    with postgres_database(POSTGRES_ADMIN_URL, migrate=False) as url:
        yield url


def _tables(url: str) -> list[str]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        names = sorted(sa.inspect(connection).get_table_names())
    engine.dispose()
    return names


def _scalar(url: str, statement: str) -> object:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        value = connection.execute(sa.text(statement)).scalar()
    engine.dispose()
    return value


def _execute(url: str, statement: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(statement))
    engine.dispose()


@pytest.fixture
def unknown_revision(database_url: str) -> Iterator[str]:
    """The database stamped with a revision from a "newer nexus" (its tables are head's), put back after."""
    _execute(database_url, "UPDATE alembic_version SET version_num = '9f3e1d2c7b6a'")
    yield "9f3e1d2c7b6a"
    _execute(database_url, f"UPDATE alembic_version SET version_num = '{HEAD}'")


@pytest.fixture
def pg_url(postgres_upgraded: str) -> str:
    """The session's PostgreSQL database, emptied: for what only PostgreSQL has (roles, sessions)."""
    _truncate_postgres(postgres_upgraded)
    return postgres_upgraded


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite file of this test's own: for what only SQLite has (a file, its write lock)."""
    path = tmp_path / "platform.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


# --- URLs and drivers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg", "postgres"])
def test_postgresql_urls_use_psycopg_3(scheme: str) -> None:
    engine = engine_for(f"{scheme}://nexus@db.example.org/platform")
    assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg"])
def test_both_postgresql_url_forms_plan_and_apply(
    scheme: str, pg_url: str, nexus: Run, tree: Callable[..., Path]
) -> None:
    url = sa.engine.make_url(pg_url).set(drivername=scheme).render_as_string(hide_password=False)
    assert nexus("apply", str(tree()), "--auto-approve", "--database-url", url) == 0
    assert nexus("plan", str(tree()), "--detailed-exitcode", "--database-url", url) == 0


@pytest.mark.parametrize(
    ("url", "word"),
    [
        ("postgresql+psycopg2://u@h/d", "psycopg 3 only"),
        ("postgresql+asyncpg://u@h/d", "psycopg 3 only"),
        ("mysql://u@h/d", "unsupported database 'mysql'"),
        ("sqlite+aiosqlite:///x.db", "unsupported database"),
        ("not a url", "not a database URL"),
    ],
)
def test_databases_and_drivers_nexus_cannot_drive_are_refused_by_name(url: str, word: str) -> None:
    with pytest.raises(DatabaseError, match=word):
        engine_for(url)


def test_application_name_says_command_user_host_and_pid_within_63_bytes() -> None:
    name = application_name("apply")
    assert name.startswith("nexus apply ") and name.endswith(f" pid {os.getpid()}") and "@" in name
    assert len(application_name("x" * 100).encode()) <= 63
    assert application_name("x" * 100).endswith(f" pid {os.getpid()}")


@pytest.mark.postgres
def test_postgresql_sessions_are_named_after_the_nexus_process(pg_url: str) -> None:
    engine = engine_for(pg_url, purpose="apply")
    with engine.connect() as connection:
        shown = connection.execute(
            sa.text("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")
        ).scalar()
    engine.dispose()
    assert shown == application_name("apply")


# --- schema version ------------------------------------------------------------------------------------------


def test_the_known_revisions_are_exactly_the_migrations_in_order() -> None:
    from alembic.script import ScriptDirectory

    from plan_apply.database.engine import REVISIONS, _alembic_config

    script = ScriptDirectory.from_config(_alembic_config())
    newest_first = [revision.revision for revision in script.walk_revisions()]
    assert tuple(reversed(newest_first)) == REVISIONS
    assert script.get_current_head() == REVISIONS[-1] == HEAD


def test_db_upgrade_twice_is_idempotent(blank_url: str, nexus: Run) -> None:
    assert nexus("db", "upgrade", "--database-url", blank_url) == 0
    assert f"schema upgraded from empty to {HEAD}" in nexus.err
    tables = _tables(blank_url)
    assert nexus("db", "upgrade", "--database-url", blank_url) == 0
    assert f"schema already at revision {HEAD}" in nexus.err
    assert _tables(blank_url) == tables
    assert _scalar(blank_url, "SELECT count(*) FROM alembic_version") == 1


def test_a_database_without_the_schema_is_refused_naming_db_upgrade(
    blank_url: str, nexus: Run, tree: Callable[..., Path]
) -> None:
    for command in (["plan", str(tree())], ["apply", str(tree()), "--auto-approve"], ["history"]):
        assert nexus(*command, "--database-url", blank_url) == 1
        assert "has no nexus schema" in nexus.err and "nexus db upgrade" in nexus.err
        assert "Traceback" not in nexus.output
    assert _tables(blank_url) == []


def test_a_newer_unknown_schema_revision_is_refused_naming_both(
    database_url: str, unknown_revision: str, nexus: Run, tree: Callable[..., Path]
) -> None:
    commands = (
        ["plan", str(tree())],
        ["apply", str(tree()), "--auto-approve"],
        ["history"],
        ["db", "upgrade"],
    )
    for command in commands:
        assert nexus(*command, "--database-url", database_url) == 1, command
        assert "9f3e1d2c7b6a" in nexus.err and HEAD in nexus.err, nexus.err
        assert "newer nexus" in nexus.err and "Traceback" not in nexus.output
    assert _scalar(database_url, "SELECT version_num FROM alembic_version") == "9f3e1d2c7b6a"
    assert _scalar(database_url, "SELECT count(*) FROM organizations") == 0


def test_an_older_schema_is_refused_naming_both_revisions_until_upgraded(
    database_url: str, nexus: Run, tree: Callable[..., Path]
) -> None:
    from alembic import command

    from plan_apply.database.engine import _alembic_config

    engine = engine_for(database_url)
    with engine.connect() as connection:
        command.downgrade(_alembic_config(connection), "0001")
        connection.commit()
    engine.dispose()
    assert nexus("plan", str(tree()), "--database-url", database_url) == 1
    assert f"schema revision 0001, this nexus needs {HEAD}" in nexus.err and "nexus db upgrade" in nexus.err
    assert nexus("db", "upgrade", "--database-url", database_url) == 0
    assert nexus("plan", str(tree()), "--database-url", database_url) == 0


# --- plan writes nothing ------------------------------------------------------------------------------------


@pytest.fixture
def read_only_url(pg_url: str) -> Iterator[str]:
    """The same PostgreSQL database through a role that may only connect and SELECT (Appendix A5)."""
    url = pg_url
    role = f"nexus_ro_{uuid.uuid4().hex[:8]}"
    database = sa.engine.make_url(url).database
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for statement in (
            f"CREATE ROLE {role} LOGIN",
            f'GRANT CONNECT ON DATABASE "{database}" TO {role}',
            f"GRANT USAGE ON SCHEMA public TO {role}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
        ):
            connection.exec_driver_sql(statement)
    try:
        yield sa.engine.make_url(url).set(username=role).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %(r)s", {"r": role}
            )
            connection.exec_driver_sql(f"DROP OWNED BY {role}")
            connection.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()


@pytest.mark.postgres
def test_plan_runs_as_a_read_only_role_and_apply_as_it_writes_nothing(
    pg_url: str, read_only_url: str, nexus: Run, tree: Callable[..., Path], tmp_path: Path
) -> None:
    assert nexus("apply", str(tree()), "--auto-approve", "--database-url", pg_url) == 0
    before = snapshot(pg_url)
    changed = tree(slots=9, root="changed")
    assert nexus("plan", str(changed), "--database-url", read_only_url) == 0, nexus.err
    assert "3 → 9" in nexus.out
    assert nexus("plan", str(changed), "--full", "--detailed-exitcode", "--database-url", read_only_url) == 2
    assert (
        nexus("plan", str(changed), "--out", str(tmp_path / "p.json"), "--database-url", read_only_url) == 0
    )
    assert nexus("apply", str(changed), "--auto-approve", "--database-url", read_only_url) == 1
    assert "permission denied" in nexus.err and "Traceback" not in nexus.output
    assert nexus("apply", "--plan", str(tmp_path / "p.json"), "--database-url", read_only_url) == 1
    assert "Traceback" not in nexus.output
    assert snapshot(pg_url) == before


def test_plan_leaves_the_sqlite_file_untouched(
    sqlite_url: str, nexus: Run, tree: Callable[..., Path], tmp_path: Path
) -> None:
    assert nexus("apply", str(tree()), "--auto-approve", "--database-url", sqlite_url) == 0
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))  # an mtime a write would move
    content, stat = path.read_bytes(), path.stat()
    for extra in (
        [],
        ["--full"],
        ["--format", "json", "--out", str(tmp_path / "p.json")],
        ["--detailed-exitcode"],
    ):
        nexus("plan", str(tree(slots=9, root="changed")), *extra, "--database-url", sqlite_url)
        assert "3 → 9" in nexus.out or extra[:2] == ["--format", "json"]
    assert path.read_bytes() == content
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name)) == [path.name]


# --- SQLite's lock ------------------------------------------------------------------------------------------


_HOLD_SQLITE = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()  # until the test lets go
connection.execute("ROLLBACK")
print("released", flush=True)
"""


def _hold_sqlite_write_lock(path: Path) -> subprocess.Popen[str]:
    """Another process holding SQLite's write lock until `_release` (or until it is killed)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_SQLITE, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def _release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "released"


def test_sqlite_apply_gives_up_after_the_lock_timeout_and_writes_nothing(
    sqlite_url: str, nexus: Run, tree: Callable[..., Path]
) -> None:
    assert nexus("apply", str(tree()), "--auto-approve", "--database-url", sqlite_url) == 0
    before = snapshot(sqlite_url)
    holder = _hold_sqlite_write_lock(Path(sqlite_url.removeprefix("sqlite:///")))
    try:
        code = nexus(
            "apply",
            str(tree(slots=9, root="b")),
            "--auto-approve",
            "--lock-timeout",
            "1",
            "--database-url",
            sqlite_url,
        )
        assert code == 1
        assert "locked by another process" in nexus.err and "gave up after 1s (--lock-timeout)" in nexus.err
        assert "Traceback" not in nexus.output
    finally:
        holder.kill()
        holder.wait()
    assert snapshot(sqlite_url) == before


def test_sqlite_apply_waits_for_a_writer_that_finishes_within_the_timeout(
    sqlite_url: str, nexus: Run, tree: Callable[..., Path]
) -> None:
    """The apply asks for the write lock while another process holds it; that one lets go; the apply lands."""
    assert nexus("apply", str(tree()), "--auto-approve", "--database-url", sqlite_url) == 0
    holder = _hold_sqlite_write_lock(Path(sqlite_url.removeprefix("sqlite:///")))
    writing = Gate("BEGIN IMMEDIATE")
    args = ["apply", str(tree(slots=9, root="b")), "--auto-approve", "--database-url", sqlite_url]
    process = start_nexus(args, fault_env(gates=gates_env(writing)))
    try:
        writing.go(*writing.arrivals(1))  # about to ask for the lock the holder has
        _release(holder)
    finally:
        writing.close()
        holder.kill()
        holder.wait()
    done = finish(process)
    assert done.returncode == 0, done.output
    assert "3 → 9" in done.stdout


def test_an_organization_whose_sqlite_commit_gave_up_leaves_the_next_one_to_apply(
    sqlite_url: str, write_tree: Callable[..., Path]
) -> None:
    """A reader holds the file while an organization commits: that one gives up (rolled back), and the
    reader gone, the next organization applies as if nothing had happened."""
    orgs = {f"site-{n}.yaml": ORG.format(slots=3).replace("harbor", f"site-{n}") for n in range(3)}
    loaded = load_configuration([write_tree(orgs)])
    path = sqlite_url.removeprefix("sqlite:///")
    engine = engine_for(sqlite_url, lock_timeout=0)
    with engine.connect() as connection:
        plan = build_plan(connection, loaded.state, list(loaded.state.organizations), database="db")
    reader = sqlite3.connect(path, isolation_level=None)

    def read_through_the_next_commit(result: OrgResult) -> None:
        if result.slug == "site-0":  # a reader arrives, and holds the file through site-1's commit ...
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM organizations").fetchall()
        elif result.slug == "site-1":  # ... and is gone before site-2 begins
            reader.execute("COMMIT")

    try:
        result = apply_plan(engine, plan, ApplyOptions(actor="test"), on_result=read_through_the_next_commit)
    finally:
        engine.dispose()
        reader.close()
    assert {r.slug: r.status for r in result.organizations} == {
        "site-0": "applied",
        "site-1": "failed",
        "site-2": "applied",
    }
    written = sqlite3.connect(path).execute("SELECT slug FROM organizations ORDER BY slug").fetchall()
    assert written == [("site-0",), ("site-2",)]


# --- secrets ----------------------------------------------------------------------------------------------

ENCODED = quote(f"{CANARY}@x:y/z", safe="")
URLS = [
    f"postgresql://nexus:{CANARY}@db.example.org:5432/platform",
    f"postgresql+psycopg://nexus:{CANARY}@db.example.org/platform?sslmode=require",
    f"postgresql://nexus@db.example.org/platform?password={CANARY}",
    f"postgresql://nexus@db.example.org/platform?sslmode=require&PASSWORD={CANARY}&application_name=x",
    f"postgresql://nexus@db.example.org/platform?sslpassword={CANARY}",
    f"postgresql://nexus:{ENCODED}@db.example.org/platform",
    f"postgresql://nexus:{CANARY}@x@db.example.org/platform",  # unencoded @ in the password
    f"postgresql://nexus:{CANARY}/a?b@db.example.org/platform",  # unencoded / and ?
    f"postgresql://nexus:{CANARY}@db.example.org:notaport/platform",
    f"postgresql://:{CANARY}@db.example.org/platform",
    f"host=db.example.org password={CANARY} user=nexus",
    f"mysql://root:{CANARY}@db.example.org/platform",
]
SECRETS = (CANARY, ENCODED, f"{CANARY}@x:y/z")


def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text] + (["x:y/z"] if "x:y/z" in text else [])


@pytest.mark.parametrize("url", URLS)
def test_redact_hides_every_password(url: str) -> None:
    shown = redact(url)
    assert _leaks(shown) == [] and CANARY[:5] not in shown
    assert "***" in shown


@pytest.mark.parametrize("url", URLS)
def test_failure_messages_are_scrubbed_of_the_password(url: str) -> None:
    passwords = [ENCODED, f"{CANARY}@x:y/z"] if ENCODED in url else [CANARY]
    error = RuntimeError(f"could not connect with password {' or '.join(passwords)}\nDETAIL: second line")
    message = describe_failure(error, url)
    assert _leaks(message) == [] and "second line" not in message


def test_redact_keeps_what_is_not_secret() -> None:
    assert redact("sqlite:///nexus.db") == "sqlite:///nexus.db"
    assert redact("postgresql://ci@db:5432/nexus?sslmode=require&application_name=a@b") == (
        "postgresql://ci@db:5432/nexus?sslmode=require&application_name=a@b"
    )
    assert redact("postgresql://ci:s3cret@db/nexus") == "postgresql://ci:***@db/nexus"


BROKEN = [
    pytest.param(f"postgresql://nexus:{CANARY}@127.0.0.1:1/platform?password={CANARY}", id="unreachable"),
    pytest.param(f"postgresql://nexus:{ENCODED}@127.0.0.1:1/platform", id="unreachable-encoded"),
    pytest.param(f"postgresql+nosuchdriver://nexus:{CANARY}@127.0.0.1/platform", id="unknown-driver"),
    pytest.param(f"postgresql://nexus:{CANARY}@127.0.0.1:notaport/platform", id="bad-port"),
    pytest.param(f"postgresql://nexus:{CANARY}@x@127.0.0.1/platform", id="unencoded-at"),
    pytest.param(f"oracle://nexus:{CANARY}@127.0.0.1/platform", id="unknown-database"),
    pytest.param(f"postgresql://nexus@127.0.0.1:1/platform?sslmode=bogus&password={CANARY}", id="bad-option"),
]


@pytest.mark.parametrize("url", BROKEN)
def test_a_database_that_cannot_be_used_is_one_line_without_password(
    url: str, nexus: Run, tree: Callable[..., Path], tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    saved.write_text("{}")
    for command in (
        ["plan", str(tree())],
        ["apply", str(tree()), "--auto-approve"],
        ["history"],
        ["db", "upgrade"],
    ):
        assert nexus(*command, "--database-url", url) == 1, command
        assert _leaks(nexus.output) == [], (command, nexus.output)
        assert "Traceback" not in nexus.output and "internal error" not in nexus.output, nexus.output
        assert nexus.err.startswith("error: ") and nexus.err.count("\n") == 1, nexus.err


@pytest.mark.postgres
def test_bad_credentials_on_a_real_server_do_not_echo_the_password(
    pg_url: str, nexus: Run, tree: Callable[..., Path]
) -> None:
    url = sa.engine.make_url(pg_url).set(username="no_such_role", password=CANARY)
    assert nexus("plan", str(tree()), "--database-url", url.render_as_string(hide_password=False)) == 1
    assert "no_such_role" in nexus.err and _leaks(nexus.output) == [] and "Traceback" not in nexus.output


@pytest.mark.postgres
def test_plan_json_and_saved_plans_never_carry_the_password(
    pg_url: str, nexus: Run, tree: Callable[..., Path], tmp_path: Path
) -> None:
    """Trust authentication ignores the password, so the command works and its outputs can be read."""
    url = sa.engine.make_url(pg_url).set(password=CANARY).render_as_string(hide_password=False)
    url += f"?password={CANARY}"
    saved = tmp_path / "plan.json"
    assert nexus("plan", str(tree()), "--format", "json", "--out", str(saved), "--database-url", url) == 0
    assert json.loads(nexus.out)["database"] == redact(url)
    assert "***" in json.loads(nexus.out)["database"]
    assert _leaks(nexus.output + saved.read_text()) == []
    assert nexus("apply", "--plan", str(saved), "--database-url", url) == 0
    assert _leaks(nexus.output) == []
    assert nexus("history", "--format", "json", "--database-url", url) == 0
    assert _leaks(nexus.output) == []


def test_database_errors_never_show_bound_parameters(database_url: str) -> None:
    engine = engine_for(database_url)
    with pytest.raises(sa.exc.IntegrityError) as caught, engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO organizations (slug, labels) VALUES (:slug, NULL)"),
            {"slug": f"{CANARY}-slug"},
        )
    engine.dispose()
    assert "[SQL parameters hidden due to hide_parameters=True]" in str(caught.value)
    assert "parameters: " not in str(caught.value)
    assert CANARY not in describe_failure(caught.value, database_url)


def test_upgrade_schema_refuses_an_unknown_revision_without_touching_it(
    database_url: str, unknown_revision: str
) -> None:
    engine = engine_for(database_url)
    with engine.connect() as connection, pytest.raises(DatabaseError, match=unknown_revision):
        upgrade_schema(connection, database_url)
    engine.dispose()
    assert _scalar(database_url, "SELECT version_num FROM alembic_version") == unknown_revision


@pytest.mark.parametrize(
    ("seconds", "milliseconds"),
    [
        (0, 0),
        (0.0001, 1),
        (1.5, 1500),
        (60, 60_000),
        (float("inf"), None),
        (float("nan"), None),
        (1e12, None),
    ],
)
def test_lock_timeouts_become_whole_milliseconds_or_no_limit(
    seconds: float, milliseconds: int | None
) -> None:
    assert lock_milliseconds(seconds) == milliseconds


def test_an_infinite_lock_timeout_is_accepted(sqlite_url: str, nexus: Run, tree: Callable[..., Path]) -> None:
    assert (
        nexus("apply", str(tree()), "--auto-approve", "--lock-timeout", "inf", "--database-url", sqlite_url)
        == 0
    )


@pytest.mark.postgres
def test_an_application_name_in_the_url_is_kept(pg_url: str) -> None:
    engine = engine_for(f"{pg_url}?application_name=deploy-bot")
    with engine.connect() as connection:
        shown = connection.execute(
            sa.text("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")
        ).scalar()
    engine.dispose()
    assert shown == "deploy-bot"
