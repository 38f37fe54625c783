"""Which database this is, by what it is rather than how it is reached: a saved plan made through a
read-only role, or through `localhost`, is applied through the writer role, or `127.0.0.1`.

A database's identity joins what its backend says it is (PostgreSQL: the cluster's system identifier
and the database's name; SQLite: its file) with the random `database_id` that `db upgrade` stored in
`nexus_metadata`, so a copy restored on another server, or a database created again, is another one.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url

from plan_apply.database.dialects import dialect_of
from plan_apply.database.engine import (
    describe_failure,
    dialect_for,
    engine_for,
    redact,
    require_current_schema,
    same_database,
)
from plan_apply.errors import DatabaseError

__all__ = ["DATABASE_ID", "database_identity", "nexus_metadata", "saved_plan_refusal"]

nexus_metadata = sa.Table(
    "nexus_metadata",
    sa.MetaData(),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)
"""nexus's own facts about a database (migration 0003); kept apart from the platform's tables."""

DATABASE_ID = "database_id"


def database_identity(connection: Connection) -> str | None:
    """The identity of the database `connection` is on, or None for one private to this process (in
    memory), which no saved plan can name. Reads only (SELECT), so any role can tell it."""
    server = dialect_of(connection).server_identity(connection)
    if server is None:
        return None
    value = connection.execute(
        sa.select(nexus_metadata.c.value).where(nexus_metadata.c.key == DATABASE_ID)
    ).scalar()
    return f"{server}/{value or '-'}"


def saved_plan_refusal(plan_file: str, recorded: str, recorded_id: str | None, url: str) -> str | None:
    """Why the plan in `plan_file`, made for database `recorded` (redacted URL) identified as `recorded_id`,
    may not be applied to `url`; None when it may. A plan without an identity (an older nexus's, or one
    made before the database existed) is matched by URL, as before identities."""
    if recorded_id is None:
        return (
            None
            if same_database(recorded, url)
            else f"{plan_file} was made for database {recorded}, not {redact(url)}"
        )
    if _identity_at(url) == recorded_id:
        return None
    if same_database(recorded, url):
        return (
            f"{plan_file} was made for database {recorded}, but the database there now is another one "
            "(created again, or restored from a copy, since the plan was made)"
        )
    return f"{plan_file} was made for database {recorded}, not {redact(url)}"


def _identity_at(url: str) -> str | None:
    """The identity of the database at `url`, read without creating or changing it; None when there is
    none. A schema this nexus cannot read is refused as `open_database` refuses it."""
    if not dialect_for(url).exists(make_url(url)):
        return None
    engine = engine_for(url, purpose="apply", create=False)
    try:
        with engine.connect() as connection:
            require_current_schema(connection, url)
            with connection.begin():
                return database_identity(connection)
    except sa.exc.DBAPIError as exc:
        raise DatabaseError(describe_failure(exc, url)) from None
    finally:
        engine.dispose()
