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

__all__ = ["bound_row", "bulk_insert", "insert_bound", "processors_of"]


@functools.lru_cache(maxsize=256)
def processors_of(table: sa.Table, dialect: Dialect) -> dict[str, Callable[[Any], Any] | None]:
    """Each column's bind processor for `dialect` (None where the driver takes the value as it is)."""
    return {column.name: column.type.dialect_impl(dialect).bind_processor(dialect) for column in table.c}


def bound_row(table: sa.Table, row: Mapping[str, Any], dialect: Dialect) -> dict[str, Any]:
    """`row` (column → Python value) with every value as the driver takes it. A value its column cannot
    bind is a `StatementError`, as SQLAlchemy's own INSERT raises it (an apply fails that organization
    only); a column the table lacks is a KeyError."""
    processors = processors_of(table, dialect)
    try:
        return {
            column: value if (process := processors[column]) is None else process(value)
            for column, value in row.items()
        }
    except Exception:
        return _bound_one_by_one(table, row, processors)


def _bound_one_by_one(
    table: sa.Table, row: Mapping[str, Any], processors: Mapping[str, Callable[[Any], Any] | None]
) -> dict[str, Any]:
    """`bound_row` again, a column at a time, to say which column failed and how."""
    bound = {}
    for column, value in row.items():
        process = processors[column]
        try:
            bound[column] = value if process is None else process(value)
        except Exception as exc:
            raise sa.exc.StatementError(
                f"({type(exc).__module__}.{type(exc).__name__}) {exc}",
                f"INSERT INTO {table.name} ({column})",
                None,
                exc,
                hide_parameters=True,
            ) from exc
    return bound


def insert_bound(
    connection: Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """INSERT bound rows, one statement per set of columns they name: a column a row leaves out takes
    its value from `defaults`, else the column's own default, as that row inserted alone would (never
    a NULL because a row beside it names the column)."""
    if not rows:
        return
    named = set().union(*rows)
    given = bound_row(table, {c: v for c, v in (defaults or {}).items() if c in named}, connection.dialect)
    complete = [row for row in rows if len(row) == len(named)]  # as a rule, every row: one statement
    by_columns: dict[frozenset[str], list[Mapping[str, Any]]] = (
        {frozenset(named): complete} if complete else {}
    )
    for row in rows:
        if len(row) < len(named):  # filled from `defaults`: one statement whatever order they name them
            full = {**given, **row}
            by_columns.setdefault(frozenset(full), []).append(full)
    for same in by_columns.values():
        columns = tuple(same[0])
        dialect_of(connection).insert_bound(connection, table, columns, _in_order(same, columns))


def _in_order(rows: Sequence[Mapping[str, Any]], columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Each row's values in `columns`' order (every row names exactly those columns)."""
    if len(columns) == 1:  # itemgetter of one name gives the value, not a tuple
        return [(value,) for row in rows for value in row.values()]
    values = operator.itemgetter(*columns)
    return [values(row) for row in rows]


def bulk_insert(connection: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT rows of Python values (one statement per set of columns they name)."""
    insert_bound(connection, table, [bound_row(table, row, connection.dialect) for row in rows])
