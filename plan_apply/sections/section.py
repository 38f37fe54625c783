"""What a section is on the database side: one `Section` value per record type, built in its own module.

A section says how the desired items become records (fields normalized, defaults from the pydantic
model), where its rows live (table, columns, the bulk read), the hooks its writers need and how it is
exported. Database hooks import SQLAlchemy when they run, so planning from records never loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nexus_config import DesiredOrganization, DesiredState
from nexus_config.sections import DocumentSection
from plan_apply.sections.record import Record

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from plan_apply.actual import ActualOrganization, ActualState
    from plan_apply.database.writes import WriteContext
    from plan_apply.plan import Change

__all__ = [
    "UNPROTECTED",
    "Column",
    "DesiredRecords",
    "ExportContext",
    "ModelDefaults",
    "ReadBatch",
    "Section",
    "Writer",
    "ordered",
    "ownership",
    "put",
    "same",
    "sorted_set",
    "with_protect",
]


UNPROTECTED = {"protect": False}
"""An export default: the database says `protected = false` where a configuration says nothing."""


class ModelDefaults(Mapping[str, Any]):
    """The defaults a document section's model declares (and `extra`), read on first use: asking the
    model imports pydantic, which a plan that reads no document never needs."""

    def __init__(self, document: DocumentSection, extra: Mapping[str, Any] | None = None) -> None:
        self._document = document
        self._extra = dict(extra or {})
        self._values: dict[str, Any] | None = None

    def _loaded(self) -> dict[str, Any]:
        if self._values is None:
            from nexus_config.sections import model_defaults

            self._values = model_defaults(self._document.model) | self._extra
        return self._values

    def __getitem__(self, name: str) -> Any:
        return self._loaded()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


def same(value: Any) -> Any:
    """A column that holds the record's value as it is."""
    return value


@dataclass(frozen=True, slots=True)
class Column:
    """Where a record field is written: the column's name and the conversion to its type."""

    name: str
    to_row: Callable[[Any], Any] = same


def sorted_set(values: Iterable[str] | None) -> list[str]:
    """A list the configuration treats as a set: sorted, without repeats, absent as empty."""
    return sorted(set(values or ()))


def with_protect(fields: dict[str, Any], protect: bool | None) -> dict[str, Any]:
    """`protect` is compared only when the configuration says it."""
    if protect is not None:
        fields["protect"] = protect
    return fields


def ownership(row: Any) -> dict[str, Any]:
    """The ownership facts every configurable row carries."""
    return {"managed": bool(row.managed), "applied": row.applied}


@dataclass
class ReadBatch:
    """One batch of organizations being read: ids by slug, the records found, and the rows of parent
    sections (`rows["service"]`: id → (slug, key)) that child sections are read through."""

    connection: Connection
    ids: list[int]
    by_id: Mapping[int, str]
    out: dict[str, list[Record]]
    rows: dict[str, dict[int, tuple[str, str]]] = field(default_factory=dict)

    def add(self, record: Record) -> None:
        self.out[record.org].append(record)

    def linked_elsewhere(self, link: Any, own: Any, other: Any) -> dict[int, list[tuple[str, str]]]:
        """Each row of table `own` in these organizations → (slug, key) of the rows of table `other`,
        owned by another organization, that link table `link` joins it to (a child's service linking
        its parent's step; a facility's service under its system's agreement). `link` has one foreign
        key to each table."""
        import sqlalchemy as sa

        from plan_apply.database import tables as t

        near = next(c for c in link.c if c.references(own.c.id))
        far = next(c for c in link.c if c.references(other.c.id))
        owner = t.organizations
        query = (
            sa.select(near, other.c.key, owner.c.slug)
            .select_from(
                link.join(own, near == own.c.id)
                .join(other, far == other.c.id)
                .join(owner, other.c.org_id == owner.c.id)
            )
            .where(own.c.org_id.in_(self.ids), other.c.org_id != own.c.org_id)
        )
        found: dict[int, list[tuple[str, str]]] = {}
        for row_id, key, slug in self.connection.execute(query):
            found.setdefault(row_id, []).append((slug, key))
        return found


