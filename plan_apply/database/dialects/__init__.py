"""The backends nexus drives, one module each behind one protocol (`Dialect`): nothing outside this
package tests a backend's name, and a backend nexus does not know is refused by name."""

from typing import Any as _Any

import sqlalchemy
import sqlalchemy.engine
import sqlalchemy.types

from plan_apply import errors
from plan_apply.database.dialects import postgresql, sqlite
from plan_apply.database.dialects.protocol import Dialect, Locked

__all__ = ["DIALECTS", "Dialect", "Locked", "dialect_for_url", "dialect_named", "dialect_of", "json_column"]

DIALECTS: tuple[Dialect, ...] = (sqlite.DIALECT, postgresql.DIALECT)
"""Every backend nexus can drive."""


def dialect_named(backend: str, shown: str) -> Dialect:
    """The dialect of SQLAlchemy backend `backend` (of the URL shown as `shown`); any other backend is
    refused by name, never driven without its lock."""
    for dialect in DIALECTS:
        if backend == dialect.name or backend in dialect.aliases:
            return dialect
    known = " or ".join(d.example for d in DIALECTS)
    raise errors.DatabaseError(f"unsupported database {backend!r} in {shown}: use {known}")


def dialect_for_url(url: sqlalchemy.engine.URL, shown: str) -> Dialect:
    """The dialect that drives a parsed URL (shown as `shown`); any other backend is refused by name."""
    return dialect_named(url.get_backend_name(), shown)


def json_column() -> sqlalchemy.types.TypeEngine[_Any]:
    """The JSON column type, as each backend stores it best (PostgreSQL: JSONB)."""
    column: sqlalchemy.types.TypeEngine[_Any] = sqlalchemy.JSON()
    for dialect in DIALECTS:
        if dialect.json_type is not None:
            column = column.with_variant(dialect.json_type, dialect.name)
    return column


def dialect_of(bind: sqlalchemy.engine.Engine | sqlalchemy.engine.Connection) -> Dialect:
    """The dialect of an open engine or connection."""
    return dialect_named(bind.dialect.name, bind.dialect.name)
