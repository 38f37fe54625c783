"""Schools: the partnerships of a site, by the school's platform slug. A school not yet on the platform
is invited (an outbox row written in the same transaction)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nexus_config import DesiredOrganization, DesiredState
from nexus_config.sections import SCHOOLS as DOCUMENT
from plan_apply.sections.section import (
    Column,
    DesiredRecords,
    ExportContext,
    ModelDefaults,
    ReadBatch,
    Section,
    ownership,
)

if TYPE_CHECKING:
    from nexus_config.models.common import School
    from plan_apply.database.writes import WriteContext
    from plan_apply.plan import Change

__all__ = ["SCHOOLS", "school_fields"]


def school_fields(school: School) -> dict[str, Any]:
    """A partnership's comparable fields (the key is the school's slug)."""
    return {"name": school.name, "contact_email": school.contact_email}


def _desired(section: Section, org: DesiredOrganization, state: DesiredState) -> DesiredRecords:
    return section.listed(org, school_fields)


def _read(batch: ReadBatch) -> None:
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    p = t.partnerships
    for row in batch.connection.execute(sa.select(p).where(p.c.org_id.in_(batch.ids))):
        fields = {"name": row.name, "contact_email": row.contact_email}
        slug = batch.by_id[row.org_id]
        batch.add(
            SCHOOLS.record(
                slug, row.school_key, fields, status=row.status, extra={"id": row.id}, **ownership(row)
            )
        )


def _key_of(change: Change) -> str:
    return change.address.rsplit("/", 1)[1]


def _extra(ctx: WriteContext, change: Change) -> dict[str, Any]:
    from plan_apply.plan import Action

    if change.action is Action.CREATE:
        key = _key_of(change)
        return {"school_key": key, "status": "active" if key in ctx.platform_schools else "invited"}
    return {}


def _invited_in_family(ctx: WriteContext, keys: set[str]) -> set[str]:
    """The schools among `keys` an ancestor partners with, or a descendant has invited: a health
    system invites a school once, whichever of its organizations names it first. The family is walked
    first, then its rows are found by organization id: in one statement, PostgreSQL's estimate of the
    walk made it scan every partnership."""
    from plan_apply.database.reads import BATCH_SIZE

    family: dict[str, list[int]] = {"up": [], "down": []}
    for row in ctx.connection.execute(_family_query(), {"org_id": ctx.org_id}):
        family[row.side].append(row.id)
    ups, downs, wanted = family["up"], family["down"], sorted(keys)
    found: set[str] = set()
    # A big family's ids are bound a batch at a time: one statement binds at most 32,766 values on
    # SQLite (its default) and 65,535 on PostgreSQL, and a health system may have more descendants.
    for start in range(0, max(len(ups), len(downs)), BATCH_SIZE):
        batch = slice(start, start + BATCH_SIZE)
        parameters = {"ups": ups[batch], "downs": downs[batch], "keys": wanted}
        found.update(ctx.connection.scalars(_family_schools_query(), parameters))
    return found


@functools.cache
def _family_query() -> Any:
    """The ids of :org_id's ancestors (side "up") and descendants (side "down"), built once."""
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    o = t.organizations
    org_id: sa.BindParameter[int] = sa.bindparam("org_id")
    up = sa.select(o.c.parent_id.label("id")).where(o.c.id == org_id).cte("ancestors", recursive=True)
    up = up.union_all(sa.select(o.c.parent_id).where(o.c.id == up.c.id, o.c.parent_id.is_not(None)))
    down = sa.select(o.c.id).where(o.c.parent_id == org_id).cte("descendants", recursive=True)
    down = down.union_all(sa.select(o.c.id).where(o.c.parent_id == down.c.id))
    return sa.union_all(
        sa.select(up.c.id, sa.literal("up").label("side")).where(up.c.id.is_not(None)),
        sa.select(down.c.id, sa.literal("down").label("side")),
    )


@functools.cache
def _family_schools_query() -> Any:
    """The schools among :keys partnered by the organizations :ups or invited by :downs, built once."""
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    p, i = t.partnerships, t.invitations
    keys: sa.BindParameter[list[str]] = sa.bindparam("keys", expanding=True)
    return sa.union(
        sa.select(p.c.school_key).where(
            p.c.org_id.in_(sa.bindparam("ups", expanding=True)), p.c.school_key.in_(keys)
        ),
        sa.select(i.c.school_key).where(
            i.c.org_id.in_(sa.bindparam("downs", expanding=True)), i.c.school_key.in_(keys)
        ),
    )


def _invite(ctx: WriteContext, changes: Sequence[Change]) -> None:
    """Schools not yet on the platform are invited: an outbox row, written in the same transaction,
    once per health system."""
    from plan_apply.database import tables as t
    from plan_apply.database.bound import bulk_insert
    from plan_apply.plan import Action

    wanted = {
        _key_of(c) for c in changes if c.action is Action.CREATE and _key_of(c) not in ctx.platform_schools
    }
    family = _invited_in_family(ctx, wanted) if wanted else set()
    rows = [
        {
            "org_id": ctx.org_id,
            "school_key": _key_of(c),
            "email": c.after["contact_email"],
            "created_at": ctx.now,
        }
        for c in changes
        if c.action is Action.CREATE
        and _key_of(c) not in ctx.platform_schools
        and _key_of(c) not in family
        and c.after.get("contact_email")
    ]
    if rows:
        bulk_insert(ctx.connection, t.invitations, rows)


def _export(context: ExportContext) -> list[dict[str, Any]]:
    return [
        {"key": r.key} | SCHOOLS.exported(r, ("name", "contact_email")) for r in context.live(SCHOOLS.type)
    ]


SCHOOLS = Section(
    type="school",
    section="schools",
    document=DOCUMENT,
    desired=_desired,
    read=_read,
    table="partnerships",
    columns={"name": Column("name"), "contact_email": Column("contact_email")},
    key_column="school_key",
    extra=_extra,
    after=_invite,
    export=_export,
    export_defaults=ModelDefaults(DOCUMENT),
)
