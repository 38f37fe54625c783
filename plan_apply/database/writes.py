"""Writers: the registry `(type, action) → function` that turns batches of changes into SQL.

Each writer gets a run of consecutive changes of one (type, action) and writes them with a fixed
number of statements (Core executemany; no ORM unit of work, no RETURNING batches). Row ids are looked
up in the `WriteContext`, which the executor fills from the state it read under the lock. The generic
writers live here; what is particular to a section (extra columns, links, invitations) is a hook of
its section module (`plan_apply/sections/`).
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from plan_apply.database import tables as t
from plan_apply.database.bound import bound_row, bulk_insert, insert_bound, processors_of
from plan_apply.database.dialects import EncodedJSON, lock_rows, takes_encoded_json
from plan_apply.plan import Action, Change
from plan_apply.sections import SECTIONS, Record, Section
from plan_apply.sections.section import Writer

__all__ = [
    "WRITERS",
    "ChangedMeanwhile",
    "WriteContext",
    "Writer",
    "after_rename",
    "bulk_insert",
    "columns_of",
    "created_row",
    "family_kept_clean",
    "insert_rows",
    "locking_queries",
    "registry",
    "row_address",
    "update_rows",
    "writers_of",
]


class ChangedMeanwhile(LookupError):
    """A write touched fewer rows than the plan carries: someone changed or removed them since the state
    was read. The organization is rolled back."""

    def __init__(self, addresses: Sequence[str]) -> None:
        named = ", ".join(addresses) or "a planned item"
        super().__init__(f"{named} was changed or removed meanwhile: plan again")
        self.addresses = tuple(addresses)


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
    prepared: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Rows of created items computed ahead (`created_row`), by address; any other is computed here."""
    skipped: list[str] = field(default_factory=list)
    """Notes on the changes left alone (a school's proposal), for the people reading the result."""
    left_alone: list[Change] = field(default_factory=list)
    """The changes not written: never reported, nor logged, as applied."""

    def leave_alone(self, change: Change, why: str) -> None:
        """Do not write `change`, and say why."""
        self.left_alone.append(change)
        self.skipped.append(f"{change.address}: {why}")

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
        base.update(_baseline_fields(change))
        return base


Extra = Callable[[Change], dict[str, Any]]


def _baseline_fields(change: Change) -> dict[str, Any]:
    """What a change sets that the drift baseline (`applied`) keeps: not the key, nor states."""
    return {k: v for k, v in change.after.items() if k not in ("key", "archived", "status")}


def _key_of(address: str) -> str:
    return address.rsplit("/", 1)[1]


def _table(section: Section) -> sa.Table:
    return t.metadata.tables[section.table]


def columns_of(section: Section, values: Mapping[str, Any]) -> dict[str, Any]:
    """A change's values as the section's columns (fields without a column are written elsewhere)."""
    mapping = section.columns
    return {
        column.name: column.to_row(v) for k, v in values.items() if (column := mapping.get(k)) is not None
    }


def _refresh_ids(ctx: WriteContext, section: Section, addresses: Sequence[str]) -> None:
    """Learn the ids of rows just inserted: one SELECT per batch (no RETURNING round trips)."""
    keys = {_key_of(a): a for a in addresses}
    for row in ctx.connection.execute(_ids_query(section.table), {"org_id": ctx.org_id, "keys": list(keys)}):
        ctx.ids[keys[row.key]] = row.id


@functools.cache
def _ids_query(table_name: str) -> sa.Select[Any]:
    """The ids of an organization's rows by key, built once per table (every transaction asks)."""
    table = t.metadata.tables[table_name]
    return sa.select(table.c.id, table.c.key).where(
        table.c.org_id == sa.bindparam("org_id"), table.c.key.in_(sa.bindparam("keys", expanding=True))
    )


def _none(change: Change) -> dict[str, Any]:
    return {}


def created_row(section: Section, change: Change, dialect: Dialect) -> dict[str, Any]:
    """The row a created item is inserted as, bound for `dialect`, but for what only its transaction
    knows (ids): the same whoever computes it, so an apply computes the next organization's on another
    thread (`prepared`). Its `applied` baseline is encoded here, off the transaction's path."""
    bound, unbound = _created_bindings(section, dialect)
    try:  # each value converted and bound in one pass: an apply builds a row for every item it creates
        return _created(bound, change)
    except Exception:  # converted only, then bound a column at a time, to say which value failed and how
        return bound_row(_table(section), _created(unbound, change), dialect)