@dataclass
class ExportContext:
    """What a section's export sees: the organization, the state around it (parents), notes for what a
    configuration cannot say, and `attach`, which places a document beside the exported file."""

    org: ActualOrganization
    state: ActualState
    notes: list[str]
    attach: Callable[[Record, Mapping[str, Any]], str | None]

    def live(self, type_: str) -> list[Record]:
        """The section's rows that are configuration (archived rows are history), by key."""
        return sorted(
            (r for r in self.org.records.values() if r.type == type_ and not r.archived),
            key=lambda r: r.key,
        )


DesiredRecords = tuple[list[Record], set[str]]
Writer = Callable[["WriteContext", Sequence["Change"]], None]


@dataclass(frozen=True, slots=True)
class Section:
    """One record type: its identity and address, desired records, table, read, writer hooks, export.

    `section` is its plan section (the address segment; the `root`, the organization, is addressed by its
    slug); `single` sections have one item and no key (the profile); `within` the parent's section for items that
    live inside another item (capacity in `services`). `writers` replace the generic writer of an action
    (keyed by the action's value); `extra` adds columns to generic writes and `after` runs after them.
    """

    type: str
    section: str
    document: DocumentSection | None
    desired: Callable[[Section, DesiredOrganization, DesiredState], DesiredRecords]
    read: Callable[[ReadBatch], None]
    table: str = ""
    columns: Mapping[str, Column] = field(default_factory=dict)
    key_column: str | None = "key"
    root: bool = False
    single: bool = False
    within: str | None = None
    referenced: bool = False
    extra: Callable[[WriteContext, Change], dict[str, Any]] | None = None
    after: Callable[[WriteContext, Sequence[Change]], None] | None = None
    writers: Mapping[str, Writer] = field(default_factory=dict)
    export: Callable[[ExportContext], list[dict[str, Any]]] | None = None
    export_defaults: Mapping[str, Any] = field(default_factory=dict)

    def address(self, org: str, key: str = "", parent_key: str | None = None) -> str:
        """The plan address of an item (CLI.md): `ORG/SECTION/KEY`, nested items under their parent."""
        if self.root:
            return org
        if self.single:
            return f"{org}/{self.section}"
        if self.within is not None:
            return f"{org}/{self.within}/{parent_key}/{self.section}/{key}"
        return f"{org}/{self.section}/{key}"

    def parent_address(self, org: str, parent_key: str) -> str:
        return f"{org}/{self.within}/{parent_key}"

    def record(self, org: str, key: str, fields: Mapping[str, Any], **facts: Any) -> Record:
        """A record of this section; `facts` are the actual side's (ownership, archived, rotations...)."""
        parent_key = facts.pop("parent_key", None)
        parent = self.parent_address(org, parent_key) if self.within is not None else None
        return Record(self.address(org, key, parent_key), self.type, org, key, fields, parent=parent, **facts)

    def listed(self, org: DesiredOrganization, fields: Callable[[Any], dict[str, Any]]) -> DesiredRecords:
        """The records of a list section the organization declares (none, unmanaged, when absent)."""
        assert self.document is not None
        items = org.sections.get(self.document.key)
        if items is None:
            return [], set()
        records = [
            self.record(
                org.slug,
                self.document.identity_of(item),
                fields(item),
                previous_keys=tuple(getattr(item, "previous_keys", None) or ()),
            )
            for item in items
        ]
        return records, {self.section}

    def exported(self, record: Record, names: Sequence[str]) -> dict[str, Any]:
        """The record's fields that say something, in `names`' order (FORMAT.md's), defaults left out."""
        result: dict[str, Any] = {}
        for name in names:
            put(result, name, record.fields.get(name), self.export_defaults.get(name))
        return result


def put(target: dict[str, Any], key: str, value: Any, default: Any = None) -> None:
    """Write a field only when it says something (not absent, not its default, not an empty list)."""
    if (
        value is None
        or value == default
        or (isinstance(value, list | dict) and not value and default is None)
    ):
        return
    target[key] = value


def ordered(values: Mapping[str, Any], order: Sequence[str]) -> dict[str, Any]:
    """A JSON object from the database (PostgreSQL's JSONB reorders keys) in FORMAT.md's key order."""
    known = {k: values[k] for k in order if values.get(k) is not None}
    return known | {k: v for k, v in values.items() if k not in order}
