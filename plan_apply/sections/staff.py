"""Staff: the people who administer an organization, one membership row per person (found or created
in `people` by email, named as the configuration says when created; a person's own fields, their
name too, stay theirs: the membership is the organization's)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from nexus_config import DesiredOrganization, DesiredState
from nexus_config.sections import STAFF as DOCUMENT
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
    from nexus_config.models.common import Staff
    from plan_apply.database.writes import WriteContext
    from plan_apply.plan import Change

__all__ = ["STAFF", "staff_fields"]


def staff_fields(person: Staff) -> dict[str, Any]:
    """A staff member's comparable fields (the email is the key)."""
    return {"name": person.name, "title": person.title, "role": person.role}


def _desired(section: Section, org: DesiredOrganization, state: DesiredState) -> DesiredRecords:
    return section.listed(org, staff_fields)


def _read(batch: ReadBatch) -> None:
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    s, p = t.staff, t.people
    query = (
        sa.select(s, p.c.email, p.c.name)
        .select_from(s.join(p, s.c.person_id == p.c.id))
        .where(s.c.org_id.in_(batch.ids))
    )
    for row in batch.connection.execute(query):
        fields = {"name": row.name, "title": row.title, "role": row.role}
        slug = batch.by_id[row.org_id]
        batch.add(STAFF.record(slug, row.email.lower(), fields, extra={"id": row.id}, **ownership(row)))


def _key_of(change: Change) -> str:
    return change.address.rsplit("/", 1)[1]


def _people(ctx: WriteContext, changes: Sequence[Change]) -> dict[str, int]:
    """Find or create the people behind staff rows (their own profile fields stay theirs). People are
    the platform's: another organization's apply may create the same person meanwhile (then found)."""
    from plan_apply.database import tables as t
    from plan_apply.database.dialects import dialect_of

    emails = {_key_of(c): c.after.get("name") for c in changes}
    known = _people_known(ctx, emails)
    missing = [e for e in sorted(emails) if e not in known]
    if missing:
        rows = [{"email": e, "name": emails[e]} for e in missing]
        dialect_of(ctx.connection).insert_unless_present(ctx.connection, t.people, rows, ["email"])
        known |= _people_known(ctx, missing)
    return known


def _people_known(ctx: WriteContext, emails: Iterable[str]) -> dict[str, int]:
    """The ids of the people with these (lowercase) emails, where they exist."""
    found = ctx.connection.execute(_people_query(), {"emails": sorted(emails)})
    return {row.email.lower(): row.id for row in found}


@functools.cache
def _people_query() -> Any:
    """The people with any of :emails (lowercase), by the index on their lowercase email; built once."""
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    emails: sa.BindParameter[list[str]] = sa.bindparam("emails", expanding=True)
    return sa.select(t.people.c.id, t.people.c.email).where(sa.func.lower(t.people.c.email).in_(emails))


def _create(ctx: WriteContext, changes: Sequence[Change]) -> None:
    """Staff rows as any section's, computed ahead (`prepared`), with the people found or created here."""
    from plan_apply.database.writes import insert_rows

    people = _people(ctx, changes)
    insert_rows(ctx, STAFF, changes, lambda c: {"org_id": ctx.org_id, "person_id": people[_key_of(c)]})


def _update(ctx: WriteContext, changes: Sequence[Change]) -> None:
    """The membership only: the person's own fields, their name too, stay theirs."""
    from plan_apply.database.writes import update_rows

    update_rows(ctx, STAFF, changes)


def _export(context: ExportContext) -> list[dict[str, Any]]:
    return [{"email": r.key} | STAFF.exported(r, ("name", "title", "role")) for r in context.live(STAFF.type)]


STAFF = Section(
    type="staff",
    section="staff",
    document=DOCUMENT,
    desired=_desired,
    read=_read,
    table="staff",
    columns={"role": Column("role"), "title": Column("title")},
    key_column=None,
    writers={"create": _create, "update": _update, "adopt": _update},
    export=_export,
    export_defaults=ModelDefaults(DOCUMENT),
)
