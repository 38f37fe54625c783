"""The organization itself: its parent and labels, the root every other section hangs from.

Its rows are read first, by `database.reads`, which learns the batch's ids from them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nexus_config import DesiredOrganization, DesiredState
from plan_apply.sections.record import Record
from plan_apply.sections.section import DesiredRecords, ReadBatch, Section, ownership

if TYPE_CHECKING:
    from plan_apply.database.writes import WriteContext
    from plan_apply.plan import Change

__all__ = ["ORGANIZATION", "organization_record"]


def _desired(section: Section, org: DesiredOrganization, state: DesiredState) -> DesiredRecords:
    fields = {"parent": org.parent, "labels": dict(sorted(org.labels.items()))}
    return [section.record(org.slug, "", fields)], {"organization"}


def organization_record(row: Any) -> Record:
    """An organization row (joined with its parent's slug as `parent_slug`) as a record."""
    fields = {"parent": row.parent_slug, "labels": dict(sorted((row.labels or {}).items()))}
    return ORGANIZATION.record(row.slug, "", fields, **ownership(row))


def _read(batch: ReadBatch) -> None:
    """Read with the batch itself (`database.reads`): nothing more to read here."""


@functools.cache
def _id_query() -> Any:
    """The id of the organization :slug, built once (each facility's transaction asks its parent's)."""
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    return sa.select(t.organizations.c.id).where(t.organizations.c.slug == sa.bindparam("slug"))


def _values(ctx: WriteContext, values: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if "labels" in values:
        result["labels"] = values["labels"] or {}
    if "parent" in values:
        parent = values["parent"]
        result["parent_id"] = (
            ctx.connection.execute(_id_query(), {"slug": parent}).scalar() if parent else None
        )
        if parent and result["parent_id"] is None:
            raise LookupError(
                f'parent organization "{parent}" does not exist in the database; apply it first'
            )
    return result


def _create(ctx: WriteContext, changes: Sequence[Change]) -> None:
    from plan_apply.database import tables as t

    (change,) = changes
    values = _values(ctx, change.after)
    inserted = ctx.connection.execute(
        t.organizations.insert(),
        {"slug": ctx.slug, "managed": True, "applied": ctx.applied(change), **values},
    )
    key = inserted.inserted_primary_key  # the driver's own (RETURNING, lastrowid): no query
    if key is None or key[0] is None:  # pragma: no cover (a single row's key is always told)
        raise LookupError(f"the database did not tell the id of {ctx.slug}'s new row")
    ctx.org_id = int(key[0])
    ctx.ids[ctx.slug] = ctx.org_id


def _update(ctx: WriteContext, changes: Sequence[Change]) -> None:
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    (change,) = changes
    ctx.connection.execute(
        sa.update(t.organizations)
        .where(t.organizations.c.id == ctx.org_id)
        .values(managed=True, applied=ctx.applied(change), **_values(ctx, change.after))
    )


ORGANIZATION = Section(
    type="organization",
    section="metadata",
    document=None,
    root=True,
    desired=_desired,
    read=_read,
    table="organizations",
    key_column=None,
    writers={"create": _create, "update": _update, "adopt": _update},
)
