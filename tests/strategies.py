"""Hypothesis strategies for valid organizations: one generator, touching every section and rule.

The loading laws take it as it is (any text, `protect`, `previous_keys`); the apply, export, fmt and
migrate laws take it `plain=True`.
"""

from __future__ import annotations

import datetime
from typing import Any

from hypothesis import strategies as st

from nexus_config.models.common import DISCIPLINES

keys = st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True)


ANY_NAMES = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30)
"""Any text a name may hold: what loading must survive."""
PLAIN_NAMES = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "Zs", "P")), min_size=1, max_size=30
).filter(lambda s: s.strip() == s and s != "")
"""Names every YAML writer stores as they are: what a round trip through the database keeps."""
disciplines = st.lists(st.sampled_from(DISCIPLINES), min_size=1, max_size=3, unique=True)
dates = st.dates(datetime.date(2025, 1, 1), datetime.date(2035, 12, 31))


@st.composite
def form_fields(draw: st.DrawFn, names: st.SearchStrategy[str] = ANY_NAMES) -> list[dict[str, Any]]:
    fields = []
    for key in draw(st.lists(keys, min_size=1, max_size=3, unique=True)):
        kind = draw(st.sampled_from(["text", "textarea", "date", "number", "select", "checkbox"]))
        field: dict[str, Any] = {"key": key, "label": draw(names), "type": kind}
        if kind == "select":
            field["options"] = draw(st.lists(names, min_size=1, max_size=3))
        if draw(st.booleans()):
            field["required"] = draw(st.booleans())
        fields.append(field)
    return fields


