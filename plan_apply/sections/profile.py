"""The profile: one per organization, its row keyed by the organization itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nexus_config import DesiredOrganization, DesiredState
from nexus_config.sections import PROFILE as DOCUMENT
from plan_apply.sections.section import (
    Column,
    DesiredRecords,
    ExportContext,
    ModelDefaults,
    ReadBatch,
    Section,
    ordered,
    ownership,
    put,
)

if TYPE_CHECKING:
    from nexus_config.models.common import Address, Profile
    from plan_apply.database.writes import WriteContext
    from plan_apply.plan import Change

__all__ = ["PROFILE", "profile_fields"]

_FIELDS = ("name", "type", "description", "website", "email", "phone", "address", "timezone")
_ADDRESS = ("line1", "line2", "city", "state", "postal_code", "country")


def _address(address: Address | None) -> dict[str, str] | None:
    if address is None:
        return None
    values = {k: v for k, v in address.model_dump().items() if v is not None}
    return values or None


def profile_fields(profile: Profile) -> dict[str, Any]:
    """A profile's comparable fields (an address with nothing in it is no address)."""
    return {name: getattr(profile, name) for name in _FIELDS} | {"address": _address(profile.address)}


def _desired(section: Section, org: DesiredOrganization, state: DesiredState) -> DesiredRecords:
    if org.profile is None:
        return [], set()
    return [section.record(org.slug, "", profile_fields(org.profile))], {"profile"}


def _read(batch: ReadBatch) -> None:
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    p = t.profiles
    for row in batch.connection.execute(sa.select(p).where(p.c.org_id.in_(batch.ids))):
        fields = {name: getattr(row, name) for name in _FIELDS} | {"address": row.address or None}
        batch.add(PROFILE.record(batch.by_id[row.org_id], "", fields, **ownership(row)))


def _create(ctx: WriteContext, changes: Sequence[Change]) -> None:
    from plan_apply.database import tables as t
    from plan_apply.database.writes import columns_of

    (change,) = changes
    ctx.connection.execute(
        t.profiles.insert(),
        {
            "org_id": ctx.org_id,
            "managed": True,
            "applied": ctx.applied(change),
            **columns_of(PROFILE, change.after),
        },
    )


def _update(ctx: WriteContext, changes: Sequence[Change]) -> None:
    import sqlalchemy as sa

    from plan_apply.database import tables as t
    from plan_apply.database.writes import columns_of

    (change,) = changes
    ctx.connection.execute(
        sa.update(t.profiles)
        .where(t.profiles.c.org_id == ctx.org_id)
        .values(managed=True, applied=ctx.applied(change), **columns_of(PROFILE, change.after))
    )


def _export(context: ExportContext) -> list[dict[str, Any]]:
    record = context.org.records.get(PROFILE.address(context.org.slug))
    if record is None:
        context.notes.append(
            f"{context.org.slug}: has no profile in the database; a configuration must declare one"
        )
        return []
    profile = PROFILE.exported(record, ("name", "type", "description", "website", "email", "phone"))
    put(profile, "address", ordered(record.fields.get("address") or {}, _ADDRESS))
    put(profile, "timezone", record.fields.get("timezone"))
    return [profile]


PROFILE = Section(
    type="profile",
    section="profile",
    document=DOCUMENT,
    desired=_desired,
    read=_read,
    table="profiles",
    columns={name: Column(name) for name in _FIELDS},
    key_column=None,
    single=True,
    writers={"create": _create, "update": _update, "adopt": _update},
    export=_export,
    export_defaults=ModelDefaults(DOCUMENT),
)