def _created(binding: _Binding, change: Change) -> dict[str, Any]:
    """`change`'s row, each value through `binding`."""
    row = {}
    for name, value in change.after.items():
        if (to := binding.fields.get(name)) is not None:
            column, convert = to
            row[column] = value if convert is None else convert(value)
    row["managed"] = binding.managed
    applied = _baseline_fields(change)
    row["applied"] = binding.applied(EncodedJSON.of(applied) if binding.encoded else applied)
    if binding.key is not None:
        row["key"] = binding.key(_key_of(change.address))
    return row


@dataclass(frozen=True, slots=True)
class _Binding:
    """How a section's created rows are made for one dialect: each field's column and conversion (its
    `to_row`, then, bound, the column's bind processor), and `managed`, `applied` and `key` alike."""

    fields: Mapping[str, tuple[str, Callable[[Any], Any] | None]]
    managed: Any
    applied: Callable[[Any], Any]
    key: Callable[[Any], Any] | None
    """None: the section's rows have no `key` column."""
    encoded: bool


_BINDINGS: dict[tuple[int, Dialect], tuple[Section, tuple[_Binding, _Binding]]] = {}
"""`_created_bindings`'s, by section (kept beside it: an id is another section's once that one is gone)."""


def _created_bindings(section: Section, dialect: Dialect) -> tuple[_Binding, _Binding]:
    """`section`'s `_Binding` for `dialect`, bound and converted only, made once."""
    found = _BINDINGS.get((id(section), dialect))
    if found is None or found[0] is not section:
        table = _table(section)
        made = (
            _binding(section, processors_of(table, dialect)),
            _binding(section, dict.fromkeys(table.c.keys())),
        )
        found = _BINDINGS[id(section), dialect] = (section, made)
    return found[1]


def _binding(section: Section, processors: Mapping[str, Callable[[Any], Any] | None]) -> _Binding:
    from plan_apply.sections.section import same

    def bind(column: str, to_row: Callable[[Any], Any] = same) -> Callable[[Any], Any] | None:
        process = processors[column]
        if to_row is same:
            return process
        if process is None:
            return to_row
        return lambda value: process(to_row(value))

    def always(column: str) -> Callable[[Any], Any]:
        return bind(column) or same

    return _Binding(
        {name: (c.name, bind(c.name, c.to_row)) for name, c in section.columns.items()},
        always("managed")(True),
        always("applied"),
        always("key") if section.key_column == "key" else None,
        takes_encoded_json(_table(section).c.applied),
    )


def insert_rows(ctx: WriteContext, section: Section, changes: Sequence[Change], extra: Extra) -> None:
    """INSERT the changes' rows in one statement; learn their ids when later writes point at them."""
    table = _table(section)
    prepared, dialect = ctx.prepared, ctx.connection.dialect
    rows = [
        {
            **(prepared.get(c.address) or created_row(section, c, dialect)),
            **bound_row(table, extra(c), dialect),
        }
        for c in changes
    ]
    insert_bound(ctx.connection, table, rows, defaults={"protected": False})
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
        counted(ctx, table, statement, rows)