@st.composite
def optional(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    """Some of the optional fields, each drawn or left out (so defaults and explicit values both occur)."""
    return {name: draw(strategy) for name, strategy in fields.items() if draw(st.booleans())}


@st.composite
def organization(
    draw: st.DrawFn,
    slug: str = "generated-org",
    parent: str | None = None,
    inherited: tuple[str, ...] = (),
    *,
    plain: bool = False,
) -> dict[str, Any]:
    """One valid v1 document touching every section and rule; `inherited` are step keys its parents
    declare (services may use them). `plain`: names every YAML writer keeps as they are, and nothing a
    plan refuses by design (protection, former keys naming no row), for the apply and round-trip laws."""
    names = PLAIN_NAMES if plain else ANY_NAMES
    texts = names if plain else st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
    refusable: dict[str, st.SearchStrategy[Any]] = {} if plain else {"protect": st.booleans()}

    def renamed(key: str) -> dict[str, st.SearchStrategy[Any]]:
        return {} if plain else {"previous_keys": st.just([f"old-{key}"])}

    metadata: dict[str, Any] = {"slug": slug}
    if parent:
        metadata["parent"] = parent
    if draw(st.booleans()):
        metadata["labels"] = draw(
            st.dictionaries(
                st.from_regex(r"[a-z][a-z._-]{0,8}", fullmatch=True), names.map(lambda s: s[:63]), max_size=2
            )
        )
    profile: dict[str, Any] = {
        "name": draw(names),
        "type": draw(st.sampled_from(["health_system", "hospital", "clinic", "other"])),
    }
    if draw(st.booleans()):
        profile["address"] = {
            "postal_code": draw(st.from_regex(r"0[0-9]{4}", fullmatch=True)),
            "country": draw(st.sampled_from(["US", "NO", "CA", "DE"])),
        }
        profile["timezone"] = draw(st.sampled_from(["America/Chicago", "Europe/Oslo", "UTC"]))
        profile["website"] = "https://" + slug + ".example.org/about"
    schools = [
        {"key": k, "name": draw(names), "contact_email": f"{k}@school.example.edu"}
        for k in draw(st.lists(keys, max_size=3, unique=True))
    ]
    school_keys = [s["key"] for s in schools]
    steps = []
    for key in draw(st.lists(keys, max_size=4, unique=True)):
        kind = draw(st.sampled_from(["form", "upload", "checkbox"]))
        step: dict[str, Any] = {
            "key": key,
            "stage": draw(st.sampled_from(["application", "onboarding", "offboarding"])),
            "name": draw(names),
            "type": kind,
        }
        if kind == "form":
            step["fields"] = draw(form_fields(names))
        if draw(st.booleans()):
            step["due_days"] = draw(st.integers(0, 3650))
            step["expires_after_days"] = draw(st.integers(1, 36500))
        if len(school_keys) > 0 and draw(st.booleans()):
            step["applies_to"] = {
                "schools": draw(st.lists(st.sampled_from(school_keys), unique=True)),
                "disciplines": draw(disciplines),
            }
        step.update(
            draw(
                optional(
                    {
                        "completed_by": st.sampled_from(
                            ["student", "faculty", "school_coordinator", "site_coordinator"]
                        ),
                        "description": texts,
                        "instructions": texts,
                        "required": st.booleans(),
                        "all_services": st.booleans(),
                        **renamed(key),
                    }
                )
            )
        )
        steps.append(step)
    usable_steps = [s["key"] for s in steps] + list(inherited)
    services: list[dict[str, Any]] = []
    for key in draw(st.lists(keys, max_size=3, unique=True)):
        service: dict[str, Any] = {
            "key": key,
            "name": draw(names),
            "disciplines": draw(disciplines),
            "capacity": [],
        }
        service.update(
            draw(
                optional(
                    {
                        "description": texts,
                        "location": texts,
                        "department": texts,
                        "specialties": st.lists(names, max_size=2),
                        **refusable,
                        **renamed(key),
                    }
                )
            )
        )
        if usable_steps:
            service["steps"] = draw(st.lists(st.sampled_from(usable_steps), unique=True, max_size=3))
        services.append(service)
    agreements: list[dict[str, Any]] = []
    if school_keys and services:
        for key in draw(st.lists(keys, max_size=2, unique=True)):
            start = draw(dates)
            covered = draw(st.lists(st.sampled_from([s["key"] for s in services]), min_size=1, unique=True))
            agreement: dict[str, Any] = {
                "key": key,
                "school": draw(st.sampled_from(school_keys)),
                "name": draw(names),
                "start_date": start.isoformat(),
                "services": covered,
                "disciplines": draw(disciplines),
                "submit": draw(st.booleans()),
            }
            if draw(st.booleans()):
                agreement["end_date"] = (
                    start + datetime.timedelta(days=draw(st.integers(0, 900)))
                ).isoformat()
                agreement["reminder_days"] = draw(st.integers(1, 365))
            agreement.update(
                draw(
                    optional(
                        {
                            "description": texts,
                            **refusable,
                            **renamed(key),
                        }
                    )
                )
            )
            agreements.append(agreement)
    for service in services:
        for key in draw(st.lists(keys, max_size=3, unique=True)):
            covering = [
                a
                for a in agreements
                if service["key"] in a["services"] and set(a["disciplines"]) & set(service["disciplines"])
            ]
            window: dict[str, Any] = {
                "key": key,
                "name": draw(names),
                "slots": draw(st.integers(1, 1000)),
                "max_group_size": draw(st.integers(1, 50)),
            }
            if len(covering) > 0 and draw(st.booleans()):
                agreement = draw(st.sampled_from(covering))
                shared = [d for d in service["disciplines"] if d in agreement["disciplines"]]
                start = datetime.date.fromisoformat(agreement["start_date"])
                end = datetime.date.fromisoformat(agreement.get("end_date", "2040-12-31"))
                first = start + datetime.timedelta(days=draw(st.integers(0, (end - start).days)))
                last = first + datetime.timedelta(days=draw(st.integers(0, (end - first).days)))
                window.update(
                    workflow="coordinator_scheduled",
                    agreement=agreement["key"],
                    disciplines=draw(st.lists(st.sampled_from(shared), min_size=1, unique=True)),
                )
            else:
                first = draw(dates)
                last = first + datetime.timedelta(days=draw(st.integers(0, 400)))
                window.update(
                    workflow="student_requested",
                    disciplines=draw(st.lists(st.sampled_from(service["disciplines"]), unique=True)),
                )
            window.update(start_date=first.isoformat(), end_date=last.isoformat())
            window.update(
                draw(
                    optional(
                        {
                            "allow_specific_dates": st.booleans(),
                            "visibility": st.sampled_from(["draft", "published"]),
                            "description": texts,
                            **refusable,
                            **renamed(key),
                        }
                    )
                )
            )
            service["capacity"].append(window)
    staff = [
        {
            "email": f"{who}@{slug}.example.org",
            "role": draw(st.sampled_from(["admin", "coordinator", "viewer"])),
        }
        for who in draw(st.lists(st.from_regex(r"[a-z]{1,6}", fullmatch=True), max_size=3, unique=True))
    ]
    return {
        "apiVersion": "nexus/v1",
        "kind": "Organization",
        "metadata": metadata,
        "profile": profile,
        "staff": staff,
        "steps": steps,
        "schools": schools,
        "agreements": agreements,
        "services": services,
    }


@st.composite
def family(draw: st.DrawFn, *, plain: bool = False) -> list[dict[str, Any]]:
    """A health system and one or two facilities under it that may use its steps (`plain`: as
    `organization`'s)."""
    system = draw(organization("system", plain=plain))
    inherited = tuple(s["key"] for s in system["steps"])
    children = [
        draw(organization(f"site-{n}", "system", inherited, plain=plain))
        for n in range(draw(st.integers(1, 2)))
    ]
    return [system, *children]


TEMPLATABLE = ("name", "description", "location", "department", "disciplines", "specialties", "steps")
"""The service fields a service template may hold."""


@st.composite
def templated_family(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A `family()` whose services take some fields from service templates of the health system: some
    moved there, some kept in the service as overrides of a different template value; expanded, it is
    the family drawn."""
    orgs = draw(family(plain=True))
    templates: list[dict[str, Any]] = []
    for org in orgs:
        for service in org["services"]:
            if not draw(st.booleans()):
                continue
            fields = [f for f in TEMPLATABLE if f in service]
            moved = draw(st.lists(st.sampled_from(fields), unique=True)) if fields else []
            kept = draw(st.lists(st.sampled_from(moved), unique=True)) if moved else []
            key = f"t{len(templates)}"
            template: dict[str, Any] = {"key": key}
            for field in moved:
                template[field] = service[field]
                if field in kept:  # the template says otherwise; the service's own value wins
                    template[field] = "Template value" if field == "name" else service[field]
                else:
                    del service[field]
            templates.append(template)
            service["template"] = draw(st.sampled_from([key, f"system/{key}"]))
    if templates:
        orgs[0]["templates"] = templates
    return orgs


@st.composite
def repeated_family(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A `family()` of plain names whose facilities repeat services: some of the first facility's
    services copied into the others (the system's steps only, no windows), some with a field changed."""
    orgs = draw(family(plain=True))
    first, others = orgs[1], orgs[2:]
    inherited = {s["key"] for s in orgs[0]["steps"]}
    for other in others:
        taken = {s["key"] for s in other["services"]}
        for service in first["services"]:
            if service["key"] in taken or not draw(st.booleans()):
                continue
            copy = {
                k: v for k, v in service.items() if k not in ("capacity", "steps", "protect", "previous_keys")
            }
            copy["steps"] = [s for s in service.get("steps", []) if s in inherited]
            copy["capacity"] = []
            if draw(st.booleans()):
                copy["location"] = draw(PLAIN_NAMES)
            other["services"].append(copy)
    return orgs
