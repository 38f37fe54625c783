"""Records: the one shape both sides take before they are compared, keyed by address.

The diff never sees pydantic documents or SQLAlchemy rows: desired organizations and database rows are
both turned into `Record`s whose `fields` hold normalized, JSON-ready values (sets sorted, dates as
strings, absent lists as empty), so equal meaning compares equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nexus_config import DesiredOrganization, DesiredState
from nexus_config.models.common import Address, FormField, Profile, School, Staff
from nexus_config.models.v1 import Agreement, AppliesTo, Capacity, Service, Step

__all__ = [
    "SECTION_OF",
    "TYPES",
    "Record",
    "address_of",
    "desired_records",
    "normalized_applies_to",
]

TYPES = ("organization", "profile", "school", "step", "service", "agreement", "capacity", "staff")
"""Record types in foreign-key order: read forward to create and update, backward to delete."""

SECTION_OF = {
    "organization": "metadata",
    "profile": "profile",
    "school": "schools",
    "step": "steps",
    "service": "services",
    "agreement": "agreements",
    "capacity": "capacity",
    "staff": "staff",
}


@dataclass(frozen=True, slots=True)
class Record:
    """One addressable item, from either side.

    `fields` are compared; a desired record lists every field it owns (`protect` only when the
    configuration says it). The remaining attributes describe the actual row and are ignored on the
    desired side: ownership (`managed`), what nexus last applied (`applied`), and live-data facts.
    """

    address: str
    type: str
    org: str
    key: str
    fields: Mapping[str, Any]
    parent: str | None = None
    previous_keys: tuple[str, ...] = ()
    managed: bool = True
    applied: Mapping[str, Any] | None = None
    archived: bool = False
    protected: bool = False
    rotations: int = 0
    status: str | None = None
    proposed: Mapping[str, Any] | None = None
    dependents: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)


def address_of(org: str, type_: str, key: str = "", parent_key: str | None = None) -> str:
    """The plan address of an item (CLI.md): `ORG/SECTION/KEY`, capacity under its service."""
    if type_ == "organization":
        return org
    if type_ == "profile":
        return f"{org}/profile"
    if type_ == "capacity":
        return f"{org}/services/{parent_key}/capacity/{key}"
    return f"{org}/{SECTION_OF[type_]}/{key}"


def _sorted_set(values: Iterable[str] | None) -> list[str]:
    return sorted(set(values or ()))


def normalized_applies_to(applies_to: AppliesTo | Mapping[str, Any] | None) -> dict[str, list[str]] | None:
    """`applies_to` with empty lists dropped and sets sorted; None when it restricts nothing."""
    if applies_to is None:
        return None
    raw = applies_to.model_dump() if isinstance(applies_to, AppliesTo) else dict(applies_to)
    result = {k: _sorted_set(v) for k, v in sorted(raw.items()) if v}
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


def _address(address: Address | None) -> dict[str, str] | None:
    if address is None:
        return None
    values = {k: v for k, v in address.model_dump().items() if v is not None}
    return values or None


def profile_fields(profile: Profile) -> dict[str, Any]:
    return {
        "name": profile.name,
        "type": profile.type,
        "description": profile.description,
        "website": profile.website,
        "email": profile.email,
        "phone": profile.phone,
        "address": _address(profile.address),
        "timezone": profile.timezone,
    }


def staff_fields(person: Staff) -> dict[str, Any]:
    return {"name": person.name, "title": person.title, "role": person.role}


def step_fields(step: Step) -> dict[str, Any]:
    return {
        "stage": step.stage,
        "name": step.name,
        "type": step.type,
        "completed_by": step.completed_by,
        "description": step.description,
        "instructions": step.instructions,
        "required": step.required,
        "due_days": step.due_days,
        "expires_after_days": step.expires_after_days,
        "applies_to": normalized_applies_to(step.applies_to),
        "all_services": step.all_services,
        "fields": [_form_field(f) for f in step.fields] if step.fields is not None else None,
    }


def _protect(fields: dict[str, Any], protect: bool | None) -> dict[str, Any]:
    if protect is not None:
        fields["protect"] = protect
    return fields


def service_fields(service: Service, step_addresses: list[str]) -> dict[str, Any]:
    return _protect(
        {
            "name": service.name,
            "description": service.description,
            "location": service.location,
            "department": service.department,
            "disciplines": _sorted_set(service.disciplines),
            "specialties": _sorted_set(service.specialties),
            "steps": sorted(step_addresses),
        },
        service.protect,
    )


def capacity_fields(window: Capacity) -> dict[str, Any]:
    return _protect(
        {
            "name": window.name,
            "workflow": window.workflow,
            "agreement": window.agreement,
            "disciplines": _sorted_set(window.disciplines),
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


def school_fields(school: School) -> dict[str, Any]:
    return {"name": school.name, "contact_email": school.contact_email}


def agreement_fields(agreement: Agreement, document: Mapping[str, Any] | None) -> dict[str, Any]:
    return _protect(
        {
            "school": agreement.school,
            "name": agreement.name,
            "description": agreement.description,
            "start_date": agreement.start_date,
            "end_date": agreement.end_date,
            "reminder_days": agreement.reminder_days,
            "services": _sorted_set(agreement.services),
            "disciplines": _sorted_set(agreement.disciplines),
            "document": dict(document) if document is not None else None,
            "submit": agreement.submit,
        },
        agreement.protect,
    )


def _step_address(key: str, org: DesiredOrganization, state: DesiredState) -> str:
    for ancestor in state.chain(org.slug):
        if any(step.key == key for step in ancestor.steps or ()):
            return address_of(ancestor.slug, "step", key)
    return address_of(org.slug, "step", key)  # unreachable for a checked state


def desired_records(org: DesiredOrganization, state: DesiredState) -> tuple[list[Record], set[str]]:
    """The organization's records, and the scopes it manages (`staff`, `services/er/capacity`, ...).

    A scope that the configuration does not declare is not managed here: nothing in it is deleted.
    """
    slug = org.slug
    records = [
        Record(
            slug,
            "organization",
            slug,
            "",
            {"parent": org.parent, "labels": dict(sorted(org.labels.items()))},
        )
    ]
    scopes = {"organization"}
    if org.profile is not None:
        records.append(Record(address_of(slug, "profile"), "profile", slug, "", profile_fields(org.profile)))
        scopes.add("profile")
    if org.schools is not None:
        scopes.add("schools")
        records.extend(
            Record(address_of(slug, "school", s.key), "school", slug, s.key, school_fields(s))
            for s in org.schools
        )
    if org.steps is not None:
        scopes.add("steps")
        records.extend(
            Record(
                address_of(slug, "step", s.key),
                "step",
                slug,
                s.key,
                step_fields(s),
                previous_keys=tuple(s.previous_keys or ()),
            )
            for s in org.steps
        )
    if org.services is not None:
        scopes.add("services")
        for service in org.services:
            steps = [_step_address(key, org, state) for key in service.steps or ()]
            service_address = address_of(slug, "service", service.key)
            records.append(
                Record(
                    service_address,
                    "service",
                    slug,
                    service.key,
                    service_fields(service, steps),
                    previous_keys=tuple(service.previous_keys or ()),
                )
            )
            if service.capacity is not None:
                scopes.add(f"services/{service.key}/capacity")
                records.extend(
                    Record(
                        address_of(slug, "capacity", c.key, service.key),
                        "capacity",
                        slug,
                        c.key,
                        capacity_fields(c),
                        parent=service_address,
                        previous_keys=tuple(c.previous_keys or ()),
                    )
                    for c in service.capacity
                )
    if org.agreements is not None:
        scopes.add("agreements")
        for agreement in org.agreements:
            attached = org.documents.get(agreement.key)
            document = (
                {"name": attached.name, "sha256": attached.sha256, "size": attached.size}
                if attached
                else None
            )
            records.append(
                Record(
                    address_of(slug, "agreement", agreement.key),
                    "agreement",
                    slug,
                    agreement.key,
                    agreement_fields(agreement, document),
                    previous_keys=tuple(agreement.previous_keys or ()),
                )
            )
    if org.staff is not None:
        scopes.add("staff")
        records.extend(
            Record(
                address_of(slug, "staff", person.email.lower()),
                "staff",
                slug,
                person.email.lower(),
                staff_fields(person),
            )
            for person in org.staff
        )
    return records, scopes
