"""Service templates: a service that names a template is expanded into a plain service at load time.

The desired state (and so the plan and the database) only ever holds expanded services; what came from
a template is remembered in the service's `Source`, so a problem about such a field points at the
template's line, and `nexus render --origin` can tell where each value was written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from nexus_config.ancestry import lineage
from nexus_config.desired import DesiredOrganization, Source
from nexus_config.problems import Problem
from nexus_config.suggest import did_you_mean

if TYPE_CHECKING:  # pydantic and the models are imported when a tree is expanded, not with this module
    from nexus_config.models.v1 import Service, ServiceTemplate, TemplatedService

__all__ = [
    "TEMPLATE_ENTRY",
    "ResolvedTemplate",
    "expanded_organizations",
    "merged_fields",
    "resolved_template",
    "stale_template_users",
    "template_digest",
    "template_entry",
    "template_use",
    "templates_only",
    "written_fields",
]

TEMPLATE_ENTRY = "template:"
"""Prefix of a template an organization's last apply used, `template:<owner>/<key>`, among the files it
was applied from: recorded with the template's digest instead of the file that declares it, so a change
to another template of that file does not make the organization planned again. When every service of
the organization that uses it writes some of its fields itself, `!<field>,<field>` follows: the digest
leaves those out, so a change to them does not either."""
_WRITTEN = "!"


def template_entry(name: str, written: Iterable[str] = ()) -> str:
    """How the use of template `owner/key` is recorded among the files an organization was applied from,
    with the fields its services all write themselves (`template_digest` leaves them out)."""
    fields = ",".join(sorted(written))
    return f"{TEMPLATE_ENTRY}{name}{_WRITTEN}{fields}" if fields else f"{TEMPLATE_ENTRY}{name}"


def template_use(name: str, digest: str) -> str:
    """How an unchanged organization's use of template `owner/key` travels with its files to the loader:
    `template:<owner>/<key>@<digest>`, checked against the template once its files are parsed."""
    return f"{TEMPLATE_ENTRY}{name}@{digest}"


def stale_template_users(
    clean: Mapping[str, frozenset[str]],
    parsed: Mapping[str, Mapping[str, ServiceTemplate]],
    parent_of: Mapping[str, str | None],
) -> set[str]:
    """The organizations declared unchanged whose templates did change: one they use now expands
    differently (or is gone), or an ancestor now declares a template of the same key, which may take
    its place. `parsed`: the templates of each organization whose files were parsed."""
    stale = set()
    for slug, entries in clean.items():
        chain = lineage(slug, parent_of.get, parent_of)
        for entry in entries:
            if not entry.startswith(TEMPLATE_ENTRY):
                continue
            used, _, digest = entry.removeprefix(TEMPLATE_ENTRY).rpartition("@")
            name, _, fields = used.partition(_WRITTEN)
            written = fields.split(",") if fields else ()
            owner, _, key = name.rpartition("/")
            changed = owner in parsed and (
                key not in parsed[owner] or template_digest(parsed[owner][key], written) != digest
            )
            nearer = chain[: chain.index(owner)] if owner in chain else chain
            shadowed = any(key in parsed[other] for other in nearer if other in parsed)
            if changed or shadowed:
                stale.add(slug)
                break
    return stale


def templates_only(org: DesiredOrganization, path: str) -> bool:
    """Whether all that `org` declares in the file `path` is service templates (not its parent, nor any
    section): what lies below it depends on such a file only through the templates it uses."""
    return all(
        address.startswith("templates/") for address, source in org.sources.items() if source.file == path
    )


def template_digest(template: ServiceTemplate, written: Iterable[str] = ()) -> str:
    """The identity of a template's content as services that write the fields `written` themselves
    see it: equal digests expand into equal services."""
    fields = template.model_dump(mode="json", exclude_unset=True)
    for name in written:
        fields.pop(name, None)
    return "sha256:" + hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def written_fields(org: DesiredOrganization) -> dict[str, frozenset[str]]:
    """Per template the organization uses (`owner/key`), the template's fields that every service of
    it using that template writes itself: the template's value of them reaches none of its services
    (a mapping merges, so it is never counted as written)."""
    from nexus_config.models.v1 import ServiceTemplate

    templated = set(ServiceTemplate.model_fields) - {"key"}
    found: dict[str, frozenset[str]] = {}
    for service in org.services or ():
        name = org.service_templates.get(service.key)
        if name is None:
            continue
        inherited = {field for field, _ in org.sources[f"services/{service.key}"].inherited}
        written = frozenset(
            field
            for field in (service.model_fields_set & templated) - inherited
            if not isinstance(getattr(service, field), Mapping)
        )
        found[name] = found[name] & written if name in found else written
    return found


Organizations = Mapping[str, DesiredOrganization]


def merged_fields(template: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """A service's fields over its template's: scalars and lists replace, mappings merge key by key
    (recursively). A field the service does not write keeps the template's value."""
    merged = dict(template)
    for name, value in own.items():
        base = merged.get(name)
        if isinstance(value, Mapping) and isinstance(base, Mapping):
            merged[name] = merged_fields(base, value)
        else:
            merged[name] = value
    return merged


