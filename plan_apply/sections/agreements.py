"""Agreements: a site's terms with a school, with the signed document and the services they cover.
Once submitted they belong to both sides: changed terms go back to the school, and what the school
proposed is left alone unless the site counter-proposes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from nexus_config import DesiredOrganization, DesiredState
from nexus_config.attachments import read_document_bytes
from nexus_config.coverage import linked_services, qualified
from nexus_config.desired import AttachedDocument
from nexus_config.sections import AGREEMENTS as DOCUMENT
from plan_apply.sections.capacity import iso_date, row_date
from plan_apply.sections.record import Record
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
from plan_apply.sections.services import SERVICES

if TYPE_CHECKING:
    from nexus_config.models.v1 import Agreement
    from plan_apply.database.writes import WriteContext
    from plan_apply.plan import Change

__all__ = ["AGREEMENTS", "agreement_fields", "linked_within"]


def agreement_fields(
    agreement: Agreement, document: Mapping[str, Any] | None, services: list[str] | None = None
) -> dict[str, Any]:
    """An agreement's comparable fields; its document by name, hash and size. `services`, for an
    agreement that `covers` facilities, names what it links: its own organization's services by key,
    the facilities' as `slug/key`."""
    return with_protect(
        {
            "school": agreement.school,
            "name": agreement.name,
            "description": agreement.description,
            "start_date": agreement.start_date,
            "end_date": agreement.end_date,
            "reminder_days": agreement.reminder_days,
            "services": sorted_set(agreement.services if services is None else services),
            "disciplines": sorted_set(agreement.disciplines),
            "document": dict(document) if document is not None else None,
            "submit": agreement.submit,
        },
        agreement.protect,
    )


