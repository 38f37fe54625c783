"""Reading the actual state: a fixed number of SELECTs per table per batch of organizations.

Never one per row or per organization, in one read transaction so the plan sees one consistent snapshot.
Rows become the same `Record`s the desired side produces, plus ownership and live-data facts.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from plan_apply.actual import ActualOrganization, ActualState, AppliedConfiguration, fingerprint_of
from plan_apply.database import tables as t
from plan_apply.records import Record, address_of, normalized_applies_to

__all__ = ["BATCH_SIZE", "read_actual_state", "read_applied_configurations"]

BATCH_SIZE = 500
"""Organizations per batch of SELECTs: large enough to amortize, small enough for IN-lists."""


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime.date) else value


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _in(column: Any, values: Iterable[Any]) -> Any:
    return column.in_(sorted(set(values)))


def read_actual_state(
    connection: Connection,
    slugs: Sequence[str],
    school_keys: Iterable[str] = (),
    batch_size: int = BATCH_SIZE,
) -> ActualState:
    """The actual state of `slugs` (existing or not) and the platform schools among `school_keys`."""
    organizations: dict[str, ActualOrganization] = {}
    for batch in _chunks(sorted(set(slugs)), batch_size):
        organizations.update(_read_batch(connection, batch))
    keys = sorted(set(school_keys))
    platform: set[str] = set()
    for batch in _chunks(keys, batch_size):
        platform.update(
            connection.execute(sa.select(t.schools.c.slug).where(_in(t.schools.c.slug, batch))).scalars()
        )
    return ActualState(organizations, frozenset(platform))


def _ownership(row: Any) -> dict[str, Any]:
    return {"managed": bool(row.managed), "applied": row.applied}


def _read_batch(connection: Connection, slugs: Sequence[str]) -> dict[str, ActualOrganization]:
    parent = t.organizations.alias("parent")
    org_rows = connection.execute(
        sa.select(t.organizations, parent.c.slug.label("parent_slug"))
        .select_from(t.organizations.outerjoin(parent, t.organizations.c.parent_id == parent.c.id))
        .where(_in(t.organizations.c.slug, slugs))
    ).all()
    by_id = {row.id: row.slug for row in org_rows}
    records: dict[str, list[Record]] = defaultdict(list)
    for row in org_rows:
        records[row.slug].append(
            Record(
                row.slug,
                "organization",
                row.slug,
                "",
                {"parent": row.parent_slug, "labels": dict(sorted((row.labels or {}).items()))},
                **_ownership(row),
            )
        )
    if by_id:
        ids = list(by_id)
        _read_profiles(connection, ids, by_id, records)
        _read_staff(connection, ids, by_id, records)
        _read_steps(connection, ids, by_id, records)
        services = _read_services(connection, ids, by_id, records)
        _read_capacity(connection, services, records)
        _read_schools(connection, ids, by_id, records)
        _read_agreements(connection, ids, by_id, records)
    rows_by_slug = {row.slug: row for row in org_rows}
    result = {}
    for slug in slugs:
        org_row = rows_by_slug.get(slug)
        org_records = records.get(slug, [])
        result[slug] = ActualOrganization(
            slug,
            org_row.id if org_row is not None else None,
            {r.address: r for r in org_records},
            fingerprint_of(slug, org_records),
            int(org_row.revision) if org_row is not None else 0,
            org_row.config_hash if org_row is not None else None,
            org_row.applied_revision if org_row is not None else None,
        )
    return result


def _read_profiles(connection: Connection, ids: list[int], by_id: Mapping[int, str], out: Any) -> None:
    p = t.profiles
    for row in connection.execute(sa.select(p).where(_in(p.c.org_id, ids))):
        slug = by_id[row.org_id]
        fields = {
            "name": row.name,
            "type": row.type,
            "description": row.description,
            "website": row.website,
            "email": row.email,
            "phone": row.phone,
            "address": row.address or None,
            "timezone": row.timezone,
        }
        out[slug].append(Record(address_of(slug, "profile"), "profile", slug, "", fields, **_ownership(row)))


def _read_staff(connection: Connection, ids: list[int], by_id: Mapping[int, str], out: Any) -> None:
    s, p = t.staff, t.people
    query = (
        sa.select(s, p.c.email, p.c.name)
        .select_from(s.join(p, s.c.person_id == p.c.id))
        .where(_in(s.c.org_id, ids))
    )
    for row in connection.execute(query):
        slug = by_id[row.org_id]
        key = row.email.lower()
        fields = {"name": row.name, "title": row.title, "role": row.role}
        out[slug].append(
            Record(
                address_of(slug, "staff", key),
                "staff",
                slug,
                key,
                fields,
                extra={"id": row.id},
                **_ownership(row),
            )
        )


def _read_steps(connection: Connection, ids: list[int], by_id: Mapping[int, str], out: Any) -> None:
    s = t.steps
    for row in connection.execute(sa.select(s).where(_in(s.c.org_id, ids))):
        slug = by_id[row.org_id]
        fields = {
            "stage": row.stage,
            "name": row.name,
            "type": row.type,
            "completed_by": row.completed_by,
            "description": row.description,
            "instructions": row.instructions,
            "required": bool(row.required),
            "due_days": row.due_days,
            "expires_after_days": row.expires_after_days,
            "applies_to": normalized_applies_to(row.applies_to),
            "all_services": bool(row.all_services),
            "fields": row.fields,
        }
        out[slug].append(
            Record(
                address_of(slug, "step", row.key),
                "step",
                slug,
                row.key,
                fields,
                extra={"id": row.id},
                **_ownership(row),
            )
        )


def _read_services(
    connection: Connection, ids: list[int], by_id: Mapping[int, str], out: Any
) -> dict[int, tuple[str, str]]:
    s, link, step, owner = t.services, t.service_steps, t.steps, t.organizations
    linked: dict[int, list[str]] = defaultdict(list)
    query = (
        sa.select(link.c.service_id, step.c.key, owner.c.slug)
        .select_from(link.join(s, link.c.service_id == s.c.id).join(step, link.c.step_id == step.c.id))
        .join(owner, step.c.org_id == owner.c.id)
        .where(_in(s.c.org_id, ids))
    )
    for row in connection.execute(query):
        linked[row.service_id].append(address_of(row.slug, "step", row.key))
    services: dict[int, tuple[str, str]] = {}
    for row in connection.execute(sa.select(s).where(_in(s.c.org_id, ids))):
        slug = by_id[row.org_id]
        services[row.id] = (slug, row.key)
        fields = {
            "name": row.name,
            "description": row.description,
            "location": row.location,
            "department": row.department,
            "disciplines": sorted(set(row.disciplines or ())),
            "specialties": sorted(set(row.specialties or ())),
            "steps": sorted(linked.get(row.id, [])),
            "protect": bool(row.protected),
        }
        out[slug].append(
            Record(
                address_of(slug, "service", row.key),
                "service",
                slug,
                row.key,
                fields,
                archived=row.archived_at is not None,
                protected=bool(row.protected),
                extra={"id": row.id},
                **_ownership(row),
            )
        )
    return services


def _read_capacity(connection: Connection, services: Mapping[int, tuple[str, str]], out: Any) -> None:
    if not services:
        return
    c, a, r = t.capacity_windows, t.agreements, t.rotations
    booked = {
        window_id: count
        for window_id, count in connection.execute(
            sa.select(r.c.capacity_window_id, sa.func.count())
            .select_from(r.join(c, r.c.capacity_window_id == c.c.id))
            .where(_in(c.c.service_id, services))
            .group_by(r.c.capacity_window_id)
        )
    }
    query = (
        sa.select(c, a.c.key.label("agreement_key"))
        .select_from(c.outerjoin(a, c.c.agreement_id == a.c.id))
        .where(_in(c.c.service_id, services))
    )
    for row in connection.execute(query):
        slug, service_key = services[row.service_id]
        fields = {
            "name": row.name,
            "workflow": row.workflow,
            "agreement": row.agreement_key,
            "disciplines": sorted(set(row.disciplines or ())),
            "start_date": _iso(row.start_date),
            "end_date": _iso(row.end_date),
            "slots": row.slots,
            "max_group_size": row.max_group_size,
            "allow_specific_dates": bool(row.allow_specific_dates),
            "visibility": row.visibility,
            "description": row.description,
            "protect": bool(row.protected),
        }
        out[slug].append(
            Record(
                address_of(slug, "capacity", row.key, service_key),
                "capacity",
                slug,
                row.key,
                fields,
                parent=address_of(slug, "service", service_key),
                archived=row.archived_at is not None,
                protected=bool(row.protected),
                rotations=int(booked.get(row.id, 0)),
                extra={"id": row.id},
                **_ownership(row),
            )
        )


def _read_schools(connection: Connection, ids: list[int], by_id: Mapping[int, str], out: Any) -> None:
    p = t.partnerships
    for row in connection.execute(sa.select(p).where(_in(p.c.org_id, ids))):
        slug = by_id[row.org_id]
        fields = {"name": row.name, "contact_email": row.contact_email}
        out[slug].append(
            Record(
                address_of(slug, "school", row.school_key),
                "school",
                slug,
                row.school_key,
                fields,
                status=row.status,
                extra={"id": row.id},
                **_ownership(row),
            )
        )


def _read_agreements(connection: Connection, ids: list[int], by_id: Mapping[int, str], out: Any) -> None:
    a, d, link, s = t.agreements, t.documents, t.agreement_services, t.services
    covered: dict[int, list[str]] = defaultdict(list)
    query = (
        sa.select(link.c.agreement_id, s.c.key)
        .select_from(link.join(a, link.c.agreement_id == a.c.id).join(s, link.c.service_id == s.c.id))
        .where(_in(a.c.org_id, ids))
    )
    for row in connection.execute(query):
        covered[row.agreement_id].append(row.key)
    query = (
        sa.select(a, d.c.name.label("document_name"), d.c.sha256, d.c.size)
        .select_from(a.outerjoin(d, a.c.document_id == d.c.id))
        .where(_in(a.c.org_id, ids))
    )
    for row in connection.execute(query):
        slug = by_id[row.org_id]
        document = (
            {"name": row.document_name, "sha256": row.sha256, "size": row.size}
            if row.sha256 is not None
            else None
        )
        fields = {
            "school": row.school_key,
            "name": row.name,
            "description": row.description,
            "start_date": _iso(row.start_date),
            "end_date": _iso(row.end_date),
            "reminder_days": row.reminder_days,
            "services": sorted(set(covered.get(row.id, []))),
            "disciplines": sorted(set(row.disciplines or ())),
            "document": document,
            "submit": row.status != "draft",
            "protect": bool(row.protected),
        }
        out[slug].append(
            Record(
                address_of(slug, "agreement", row.key),
                "agreement",
                slug,
                row.key,
                fields,
                archived=row.archived_at is not None,
                protected=bool(row.protected),
                status=row.status,
                proposed=row.proposed,
                extra={"id": row.id},
                **_ownership(row),
            )
        )


def read_applied_configurations(connection: Connection) -> dict[str, AppliedConfiguration]:
    """Every organization's last applied configuration files, in one SELECT (for incremental plans)."""
    o = t.organizations
    parent = o.alias("parent")
    rows = connection.execute(
        sa.select(
            o.c.slug,
            o.c.config_files,
            o.c.config_hash,
            o.c.revision,
            o.c.applied_revision,
            o.c.labels,
            parent.c.slug.label("parent_slug"),
        )
        .select_from(o.outerjoin(parent, o.c.parent_id == parent.c.id))
        .where(o.c.config_files.is_not(None))
    )
    return {
        row.slug: AppliedConfiguration(
            row.slug,
            dict(row.config_files or {}),
            row.config_hash,
            int(row.revision),
            row.applied_revision,
            dict(row.labels or {}),
            row.parent_slug,
        )
        for row in rows
    }
