"""Rows as the driver takes them: each value through its column's own SQLAlchemy bind processing, once.

Inserts hand the driver ready values (one executemany or one COPY per table, without SQLAlchemy's
per-row parameter handling), and an apply binds the next organization's new rows on another thread while
the current one commits (`plan_apply.prepared`).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from plan_apply.database.dialects import dialect_of

__all__ = ["bound_row", "bulk_insert", "insert_bound"]


@functools.lru_cache(maxsize=1024)
def _processor(table: sa.Table, column: str, dialect: Dialect) -> Callable[[Any], Any] | None:
    processor: Callable[[Any], Any] | None = (
        table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    )
    return processor


def bound_row(table: sa.Table, row: Mapping[str, Any], dialect: Dialect) -> dict[str, Any]:
    """`row` (column → Python value) with every value as the driver takes it."""
    bound = {}
    for column, value in row.items():
        process = _processor(table, column, dialect)
        bound[column] = value if process is None else process(value)
    return bound


def insert_bound(
    connection: Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """INSERT bound rows in one statement: a column some rows leave out takes its value from `defaults`
    (else None), bound as any value."""
    if not rows:
        return
    columns = tuple(sorted({column for row in rows for column in row}))
    missing = bound_row(table, {c: (defaults or {}).get(c) for c in columns}, connection.dialect)
    dialect_of(connection).insert_bound(connection, table, columns, _in_order(rows, columns, missing))


def _in_order(
    rows: Sequence[Mapping[str, Any]], columns: tuple[str, ...], missing: Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """Each row's values in `columns`' order (a row naming every column, the usual case, as it is)."""
    if len(columns) == 1:  # itemgetter of one name gives the value, not a tuple
        (column,) = columns
        return [(row.get(column, missing[column]),) for row in rows]
    values = operator.itemgetter(*columns)
    return [values(row) if len(row) == len(columns) else values({**missing, **row}) for row in rows]


def bulk_insert(connection: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT rows of Python values in one statement."""
    insert_bound(connection, table, [bound_row(table, row, connection.dialect) for row in rows])