def linked_within(row: Record, organizations: Collection[str]) -> Record:
    """An agreement's row as a configuration holding `organizations` compares it: its links to services
    of organizations outside it are not that configuration's (only their own applies write them)."""

    def kept(fields: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if fields is None or not fields.get("services"):
            return dict(fields) if fields is not None else None
        inside = [s for s in fields["services"] if "/" not in s or s.split("/", 1)[0] in organizations]
        return {**fields, "services": inside}

    if row.type != AGREEMENTS.type or all(
        "/" not in s or s.split("/", 1)[0] in organizations for s in row.fields.get("services") or ()
    ):
        return row
    return replace(row, fields=kept(row.fields) or {}, applied=kept(row.applied))


def _desired(section: Section, org: DesiredOrganization, state: DesiredState) -> DesiredRecords:
    def fields(agreement: Agreement) -> dict[str, Any]:
        attached = org.documents.get(agreement.key)
        document = (
            {"name": attached.name, "sha256": attached.sha256, "size": attached.size} if attached else None
        )
        if agreement.covers is None:
            return agreement_fields(agreement, document)
        linked = linked_services(org.slug, agreement, state.organizations)
        return agreement_fields(
            agreement,
            document,
            [key if owner == org.slug else qualified(owner, key) for owner, key in linked],
        )

    return section.listed(org, fields)


def _read(batch: ReadBatch) -> None:
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    a, d, link, s, o = t.agreements, t.documents, t.agreement_services, t.services, t.organizations
    covered: dict[int, list[str]] = defaultdict(list)
    query = (
        sa.select(link.c.agreement_id, s.c.key, o.c.slug, (s.c.org_id == a.c.org_id).label("own"))
        .select_from(
            link.join(a, link.c.agreement_id == a.c.id)
            .join(s, link.c.service_id == s.c.id)
            .join(o, s.c.org_id == o.c.id)
        )
        .where(a.c.org_id.in_(batch.ids))
    )
    for row in batch.connection.execute(query):
        covered[row.agreement_id].append(row.key if row.own else qualified(row.slug, row.key))
    used_by = _windows_of_facilities(batch)
    query = (
        sa.select(a, d.c.name.label("document_name"), d.c.sha256, d.c.size)
        .select_from(a.outerjoin(d, a.c.document_id == d.c.id))
        .where(a.c.org_id.in_(batch.ids))
    )
    for row in batch.connection.execute(query):
        document = (
            {"name": row.document_name, "sha256": row.sha256, "size": row.size}
            if row.sha256 is not None
            else None
        )
        fields = {
            "school": row.school_key,
            "name": row.name,
            "description": row.description,
            "start_date": iso_date(row.start_date),
            "end_date": iso_date(row.end_date),
            "reminder_days": row.reminder_days,
            "services": sorted_set(covered.get(row.id, [])),
            "disciplines": sorted_set(row.disciplines),
            "document": document,
            "submit": row.status != "draft",
            "protect": bool(row.protected),
        }
        batch.add(
            AGREEMENTS.record(
                batch.by_id[row.org_id],
                row.key,
                fields,
                archived=row.archived_at is not None,
                protected=bool(row.protected),
                status=row.status,
                proposed=row.proposed,
                extra={"id": row.id, "used_by": used_by.get(row.id, ())},
                **ownership(row),
            )
        )


def _windows_of_facilities(batch: ReadBatch) -> dict[int, tuple[tuple[str, int], ...]]:
    """The capacity windows of other organizations (facilities) scheduled under these agreements, with
    the rotations booked on each: the parent's plan never removes an agreement from under them."""
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    a, c, s, o, r = t.agreements, t.capacity_windows, t.services, t.organizations, t.rotations
    booked = sa.select(sa.func.count()).where(r.c.capacity_window_id == c.c.id).scalar_subquery()
    query = (
        sa.select(c.c.agreement_id, c.c.key, s.c.key.label("service_key"), o.c.slug, booked.label("booked"))
        .select_from(
            c.join(a, c.c.agreement_id == a.c.id)
            .join(s, c.c.service_id == s.c.id)
            .join(o, s.c.org_id == o.c.id)
        )
        .where(a.c.org_id.in_(batch.ids), s.c.org_id != a.c.org_id)
    )
    found: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for row in batch.connection.execute(query):
        address = f"{row.slug}/services/{row.service_key}/capacity/{row.key}"
        found[row.agreement_id].append((address, int(row.booked or 0)))
    return {k: tuple(sorted(v)) for k, v in found.items()}


def _document_id(ctx: WriteContext, document: Mapping[str, Any] | None) -> int | None:
    """The stored document's id, uploading it (re-read and re-hashed) the first time it is named."""
    import sqlalchemy as sa

    from plan_apply.database import tables as t

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
    from plan_apply.database.dialects import dialect_of

    row = {
        "sha256": sha,
        "name": document["name"],
        "media_type": media,
        "size": len(content),
        "content": content,
    }
    # Another organization's apply may be storing the same file right now: theirs or ours, one row.
    dialect_of(ctx.connection).insert_unless_present(ctx.connection, t.documents, [row], ["sha256"])
    return int(
        ctx.connection.execute(sa.select(t.documents.c.id).where(t.documents.c.sha256 == sha)).scalar_one()
    )


def _extra(ctx: WriteContext, change: Change) -> dict[str, Any]:
    """The document and the status: the one the plan says (submitting, re-submitting changed terms), or
    back to the school when the site counter-proposes."""
    from plan_apply.database.writes import row_address
    from plan_apply.plan import Action

    values: dict[str, Any] = {}
    current = ctx.records.get(row_address(change))
    status = current.status if current is not None and change.action is not Action.CREATE else None
    if "org" in change.after:  # taken over from another organization of the family
        values["org_id"] = ctx.org_id
    if "document" in change.after:
        values["document_id"] = _document_id(ctx, change.after["document"])
    if change.action is Action.CREATE:
        values["status"] = "pending_school" if change.after.get("submit") else "draft"
    elif "status" in change.after:
        values["status"] = change.after["status"]
    elif status == "changes_proposed" and ctx.counter_propose:
        values["status"] = "pending_school"
        values["proposed"] = None
    return values


def _update(ctx: WriteContext, changes: Sequence[Change]) -> None:
    """What the school proposed is left alone (and said so) unless the site counter-proposes; a rename
    or an adoption of it still renames or adopts the row, its terms untouched."""
    from dataclasses import replace

    from plan_apply.database.writes import after_rename, family_kept_clean, row_address, update_rows

    kept = []
    for change in changes:
        current = ctx.records.get(row_address(change))
        if current is not None and current.status == "changes_proposed" and not ctx.counter_propose:
            ctx.leave_alone(change, "the school proposed changes; left alone (use --counter-propose)")
            if "key" in change.after or change.action.value == "adopt":
                identity = ("key", "org", "archived")
                kept.append(
                    replace(
                        change,
                        before={k: v for k, v in change.before.items() if k in identity},
                        after={k: v for k, v in change.after.items() if k in identity},
                    )
                )
            continue
        kept.append(change)
    _taken_ids(ctx, kept)
    if kept:
        # A row taken over from the system or a facility bumps its old owner too: nexus's own write.
        with family_kept_clean(ctx, {str(c.before["org"]) for c in kept if "org" in c.before}):
            update_rows(ctx, AGREEMENTS, kept, lambda c: _extra(ctx, c))
        after_rename(ctx, kept)
        _link_services(ctx, kept)


def _taken_ids(ctx: WriteContext, changes: Sequence[Change]) -> None:
    """The ids of the rows taken over from other organizations of the family (one SELECT each)."""
    import sqlalchemy as sa

    from plan_apply.database import tables as t
    from plan_apply.database.writes import row_address

    a, o = t.agreements, t.organizations

    def ancestors(org_id: int | None) -> list[int]:
        chain: list[int] = []
        while org_id is not None and org_id not in chain:
            chain.append(org_id)
            org_id = ctx.connection.execute(sa.select(o.c.parent_id).where(o.c.id == org_id)).scalar()
        return chain

    for change in changes:
        if "org" not in change.before:
            continue
        found = ctx.connection.execute(
            sa.select(a.c.id, a.c.org_id)
            .select_from(a.join(o, a.c.org_id == o.c.id))
            .where(o.c.slug == change.before["org"], a.c.key == change.before["key"])
        ).first()
        if found is None:  # the update finds no row and says the item changed meanwhile
            continue
        if found.org_id not in ancestors(ctx.org_id) and ctx.org_id not in ancestors(found.org_id):
            # A saved plan is untrusted: no configuration moves an agreement out of another family.
            raise LookupError(
                f"{change.address}: {change.before['org']} is neither a parent nor a facility of {ctx.slug}; "
                "agreements move only within a health system"
            )
        ctx.ids[row_address(change)] = int(found.id)


def _link_services(ctx: WriteContext, changes: Sequence[Change]) -> None:
    """The services of this organization an agreement covers are replaced as a whole: one DELETE and one
    INSERT per batch. A facility's services (`slug/key`) are linked by the facility's own transaction,
    which may be creating them (see `services.py`)."""
    import sqlalchemy as sa

    from plan_apply.database import tables as t
    from plan_apply.database.bound import bulk_insert
    from plan_apply.plan import Action

    relinked = [c for c in changes if "services" in c.after]
    if not relinked:
        return
    ids = [ctx.row_id(c.address) for c in relinked if c.action is not Action.CREATE]
    if ids:  # a new agreement has no links yet
        link = t.agreement_services
        own = sa.select(t.services.c.id).where(t.services.c.org_id == ctx.org_id)
        ctx.connection.execute(
            sa.delete(link).where(link.c.agreement_id.in_(ids), link.c.service_id.in_(own))
        )
    rows = [
        {"agreement_id": ctx.row_id(c.address), "service_id": ctx.row_id(SERVICES.address(ctx.slug, key))}
        for c in relinked
        for key in c.after["services"]
        if "/" not in key
    ]
    if rows:
        bulk_insert(ctx.connection, t.agreement_services, rows)


def _agreement(record: Record, document_path: str | None) -> dict[str, Any]:
    agreement = {"key": record.key} | AGREEMENTS.exported(
        record, ("school", "name", "description", "start_date", "end_date", "reminder_days")
    )
    services = list(record.fields.get("services") or [])
    facilities = sorted({name.split("/", 1)[0] for name in services if "/" in name})
    if facilities:  # a system-wide agreement: the facilities it links, and each service's key once
        agreement["covers"] = facilities
    agreement["services"] = sorted({name.rsplit("/", 1)[-1] for name in services})
    agreement["disciplines"] = list(record.fields.get("disciplines") or [])
    put(agreement, "document", document_path)
    agreement |= AGREEMENTS.exported(record, ("submit", "protect"))
    return agreement


def _export(context: ExportContext) -> list[dict[str, Any]]:
    agreements = []
    for record in context.live(AGREEMENTS.type):
        attached = record.fields.get("document")
        agreements.append(_agreement(record, context.attach(record, attached) if attached else None))
    return agreements


AGREEMENTS = Section(
    type="agreement",
    section="agreements",
    document=DOCUMENT,
    desired=_desired,
    read=_read,
    table="agreements",
    columns={
        **{name: Column(name) for name in ("name", "description", "reminder_days", "disciplines")},
        "school": Column("school_key"),
        "start_date": Column("start_date", row_date),
        "end_date": Column("end_date", row_date),
        "protect": Column("protected", bool),
    },
    referenced=True,
    extra=_extra,
    after=_link_services,
    writers={"update": _update, "adopt": _update, "rename": _update},
    export=_export,
    export_defaults=ModelDefaults(DOCUMENT, UNPROTECTED),
)
