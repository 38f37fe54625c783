"""Writers: the registry `(type, action) → function` that turns batches of changes into SQL.

Each writer gets a run of consecutive changes of one (type, action) and writes them with a fixed
number of statements (Core executemany; no ORM unit of work, no RETURNING batches). Row ids are looked
up in the `WriteContext`, which the executor fills from the state it read under the lock. The generic
writers live here; what is particular to a section (extra columns, links, invitations) is a hook of
its section module (`plan_apply/sections/`).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from plan_apply.database import tables as t
from plan_apply.plan import Action, Change
from plan_apply.sections import SECTIONS, Record, Section
from plan_apply.sections.section import Writer

__all__ = [
    "WRITERS",
    "WriteContext",
    "Writer",
    "after_rename",
    "columns_of",
    "insert_rows",
    "registry",
    "row_address",
    "update_rows",
    "writers_of",
]


@dataclass
class WriteContext:
    """What writers share inside one organization's transaction."""

    connection: Connection
    slug: str
    org_id: int | None
    records: dict[str, Record]
    ids: dict[str, int]
    documents: Mapping[str, str]
    now: datetime.datetime
    counter_propose: bool = False
    platform_schools: frozenset[str] = frozenset()
    skipped: list[str] = field(default_factory=list)

    def row_id(self, address: str) -> int:
        try:
            return self.ids[address]
        except KeyError:
            raise LookupError(
                f"{address} does not exist in the database (was it removed meanwhile?)"
            ) from None

    def applied(self, change: Change) -> dict[str, Any]:
        """The record as nexus leaves it: the baseline the next plan tells drift from."""
        current = self.records.get(change.address)
        base = dict(current.fields) if current is not None and change.action is not Action.CREATE else {}
        base.update({k: v for k, v in change.after.items() if k not in ("key", "archived", "status")})
        return base


Extra = Callable[[Change], dict[str, Any]]


def _key_of(address: str) -> str:
    return address.rsplit("/", 1)[1]


def _table(section: Section) -> sa.Table:
    return t.metadata.tables[section.table]


def columns_of(section: Section, values: Mapping[str, Any]) -> dict[str, Any]:
    """A change's values as the section's columns (fields without a column are written elsewhere)."""
    mapping = section.columns
    return {mapping[k].name: mapping[k].to_row(v) for k, v in values.items() if k in mapping}


def _refresh_ids(ctx: WriteContext, section: Section, addresses: Sequence[str]) -> None:
    """Learn the ids of rows just inserted: one SELECT per batch (no RETURNING round trips)."""
    table = _table(section)
    keys = {_key_of(a): a for a in addresses}
    for row in ctx.connection.execute(
        sa.select(table.c.id, table.c.key).where(table.c.org_id == ctx.org_id, table.c.key.in_(list(keys)))
    ):
        ctx.ids[keys[row.key]] = row.id


def _none(change: Change) -> dict[str, Any]:
    return {}


def insert_rows(ctx: WriteContext, section: Section, changes: Sequence[Change], extra: Extra) -> None:
    """INSERT the changes' rows in one executemany; learn their ids when later writes point at them."""
    table = _table(section)
    keyed = section.key_column == "key"
    rows = [
        {
            "managed": True,
            "applied": ctx.applied(c),
            **({"key": _key_of(c.address)} if keyed else {}),
            **columns_of(section, c.after),
            **extra(c),
        }
        for c in changes
    ]
    columns = sorted({k for row in rows for k in row})
    defaults = {"protected": False}
    ctx.connection.execute(
        sa.insert(table), [{k: row.get(k, defaults.get(k)) for k in columns} for row in rows]
    )
    if section.referenced:
        _refresh_ids(ctx, section, [c.address for c in changes])


def update_rows(ctx: WriteContext, section: Section, changes: Sequence[Change], extra: Extra = _none) -> None:
    """UPDATE … WHERE id = :id, one executemany per group of changes touching the same columns."""
    table = _table(section)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        values = {
            "managed": True,
            "applied": ctx.applied(change),
            **columns_of(section, change.after),
            **extra(change),
        }
        if change.after.get("archived") is False:
            values["archived_at"] = None
        if "key" in change.after and section.key_column is not None:
            values[section.key_column] = change.after["key"]
        groups.setdefault(tuple(sorted(values)), []).append(
            {"row_id": ctx.row_id(row_address(change)), **values}
        )
    for columns, rows in groups.items():
        statement = (
            sa.update(table)
            .where(table.c.id == sa.bindparam("row_id"))
            .values({c: sa.bindparam(c) for c in columns})
        )
        ctx.connection.execute(statement, rows)


def row_address(change: Change) -> str:
    """Where the row of a change is known: renames (also an adoption under a previous key) are found
    under their old key."""
    if change.action in (Action.RENAME, Action.ADOPT) and "key" in change.before:
        return change.address[: -len(_key_of(change.address))] + str(change.before["key"])
    return change.address


def _archive_rows(ctx: WriteContext, section: Section, changes: Sequence[Change]) -> None:
    table = _table(section)
    ids = [ctx.row_id(c.address) for c in changes]
    ctx.connection.execute(sa.update(table).where(table.c.id.in_(ids)).values(archived_at=ctx.now))


def _delete_rows(ctx: WriteContext, section: Section, changes: Sequence[Change]) -> None:
    table = _table(section)
    ids = [ctx.row_id(c.address) for c in changes]
    ctx.connection.execute(sa.delete(table).where(table.c.id.in_(ids)))


def after_rename(ctx: WriteContext, changes: Sequence[Change]) -> None:
    """A renamed row is found under its new address (and so are the children of a service); removals
    planned under the old address (a window of a renamed service) still find it there."""
    for change in changes:
        old = row_address(change)
        if old == change.address:
            continue
        for address in [a for a in ctx.ids if a == old or a.startswith(old + "/")]:
            # The old address stays valid too: removals planned under it still find the row.
            ctx.ids[change.address + address[len(old) :]] = ctx.ids[address]


def writers_of(section: Section) -> dict[Action, Writer]:
    """A keyed section's writers: the generic ones with its hooks, then the ones it replaces."""
    extra, after = section.extra, section.after

    def bound(ctx: WriteContext) -> Extra:
        return (lambda c: extra(ctx, c)) if extra else _none

    def create(ctx: WriteContext, changes: Sequence[Change]) -> None:
        insert_rows(ctx, section, changes, lambda c: {"org_id": ctx.org_id, **bound(ctx)(c)})
        if after:
            after(ctx, changes)

    def update(ctx: WriteContext, changes: Sequence[Change]) -> None:
        update_rows(ctx, section, changes, bound(ctx))
        after_rename(ctx, changes)
        if after:
            after(ctx, changes)

    generic: dict[Action, Writer] = {
        Action.CREATE: create,
        Action.UPDATE: update,
        Action.ADOPT: update,
        Action.RENAME: update,
        Action.ARCHIVE: lambda ctx, changes: _archive_rows(ctx, section, changes),
        Action.DELETE: lambda ctx, changes: _delete_rows(ctx, section, changes),
    }
    if section.root or section.single:  # one row per organization: only its own writers
        generic = {}
    return generic | {Action(action): writer for action, writer in section.writers.items()}


def registry(sections: Sequence[Section]) -> dict[tuple[str, Action], Writer]:
    """Every (type, action) the sections can write."""
    return {
        (section.type, action): writer
        for section in sections
        for action, writer in writers_of(section).items()
    }


WRITERS: dict[tuple[str, Action], Writer] = registry(SECTIONS)
"""Every (type, action) a plan can hold; a test checks the registry is complete."""
