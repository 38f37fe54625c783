"""`nexus render`: an organization's effective configuration, the desired state plans compare, as v1 YAML.

Service templates are expanded (the services are those of the desired state), so what a facility gets
from its health system can be read, reviewed and diffed without the database. `--origin` says, as an
end-of-line comment on each value, the file and line it was written at (and the template it came from).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nexus_config.desired import DesiredOrganization, Source
from nexus_config.locations import Locator
from nexus_config.models import CURRENT_VERSION
from nexus_config.sections import DOCUMENT_SECTIONS
from plan_apply.views.escape import escape_terminal

__all__ = ["Origin", "effective_document", "effective_text", "effective_texts"]

Origin = Callable[[Source, str], str]
"""Where a field of an item was written, in words: (the item's source, the field) → comment text."""


def _item(model: Any) -> dict[str, Any]:
    """An item's fields as written (defaults left out), without null: null and absent mean the same."""
    values: dict[str, Any] = model.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    return values


def effective_document(org: DesiredOrganization) -> dict[str, Any]:
    """The organization as one v1 document: what `nexus plan` compares (its templates expanded, and
    left out: they are not on the platform)."""
    metadata: dict[str, Any] = {"slug": org.slug}
    if org.parent:
        metadata["parent"] = org.parent
    if org.labels:
        metadata["labels"] = dict(org.labels)
    document: dict[str, Any] = {"apiVersion": CURRENT_VERSION, "kind": "Organization", "metadata": metadata}
    if org.profile is not None:
        document["profile"] = _item(org.profile)
    for section in DOCUMENT_SECTIONS:
        items = org.sections.get(section.key) if section.many else None
        if items is not None:
            document[section.key] = [_item(item) for item in items]
    return document


def _sources(org: DesiredOrganization) -> dict[tuple[str | int, ...], Source]:
    """Each item's place in the effective document → where it was declared."""
    places: dict[tuple[str | int, ...], Source] = {}
    if "profile" in org.sources:
        places[("profile",)] = org.sources["profile"]
    for section in DOCUMENT_SECTIONS:
        for i, item in enumerate(org.sections.get(section.key) or () if section.many else ()):
            identity = section.identity_of(item)
            places[(section.key, i)] = org.sources[f"{section.key}/{identity}"]
            if section.key == "services":
                for c, window in enumerate(item.capacity or ()):
                    places[("services", i, "capacity", c)] = org.sources[
                        f"services/{identity}/capacity/{window.key}"
                    ]
    return places


def _origin_of(locator: Locator, org: DesiredOrganization, service_key: str | None) -> Origin:
    def origin(source: Source, field: str) -> str:
        file, document, pointer = source.place(field)
        line, _ = locator.position(file, document, pointer)
        written = f"from {escape_terminal(file)}:{line}"  # a line break in a path would end the comment
        if service_key is not None and source.origin(field) is not source:
            written += f" (template {org.service_templates[service_key]})"
        return written

    return origin


def _annotate(data: Any, place: tuple[str | int, ...], source: Source, origin: Origin) -> None:
    """An end-of-line comment on each field of one item (a nested value: on its key)."""
    from ruamel.yaml.scalarstring import LiteralScalarString

    indent = 4 * sum(isinstance(token, int) for token in place) or 2
    for field in list(data):
        if field == "capacity" and place[0] == "services":
            continue  # the windows carry their own
        comment = origin(source, str(field))
        if isinstance(data[field], LiteralScalarString):  # a `|` block ends on its own line: comment above
            data.yaml_set_comment_before_after_key(field, before=comment, indent=indent)
        else:
            data.yaml_add_eol_comment("# " + comment, field)


def effective_text(org: DesiredOrganization, *, locator: Locator | None = None) -> str:
    """The organization's effective document as YAML; with a `locator`, each value says where it was
    written (`# from northstar-health/templates.yaml:12 (template northstar-health/family-medicine)`)."""
    from nexus_config.rewrite import dump_document
    from plan_apply.export import yaml_data

    data = yaml_data(effective_document(org))
    if locator is not None:
        if "metadata" in org.sources:
            _annotate(
                data["metadata"], ("metadata",), org.sources["metadata"], _origin_of(locator, org, None)
            )
        for place, source in _sources(org).items():
            node = data
            for token in place:
                node = node[token]
            key = str(node["key"]) if place[0] == "services" and len(place) == 2 else None
            _annotate(node, place, source, _origin_of(locator, org, key))
    for key in list(data)[3:]:  # a blank line before each section, as people write them
        data.yaml_set_comment_before_after_key(key, before="\n")
    return dump_document(data)


def effective_texts(orgs: Mapping[str, DesiredOrganization], *, locator: Locator | None = None) -> str:
    """Several organizations, one YAML document each, separated by `---`."""
    return "---\n".join(effective_text(org, locator=locator) for org in orgs.values())
