"""PostgreSQL, through psycopg 3 only: applies lock per organization and run side by side.

An apply takes a transaction-scoped advisory lock on each organization's slug (never a session lock,
which a pooled connection could keep), in sorted order so that two applies of overlapping sets cannot
deadlock, with `lock_timeout` set for the transaction. Each session is named (`application_name`) after
the command, user, host and process, so that a waiting apply can say who holds its lock.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.types import TypeEngine

from plan_apply.database.dialects.protocol import Locked
from plan_apply.database.dialects.sessions import application_name, lock_key, lock_milliseconds
from plan_apply.errors import DatabaseError

__all__ = ["DIALECT", "PostgreSQL"]

_DRIVERS = frozenset({"postgresql", "postgres", "postgresql+psycopg"})  # all meaning psycopg 3
_LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout expired
_GONE = ("57P01", "57P02", "57P03")  # admin shutdown, crash shutdown, cannot connect now


def _sqlstate(exc: BaseException) -> str:
    return str(getattr(getattr(exc, "orig", None), "sqlstate", "") or "")


_HOLDER = sa.text(
    """
    SELECT a.application_name, host(a.client_addr) AS client, a.usename, a.pid,
           a.backend_start, a.xact_start
    FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.classid::bigint = CAST(:high AS bigint) AND l.objid::bigint = CAST(:low AS bigint)
    """
)


_REVISION = sa.text(
    """
    SELECT CASE WHEN to_regclass('alembic_version') IS NOT NULL THEN
      (xpath('/row/version_num/text()',
             query_to_xml('SELECT version_num FROM alembic_version', false, true, '')))[1]::text
    END
    """
)
"""The alembic revision in one round trip: the table is only read (by `query_to_xml`, planned when run)
where the catalog has it, so a database without one never aborts the transaction."""


_SET_TIMEOUT = "SELECT set_config('lock_timeout', :timeout, true)"
_TIMEOUT = sa.text(_SET_TIMEOUT)


@functools.cache
def _locking(wait: bool, timeout: bool) -> sa.TextClause:
    """The advisory lock of :key (waited for, or only tried), with the transaction's lock_timeout set to
    :timeout first when `timeout`."""
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    setting = f" FROM ({_SET_TIMEOUT}) AS timeout" if timeout else ""
    return sa.text(f"SELECT {function}(:key){setting}")


def _utc(moment: datetime.datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class PostgreSQL:
    name = "postgresql"
    aliases: tuple[str, ...] = ("postgres",)
    example = "postgresql://"
    json_type: TypeEngine[Any] | None = JSONB()  # indexed, compared by value
    locks_rows = True

    def encoded_json(self, text: str) -> Any:
        """psycopg's `Jsonb` wrapper, told the text is its encoding (as SQLAlchemy wraps any JSONB value)."""
        from psycopg.types.json import Jsonb

        return Jsonb(text, dumps=_as_is)

    def checked_url(self, url: URL, shown: str) -> URL:
        if url.drivername not in _DRIVERS:
            raise DatabaseError(
                f"nexus talks to PostgreSQL through psycopg 3 only, not {url.drivername!r}: "
                f"use postgresql:// or postgresql+psycopg:// in {shown}"
            )
        return url.set(drivername="postgresql+psycopg")

    def engine_options(self, url: URL, purpose: str | None) -> dict[str, Any]:
        # Statements are planned for the rows there are when they run: psycopg prepares a statement run five
        # times, and the server then keeps a generic plan made while the tables were small (during a
        # fleet's first apply, the walk of a family and the people found by email scanned whole tables).
        connect_args: dict[str, Any] = {"connect_timeout": 10, "prepare_threshold": None}
        if "application_name" not in url.query:  # the URL's own name wins: someone chose it
            connect_args["application_name"] = application_name(purpose)
        return {"connect_args": connect_args, "pool_pre_ping": False}

    def exists(self, url: URL) -> bool:
        return True  # a server says so when connected to; connecting never creates a database

    def where(self, url: URL) -> str:
        return f"database {url.database!r} on {url.host or 'the local server'}"

    def never_create(self, url: URL) -> URL:
        return url

    def prepare(self, engine: Engine, lock_timeout: float) -> None:
        """Nothing per connection: the lock timeout is set per apply transaction (see `lock`)."""

    def lock(self, connection: Connection, slugs: Iterable[str], timeout: float) -> None:
        """`pg_advisory_xact_lock` per slug, in sorted order, released by COMMIT or ROLLBACK. `lock_timeout`
        stays set for the transaction, so a row lock held elsewhere is not waited for forever either; a
        timeout of 0 means "do not wait"."""
        milliseconds = lock_milliseconds(timeout)
        # PostgreSQL's lock_timeout 0 means "no limit" (None here); "do not wait" (0 here) takes its shortest
        # wait, 1 ms, for the row locks after the advisory one (which is only tried). It is set with the first
        # lock, in the same round trip: the subquery runs before the lock is asked for.
        setting: str | None = "1" if milliseconds == 0 else str(milliseconds or 0)
        for slug in sorted(set(slugs)):
            parameters = {"key": lock_key(slug), **({"timeout": setting} if setting is not None else {})}
            try:
                taken = connection.execute(
                    _locking(milliseconds != 0, setting is not None), parameters
                ).scalar()
            except sa.exc.OperationalError as exc:
                if _sqlstate(exc) == _LOCK_NOT_AVAILABLE:
                    raise Locked(slug, timeout) from None
                raise
            setting = None
            if milliseconds == 0 and not taken:
                raise Locked(slug, timeout)
        if setting is not None:  # no organization to lock: row locks are still bounded
            connection.execute(_TIMEOUT, {"timeout": setting})

    def lock_holder(self, engine: Engine, slug: str) -> str | None:
        """pg_locks ⋈ pg_stat_activity: the holder's application_name (`nexus apply alice@ci-7 pid 42`),
        client address, user and since when."""
        key = lock_key(slug)
        try:
            with engine.connect() as connection:
                row = connection.execute(
                    _HOLDER, {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF}
                ).first()
        except sa.exc.SQLAlchemyError:
            return None
        if row is None:
            return None
        parts = [row.application_name or f"PostgreSQL backend pid {row.pid}"]
        if row.client:
            parts.append(f"from {row.client}")
        if row.usename:
            parts.append(f"as {row.usename}")
        if row.xact_start is not None:
            parts.append(f"holding it since {_utc(row.xact_start)}")
        elif row.backend_start is not None:
            parts.append(f"connected since {_utc(row.backend_start)}")
        return ", ".join(parts)

    def failure_wording(
        self, exc: BaseException, slug: str, timeout: float, hint: str, reason: str
    ) -> str | None:
        if _sqlstate(exc) != _LOCK_NOT_AVAILABLE:
            return None
        setting = f" ({hint})" if hint else ""
        waited = "did not wait" if lock_milliseconds(timeout) == 0 else f"waited longer than {timeout:g}s"
        return (
            f"{waited}{setting} for a lock another session holds on {slug}'s rows; "
            f"nothing was written to it: {reason}"
        )

    def is_disconnect(self, exc: BaseException) -> bool:
        if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
            return True
        state = _sqlstate(exc)
        return state.startswith("08") or state in _GONE

    def parallel_applies(self, requested: int) -> int:
        return requested

    def planning_workers(self, url: URL, requested: int) -> int:
        return requested

    def insert_bound(
        self, connection: Connection, table: sa.Table, columns: Sequence[str], values: Sequence[Sequence[Any]]
    ) -> None:
        """COPY … FROM STDIN (psycopg 3's `cursor.copy`): one round trip for any number of rows, several
        times faster than an executemany."""
        if values:
            _copy(connection, table, tuple(columns), values)

    def lock_rows(self, connection: Connection, query: sa.Select[Any]) -> None:
        """`SELECT … FOR UPDATE`: conflicts with the `FOR KEY SHARE` a rotation's insert takes on its window
        and with any UPDATE or DELETE of the rows, so a platform write either committed before the state
        is read (and is seen) or waits for this transaction. `lock_timeout` bounds the wait."""
        connection.execute(query.with_for_update()).all()

    def insert_unless_present(
        self,
        connection: Connection,
        table: sa.Table,
        rows: Sequence[Mapping[str, Any]],
        unique: Sequence[str],
    ) -> None:
        """`INSERT … ON CONFLICT DO NOTHING`: a concurrent insert of the same row is waited for, not a
        unique violation."""
        statement = postgresql_insert(table).on_conflict_do_nothing(index_elements=list(unique))
        connection.execute(statement, [dict(row) for row in rows])

    def schema_revision(self, connection: Connection) -> str | None:
        revision = connection.execute(_REVISION).scalar()
        return None if revision is None else str(revision)

    def server_identity(self, connection: Connection) -> str | None:
        """The cluster's system identifier (`pg_control_system()`, readable by any role) and the
        database's name: a restored copy on another server is another database."""
        row = connection.execute(
            sa.text(
                "SELECT (SELECT system_identifier FROM pg_control_system()) AS system, current_database() AS db"
            )
        ).one()
        return f"postgresql:{row.system}:{row.db}"


def _as_is(text: str) -> str:
    return text


def _copy(
    connection: Connection, table: sa.Table, columns: tuple[str, ...], values: Sequence[Sequence[Any]]
) -> None:
    """COPY `values` (bound, in `columns`' order) into `table`, announced to SQLAlchemy's cursor events
    like any statement it executes (so listeners, such as tracing or fault injection, see it too)."""
    preparer = connection.dialect.identifier_preparer
    statement = f"COPY {preparer.format_table(table)} ({', '.join(preparer.quote(name) for name in columns)}) FROM STDIN"
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        connection.dispatch.before_cursor_execute(connection, cursor, statement, (), None, False)
        with cursor.copy(statement) as copy:
            for row in values:
                copy.write_row(row)
        connection.dispatch.after_cursor_execute(connection, cursor, statement, (), None, False)
    except Exception as exc:  # as SQLAlchemy handles its own: wrapped, a lost connection invalidated
        connection._handle_dbapi_exception(exc, statement, (), cursor, None)
        raise
    finally:
        cursor.close()


DIALECT = PostgreSQL()
