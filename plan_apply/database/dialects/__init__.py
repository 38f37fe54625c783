"""The backends nexus drives, one module each behind one protocol (`Dialect`): nothing outside this
package tests a backend's name, and a backend nexus does not know is refused by name.

A backend's module is imported when a URL or a connection first names it: a SQLite run never loads
SQLAlchemy's PostgreSQL dialect (a third of a no-op plan's imports).
"""

import functools as _functools
import importlib as _importlib
import typing as _typing
from typing import Any as _Any

import sqlalchemy
import sqlalchemy.engine
import sqlalchemy.types

from plan_apply import errors
from plan_apply.database.dialects.protocol import Dialect, Locked

__all__ = [
    "DIALECTS",
    "Dialect",
    "EncodedJSON",
    "Locked",
    "dialect_for_url",
    "dialect_named",
    "dialect_of",
    "json_column",
    "lock_rows",
    "takes_encoded_json",
]

_BACKENDS = ("sqlite", "postgresql")
"""Every backend nexus can drive, each the module of its name in this package (its `DIALECT`)."""

if _typing.TYPE_CHECKING:  # resolved on first use (`__getattr__`)
    DIALECTS: tuple[Dialect, ...]


@_functools.cache  # asked for at every bind of a JSON value and every write: importlib's look-up is not free
def _loaded(backend: str) -> Dialect:
    dialect: Dialect = _importlib.import_module(f"{__name__}.{backend}").DIALECT
    return dialect


def _every_dialect() -> tuple[Dialect, ...]:
    """Every backend nexus can drive (importing each)."""
    return tuple(_loaded(backend) for backend in _BACKENDS)


def __getattr__(name: str) -> _Any:
    """`DIALECTS`, every backend's dialect, imported the first time it is asked for."""
    if name != "DIALECTS":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()["DIALECTS"] = dialects = _every_dialect()
    return dialects


def dialect_named(backend: str, shown: str) -> Dialect:
    """The dialect of SQLAlchemy backend `backend` (of the URL shown as `shown`); any other backend is
    refused by name, never driven without its lock. Only that backend's module is imported (an alias or
    an unknown name looks at them all)."""
    if backend in _BACKENDS:
        return _loaded(backend)
    for dialect in _every_dialect():
        if backend in dialect.aliases:
            return dialect
    known = " or ".join(d.example for d in _every_dialect())
    raise errors.DatabaseError(f"unsupported database {backend!r} in {shown}: use {known}")


def dialect_for_url(url: sqlalchemy.engine.URL, shown: str) -> Dialect:
    """The dialect that drives a parsed URL (shown as `shown`); any other backend is refused by name."""
    return dialect_named(url.get_backend_name(), shown)


class EncodedJSON:
    """A JSON value already encoded (`text`), bound to a JSON column as it is: an apply encodes the next
    organization's rows on another thread while the current one commits. Never a `str`, so a JSON column
    of another type fails loudly instead of storing it as a JSON string."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    @classmethod
    def of(cls, value: _Any) -> "EncodedJSON":
        """`value` encoded: by orjson (an apply encodes every row it creates and its whole log entry),
        or, for what orjson declines, by the standard library, as SQLAlchemy's JSON type would."""
        import json

        import orjson

        try:
            return cls(orjson.dumps(value).decode())
        except TypeError:  # orjson.JSONEncodeError is one; json.dumps decides
            return cls(json.dumps(value))


class _JSON(sqlalchemy.types.TypeDecorator[_Any]):
    """JSON, stored as the backend a statement is compiled for stores it best (its dialect's `json_type`,
    PostgreSQL: JSONB), chosen then: defining the tables loads no backend."""

    impl = sqlalchemy.JSON
    cache_ok = True
    should_evaluate_none = True  # as JSON's: Python None is stored as JSON null, never as SQL NULL

    def load_dialect_impl(self, dialect: sqlalchemy.engine.Dialect) -> sqlalchemy.types.TypeEngine[_Any]:
        json_type = dialect_named(dialect.name, dialect.name).json_type
        return dialect.type_descriptor(json_type if json_type is not None else sqlalchemy.JSON())

    def bind_processor(self, dialect: sqlalchemy.engine.Dialect) -> _Any:
        """SQLAlchemy's own processing, except for an `EncodedJSON`, which the backend binds as it is, and
        for a plain dict or list, encoded as one first (JSON null and SQL NULL stay SQLAlchemy's)."""
        process = super().bind_processor(dialect)
        as_is = dialect_named(dialect.name, dialect.name).encoded_json

        def bind(value: _Any) -> _Any:
            if type(value) is EncodedJSON:
                return as_is(value.text)
            if type(value) in (dict, list):  # by orjson, as `applied` is: an apply binds thousands
                return as_is(EncodedJSON.of(value).text)
            return process(value) if process is not None else value

        return bind


def json_column() -> sqlalchemy.types.TypeEngine[_Any]:
    """The JSON column type, as each backend stores it best (PostgreSQL: JSONB)."""
    return _JSON()


def takes_encoded_json(column: sqlalchemy.Column[_Any]) -> bool:
    """Whether `column` binds an `EncodedJSON` as it is (nexus's JSON type; a table of another's may not)."""
    return isinstance(column.type, _JSON)


def dialect_of(bind: sqlalchemy.engine.Engine | sqlalchemy.engine.Connection) -> Dialect:
    """The dialect of an open engine or connection."""
    return dialect_named(bind.dialect.name, bind.dialect.name)


def lock_rows(
    connection: sqlalchemy.engine.Connection, queries: _typing.Callable[[], _typing.Iterable[_Any]]
) -> None:
    """Lock the rows each of `queries()` selects, as the connection's dialect locks rows; the queries are
    built only where it locks any (SQLite's write transaction already excludes every other writer)."""
    dialect = dialect_of(connection)
    if dialect.locks_rows:
        for query in queries():
            dialect.lock_rows(connection, query)
