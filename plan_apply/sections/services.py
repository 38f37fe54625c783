"""Services: the departments students rotate through; each links steps (its own organization's or an
ancestor's) and holds capacity windows. Archived, not deleted, while history points at them."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nexus_config import DesiredOrganization, DesiredState
from nexus_config.ancestry import lineage
from nexus_config.coverage import covers_descendant
from nexus_config.sections import SERVICES as DOCUMENT
from plan_apply.sections.capacity import CAPACITY, capacity_fields, window_item
from plan_apply.sections.section import (
    UNPROTECTED,
    Column,
    DesiredRecords,
    ExportContext,
    ModelDefaults,
    ReadBatch,
    Section,
    ownership,
    put,
    sorted_set,
    with_protect,
)
from plan_apply.sections.steps import STEPS

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from nexus_config.models.v1 import Service
    from plan_apply.actual import ActualOrganization
    from plan_apply.database.writes import WriteContext
    from plan_apply.plan import Change
    from plan_apply.sections.record import Record

__all__ = [
    "SERVICES",
    "agreement_address",
    "agreement_ids_found",
    "agreement_owner_key",
    "agreement_statuses_found",
    "service_fields",
    "takes_new_services",
]

_AGREEMENTS = "/agreements/"


def agreement_address(owner: str, key: str) -> str:
    """An agreement's plan address, for the sections the agreements' module imports (they cannot import
    `AGREEMENTS`, whose `address` every other module calls)."""
    return f"{owner}{_AGREEMENTS}{key}"


def agreement_owner_key(address: str) -> tuple[str, str]:
    """The slug of the organization that owns the agreement at `address`, and its key."""
    owner, _, key = address.partition(_AGREEMENTS)
    return owner, key


_COLUMNS = ("name", "description", "location", "department", "disciplines", "specialties")


def service_fields(service: Service, step_addresses: list[str]) -> dict[str, Any]:
    """A service's comparable fields; its steps by address (resolved up the parent chain)."""
    return with_protect(
        {
            "name": service.name,
            "description": service.description,
            "location": service.location,
            "department": service.department,
            "disciplines": sorted_set(service.disciplines),
            "specialties": sorted_set(service.specialties),
            "steps": sorted(step_addresses),
        },
        service.protect,
    )


def _step_address(key: str, org: DesiredOrganization, state: DesiredState) -> str:
    for ancestor in state.chain(org.slug):
        if any(step.key == key for step in ancestor.steps or ()):
            return STEPS.address(ancestor.slug, key)
    return STEPS.address(org.slug, key)  # unreachable for a checked state


def _system_agreements(org: DesiredOrganization, state: DesiredState) -> dict[str, list[str]] | None:
    """Service key → the addresses of the ancestors' agreements that cover it (`covers`); None when no
    ancestor declares agreements (the links are then not this configuration's to compare)."""
    ancestors = state.chain(org.slug)[1:]
    if all(ancestor.agreements is None for ancestor in ancestors):
        return None
    linked: dict[str, list[str]] = defaultdict(list)
    for ancestor in ancestors:
        for agreement in ancestor.agreements or ():
            if covers_descendant(agreement, org):
                for key in agreement.services:
                    linked[key].append(agreement_address(ancestor.slug, agreement.key))
    return linked


def _desired(section: Section, org: DesiredOrganization, state: DesiredState) -> DesiredRecords:
    """The services and, for each that declares `capacity:`, its windows (a scope of their own)."""
    if org.services is None:
        return [], set()
    records, scopes = [], {section.section}
    system = _system_agreements(org, state)
    for service in org.services:
        steps = [_step_address(key, org, state) for key in service.steps or ()]
        fields = service_fields(service, steps)
        if system is not None:
            fields["agreements"] = sorted(system.get(service.key, ()))
        previous = tuple(service.previous_keys or ())
        records.append(section.record(org.slug, service.key, fields, previous_keys=previous))
        if service.capacity is not None:
            scopes.add(f"{section.section}/{service.key}/{CAPACITY.section}")
            records.extend(
                CAPACITY.record(
                    org.slug,
                    c.key,
                    capacity_fields(c),
                    parent_key=service.key,
                    previous_keys=tuple(c.previous_keys or ()),
                )
                for c in service.capacity
            )
    return records, scopes