@dataclass(frozen=True, slots=True)
class ResolvedTemplate:
    """A template found for a service: which organization declares it, and where."""

    owner: str
    template: ServiceTemplate
    source: Source

    @property
    def name(self) -> str:
        """The template as `org-slug/key`: unambiguous in the whole tree."""
        return f"{self.owner}/{self.template.key}"


def _chain(org: DesiredOrganization, orgs: Organizations) -> list[DesiredOrganization]:
    slugs = lineage(org.slug, lambda s: orgs[s].parent if s in orgs else org.parent, orgs)
    return [org, *(orgs[s] for s in slugs[1:])]


def resolved_template(
    reference: str, org: DesiredOrganization, orgs: Organizations
) -> ResolvedTemplate | str:
    """The template a service's `template:` names (looked up in its organization, then up the parent
    chain; `slug/key` in that organization, which must be in the chain), or why there is none."""
    chain = _chain(org, orgs)
    owner, _, key = reference.rpartition("/")
    candidates = [o for o in chain if o.slug == owner] if owner else chain
    if owner and not candidates:
        slugs = [o.slug for o in chain]
        return (
            f'template "{reference}": organization "{owner}" is not "{org.slug}" or one of its parents'
            f" ({', '.join(slugs)}){did_you_mean(owner, slugs)}"
        )
    for current in candidates:
        if key in current.templates:
            return ResolvedTemplate(current.slug, current.templates[key], current.sources[f"templates/{key}"])
    visible = [t for o in candidates for t in o.templates]
    where = (
        f'organization "{owner}"'
        if owner
        else ("this organization or its parents" if org.parent else "this organization")
    )
    return f'template "{reference}" is not declared in {where}{did_you_mean(key, visible)}'


def _expanded_service(
    service: TemplatedService, source: Source, found: ResolvedTemplate
) -> tuple[Service | None, Source, list[Problem]]:
    from pydantic import ValidationError

    from nexus_config.models.v1 import Service

    template = {
        name: getattr(found.template, name) for name in found.template.model_fields_set if name != "key"
    }
    own = {name: getattr(service, name) for name in service.model_fields_set if name != "template"}
    if service.capacity is not None:  # set by the merge of the organization's documents
        own["capacity"] = service.capacity
    values = merged_fields(template, own)
    inherited = tuple((name, found.source) for name in sorted(template) if name not in own)
    located = replace(source, inherited=inherited)
    try:
        return Service.model_validate(values), located, []
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            field = str(error["loc"][0]) if error["loc"] else ""
            cleared = len(error["loc"]) == 1 and field in own and own[field] is None
            lacking = f'service "{service.key}" has no {field}: '
            if cleared and field in template:  # `field: null` written to clear the template's value
                message = f'null clears the value of template "{found.name}", and every service needs one'
                problems.append(source.problem(lacking + message, field, code="template.incomplete"))
            elif error["type"] == "missing" or cleared:
                message = f'write it here or in template "{found.name}"'
                at = field if cleared else "template"
                problems.append(source.problem(lacking + message, at, code="template.incomplete"))
            else:  # both halves passed the schema on their own; kept for safety, located at the field
                problems.append(located.problem(str(error["msg"]), field, code="template.invalid"))
        return None, located, problems


def _expanded(org: DesiredOrganization, orgs: Organizations, problems: list[Problem]) -> DesiredOrganization:
    from nexus_config.models.v1 import TemplatedService

    if org.services is None or not any(isinstance(s, TemplatedService) for s in org.services):
        return org
    services: list[Service] = []
    sources = dict(org.sources)
    used: dict[str, str] = {}
    for service in org.services:
        if not isinstance(service, TemplatedService):
            services.append(service)
            continue
        address = f"services/{service.key}"
        found = resolved_template(service.template, org, orgs)
        if isinstance(found, str):
            problems.append(org.sources[address].problem(found, "template", code="ref.template"))
            continue
        expanded, sources[address], found_problems = _expanded_service(service, org.sources[address], found)
        problems.extend(found_problems)
        if expanded is not None:
            services.append(expanded)
            used[service.key] = found.name
    return replace(
        org,
        sections={**org.sections, "services": tuple(services)},
        sources=sources,
        service_templates=used,
    )


def expanded_organizations(orgs: Organizations) -> tuple[dict[str, DesiredOrganization], list[Problem]]:
    """Every organization with its templated services expanded, and every template problem (a service
    that cannot be expanded is left out: its problem fails the load)."""
    problems: list[Problem] = []
    expanded = {slug: _expanded(org, orgs, problems) for slug, org in orgs.items()}
    return expanded, problems
