"""Reading the actual state: a fixed number of SELECTs per table per batch of organizations.

Never one per row or per organization, in one read transaction so the plan sees one consistent snapshot.
Rows become the same `Record`s the desired side produces, plus ownership and live-data facts.
"""

from __future__ import annotations

import functools
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from plan_apply.actual import ActualOrganization, ActualState, AppliedConfiguration, fingerprint_of
from plan_apply.database import tables as t
from plan_apply.sections import SECTIONS, Record, Section
from plan_apply.sections.organization import organization_record
from plan_apply.sections.section import ReadBatch

__all__ = ["BATCH_SIZE", "read_actual_state", "read_applied_configurations", "read_parents"]

BATCH_SIZE = 500
"""Organizations per batch of SELECTs: large enough to amortize, small enough for IN-lists."""


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def read_actual_state(
    connection: Connection,
    slugs: Sequence[str],
    school_keys: Iterable[str] = (),
    batch_size: int = BATCH_SIZE,
    sections: Sequence[Section] = SECTIONS,
) -> ActualState:
    """The actual state of `slugs` (existing or not) and the platform schools among `school_keys`;
    each section reads its own rows (`sections`: the registry, or another one in tests)."""
    organizations: dict[str, ActualOrganization] = {}
    for batch in _chunks(sorted(set(slugs)), batch_size):
        organizations.update(_read_batch(connection, batch, sections))
    keys = sorted(set(school_keys))
    platform: set[str] = set()
    for batch in _chunks(keys, batch_size):
        platform.update(connection.scalars(_schools_query(), {"slugs": list(batch)}))
    return ActualState(organizations, frozenset(platform))


def _read_batch(
    connection: Connection, slugs: Sequence[str], sections: Sequence[Section]
) -> dict[str, ActualOrganization]:
    org_rows = connection.execute(_organizations_query(), {"slugs": list(slugs)}).all()
    records: dict[str, list[Record]] = defaultdict(list)
    for row in org_rows:
        records[row.slug].append(organization_record(row))
    if org_rows:
        batch = ReadBatch(
            connection, sorted(row.id for row in org_rows), {r.id: r.slug for r in org_rows}, records
        )
        for section in sections:
            section.read(batch)
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


@functools.cache
def _organizations_query() -> sa.Select[Any]:
    """The organizations named :slugs with their parent's slug, built once: every apply reads each of
    its organizations again under the lock."""
    parent = t.organizations.alias("parent")
    return (
        sa.select(t.organizations, parent.c.slug.label("parent_slug"))
        .select_from(t.organizations.outerjoin(parent, t.organizations.c.parent_id == parent.c.id))
        .where(t.organizations.c.slug.in_(sa.bindparam("slugs", expanding=True)))
    )


@functools.cache
def _schools_query() -> sa.Select[Any]:
    """The platform's schools among :slugs."""
    return sa.select(t.schools.c.slug).where(t.schools.c.slug.in_(sa.bindparam("slugs", expanding=True)))


def read_parents(connection: Connection, slugs: Iterable[str]) -> dict[str, str]:
    """The parent the database holds of each of the organizations `slugs` that has one, a SELECT of two
    columns per `BATCH_SIZE` (a fleet's batches keep a facility that changes systems with its old one)."""
    o = t.organizations
    parent = o.alias("parent")
    query = (
        sa.select(o.c.slug, parent.c.slug)
        .select_from(o.join(parent, o.c.parent_id == parent.c.id))
        .where(o.c.slug.in_(sa.bindparam("slugs", expanding=True)))
    )
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(set(slugs)), BATCH_SIZE):
        found.update((slug, parent) for slug, parent in connection.execute(query, {"slugs": list(chunk)}))
    return found


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
            # Interned: a system's files and templates are recorded by each of its facilities, and a fleet's
            # plan holds every organization's record while it runs.
            {sys.intern(path): sys.intern(sha) for path, sha in (row.config_files or {}).items()},
            row.config_hash,
            int(row.revision),
            row.applied_revision,
            dict(row.labels or {}),
            row.parent_slug,
        )
        for row in rows
    }