def _read(batch: ReadBatch) -> None:
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    s, link, step, owner = t.services, t.service_steps, t.steps, t.organizations
    linked: dict[int, list[str]] = defaultdict(list)
    query = (
        sa.select(link.c.service_id, step.c.key, owner.c.slug)
        .select_from(link.join(s, link.c.service_id == s.c.id).join(step, link.c.step_id == step.c.id))
        .join(owner, step.c.org_id == owner.c.id)
        .where(s.c.org_id.in_(batch.ids))
    )
    for row in batch.connection.execute(query):
        linked[row.service_id].append(STEPS.address(row.slug, row.key))
    system = _read_system_agreements(batch)
    found = batch.rows.setdefault(SERVICES.type, {})
    for row in batch.connection.execute(sa.select(s).where(s.c.org_id.in_(batch.ids))):
        slug = batch.by_id[row.org_id]
        found[row.id] = (slug, row.key)
        fields = {name: getattr(row, name) for name in ("name", "description", "location", "department")} | {
            "disciplines": sorted_set(row.disciplines),
            "specialties": sorted_set(row.specialties),
            "steps": sorted(linked.get(row.id, [])),
            "protect": bool(row.protected),
        }
        if row.id in system:  # sparse: only a facility's services covered by its system say it
            fields["agreements"] = sorted(system[row.id])
        batch.add(
            SERVICES.record(
                slug,
                row.key,
                fields,
                archived=row.archived_at is not None,
                protected=bool(row.protected),
                extra={"id": row.id},
                **ownership(row),
            )
        )


def _read_system_agreements(batch: ReadBatch) -> dict[int, list[str]]:
    """Service id → the addresses of other organizations' (the system's) agreements that link it."""
    from plan_apply.database import tables as t

    return {
        service_id: [agreement_address(slug, key) for slug, key in agreements]
        for service_id, agreements in batch.linked_elsewhere(
            t.agreement_services, t.services, t.agreements
        ).items()
    }


def _link_agreements(ctx: WriteContext, changes: Sequence[Change]) -> None:
    """The links between a facility's services and its system's agreements are written here, by the
    facility's transaction (which may be creating the services): one DELETE and one INSERT per batch."""
    import sqlalchemy as sa

    from plan_apply.database import tables as t
    from plan_apply.database.bound import bulk_insert
    from plan_apply.plan import Action

    relinked = [c for c in changes if "agreements" in c.after]
    if not relinked:
        return
    from plan_apply.database.writes import family_kept_clean

    named = {a for c in relinked for a in (*c.after["agreements"], *(c.before.get("agreements") or ()))}
    wanted = {a for c in relinked for a in c.after["agreements"]}
    known = {a: ctx.ids[a] for a in wanted if a in ctx.ids}
    agreement_ids = known | _agreement_ids(ctx.connection, wanted - set(known))
    ctx.ids.update(agreement_ids)  # the capacity windows scheduled under them need not look them up again
    _refuse_answered_terms(ctx, relinked, agreement_ids)
    link = t.agreement_services
    service_ids = [ctx.row_id(c.address) for c in relinked if c.action is not Action.CREATE]
    # The links bump their agreements' owners (the system): nexus's own write, not a change to plan.
    with family_kept_clean(ctx, {agreement_owner_key(a)[0] for a in named}):
        if service_ids:
            foreign = sa.select(t.agreements.c.id).where(t.agreements.c.org_id != ctx.org_id)
            ctx.connection.execute(
                sa.delete(link).where(link.c.service_id.in_(service_ids), link.c.agreement_id.in_(foreign))
            )
        rows = [
            {"agreement_id": agreement_ids[a], "service_id": ctx.row_id(c.address)}
            for c in relinked
            for a in c.after["agreements"]
        ]
        if rows:
            bulk_insert(ctx.connection, link, rows)


