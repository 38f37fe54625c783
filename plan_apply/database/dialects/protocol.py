"""What a database backend must tell nexus: one protocol, so that nothing outside this package ever
tests a backend's name (a third backend is one more module here, never a branch in the executor)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.types import TypeEngine

__all__ = ["Dialect", "Locked"]


class Locked(Exception):
    """An organization's apply lock was not had within the lock timeout (another apply holds it)."""

    def __init__(self, slug: str, timeout: float) -> None:
        super().__init__(slug)
        self.slug, self.timeout = slug, timeout


class Dialect(Protocol):
    """One backend: how its URLs are checked and opened, how an apply locks, what its failures mean."""

    name: str
    """SQLAlchemy's backend name (`URL.get_backend_name()`, `Engine.dialect.name`)."""
    aliases: tuple[str, ...]
    """Other backend names meaning the same (`postgres`)."""
    example: str
    """How its URLs begin, for messages that list what nexus can drive."""
    json_type: TypeEngine[Any] | None
    """The column type JSON values are stored in here, where it is not SQLAlchemy's generic JSON."""
    locks_rows: bool
    """Whether `lock_rows` takes anything: where a write transaction already excludes every other writer
    it does not, and the queries naming the rows are not worth building."""

    def encoded_json(self, text: str) -> Any:
        """A JSON document already encoded, as the driver binds it to a JSON column."""
        ...

    def checked_url(self, url: URL, shown: str) -> URL:
        """`url` with the one driver nexus uses; a driver nexus cannot use is a DatabaseError naming `shown`."""
        ...

    def engine_options(self, url: URL, purpose: str | None) -> dict[str, Any]:
        """Keyword arguments of `create_engine` beyond the shared ones (connect arguments, pool)."""
        ...

    def exists(self, url: URL) -> bool:
        """Whether the database is there without creating it (a server's database: always, as far as
        nexus can tell before connecting)."""
        ...

    def where(self, url: URL) -> str:
        """Where the database lives, for a message saying it does not exist (a file's path)."""
        ...

    def never_create(self, url: URL) -> URL:
        """`url` opened so that connecting never creates the database (SQLite's `mode=rw`)."""
        ...

    def prepare(self, engine: Engine, lock_timeout: float) -> None:
        """Connect and begin hooks: how each connection and each (write) transaction starts."""
        ...

    def lock(self, connection: Connection, slugs: Iterable[str], timeout: float) -> None:
        """Take the organizations' apply locks for the rest of the transaction (waiting at most
        `timeout` seconds), or raise Locked."""
        ...

    def lock_holder(self, engine: Engine, slug: str) -> str | None:
        """Who holds an organization's apply lock, when the database can tell; None otherwise."""
        ...

    def failure_wording(
        self, exc: BaseException, slug: str, timeout: float, hint: str, reason: str
    ) -> str | None:
        """What a failed apply of `slug` means in this backend's terms (a lock waited for too long…);
        None when it has nothing to add. `hint` names the lock-timeout setting (or is empty); `reason`
        is the driver's own line."""
        ...

    def is_disconnect(self, exc: BaseException) -> bool:
        """Whether `exc` means the connection itself is gone (server restarted, backend terminated)."""
        ...

    def parallel_applies(self, requested: int) -> int:
        """How many organizations may be applied at once when `requested` were asked for."""
        ...

    def planning_workers(self, url: URL, requested: int) -> int:
        """How many worker processes may plan against `url` (each opens its own connection)."""
        ...

    def insert_bound(
        self, connection: Connection, table: sa.Table, columns: Sequence[str], values: Sequence[Sequence[Any]]
    ) -> None:
        """Insert many rows, their values already bound (`plan_apply.database.bound`) and in `columns`'
        order, in as few round trips as the backend allows."""
        ...

    def lock_rows(self, connection: Connection, query: sa.Select[Any]) -> None:
        """Lock the rows `query` selects against concurrent writers (the platform's own, which never take
        nexus's apply lock) for the rest of the transaction, waiting for those that hold them."""
        ...

    def insert_unless_present(
        self,
        connection: Connection,
        table: sa.Table,
        rows: Sequence[Mapping[str, Any]],
        unique: Sequence[str],
    ) -> None:
        """Insert each row unless a row with the same `unique` columns exists or is being inserted by
        another transaction (which is waited for): two writers of the same row both succeed."""
        ...

    def schema_revision(self, connection: Connection) -> str | None:
        """The database's alembic revision, or None without a version table: one statement, which never
        aborts the connection's transaction (every command asks it before anything else)."""
        ...

    def server_identity(self, connection: Connection) -> str | None:
        """What this database is, apart from nexus's own identifier: the server and database on
        PostgreSQL, the file on SQLite; None for a database private to this process (in memory)."""
        ...
