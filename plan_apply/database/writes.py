"""Writers: the registry `(type, action) → function` that turns batches of changes into SQL.

Each writer gets a run of consecutive changes of one (type, action) and writes them with a fixed
number of statements (Core executemany; no ORM unit of work, no RETURNING batches). Row ids are looked
up in the `WriteContext`, which the executor fills from the state it read under the lock.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from nexus_config.attachments import read_document_bytes
from nexus_config.desired import AttachedDocument
from plan_apply.database import tables as t
from plan_apply.plan import Action, Change
from plan_apply.records import Record

__all__ = ["WRITERS", "WriteContext", "Writer"]


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
        base.update({k: v for k, v in change.after.items() if k not in ("key", "archived")})
        return base


Writer = Callable[[WriteContext, Sequence[Change]], None]


def _date(value: Any) -> datetime.date | None:
    return datetime.date.fromisoformat(value) if isinstance(value, str) else value


def _key_of(address: str) -> str:
    return address.rsplit("/", 1)[1]


def _service_address(capacity_address: str) -> str:
    return capacity_address.split("/capacity/", 1)[0]


_COLUMNS: dict[str, dict[str, tuple[str, Callable[[Any], Any]]]] = {
    "profile": {
        n: (n, lambda v: v)
        for n in ("name", "type", "description", "website", "email", "phone", "address", "timezone")
    },
    "step": {
        n: (n, lambda v: v)
        for n in (
            "stage",
            "name",
            "type",
            "completed_by",
            "description",
            "instructions",
            "required",
            "due_days",
            "expires_after_days",
            "applies_to",
            "all_services",
            "fields",
        )
    },
    "service": {
        **{
            n: (n, lambda v: v)
            for n in ("name", "description", "location", "department", "disciplines", "specialties")
        },
        "protect": ("protected", bool),
    },
    "capacity": {
        **{
            n: (n, lambda v: v)
            for n in (
                "name",
                "workflow",
                "disciplines",
                "slots",
                "max_group_size",
                "allow_specific_dates",
                "visibility",
                "description",
            )
        },
        "start_date": ("start_date", _date),
        "end_date": ("end_date", _date),
        "protect": ("protected", bool),
    },
    "school": {"name": ("name", lambda v: v), "contact_email": ("contact_email", lambda v: v)},
    "agreement": {
        **{n: (n, lambda v: v) for n in ("name", "description", "reminder_days", "disciplines")},
        "school": ("school_key", lambda v: v),
        "start_date": ("start_date", _date),
        "end_date": ("end_date", _date),
        "protect": ("protected", bool),
    },
    "staff": {"role": ("role", lambda v: v), "title": ("title", lambda v: v)},
}

_TABLES: dict[str, sa.Table] = {
    "profile": t.profiles,
    "step": t.steps,
    "service": t.services,
    "capacity": t.capacity_windows,
    "school": t.partnerships,
    "agreement": t.agreements,
    "staff": t.staff,
}


def _columns(type_: str, values: Mapping[str, Any]) -> dict[str, Any]:
    mapping = _COLUMNS[type_]
    return {mapping[k][0]: mapping[k][1](v) for k, v in values.items() if k in mapping}


_REFERENCED = frozenset({"service", "agreement"})
"""Types whose new rows later writes of the same apply point at (windows, step and service links);
steps are found by `_step_ids`, and nothing refers to a new window, school or membership."""


def _refresh_ids(ctx: WriteContext, type_: str, addresses: Sequence[str]) -> None:
    """Learn the ids of rows just inserted: one SELECT per batch (no RETURNING round trips)."""
    table = _TABLES[type_]
    keys = {_key_of(a): a for a in addresses}
    for row in ctx.connection.execute(
        sa.select(table.c.id, table.c.key).where(table.c.org_id == ctx.org_id, table.c.key.in_(list(keys)))
    ):
        ctx.ids[keys[row.key]] = row.id


# --- organization and profile -------------------------------------------------------------------


def _org_values(ctx: WriteContext, values: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if "labels" in values:
        result["labels"] = values["labels"] or {}
    if "parent" in values:
        parent = values["parent"]
        result["parent_id"] = (
            ctx.connection.execute(
                sa.select(t.organizations.c.id).where(t.organizations.c.slug == parent)
            ).scalar()
            if parent
            else None
        )
        if parent and result["parent_id"] is None:
            raise LookupError(
                f'parent organization "{parent}" does not exist in the database; apply it first'
            )
    return result


def _create_organization(ctx: WriteContext, changes: Sequence[Change]) -> None:
    (change,) = changes
    values = _org_values(ctx, change.after)
    ctx.connection.execute(
        sa.insert(t.organizations).values(slug=ctx.slug, managed=True, applied=ctx.applied(change), **values)
    )
    ctx.org_id = ctx.connection.execute(
        sa.select(t.organizations.c.id).where(t.organizations.c.slug == ctx.slug)
    ).scalar_one()
    ctx.ids[ctx.slug] = ctx.org_id


def _update_organization(ctx: WriteContext, changes: Sequence[Change]) -> None:
    (change,) = changes
    ctx.connection.execute(
        sa.update(t.organizations)
        .where(t.organizations.c.id == ctx.org_id)
        .values(managed=True, applied=ctx.applied(change), **_org_values(ctx, change.after))
    )


def _create_profile(ctx: WriteContext, changes: Sequence[Change]) -> None:
    (change,) = changes
    ctx.connection.execute(
        sa.insert(t.profiles).values(
            org_id=ctx.org_id, managed=True, applied=ctx.applied(change), **_columns("profile", change.after)
        )
    )


def _update_profile(ctx: WriteContext, changes: Sequence[Change]) -> None:
    (change,) = changes
    ctx.connection.execute(
        sa.update(t.profiles)
        .where(t.profiles.c.org_id == ctx.org_id)
        .values(managed=True, applied=ctx.applied(change), **_columns("profile", change.after))
    )


# --- generic keyed rows -------------------------------------------------------------------------


def _insert_rows(
    ctx: WriteContext, type_: str, changes: Sequence[Change], extra: Callable[[Change], dict[str, Any]]
) -> None:
    table = _TABLES[type_]
    keyed = type_ in ("step", "service", "capacity", "agreement")
    rows = [
        {
            "managed": True,
            "applied": ctx.applied(c),
            **({"key": _key_of(c.address)} if keyed else {}),
            **_columns(type_, c.after),
            **extra(c),
        }
        for c in changes
    ]
    columns = sorted({k for row in rows for k in row})
    defaults = {"protected": False}
    ctx.connection.execute(
        sa.insert(table), [{k: row.get(k, defaults.get(k)) for k in columns} for row in rows]
    )
    if type_ in _REFERENCED:
        _refresh_ids(ctx, type_, [c.address for c in changes])


def _update_rows(
    ctx: WriteContext, type_: str, changes: Sequence[Change], extra: Callable[[Change], dict[str, Any]]
) -> None:
    """UPDATE … WHERE id = :id, one executemany per group of changes touching the same columns."""
    table = _TABLES[type_]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        values = {
            "managed": True,
            "applied": ctx.applied(change),
            **_columns(type_, change.after),
            **extra(change),
        }
        if change.after.get("archived") is False:
            values["archived_at"] = None
        if "key" in change.after:
            values["key" if type_ != "school" else "school_key"] = change.after["key"]
        groups.setdefault(tuple(sorted(values)), []).append(
            {"row_id": ctx.row_id(_row_address(ctx, change)), **values}
        )
    for columns, rows in groups.items():
        statement = (
            sa.update(table)
            .where(table.c.id == sa.bindparam("row_id"))
            .values({c: sa.bindparam(c) for c in columns})
        )
        ctx.connection.execute(statement, rows)


def _row_address(ctx: WriteContext, change: Change) -> str:
    """Where the row of a change is known: renames are found under their old key."""
    if change.action is Action.RENAME:
        old = change.address[: -len(_key_of(change.address))] + str(change.before["key"])
        return old
    return change.address


def _archive_rows(ctx: WriteContext, type_: str, changes: Sequence[Change]) -> None:
    table = _TABLES[type_]
    ids = [ctx.row_id(c.address) for c in changes]
    ctx.connection.execute(sa.update(table).where(table.c.id.in_(ids)).values(archived_at=ctx.now))


def _delete_rows(ctx: WriteContext, type_: str, changes: Sequence[Change]) -> None:
    table = _TABLES[type_]
    ids = [ctx.row_id(c.address) for c in changes]
    ctx.connection.execute(sa.delete(table).where(table.c.id.in_(ids)))


def _none(change: Change) -> dict[str, Any]:
    return {}


def _after_rename(ctx: WriteContext, changes: Sequence[Change]) -> None:
    """A renamed row is found under its new address (and so are the children of a service); removals
    planned under the old address (a window of a renamed service) still find it there."""
    for change in changes:
        if change.action is not Action.RENAME:
            continue
        old = _row_address(ctx, change)
        for address in [a for a in ctx.ids if a == old or a.startswith(old + "/")]:
            # The old address stays valid too: removals planned under it still find the row.
            ctx.ids[change.address + address[len(old) :]] = ctx.ids[address]


def _keyed(
    type_: str,
    extra: Callable[[WriteContext, Change], dict[str, Any]] | None = None,
    after: Callable[[WriteContext, Sequence[Change]], None] | None = None,
) -> dict[Action, Writer]:
    def bound(ctx: WriteContext) -> Callable[[Change], dict[str, Any]]:
        return (lambda c: extra(ctx, c)) if extra else _none

    def create(ctx: WriteContext, changes: Sequence[Change]) -> None:
        _insert_rows(ctx, type_, changes, lambda c: {"org_id": ctx.org_id, **bound(ctx)(c)})
        if after:
            after(ctx, changes)

    def update(ctx: WriteContext, changes: Sequence[Change]) -> None:
        _update_rows(ctx, type_, changes, bound(ctx))
        _after_rename(ctx, changes)
        if after:
            after(ctx, changes)

    return {
        Action.CREATE: create,
        Action.UPDATE: update,
        Action.ADOPT: update,
        Action.RENAME: update,
        Action.ARCHIVE: lambda ctx, changes: _archive_rows(ctx, type_, changes),
        Action.DELETE: lambda ctx, changes: _delete_rows(ctx, type_, changes),
    }


# --- services and their step links ---------------------------------------------------------------


def _link_steps(ctx: WriteContext, changes: Sequence[Change]) -> None:
    relinked = [c for c in changes if "steps" in c.after]
    if not relinked:
        return
    wanted = {a for c in relinked for a in c.after["steps"]}
    step_ids = _step_ids(ctx.connection, wanted)
    service_ids = [ctx.row_id(c.address) for c in relinked if c.action is not Action.CREATE]
    if service_ids:  # a new service has no links yet
        ctx.connection.execute(
            sa.delete(t.service_steps).where(t.service_steps.c.service_id.in_(service_ids))
        )
    rows = [
        {"service_id": ctx.row_id(c.address), "step_id": step_ids[a]}
        for c in relinked
        for a in c.after["steps"]
    ]
    if rows:
        ctx.connection.execute(sa.insert(t.service_steps), rows)


def _step_ids(connection: Connection, addresses: set[str]) -> dict[str, int]:
    pairs = {tuple(a.split("/steps/", 1)) for a in addresses}
    found: dict[str, int] = {}
    query = (
        sa.select(t.steps.c.id, t.steps.c.key, t.organizations.c.slug)
        .select_from(t.steps.join(t.organizations, t.steps.c.org_id == t.organizations.c.id))
        .where(
            t.organizations.c.slug.in_(sorted({p[0] for p in pairs})),
            t.steps.c.key.in_(sorted({p[1] for p in pairs})),
        )
    )
    for row in connection.execute(query):
        found[f"{row.slug}/steps/{row.key}"] = row.id
    missing = sorted(addresses - set(found))
    if missing:
        raise LookupError(f"step {missing[0]} does not exist in the database; apply its organization first")
    return found


# --- capacity windows ----------------------------------------------------------------------------


def _capacity_extra(ctx: WriteContext, change: Change) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if change.action is Action.CREATE:
        values["service_id"] = ctx.row_id(_service_address(change.address))
    if "agreement" in change.after:
        key = change.after["agreement"]
        values["agreement_id"] = ctx.row_id(f"{ctx.slug}/agreements/{key}") if key else None
    return values


def _create_capacity(ctx: WriteContext, changes: Sequence[Change]) -> None:
    _insert_rows(ctx, "capacity", changes, lambda c: _capacity_extra(ctx, c))


# --- schools (partnerships and invitations) -------------------------------------------------------


def _school_extra(ctx: WriteContext, change: Change) -> dict[str, Any]:
    if change.action is Action.CREATE:
        key = _key_of(change.address)
        return {"school_key": key, "status": "active" if key in ctx.platform_schools else "invited"}
    return {}


def _invite(ctx: WriteContext, changes: Sequence[Change]) -> None:
    """Schools not yet on the platform are invited: an outbox row, written in the same transaction."""
    rows = [
        {
            "org_id": ctx.org_id,
            "school_key": _key_of(c.address),
            "email": c.after["contact_email"],
            "created_at": ctx.now,
        }
        for c in changes
        if c.action is Action.CREATE
        and _key_of(c.address) not in ctx.platform_schools
        and c.after.get("contact_email")
    ]
    if rows:
        ctx.connection.execute(sa.insert(t.invitations), rows)


# --- agreements ----------------------------------------------------------------------------------


def _document_id(ctx: WriteContext, document: Mapping[str, Any] | None) -> int | None:
    if not document:
        return None
    sha = document["sha256"]
    existing = ctx.connection.execute(sa.select(t.documents.c.id).where(t.documents.c.sha256 == sha)).scalar()
    if existing is not None:
        return int(existing)
    path = ctx.documents.get(sha)
    if path is None:
        raise LookupError(f"the plan names document {document['name']} but not the file to upload")
    media = (
        "application/pdf"
        if str(document["name"]).lower().endswith(".pdf")
        else ("application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    )
    content = read_document_bytes(AttachedDocument(path, document["name"], document["size"], sha, media))
    ctx.connection.execute(
        sa.insert(t.documents).values(
            sha256=sha, name=document["name"], media_type=media, size=len(content), content=content
        )
    )
    return int(
        ctx.connection.execute(sa.select(t.documents.c.id).where(t.documents.c.sha256 == sha)).scalar_one()
    )


def _agreement_extra(ctx: WriteContext, change: Change) -> dict[str, Any]:
    values: dict[str, Any] = {}
    current = ctx.records.get(_row_address(ctx, change))
    status = current.status if current is not None and change.action is not Action.CREATE else None
    if "document" in change.after:
        values["document_id"] = _document_id(ctx, change.after["document"])
    if change.action is Action.CREATE:
        values["status"] = "pending_school" if change.after.get("submit") else "draft"
    elif status == "draft" and change.after.get("submit"):
        values["status"] = "pending_school"
    elif status == "active" and set(change.after) - {"protect", "submit", "key"}:
        values["status"] = "pending_school"  # changed terms go back to the school
    elif status == "changes_proposed" and ctx.counter_propose:
        values["status"] = "pending_school"
        values["proposed"] = None
    return values


def _update_agreements(ctx: WriteContext, changes: Sequence[Change]) -> None:
    kept = []
    for change in changes:
        current = ctx.records.get(_row_address(ctx, change))
        if current is not None and current.status == "changes_proposed" and not ctx.counter_propose:
            ctx.skipped.append(
                f"{change.address}: the school proposed changes; left alone (use --counter-propose)"
            )
            continue
        kept.append(change)
    if kept:
        _update_rows(ctx, "agreement", kept, lambda c: _agreement_extra(ctx, c))
        _after_rename(ctx, kept)
        _link_services(ctx, kept)


def _link_services(ctx: WriteContext, changes: Sequence[Change]) -> None:
    relinked = [c for c in changes if "services" in c.after]
    if not relinked:
        return
    ids = [ctx.row_id(c.address) for c in relinked if c.action is not Action.CREATE]
    if ids:  # a new agreement has no links yet
        ctx.connection.execute(
            sa.delete(t.agreement_services).where(t.agreement_services.c.agreement_id.in_(ids))
        )
    rows = [
        {"agreement_id": ctx.row_id(c.address), "service_id": ctx.row_id(f"{ctx.slug}/services/{key}")}
        for c in relinked
        for key in c.after["services"]
    ]
    if rows:
        ctx.connection.execute(sa.insert(t.agreement_services), rows)


# --- staff -----------------------------------------------------------------------------------------


def _people(ctx: WriteContext, changes: Sequence[Change]) -> dict[str, int]:
    """Find or create the people behind staff rows (their own profile fields stay theirs)."""
    emails = {_key_of(c.address): c.after.get("name") for c in changes}
    known = {
        row.email.lower(): row.id
        for row in ctx.connection.execute(
            sa.select(t.people.c.id, t.people.c.email).where(
                sa.func.lower(t.people.c.email).in_(sorted(emails))
            )
        )
    }
    missing = [{"email": e, "name": emails[e]} for e in sorted(emails) if e not in known]
    if missing:
        ctx.connection.execute(sa.insert(t.people), missing)
        return _people(ctx, changes)
    return known


def _create_staff(ctx: WriteContext, changes: Sequence[Change]) -> None:
    people = _people(ctx, changes)
    rows = [
        {
            "org_id": ctx.org_id,
            "person_id": people[_key_of(c.address)],
            "managed": True,
            "applied": ctx.applied(c),
            "role": c.after["role"],
            "title": c.after.get("title"),
        }
        for c in changes
    ]
    ctx.connection.execute(sa.insert(t.staff), rows)


def _update_staff(ctx: WriteContext, changes: Sequence[Change]) -> None:
    _update_rows(ctx, "staff", changes, _none)
    named = [c for c in changes if "name" in c.after]
    if named:
        people = _people(ctx, named)
        ctx.connection.execute(
            sa.update(t.people)
            .where(t.people.c.id == sa.bindparam("person_id"))
            .values(name=sa.bindparam("new_name")),
            [{"person_id": people[_key_of(c.address)], "new_name": c.after["name"]} for c in named],
        )


def _registry() -> dict[tuple[str, Action], Writer]:
    registry: dict[tuple[str, Action], Writer] = {
        ("organization", Action.CREATE): _create_organization,
        ("organization", Action.UPDATE): _update_organization,
        ("organization", Action.ADOPT): _update_organization,
        ("profile", Action.CREATE): _create_profile,
        ("profile", Action.UPDATE): _update_profile,
        ("profile", Action.ADOPT): _update_profile,
    }
    for action, writer in _keyed("step").items():
        registry[("step", action)] = writer
    for action, writer in _keyed("service", after=_link_steps).items():
        registry[("service", action)] = writer
    for action, writer in _keyed("capacity", extra=_capacity_extra).items():
        registry[("capacity", action)] = writer
    registry[("capacity", Action.CREATE)] = _create_capacity
    for action, writer in _keyed("school", extra=_school_extra, after=_invite).items():
        registry[("school", action)] = writer
    agreement = _keyed("agreement", extra=_agreement_extra, after=_link_services)
    for action, writer in agreement.items():
        registry[("agreement", action)] = writer
    for action in (Action.UPDATE, Action.ADOPT, Action.RENAME):
        registry[("agreement", action)] = _update_agreements
    for action, writer in _keyed("staff").items():
        registry[("staff", action)] = writer
    registry[("staff", Action.CREATE)] = _create_staff
    for action in (Action.UPDATE, Action.ADOPT):
        registry[("staff", action)] = _update_staff
    return registry


WRITERS: dict[tuple[str, Action], Writer] = _registry()
"""Every (type, action) a plan can hold; a test checks the registry is complete."""