def counted(
    ctx: WriteContext, table: sa.Table, statement: sa.Executable, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Execute `statement` for `rows` (each naming its `row_id`), checking it touched one row each; else
    raise ChangedMeanwhile naming the items whose rows are gone."""
    touched = ctx.connection.execute(statement, list(rows)).rowcount
    if touched != len(rows):
        _missing(ctx, table, [int(row["row_id"]) for row in rows])


def _missing(ctx: WriteContext, table: sa.Table, ids: Sequence[int]) -> None:
    present = set(ctx.connection.scalars(sa.select(table.c.id).where(table.c.id.in_(ids))))
    by_id = {row_id: address for address, row_id in ctx.ids.items()}
    raise ChangedMeanwhile(sorted({by_id.get(i, str(i)) for i in ids if i not in present}))


def row_address(change: Change) -> str:
    """Where the row of a change is known: renames (also an adoption under a previous key) are found
    under their old key."""
    if change.action in (Action.RENAME, Action.ADOPT) and "key" in change.before:
        address = change.address[: -len(_key_of(change.address))] + str(change.before["key"])
        if "org" in change.before:  # moving from another organization of the family
            address = str(change.before["org"]) + address[len(address.split("/", 1)[0]) :]
        return address
    return change.address


def _archive_rows(ctx: WriteContext, section: Section, changes: Sequence[Change]) -> None:
    table = _table(section)
    ids = [ctx.row_id(c.address) for c in changes]
    touched = ctx.connection.execute(
        sa.update(table).where(table.c.id.in_(ids)).values(archived_at=ctx.now)
    ).rowcount
    if touched != len(set(ids)):
        _missing(ctx, table, ids)


def _delete_rows(ctx: WriteContext, section: Section, changes: Sequence[Change]) -> None:
    table = _table(section)
    ids = [ctx.row_id(c.address) for c in changes]
    if ctx.connection.execute(sa.delete(table).where(table.c.id.in_(ids))).rowcount != len(set(ids)):
        _missing(ctx, table, ids)


def locking_queries(
    slug: str, changes: Sequence[Change], sections: Sequence[Section] = SECTIONS
) -> list[sa.Select[Any]]:
    """What to lock before the organization's state is read: one SELECT per table of the rows the plan
    changes (windows whose slots change, agreements whose terms change...), then the organization's row,
    which every platform write to the organization updates (its revision trigger). A row taken over from
    another organization of the family is locked where it is (its holder's, by slug). Child rows come first,
    in the order the platform's own writes take them, so that the two never wait on each other."""
    org_id = sa.select(t.organizations.c.id).where(t.organizations.c.slug == slug).scalar_subquery()
    by_section = {s.section: s for s in sections}
    queries = []
    for section in sections:
        if section.root or section.single or section.key_column != "key" or not section.table:
            continue
        by_holder: dict[str, set[str]] = {}
        for c in changes:
            if c.type == section.type and c.action is not Action.CREATE:
                # A row taken over from another organization of the family is locked where it is.
                holder = str(c.before.get("org", slug))
                by_holder.setdefault(holder, set()).add(_key_of(row_address(c)))
        table = _table(section)
        for holder, found in sorted(by_holder.items(), key=lambda item: item[0] != slug):
            keys = sorted(found)
            owner: Any = org_id
            if holder != slug:
                owner = (
                    sa.select(t.organizations.c.id).where(t.organizations.c.slug == holder).scalar_subquery()
                )
            if section.within is not None:
                parent = _table(by_section[section.within])
                (link,) = [fk.parent for fk in table.foreign_keys if fk.column.table is parent]
                queries.append(
                    sa.select(table.c.id).where(
                        link.in_(sa.select(parent.c.id).where(parent.c.org_id == owner)),
                        table.c.key.in_(keys),
                    )
                )
                continue
            queries.append(sa.select(table.c.id).where(table.c.org_id == owner, table.c.key.in_(keys)))
    queries.append(sa.select(t.organizations.c.id).where(t.organizations.c.slug == slug))
    return queries


@contextmanager
def family_kept_clean(ctx: WriteContext, slugs: Iterable[str]) -> Iterator[None]:
    """Around writes to rows of other organizations of the family (links to the system's agreements, an
    agreement taken over), which bump their revisions by trigger: one that nexus had left clean stays
    clean. Their rows are locked first, so no other writer's bump can hide among these."""
    o = t.organizations
    others = sorted(set(slugs) - {ctx.slug})
    if not others:
        yield
        return
    lock_rows(ctx.connection, lambda: [sa.select(o.c.id).where(o.c.slug.in_(others))])
    clean = [
        row.id
        for row in ctx.connection.execute(_revisions_query(), {"slugs": others})
        if row.applied_revision is not None and row.revision == row.applied_revision
    ]
    yield
    if clean:
        ctx.connection.execute(_kept_clean_update(), {"ids": clean})


@functools.cache
def _revisions_query() -> sa.Select[Any]:
    """The revisions of the organizations :slugs, built once (most facilities' transactions ask)."""
    o = t.organizations
    return sa.select(o.c.id, o.c.revision, o.c.applied_revision).where(
        o.c.slug.in_(sa.bindparam("slugs", expanding=True))
    )


@functools.cache
def _kept_clean_update() -> sa.Update:
    o = t.organizations
    return (
        sa.update(o)
        .where(o.c.id.in_(sa.bindparam("ids", expanding=True)))
        .values(applied_revision=o.c.revision)
    )


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
        extra_of = bound(ctx)
        insert_rows(ctx, section, changes, lambda c: {"org_id": ctx.org_id, **extra_of(c)})
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