def _refuse_answered_terms(ctx: WriteContext, changes: Sequence[Change], ids: Mapping[str, int]) -> None:
    """A service joins a system's agreement only while the school has not answered its terms: the
    system's own apply re-submits it first. Its rows are locked before their status is read, so a school's
    answer is either seen here or waits for this transaction."""
    import sqlalchemy as sa

    from plan_apply.database import tables as t
    from plan_apply.database.dialects import lock_rows
    from plan_apply.plan import Action

    wanted = {(ids[a], c.address) for c in changes for a in c.after["agreements"]}
    if not wanted:
        return
    link, a = t.agreement_services, t.agreements
    services = {c.address: ctx.row_id(c.address) for c in changes if c.action is not Action.CREATE}
    existing = (
        {
            (row.agreement_id, row.service_id)
            for row in ctx.connection.execute(
                sa.select(link.c.agreement_id, link.c.service_id).where(
                    link.c.service_id.in_(services.values())
                )
            )
        }
        if services
        else set()
    )
    joining = sorted((i, address) for i, address in wanted if (i, services.get(address)) not in existing)
    if not joining:
        return
    agreements = sorted({i for i, _ in joining})
    lock_rows(ctx.connection, lambda: [sa.select(a.c.id).where(a.c.id.in_(agreements))])
    status = {row.id: row.status for row in ctx.connection.execute(_status_query(), {"ids": agreements})}
    names = {i: address for address, i in ids.items()}
    for i, service in joining:
        if not takes_new_services(status.get(i)):
            owner, _ = agreement_owner_key(names[i])
            raise LookupError(
                f"{names[i]} is {status.get(i)} with the school: linking {service} to it changes the terms "
                f"the school answered; apply {owner} first (its plan re-submits it)"
            )


@functools.cache
def _status_query() -> Any:
    """The status of the agreements :ids, built once (each facility joining its system's asks)."""
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    a = t.agreements
    return sa.select(a.c.id, a.c.status).where(a.c.id.in_(sa.bindparam("ids", expanding=True)))


def agreement_ids_found(connection: Connection, addresses: set[str]) -> dict[str, int]:
    """The ids of the agreements at `addresses` (`slug/agreements/key`) that exist, in one SELECT."""
    return _ids_at(connection, "agreements", _AGREEMENTS, addresses)


def agreement_statuses_found(connection: Connection, addresses: set[str]) -> dict[str, str]:
    """The status with the school of the agreements at `addresses` that exist, in one SELECT."""
    return _found_at(connection, "agreements", _AGREEMENTS, addresses, "status")


def takes_new_services(status: str | None) -> bool:
    """Whether a service may join an agreement in this status: only while the school has not answered
    its terms (a draft, or waiting for the school); answered terms are re-submitted first."""
    return status in ("draft", "pending_school")


def _ids_at(connection: Connection, table: str, marker: str, addresses: set[str]) -> dict[str, int]:
    """The ids of the rows of `table` at `addresses` (`slug{marker}key`, any organization's) that exist."""
    return _found_at(connection, table, marker, addresses, "id")


def _found_at(
    connection: Connection, table: str, marker: str, addresses: set[str], column: str
) -> dict[str, Any]:
    """`column` of the rows of `table` at `addresses` that exist: one SELECT of the pairs' organizations
    and keys, kept where the pair is one asked for."""
    if not addresses:
        return {}
    pairs = {tuple(a.split(marker, 1)) for a in addresses}
    rows = connection.execute(
        _found_at_query(table, column),
        {"slugs": sorted({p[0] for p in pairs}), "keys": sorted({p[1] for p in pairs})},
    )
    found = ((f"{row.slug}{marker}{row.key}", row[0]) for row in rows)
    return {address: value for address, value in found if address in addresses}


