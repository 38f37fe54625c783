"""A saved plan names its database by what it is, not by how it was reached (issue 14): a plan made
through a read-only role applies through the writer role, `localhost` and `127.0.0.1` are one database,
and another database, or one created again at the same URL, is refused."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from .conftest import POSTGRES_ADMIN_URL
from .support.harness import postgres_database
from .test_cli_plan_apply import ORG, Run


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.delenv("NEXUS_DATABASE_URL", raising=False)
    return Run(capsys, None)  # every command line here names its database


@pytest.fixture
def tree(write_tree: Callable[..., Path]) -> Path:
    return write_tree({"lakeview.yaml": ORG.replace(", PROTECT", "")})


@pytest.fixture
def scratch(postgres_server_url: str) -> Iterator[str]:
    """A migrated PostgreSQL database of its own (a role may be granted on it alone)."""
    with postgres_database(POSTGRES_ADMIN_URL, prefix="nexus_identity") as url:
        yield url


def _with(url: str, **parts: Any) -> str:
    return sa.engine.make_url(url).set(**parts).render_as_string(hide_password=False)


@pytest.fixture
def read_only(scratch: str) -> Iterator[str]:
    """The scratch database through a role that may only connect and SELECT."""
    role = f"nexus_ro_{uuid.uuid4().hex[:8]}"
    database = sa.engine.make_url(scratch).database
    admin = sa.create_engine(scratch, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        connection.exec_driver_sql(f'GRANT CONNECT ON DATABASE "{database}" TO {role}')
        connection.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {role}")
        connection.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    try:
        yield _with(scratch, username=role)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP OWNED BY {role}")
            connection.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()


def test_a_plan_made_through_a_read_only_role_is_applied_through_the_writer_role(
    nexus: Run, tree: Path, scratch: str, read_only: str, tmp_path: Path
) -> None:
    saved = tmp_path / "plan-ro.json"
    assert nexus("plan", str(tree), "--out", str(saved), "--database-url", read_only) == 0, nexus.err
    assert json.loads(saved.read_text())["database_id"]
    assert nexus("apply", "--plan", str(saved), "--database-url", scratch) == 0, nexus.err
    assert nexus("plan", str(tree), "--detailed-exitcode", "--database-url", read_only) == 0, nexus.err


def test_localhost_and_127_0_0_1_are_one_database(
    nexus: Run, tree: Path, scratch: str, tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    by_name, by_address = _with(scratch, host="localhost"), _with(scratch, host="127.0.0.1")
    assert nexus("plan", str(tree), "--out", str(saved), "--database-url", by_name) == 0, nexus.err
    assert nexus("apply", "--plan", str(saved), "--database-url", by_address) == 0, nexus.err


def test_a_plan_for_another_postgresql_database_on_the_same_server_is_refused(
    nexus: Run, tree: Path, scratch: str, tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    assert nexus("plan", str(tree), "--out", str(saved), "--database-url", scratch) == 0
    with postgres_database(POSTGRES_ADMIN_URL, prefix="nexus_identity") as other:
        assert nexus("apply", "--plan", str(saved), "--database-url", other) == 1
        assert "was made for database" in nexus.err
    assert nexus("plan", str(tree), "--detailed-exitcode", "--database-url", scratch) == 2


def test_a_database_created_again_at_the_same_url_is_another_database(
    nexus: Run, tree: Path, tmp_path: Path
) -> None:
    url, saved = f"sqlite:///{tmp_path / 'platform.db'}", tmp_path / "plan.json"
    assert nexus("db", "upgrade", "--database-url", url) == 0
    assert nexus("plan", str(tree), "--out", str(saved), "--database-url", url) == 0
    (tmp_path / "platform.db").unlink()
    assert nexus("db", "upgrade", "--database-url", url) == 0
    assert nexus("apply", "--plan", str(saved), "--database-url", url) == 1
    assert "another one (created again" in nexus.err


def test_a_sqlite_file_named_relatively_or_absolutely_is_one_database(
    nexus: Run, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    saved = tmp_path / "plan.json"
    assert nexus("db", "upgrade", "--database-url", "sqlite:///platform.db") == 0
    assert nexus("plan", str(tree), "--out", str(saved), "--database-url", "sqlite:///platform.db") == 0
    absolute = f"sqlite:///{tmp_path / 'platform.db'}"
    assert nexus("apply", "--plan", str(saved), "--database-url", absolute) == 0, nexus.err


def _without_identity(saved: Path) -> None:
    """The plan as a nexus before database identities wrote it (no database_id, its integrity to match)."""
    from plan_apply.plan import integrity_of

    raw = json.loads(saved.read_text())
    del raw["database_id"], raw["integrity"]
    saved.write_text(json.dumps({**raw, "integrity": integrity_of(raw)}))


def test_a_plan_without_an_identity_is_matched_by_its_url(nexus: Run, tree: Path, tmp_path: Path) -> None:
    url, other = f"sqlite:///{tmp_path / 'platform.db'}", f"sqlite:///{tmp_path / 'other.db'}"
    saved = tmp_path / "plan.json"
    for database in (url, other):
        assert nexus("db", "upgrade", "--database-url", database) == 0
    assert nexus("plan", str(tree), "--out", str(saved), "--database-url", url) == 0
    _without_identity(saved)
    assert nexus("apply", "--plan", str(saved), "--database-url", other) == 1
    assert "was made for database" in nexus.err
    assert nexus("apply", "--plan", str(saved), "--database-url", url) == 0, nexus.err


def test_a_refused_plan_names_both_databases_without_their_passwords(
    nexus: Run, tree: Path, scratch: str, tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    assert nexus("plan", str(tree), "--out", str(saved), "--database-url", scratch) == 0
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert nexus("db", "upgrade", "--database-url", other) == 0
    assert nexus("apply", "--plan", str(saved), "--database-url", other) == 1
    assert f"was made for database {json.loads(saved.read_text())['database']}, not {other}" in nexus.err
