"""Merge the documents of each organization (same `metadata.slug`) into one organization.

Sections concatenate; a key declared twice names both places; `profile` comes from exactly one
document; `parent` and `labels` agree wherever they are given; an explicit `null` section is refused
because "absent" (not managed here) and "empty" (manage none) mean very different things.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nexus_config.desired import DesiredOrganization, PointerMap, Source
from nexus_config.models import CURRENT_VERSION
from nexus_config.models.common import Profile
from nexus_config.models.v1 import Capacity, Service, ServiceTemplate, TemplatedService
from nexus_config.problems import Problem, join_pointer
from nexus_config.sections import CAPACITY, DOCUMENT_SECTIONS, SERVICES, TEMPLATES, DocumentSection
from nexus_config.suggest import did_you_mean
from nexus_config.versions import Upgraded

__all__ = ["LocatedDocument", "merged_organizations", "staff_identity"]


@dataclass(frozen=True, slots=True)
class LocatedDocument:
    """An upgraded document and the file it came from."""

    file: str
    index: int
    upgraded: Upgraded

    def source(self, *tokens: str | int) -> Source:
        return Source(self.file, self.index, join_pointer(*tokens), self.upgraded.pointers)


_LISTS = tuple(section for section in DOCUMENT_SECTIONS if section.many)


def staff_identity(email: str) -> str:
    """Staff are the same person whatever the case of their email (`Alice@X.org` is `alice@x.org`)."""
    return email.lower()


@dataclass
class _Organization:
    slug: str
    first: LocatedDocument
    parent: tuple[str | None, Source] | None = None
    labels: tuple[dict[str, str], Source] | None = None
    profile: tuple[Profile, Source] | None = None
    sections: dict[str, list[Any] | None] = field(default_factory=lambda: {s.key: None for s in _LISTS})
    sources: dict[str, Source] = field(default_factory=dict)
    capacity: dict[str, list[Capacity]] = field(default_factory=dict)
    capacity_declared: set[str] = field(default_factory=set)
    beta_capacity: bool = False
    files: set[str] = field(default_factory=set)
    templates: dict[str, ServiceTemplate] = field(default_factory=dict)


def _add_item(
    org: _Organization, section: DocumentSection, item: Any, source: Source, problems: list[Problem]
) -> bool:
    address = f"{section.key}/{section.identity_of(item)}"
    first = org.sources.get(address)
    if first is not None:
        problems.append(
            source.problem(
                f'{section.noun} "{getattr(item, section.identity)}" is declared twice in organization '
                f'"{org.slug}"',
                section.identity,
                code="merge.duplicate",
                related=(first.place(section.identity),),
            )
        )
        return False
    org.sources[address] = source
    return True


def _parent_shown(parent: str | None) -> str:
    return "null (no parent)" if parent is None else f'"{parent}"'


def _merge_document(org: _Organization, doc: LocatedDocument, problems: list[Problem]) -> None:
    v1 = doc.upgraded.document
    meta = v1.metadata
    org.files.add(doc.file)
    meta_source = doc.source("metadata")
    if "parent" in meta.model_fields_set:
        if org.parent is not None and org.parent[0] != meta.parent:
            problems.append(
                meta_source.problem(
                    f"parent {_parent_shown(meta.parent)} disagrees with {_parent_shown(org.parent[0])} "
                    f'for organization "{org.slug}"',
                    "parent",
                    code="merge.parent",
                    related=(org.parent[1].place("parent"),),
                )
            )
        elif org.parent is None:
            org.parent = (meta.parent, meta_source)
    if meta.labels is not None:
        if org.labels is not None and org.labels[0] != meta.labels:
            problems.append(
                meta_source.problem(
                    f'labels disagree with another document of organization "{org.slug}"',
                    "labels",
                    code="merge.labels",
                    related=(org.labels[1].place("labels"),),
                )
            )
        elif org.labels is None:
            org.labels = (dict(meta.labels), meta_source)
    nulls = [
        s.key
        for s in (*DOCUMENT_SECTIONS, TEMPLATES)
        if s.key in v1.model_fields_set and getattr(v1, s.key) is None
    ]
    for section in [*nulls, *(["capacity"] if doc.upgraded.null_capacity else [])]:
        by_stage = section == "steps" and doc.upgraded.version != CURRENT_VERSION  # v1beta1: a mapping
        problems.append(_null_section(doc.source(), section, "{}" if by_stage else "[]"))
    if v1.profile is not None:
        source = doc.source("profile")
        if org.profile is not None:
            problems.append(
                source.problem(
                    f'profile of organization "{org.slug}" is declared in more than one document',
                    code="merge.duplicate",
                    at_key=True,
                    related=(org.profile[1].place(),),
                )
            )
        else:
            org.profile = (v1.profile, source)
            org.sources["profile"] = source
    for t, template in enumerate(v1.templates or ()):
        if _add_item(org, TEMPLATES, template, doc.source(TEMPLATES.key, t), problems):
            org.templates[template.key] = template
    for listed in _LISTS:
        items = getattr(v1, listed.key)
        if items is None:
            continue
        merged = org.sections[listed.key]
        if merged is None:
            merged = org.sections[listed.key] = []
        for i, item in enumerate(items):
            source = doc.source(listed.key, i)
            if _add_item(org, listed, item, source, problems):
                merged.append(item)
                if listed is SERVICES:
                    _merge_capacity(org, item, doc, i, problems)
    org.beta_capacity = org.beta_capacity or doc.upgraded.declares_capacity


def _null_section(source: Source, section: str, empty: str = "[]") -> Problem:
    """`section: null` is refused: "absent" (not managed here) and "empty" (manage none) differ."""
    advice = (
        "write its fields (name, type, ...) or remove the key"
        if section == "profile"
        else f"write `{section}: {empty}` to manage none, or remove the key to leave the section unmanaged"
    )
    return source.problem(f"{section} is null: {advice}", section, code="merge.null_section")


def _merge_capacity(
    org: _Organization,
    service: Service | TemplatedService,
    doc: LocatedDocument,
    index: int,
    problems: list[Problem],
) -> None:
    if service.capacity is None:
        if "capacity" in service.model_fields_set:
            problems.append(_null_section(doc.source("services", index), "capacity"))
        return
    org.capacity_declared.add(service.key)
    windows = org.capacity.setdefault(service.key, [])
    for c, window in enumerate(service.capacity):
        source = doc.source("services", index, "capacity", c)
        if _add_capacity(org, service.key, window, source, problems):
            windows.append(window)


def _add_capacity(
    org: _Organization, service: str, window: Capacity, source: Source, problems: list[Problem]
) -> bool:
    address = f"services/{service}/capacity/{window.key}"
    first = org.sources.get(address)
    if first is not None:
        problems.append(
            source.problem(
                f'{CAPACITY.noun} "{window.key}" is declared twice in service "{service}"',
                CAPACITY.identity,
                code="merge.duplicate",
                related=(first.place(CAPACITY.identity),),
            )
        )
        return False
    org.sources[address] = source
    return True


def _attach_loose_capacity(
    org: _Organization, docs: Sequence[LocatedDocument], problems: list[Problem]
) -> None:
    services = {s.key for s in org.sections["services"] or ()}
    for doc in docs:
        for loose in doc.upgraded.loose_capacity:
            renamed = ((loose.pointer + "/workflow", loose.pointer + "/workflow_type"),)
            source = Source(doc.file, doc.index, loose.pointer, PointerMap(renamed))
            if loose.service not in services:
                problems.append(
                    source.problem(
                        f'capacity window "{loose.capacity.key}" names service "{loose.service}", which '
                        f'organization "{org.slug}" does not declare{did_you_mean(loose.service, services)}',
                        "service",
                        code="ref.service",
                    )
                )
                continue
            # Located in the original v1beta1 document: the pointer is already in its coordinates.
            if _add_capacity(org, loose.service, loose.capacity, source, problems):
                org.capacity.setdefault(loose.service, []).append(loose.capacity)


def _finish(org: _Organization, problems: list[Problem]) -> DesiredOrganization:
    if org.profile is None:
        problems.append(
            org.first.source("metadata").problem(
                f'organization "{org.slug}" has no profile: exactly one of its documents must declare `profile`',
                "slug",
                code="merge.profile_missing",
            )
        )
    if org.beta_capacity:
        org.capacity_declared.update(s.key for s in org.sections["services"] or ())
    sections = {key: None if items is None else tuple(items) for key, items in org.sections.items()}
    if org.sections["services"] is not None:
        sections["services"] = tuple(
            s.model_copy(
                update={"capacity": org.capacity.get(s.key, []) if s.key in org.capacity_declared else None}
            )
            for s in org.sections["services"]
        )
    return DesiredOrganization(
        slug=org.slug,
        parent=org.parent[0] if org.parent else None,
        labels=org.labels[0] if org.labels else {},
        profile=org.profile[0] if org.profile else None,
        sections=sections,
        capacity_managed=frozenset(org.capacity_declared),
        sources=dict(org.sources, metadata=org.parent[1] if org.parent else org.first.source("metadata")),
        files=tuple(sorted(org.files)),
        templates=dict(sorted(org.templates.items())),
    )


def merged_organizations(
    documents: Sequence[LocatedDocument],
) -> tuple[dict[str, DesiredOrganization], list[Problem]]:
    """One organization per slug, in slug order, with every merge problem."""
    problems: list[Problem] = []
    orgs: dict[str, _Organization] = {}
    by_slug: dict[str, list[LocatedDocument]] = {}
    for doc in documents:
        slug = doc.upgraded.document.metadata.slug
        org = orgs.setdefault(slug, _Organization(slug, doc))
        by_slug.setdefault(slug, []).append(doc)
        _merge_document(org, doc, problems)
    for slug, org in orgs.items():
        _attach_loose_capacity(org, by_slug[slug], problems)
    return {slug: _finish(orgs[slug], problems) for slug in sorted(orgs)}, problems
