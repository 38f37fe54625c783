"""SQLite, the embedded default: one writer at a time, so an apply's lock is the database's own.

Connections run with foreign keys on and transactions that are nexus's own: a write begins `BEGIN
IMMEDIATE`, which takes the database's write lock at once (waited for up to the lock timeout, SQLite's
busy timeout), so two applies serialize instead of losing an update. A file is opened with `mode=rw`
wherever it must not be created.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.types import TypeEngine

from plan_apply.database.dialects.sessions import FOREVER_MS, lock_milliseconds
from plan_apply.errors import DatabaseError

__all__ = ["DIALECT", "SQLite"]

_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite"})


def _in_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _path(url: URL) -> Path | None:
    """The file of `url`, or None for memory and for a `file:` URI (whose path is SQLite's to read)."""
    database = url.database or ""
    if _in_memory(url) or database.startswith("file:"):
        return None
    return Path(database)


class SQLite:
    name = "sqlite"
    aliases: tuple[str, ...] = ()
    example = "sqlite:///"
    json_type: TypeEngine[Any] | None = None
    locks_rows = False

    def encoded_json(self, text: str) -> Any:
        """The text itself: SQLite keeps JSON as text."""
        return text

    def checked_url(self, url: URL, shown: str) -> URL:
        if url.drivername not in _DRIVERS:
            raise DatabaseError(f"unsupported database {url.drivername!r} in {shown}: use {self.example}")
        return url

    def engine_options(self, url: URL, purpose: str | None) -> dict[str, Any]:
        path = _path(url)
        if path is not None and not path.resolve().parent.is_dir():
            raise DatabaseError(f"cannot open {url}: directory {path.resolve().parent} does not exist")
        return {}

    def exists(self, url: URL) -> bool:
        path = _path(url)
        return path is None or path.is_file()

    def where(self, url: URL) -> str:
        path = _path(url)
        return f"file {path.resolve()}" if path is not None else "the database in memory"

    def never_create(self, url: URL) -> URL:
        path = _path(url)
        if path is None:
            return url
        uri = "file:" + quote(str(path.resolve()), safe="/")
        return url.set(database=uri).update_query_dict({"mode": "rw", "uri": "true"})

    def prepare(self, engine: Engine, lock_timeout: float) -> None:
        busy = lock_milliseconds(lock_timeout)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None  # pysqlite: transactions are ours (BEGIN below)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={FOREVER_MS if busy is None else busy}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            mode = "IMMEDIATE" if connection.get_execution_options().get("nexus_write") else "DEFERRED"
            connection.exec_driver_sql(f"BEGIN {mode}")

    def lock(self, connection: Connection, slugs: Iterable[str], timeout: float) -> None:
        """Nothing more to take: BEGIN IMMEDIATE (a write transaction) already holds the database's
        write lock, waited for up to the same timeout (busy_timeout)."""

    def lock_holder(self, engine: Engine, slug: str) -> str | None:
        return None  # SQLite does not say which process holds its lock

    def failure_wording(
        self, exc: BaseException, slug: str, timeout: float, hint: str, reason: str
    ) -> str | None:
        if "database is locked" not in str(getattr(exc, "orig", exc)):
            return None
        setting = f" ({hint})" if hint else ""
        return (
            f"the SQLite database is locked by another process; gave up after {timeout:g}s{setting}; "
            f"nothing was written to {slug}"
        )

    def is_disconnect(self, exc: BaseException) -> bool:
        return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated

    def parallel_applies(self, requested: int) -> int:
        """One: SQLite has one writer at a time, so parallel applies would only queue on its lock (and
        could outwait the lock timeout)."""
        return 1

    def planning_workers(self, url: URL, requested: int) -> int:
        """One for a database private to this process (in memory) or not there yet: a worker must
        neither miss it nor create it."""
        return 1 if _in_memory(url) or not self.exists(url) else requested

    def insert_bound(
        self, connection: Connection, table: sa.Table, columns: Sequence[str], values: Sequence[Sequence[Any]]
    ) -> None:
        """One executemany of one prepared statement, through SQLAlchemy's connection (its events and
        error handling), without its per-row parameter handling: the values are bound already."""
        if values:
            connection.exec_driver_sql(
                _insert_statement(connection.dialect, table, tuple(columns)), list(values)
            )

    def lock_rows(self, connection: Connection, query: sa.Select[Any]) -> None:
        """Nothing to lock row by row: the write transaction's `BEGIN IMMEDIATE` already excludes every
        other writer (the platform's too) until it ends, so no write can land between read and write."""

    def insert_unless_present(
        self,
        connection: Connection,
        table: sa.Table,
        rows: Sequence[Mapping[str, Any]],
        unique: Sequence[str],
    ) -> None:
        """`INSERT … ON CONFLICT DO NOTHING` (one writer at a time: only a committed row can conflict)."""
        statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=list(unique))
        connection.execute(statement, [dict(row) for row in rows])

    def schema_revision(self, connection: Connection) -> str | None:
        """Read from the version table; a missing table fails when the statement is prepared, which
        leaves the transaction as it was."""
        try:
            revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        except sa.exc.OperationalError as exc:
            if "no such table" in str(exc.orig):
                return None
            raise
        return None if revision is None else str(revision)

    def server_identity(self, connection: Connection) -> str | None:
        """The file SQLite itself says it opened (so `nexus.db` and its absolute path are one database,
        and a copy elsewhere is another); None in memory."""
        for row in connection.exec_driver_sql("PRAGMA database_list"):
            if row[1] == "main":
                return f"sqlite:{Path(row[2]).resolve()}" if row[2] else None
        return None


@functools.lru_cache(maxsize=256)
def _insert_statement(dialect: sa.engine.Dialect, table: sa.Table, columns: tuple[str, ...]) -> str:
    """`INSERT INTO table (columns) VALUES (?, …)`, quoted as SQLAlchemy quotes them."""
    preparer = dialect.identifier_preparer
    names = ", ".join(preparer.quote(name) for name in columns)
    return f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES ({', '.join('?' * len(columns))})"


DIALECT = SQLite()
