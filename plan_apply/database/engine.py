"""Connecting to the platform database: URLs, redaction, SQLite/PostgreSQL behaviour, schema version.

SQLite runs with foreign keys on and explicit transactions (`BEGIN IMMEDIATE` for writes, so two
applies serialize instead of losing an update); PostgreSQL through psycopg 3. Engines never log bound
parameters, and a URL is only ever shown with its password (userinfo or `?password=`) hidden.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url

from plan_apply.errors import DatabaseError, SchemaOutOfDate

__all__ = [
    "DEFAULT_URL",
    "connect",
    "database_url",
    "engine_for",
    "is_embedded_default",
    "redact",
    "schema_state",
    "upgrade_schema",
    "write_transaction",
]

DEFAULT_URL = "sqlite:///nexus.db"
_SECRET_QUERY = re.compile(r"(?i)((?:ssl)?password|passwd|pwd|token|secret)=([^&\s]*)")


def database_url(option: str | None) -> str:
    """The URL in force: `--database-url`, else `NEXUS_DATABASE_URL`, else the embedded default."""
    return option or os.environ.get("NEXUS_DATABASE_URL") or DEFAULT_URL


def is_embedded_default(url: str) -> bool:
    return url == DEFAULT_URL


def redact(url: str) -> str:
    """The URL with every password hidden: in userinfo and in query parameters, also when malformed."""
    try:
        parsed = make_url(url)
        shown = parsed.render_as_string(hide_password=True)
    except Exception:  # a malformed URL still must not leak
        shown = re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}=***", shown)


def _normalized(url: str) -> URL:
    try:
        parsed = make_url(url)
    except Exception:
        raise DatabaseError(f"not a database URL: {redact(url)}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseError(
            f"unsupported database {parsed.get_backend_name()!r} in {redact(url)}: use sqlite:/// or postgresql://"
        )
    return parsed


def _sqlite_events(engine: Engine, lock_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite: transactions are ours (BEGIN below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = "IMMEDIATE" if connection.get_execution_options().get("nexus_write") else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")


def engine_for(url: str, lock_timeout: float = 60.0) -> Engine:
    """An engine for `url` that hides bound parameters and behaves the same on both backends."""
    parsed = _normalized(url)
    kwargs: dict[str, Any] = {"hide_parameters": True}
    if parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": 10, "application_name": "nexus"}
        kwargs["pool_pre_ping"] = False
    else:
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            parent = Path(database).resolve().parent
            if not parent.is_dir():
                raise DatabaseError(f"cannot open {redact(url)}: directory {parent} does not exist")
    engine = sa.create_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _sqlite_events(engine, lock_timeout)
    return engine


def describe_failure(exc: BaseException, url: str) -> str:
    """One line for a connection failure: what failed and where, never a password or parameters."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return f"cannot use database {redact(url)}: {text}"


def _secrets(url: str) -> list[str]:
    found = [m.group(2) for m in _SECRET_QUERY.finditer(url) if m.group(2)]
    try:
        password = make_url(url).password
    except Exception:
        password = None
    if password:
        found.append(str(password))
    return found


@contextmanager
def connect(engine: Engine, url: str) -> Iterator[Connection]:
    """A connection, with connection failures turned into one clear DatabaseError."""
    try:
        connection = engine.connect()
    except sa.exc.DBAPIError as exc:
        raise DatabaseError(describe_failure(exc, url)) from None
    except sa.exc.ArgumentError as exc:
        raise DatabaseError(describe_failure(exc, url)) from None
    try:
        yield connection
    finally:
        connection.close()


@contextmanager
def write_transaction(connection: Connection) -> Iterator[Connection]:
    """A transaction that takes SQLite's write lock at BEGIN (no lost updates between processes)."""
    writing = connection.execution_options(nexus_write=True)
    with writing.begin():
        yield writing


def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parent.parent / "migrations"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def schema_state(connection: Connection) -> tuple[str | None, str]:
    """(the database's alembic revision or None, the newest revision this nexus knows)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    current = MigrationContext.configure(connection).get_current_revision()
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    return current, str(head)


def upgrade_schema(connection: Connection) -> tuple[str | None, str]:
    """Create or upgrade the schema to the newest revision; returns (before, after)."""
    from alembic import command

    before, head = schema_state(connection)
    if before != head:
        command.upgrade(_alembic_config(connection), "head")
        connection.commit()
    return before, head


def require_current_schema(connection: Connection, url: str) -> None:
    """Refuse a database whose schema is missing, behind or ahead of this nexus."""
    current, head = schema_state(connection)
    connection.rollback()
    if current == head:
        return
    if current is None:
        raise SchemaOutOfDate(f"database {redact(url)} has no nexus schema: run `nexus db upgrade` first")
    raise SchemaOutOfDate(
        f"database {redact(url)} is at schema revision {current}, this nexus needs {head}: "
        "run `nexus db upgrade` (or use the nexus version that last upgraded it)"
    )