@functools.cache
def _found_at_query(table_name: str, column: str) -> Any:
    """`_found_at`'s query, built once per table and column (each organization's transaction asks it)."""
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    table, owner = t.metadata.tables[table_name], t.organizations
    return (
        sa.select(table.c[column], table.c.key, owner.c.slug)
        .select_from(table.join(owner, table.c.org_id == owner.c.id))
        .where(
            owner.c.slug.in_(sa.bindparam("slugs", expanding=True)),
            table.c.key.in_(sa.bindparam("keys", expanding=True)),
        )
    )


def _agreement_ids(connection: Connection, addresses: set[str]) -> dict[str, int]:
    """The ids of agreements by address (`slug/agreements/key`); a missing one is an error."""
    found = agreement_ids_found(connection, addresses)
    missing = sorted(addresses - set(found))
    if missing:
        raise LookupError(
            f"agreement {missing[0]} does not exist in the database; apply its organization first"
        )
    return found


def _after(ctx: WriteContext, changes: Sequence[Change]) -> None:
    _link_steps(ctx, changes)
    _link_agreements(ctx, changes)


def _link_steps(ctx: WriteContext, changes: Sequence[Change]) -> None:
    """A service's step links are replaced as a whole: one DELETE and one INSERT per batch."""
    import sqlalchemy as sa

    from plan_apply.database import tables as t
    from plan_apply.database.bound import bulk_insert
    from plan_apply.plan import Action

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
        bulk_insert(ctx.connection, t.service_steps, rows)


def _step_ids(connection: Connection, addresses: set[str]) -> dict[str, int]:
    found = _ids_at(connection, "steps", "/steps/", addresses)
    missing = sorted(addresses - set(found))
    if missing:
        raise LookupError(f"step {missing[0]} does not exist in the database; apply its organization first")
    return found


def _parent(org: ActualOrganization) -> str | None:
    record = org.records.get(org.slug)
    parent = record.fields.get("parent") if record is not None else None
    return str(parent) if parent else None


def _step_keys(context: ExportContext, service: Record) -> list[str]:
    """The keys a service's `steps:` lists, resolved as the loader will: here first, then up the parents."""
    org, state, notes = context.org, context.state, context.notes
    orgs = {**state.organizations, org.slug: org}
    chain = [orgs[s] for s in lineage(org.slug, lambda s: _parent(orgs[s]), orgs)]
    owners = {o.slug: {r.key for r in o.records.values() if r.type == STEPS.type} for o in chain}
    keys = []
    for address in service.fields.get("steps") or ():
        owner, _, key = address.partition("/steps/")
        resolved = next((o.slug for o in chain if key in owners[o.slug]), None)
        if owner not in owners:
            notes.append(
                f"{service.address}: links step {address}, which is not in {org.slug}'s parent chain; "
                "a configuration cannot say that, so it is left out"
            )
            continue
        if resolved != owner:
            notes.append(
                f'{service.address}: links step {address}, but "{key}" resolves to {resolved}/steps/{key} '
                "in a configuration; the next plan will link that one"
            )
        keys.append(key)
    return sorted(set(keys))


def _service(context: ExportContext, record: Record) -> dict[str, Any]:
    service = {"key": record.key} | SERVICES.exported(
        record, ("name", "description", "location", "department")
    )
    service["disciplines"] = list(record.fields.get("disciplines") or [])
    put(service, "specialties", record.fields.get("specialties"))
    put(service, "steps", _step_keys(context, record))
    put(service, "protect", record.fields.get("protect"), SERVICES.export_defaults["protect"])
    windows = [r for r in context.live(CAPACITY.type) if r.parent == record.address]
    if windows:
        service["capacity"] = [window_item(window) for window in windows]
    return service


def _export(context: ExportContext) -> list[dict[str, Any]]:
    return [_service(context, r) for r in context.live(SERVICES.type)]


SERVICES = Section(
    type="service",
    section="services",
    document=DOCUMENT,
    desired=_desired,
    read=_read,
    table="services",
    columns={**{name: Column(name) for name in _COLUMNS}, "protect": Column("protected", bool)},
    referenced=True,
    after=_after,
    export=_export,
    export_defaults=ModelDefaults(DOCUMENT, UNPROTECTED),
)
