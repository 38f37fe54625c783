"""Capacity windows: when and how many students a service takes. They live inside their service
(`ORG/services/SERVICE/capacity/KEY`), are archived while rotations use them, and never drop below the
rotations booked. The service's section produces their desired records (they are declared inside it)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nexus_config import DesiredOrganization, DesiredState
from nexus_config.coverage import qualified, split_reference
from nexus_config.sections import CAPACITY as DOCUMENT
from plan_apply.sections.record import Record
from plan_apply.sections.section import (
    UNPROTECTED,
    Column,
    DesiredRecords,
    ModelDefaults,
    ReadBatch,
    Section,
    ownership,
    sorted_set,
    with_protect,
)

if TYPE_CHECKING:
    from nexus_config.models.v1 import Capacity
    from plan_apply.database.writes import WriteContext
    from plan_apply.plan import Change

__all__ = ["CAPACITY", "capacity_fields", "iso_date", "row_date", "window_item"]

_COLUMNS = (
    "name",
    "workflow",
    "disciplines",
    "slots",
    "max_group_size",
    "allow_specific_dates",
    "visibility",
    "description",
)


def iso_date(value: Any) -> Any:
    """A date read from the database, as the configuration writes it."""
    return value.isoformat() if isinstance(value, datetime.date) else value


def row_date(value: Any) -> datetime.date | None:
    """A record's date (`2027-02-01`) as the database's date column takes it."""
    return datetime.date.fromisoformat(value) if isinstance(value, str) else value


def capacity_fields(window: Capacity) -> dict[str, Any]:
    """A window's comparable fields; its agreement by key (in the same organization)."""
    return with_protect(
        {
            "name": window.name,
            "workflow": window.workflow,
            "agreement": window.agreement,
            "disciplines": sorted_set(window.disciplines),
            "start_date": window.start_date,
            "end_date": window.end_date,
            "slots": window.slots,
            "max_group_size": window.max_group_size,
            "allow_specific_dates": window.allow_specific_dates,
            "visibility": window.visibility,
            "description": window.description,
        },
        window.protect,
    )


def _desired(section: Section, org: DesiredOrganization, state: DesiredState) -> DesiredRecords:
    """Declared inside their services: the services' section makes these records."""
    return [], set()


def _read(batch: ReadBatch) -> None:
    """The windows of the services just read, with their agreement's key and the rotations booked."""
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    services = batch.rows.get("service") or {}
    if not services:
        return
    c, a, r, o = t.capacity_windows, t.agreements, t.rotations, t.organizations
    ids = sorted(services)
    booked = {
        window_id: count
        for window_id, count in batch.connection.execute(
            sa.select(r.c.capacity_window_id, sa.func.count())
            .select_from(r.join(c, r.c.capacity_window_id == c.c.id))
            .where(c.c.service_id.in_(ids))
            .group_by(r.c.capacity_window_id)
        )
    }
    query = (
        sa.select(c, a.c.key.label("agreement_key"), o.c.slug.label("agreement_org"))
        .select_from(c.outerjoin(a, c.c.agreement_id == a.c.id).outerjoin(o, a.c.org_id == o.c.id))
        .where(c.c.service_id.in_(ids))
    )
    for row in batch.connection.execute(query):
        slug, service_key = services[row.service_id]
        agreement = row.agreement_key
        if agreement is not None and row.agreement_org != slug:  # the system's: `parent-slug/key`
            agreement = qualified(row.agreement_org, agreement)
        fields = {
            "name": row.name,
            "workflow": row.workflow,
            "agreement": agreement,
            "disciplines": sorted_set(row.disciplines),
            "start_date": iso_date(row.start_date),
            "end_date": iso_date(row.end_date),
            "slots": row.slots,
            "max_group_size": row.max_group_size,
            "allow_specific_dates": bool(row.allow_specific_dates),
            "visibility": row.visibility,
            "description": row.description,
            "protect": bool(row.protected),
        }
        batch.add(
            CAPACITY.record(
                slug,
                row.key,
                fields,
                parent_key=service_key,
                archived=row.archived_at is not None,
                protected=bool(row.protected),
                rotations=int(booked.get(row.id, 0)),
                extra={"id": row.id},
                **ownership(row),
            )
        )


def _extra(ctx: WriteContext, change: Change) -> dict[str, Any]:
    from plan_apply.plan import Action

    values: dict[str, Any] = {}
    if change.action is Action.CREATE:
        values["service_id"] = ctx.row_id(change.address.split("/capacity/", 1)[0])
    if "agreement" in change.after:
        reference = change.after["agreement"]
        owner, key = split_reference(reference) if reference else (None, "")
        if not reference:
            values["agreement_id"] = None
        elif owner is None:
            from plan_apply.sections.services import agreement_address

            values["agreement_id"] = ctx.row_id(agreement_address(ctx.slug, key))
        else:
            values["agreement_id"] = _system_agreement_id(ctx, owner, key)
    return values


def _system_agreement_id(ctx: WriteContext, owner: str, key: str) -> int:
    """The id of a parent's agreement a window is scheduled under (written by the parent's transaction,
    which runs first)."""
    import sqlalchemy as sa

    from plan_apply.database import tables as t
    from plan_apply.sections.services import agreement_address

    address = agreement_address(owner, key)
    if address not in ctx.ids:
        a, o = t.agreements, t.organizations
        found = ctx.connection.execute(
            sa.select(a.c.id)
            .select_from(a.join(o, a.c.org_id == o.c.id))
            .where(o.c.slug == owner, a.c.key == key)
        ).scalar()
        if found is None:
            raise LookupError(f"agreement {address} does not exist in the database; apply {owner} first")
        ctx.ids[address] = int(found)
    return ctx.ids[address]


def _create(ctx: WriteContext, changes: Sequence[Change]) -> None:
    """New windows hang from their service, not from the organization."""
    from plan_apply.database.writes import insert_rows

    _learn_system_agreements(ctx, changes)
    insert_rows(ctx, CAPACITY, changes, lambda c: _extra(ctx, c))


def _learn_system_agreements(ctx: WriteContext, changes: Sequence[Change]) -> None:
    """The ids of the parents' agreements these windows are scheduled under, in one SELECT (one missing
    is left for `_system_agreement_id` to name)."""
    from plan_apply.sections.services import agreement_address, agreement_ids_found

    wanted = {
        agreement_address(owner, key)
        for c in changes
        if c.after.get("agreement")
        for owner, key in [split_reference(c.after["agreement"])]
        if owner is not None
    }
    ctx.ids.update(agreement_ids_found(ctx.connection, wanted - set(ctx.ids)))


def window_item(record: Record) -> dict[str, Any]:
    """A window as its service's `capacity:` lists it."""
    window = {"key": record.key} | CAPACITY.exported(record, ("name", "workflow", "agreement"))
    window["disciplines"] = list(record.fields.get("disciplines") or [])
    window |= CAPACITY.exported(record, ("start_date", "end_date", "slots"))
    window |= CAPACITY.exported(
        record, ("max_group_size", "allow_specific_dates", "visibility", "description", "protect")
    )
    return window


CAPACITY = Section(
    type="capacity",
    section="capacity",
    document=DOCUMENT,
    desired=_desired,
    read=_read,
    table="capacity_windows",
    columns={
        **{name: Column(name) for name in _COLUMNS},
        "start_date": Column("start_date", row_date),
        "end_date": Column("end_date", row_date),
        "protect": Column("protected", bool),
    },
    within="services",
    extra=_extra,
    writers={"create": _create},
    export_defaults=ModelDefaults(DOCUMENT, UNPROTECTED),
)
