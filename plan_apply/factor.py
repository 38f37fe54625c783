"""`nexus export --factor`: services several facilities of one parent export alike become a template.

For each parent exported with its children, a service key that two or more children use becomes a
service template at the parent holding, field by field, the value most of them share; each child's
service then names it (qualified, `parent/key`, so no nearer template can take its place) and keeps only
what differs, `field: null` where the template has a value it lacks. Expanded, every service is exactly
the one exported flat, so the files still plan as empty against the database they came from.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

__all__ = ["TEMPLATED_FIELDS", "factored_documents"]

TEMPLATED_FIELDS = ("name", "description", "location", "department", "disciplines", "specialties", "steps")
"""The service fields a template may hold (not capacity, protect or previous keys: one service's own)."""

_ORDER = ("apiVersion", "kind", "metadata", "profile", "staff", "steps", "templates", "services")
"""Where `templates` goes among a document's keys (the rest keep their order after these)."""


def _most_common(values: list[Any]) -> tuple[Any, int]:
    """The value most services share (ties: the first met) and how many share it."""
    counted = Counter(json.dumps(value, sort_keys=True) for value in values)
    text, count = counted.most_common(1)[0]
    return json.loads(text), count


def _template(key: str, services: list[Mapping[str, Any]]) -> dict[str, Any]:
    template: dict[str, Any] = {"key": key}
    for field in TEMPLATED_FIELDS:
        value, count = _most_common([service.get(field) for service in services])
        if value is not None and count >= 2:
            template[field] = value
    return template


def _using(service: Mapping[str, Any], template: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """The service as the template's fields overridden by what differs."""
    used: dict[str, Any] = {"key": service["key"], "template": f"{owner}/{template['key']}"}
    for field, value in service.items():
        if field != "key" and not (field in template and template[field] == value):
            used[field] = value
    for field in template:
        if field != "key" and field not in service:
            used[field] = None  # the template has a value this service lacks: null clears it
    return used


def _with_templates(document: Mapping[str, Any], templates: list[dict[str, Any]]) -> dict[str, Any]:
    merged = {**document, "templates": [*document.get("templates", ()), *templates]}
    ordered = {key: merged[key] for key in _ORDER if key in merged}
    ordered.update((key, value) for key, value in merged.items() if key not in ordered)
    return ordered


def factored_documents(documents: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The exported documents (by slug) with the services shared across a parent's children factored
    into service templates of that parent (only parents and children among `documents`)."""
    result = {slug: dict(document) for slug, document in documents.items()}
    children: dict[str, list[str]] = {}
    for slug, document in documents.items():
        parent = document["metadata"].get("parent")
        if parent in documents:
            children.setdefault(parent, []).append(slug)
    for parent in sorted(children):
        uses: dict[str, list[tuple[str, int]]] = {}
        for child in sorted(children[parent]):
            for index, service in enumerate(result[child].get("services") or ()):
                uses.setdefault(service["key"], []).append((child, index))
        templates = []
        for key in sorted(uses):
            if len(uses[key]) < 2:
                continue
            services = [result[child]["services"][index] for child, index in uses[key]]
            template = _template(key, services)
            if len(template) == 1:
                continue
            templates.append(template)
            for (child, index), service in zip(uses[key], services, strict=True):
                listed = result[child]["services"] = list(result[child]["services"])
                listed[index] = _using(service, template, parent)
        if templates:
            result[parent] = _with_templates(result[parent], templates)
    return result
