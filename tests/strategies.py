"""Hypothesis strategies for valid organizations: small, but touching every section and rule."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

DISCIPLINES = ["medicine", "nursing", "pharmacy", "physical_therapy", "social_work"]
keys = st.sampled_from(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
names = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "Zs", "P")), min_size=1, max_size=30
).filter(lambda s: s.strip() == s and s != "")


@st.composite
def organization(draw: st.DrawFn, slug: str = "generated-org") -> dict[str, Any]:
    """One valid v1 document: steps, schools, agreements, services with capacity, staff."""
    step_keys = draw(st.lists(keys, unique=True, max_size=4))
    steps = [
        {
            "key": key,
            "stage": draw(st.sampled_from(["application", "onboarding", "offboarding"])),
            "name": draw(names),
            "type": step_type,
            "required": draw(st.booleans()),
            **({"fields": [{"key": "f1", "label": "Field", "type": "text"}]} if step_type == "form" else {}),
            **({"due_days": draw(st.integers(0, 90))} if draw(st.booleans()) else {}),
        }
        for key in step_keys
        for step_type in [draw(st.sampled_from(["form", "upload", "checkbox"]))]
    ]
    school_keys = draw(st.lists(st.sampled_from(["north-u", "south-u", "east-u"]), unique=True, max_size=3))
    schools = [
        {"key": k, "name": draw(names), "contact_email": f"{k}@schools.example.edu"} for k in school_keys
    ]
    service_keys = draw(st.lists(keys, unique=True, min_size=0, max_size=4))
    services: list[dict[str, Any]] = []
    for key in service_keys:
        disciplines = draw(st.lists(st.sampled_from(DISCIPLINES), unique=True, min_size=1, max_size=3))
        services.append(
            {
                "key": key,
                "name": draw(names),
                "disciplines": disciplines,
                "steps": draw(st.lists(st.sampled_from(step_keys), unique=True)) if step_keys else [],
                "capacity": [],
            }
        )
    agreements: list[dict[str, Any]] = []
    if school_keys and services:
        for i, school in enumerate(draw(st.lists(st.sampled_from(school_keys), unique=True, max_size=2))):
            covered = draw(st.lists(st.sampled_from([s["key"] for s in services]), unique=True, min_size=1))
            disciplines = sorted({d for s in services if s["key"] in covered for d in s["disciplines"]})
            agreements.append(
                {
                    "key": f"agreement-{i}",
                    "school": school,
                    "name": draw(names),
                    "start_date": "2027-01-01",
                    "end_date": "2027-12-31",
                    "services": covered,
                    "disciplines": disciplines,
                    "submit": draw(st.booleans()),
                }
            )
    for service in services:
        for j in range(draw(st.integers(0, 3))):
            covering = [a for a in agreements if service["key"] in a["services"]]
            scheduled = bool(covering) and draw(st.booleans())
            window: dict[str, Any] = {
                "key": f"window-{j}",
                "name": draw(names),
                "workflow": "coordinator_scheduled" if scheduled else "student_requested",
                "disciplines": [service["disciplines"][0]],
                "start_date": "2027-02-01",
                "end_date": draw(st.sampled_from(["2027-03-01", "2027-06-30", "2027-11-30"])),
                "slots": draw(st.integers(1, 20)),
            }
            if scheduled:
                window["agreement"] = draw(st.sampled_from(covering))["key"]
            service["capacity"].append(window)
    staff = [
        {
            "email": f"{who}@site.example.org",
            "name": draw(names),
            "role": draw(st.sampled_from(["admin", "coordinator", "viewer"])),
        }
        for who in draw(st.lists(st.sampled_from(["ann", "bo", "cy", "di"]), unique=True, max_size=3))
    ]
    return {
        "apiVersion": "nexus/v1",
        "kind": "Organization",
        "metadata": {"slug": slug, "labels": {"generated": "yes"}},
        "profile": {"name": draw(names), "type": draw(st.sampled_from(["hospital", "clinic", "other"]))},
        "staff": staff,
        "steps": steps,
        "schools": schools,
        "agreements": agreements,
        "services": services,
    }
