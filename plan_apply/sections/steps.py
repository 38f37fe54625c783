"""Steps: what a student completes at a stage (forms, uploads, checkboxes), keyed within their
organization and shared down the parent chain (a service links steps of its own and its ancestors)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nexus_config import DesiredOrganization, DesiredState
from nexus_config.sections import STEPS as DOCUMENT
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
    sorted_set,
)

if TYPE_CHECKING:
    from nexus_config.models.common import FormField
    from nexus_config.models.v1 import AppliesTo, Step
    from plan_apply.database.writes import WriteContext
    from plan_apply.plan import Change

__all__ = ["STEPS", "normalized_applies_to", "step_fields"]

_FIELDS = (
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
_FORM_FIELD = ("key", "label", "type", "required", "options")
_STAGES = {"application": 0, "onboarding": 1, "offboarding": 2}


def normalized_applies_to(applies_to: AppliesTo | Mapping[str, Any] | None) -> dict[str, list[str]] | None:
    """`applies_to` with empty lists dropped and sets sorted; None when it restricts nothing."""
    if applies_to is None:
        return None
    raw = dict(applies_to) if isinstance(applies_to, Mapping) else applies_to.model_dump()
    result = {k: sorted_set(v) for k, v in sorted(raw.items()) if v}
    return result or None


def _form_field(form_field: FormField) -> dict[str, Any]:
    result: dict[str, Any] = {
        "key": form_field.key,
        "label": form_field.label,
        "type": form_field.type,
        "required": form_field.required,
    }
    if form_field.options is not None:
        result["options"] = list(form_field.options)
    return result


def step_fields(step: Step) -> dict[str, Any]:
    """A step's comparable fields: `applies_to` normalized, form fields as plain data."""
    return {name: getattr(step, name) for name in _FIELDS} | {
        "applies_to": normalized_applies_to(step.applies_to),
        "fields": [_form_field(f) for f in step.fields] if step.fields is not None else None,
    }


def _desired(section: Section, org: DesiredOrganization, state: DesiredState) -> DesiredRecords:
    return section.listed(org, step_fields)


def _read(batch: ReadBatch) -> None:
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    s = t.steps
    # The services of other organizations that link these steps (a child's services link its parents'
    # steps): a removal must see them, since the plan of this organization does not change them.
    linked_by = {
        step_id: [f"{slug}/services/{key}" for slug, key in services]
        for step_id, services in batch.linked_elsewhere(t.service_steps, s, t.services).items()
    }
    for row in batch.connection.execute(sa.select(s).where(s.c.org_id.in_(batch.ids))):
        fields = {name: getattr(row, name) for name in _FIELDS} | {
            "required": bool(row.required),
            "applies_to": normalized_applies_to(row.applies_to),
            "all_services": bool(row.all_services),
        }
        slug = batch.by_id[row.org_id]
        extra = {"id": row.id, "linked_by": tuple(sorted(linked_by.get(row.id, ())))}
        batch.add(STEPS.record(slug, row.key, fields, extra=extra, **ownership(row)))


def _step(record: Any) -> dict[str, Any]:
    step = {"key": record.key, "stage": record.fields.get("stage")}
    step |= STEPS.exported(record, _FIELDS[1:9])
    applies_to = record.fields.get("applies_to") or {}
    put(
        step,
        "applies_to",
        {k: applies_to[k] for k in ("workflows", "disciplines", "schools") if applies_to.get(k)},
    )
    put(step, "all_services", record.fields.get("all_services"), STEPS.export_defaults["all_services"])
    if record.fields.get("fields") is not None:
        step["fields"] = [
            {k: v for k, v in ordered(field, _FORM_FIELD).items() if k != "required" or v}
            for field in record.fields["fields"]
        ]
    return step


def _export(context: ExportContext) -> list[dict[str, Any]]:
    live = context.live(STEPS.type)
    return [_step(r) for r in sorted(live, key=lambda r: (_STAGES.get(str(r.fields.get("stage")), 9), r.key))]


def _delete(ctx: WriteContext, changes: Sequence[Change]) -> None:
    """Steps go; the links to them of this organization's archived managed services go first (the plan
    saw every other link and refused; the database refuses to cascade into them)."""
    import sqlalchemy as sa

    from plan_apply.database import tables as t

    ids = [ctx.row_id(c.address) for c in changes]
    own = sa.select(t.services.c.id).where(
        t.services.c.org_id == ctx.org_id,
        t.services.c.managed.is_(True),
        t.services.c.archived_at.is_not(None),
    )
    link = t.service_steps
    ctx.connection.execute(sa.delete(link).where(link.c.step_id.in_(ids), link.c.service_id.in_(own)))
    ctx.connection.execute(sa.delete(t.steps).where(t.steps.c.id.in_(ids)))


STEPS = Section(
    type="step",
    section="steps",
    document=DOCUMENT,
    desired=_desired,
    read=_read,
    table="steps",
    columns={name: Column(name) for name in _FIELDS},
    writers={"delete": _delete},
    export=_export,
    export_defaults=ModelDefaults(DOCUMENT),
)
