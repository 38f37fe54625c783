"""Shared fixtures: configuration trees in temporary folders, and databases on both backends.

Every database test runs on SQLite and on PostgreSQL. PostgreSQL tests use a fresh database per test
session (created from NEXUS_TEST_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/test, and
dropped afterwards); where no server answers they skip with the reason, unless
NEXUS_REQUIRE_POSTGRES=1 (as in CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from plan_apply.database.engine import engine_for, upgrade_schema

from .support.harness import postgres_database

POSTGRES_ADMIN_URL = os.environ.get(
    "NEXUS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("NEXUS_REQUIRE_POSTGRES") == "1"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "orgs"


def _postgres_unavailable() -> str | None:
    try:
        engine = sa.create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # any failure to connect means: no server here
        return f"no PostgreSQL server at {POSTGRES_ADMIN_URL} ({type(exc).__name__}); set NEXUS_TEST_POSTGRES_URL"
    return None


@pytest.fixture(scope="session")
def postgres_server_url(worker_id: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (per xdist worker), dropped at the end."""
    reason = _postgres_unavailable()
    if reason:
        if REQUIRE_POSTGRES:
            pytest.fail(reason)
        pytest.skip(reason)
    with postgres_database(POSTGRES_ADMIN_URL, migrate=False, prefix=f"nexus_test_{worker_id}") as url:
        yield url


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    return str(getattr(request.config, "workerinput", {}).get("workerid", "main"))


def _upgrade(url: str) -> None:
    engine = engine_for(url)
    with engine.connect() as connection:
        upgrade_schema(connection)
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per session; each test gets a copy (migrating each time is slow)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    _upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_upgraded(postgres_server_url: str) -> str:
    _upgrade(postgres_server_url)
    return postgres_server_url


def _truncate_postgres(url: str) -> None:
    """Empty every table of the migrated schema (faster than dropping and migrating again)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        upgrade_schema(connection)  # a test may have dropped or downgraded it
        names = [n for n in sa.inspect(connection).get_table_names() if n != "alembic_version"]
        if names:
            connection.exec_driver_sql(
                "TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"
            )
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database: a copy of the SQLite template, or the session's PostgreSQL emptied."""
    if request.param == "sqlite":
        path = tmp_path / "platform.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_upgraded")
    _truncate_postgres(url)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = engine_for(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def write_tree(tmp_path: Path) -> Callable[..., Path]:
    """Write `{relative path: YAML text}` under a fresh folder and return it (text is dedented)."""

    def write(files: dict[str, str | bytes], root: str = "config") -> Path:
        base = tmp_path / root
        for name, content in files.items():
            target = base / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
        return base

    return write


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens", action="store_true", help="rewrite tests/scenarios/*/expected.* files"
    )
