"""The desired state: what the configuration says each organization should be, typed and checked.

Items are the validated pydantic models (already immutable); every item remembers where it was
declared, so rules and plans can point back into the original file, also after a version upgrade.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nexus_config.ancestry import lineage
from nexus_config.problems import Problem, join_pointer
from nexus_config.sections import DOCUMENT_SECTIONS

if TYPE_CHECKING:
    from nexus_config.models.common import Profile, School, Staff
    from nexus_config.models.v1 import Agreement, Capacity, Service, ServiceTemplate, Step

__all__ = [
    "SECTIONS",
    "AttachedDocument",
    "DesiredOrganization",
    "DesiredState",
    "PointerMap",
    "Source",
]

SECTIONS = tuple(section.key for section in DOCUMENT_SECTIONS)


@dataclass(frozen=True, slots=True)
class PointerMap:
    """Where v1 pointers of an upgraded document lie in the original one (longest prefix wins)."""

    prefixes: tuple[tuple[str, str], ...] = ()

    def original(self, pointer: str) -> str:
        best: tuple[str, str] | None = None
        for v1_prefix, original_prefix in self.prefixes:
            if (pointer == v1_prefix or pointer.startswith(v1_prefix + "/")) and (
                best is None or len(v1_prefix) > len(best[0])
            ):
                best = (v1_prefix, original_prefix)
        if best is None:
            return pointer
        return best[1] + pointer[len(best[0]) :]


IDENTITY = PointerMap()


@dataclass(frozen=True, slots=True)
class Source:
    """Where an item was declared: file, document index and its JSON pointer (in v1 terms)."""

    file: str
    document: int
    pointer: str
    pointers: PointerMap = IDENTITY
    inherited: tuple[tuple[str, Source], ...] = ()
    """Fields of an item whose values came from a service template, each with the template's place: a
    problem about such a field points at the template's line."""

    def origin(self, field: str) -> Source:
        """Where a field's value was written: this item, or the template it came from."""
        for name, source in self.inherited:
            if name == field:
                return source
        return self

    def problem(
        self,
        message: str,
        *tokens: str | int,
        code: str = "rule",
        at_key: bool = False,
        severity: str = "error",
        related: tuple[tuple[str, int, str], ...] = (),
    ) -> Problem:
        """A problem located at this item, or at one of its fields (`tokens`)."""
        if tokens and self.inherited and self.origin(str(tokens[0])) is not self:
            return self.origin(str(tokens[0])).problem(
                message, *tokens, code=code, at_key=at_key, severity=severity, related=related
            )
        pointer = self.pointers.original(self.pointer + join_pointer(*tokens))
        return Problem(
            self.file,
            message,
            pointer=pointer,
            code=code,
            document=self.document,
            at_key=at_key,
            severity="warning" if severity == "warning" else "error",
            related=related,
        )

    def place(self, *tokens: str | int) -> tuple[str, int, str]:
        """This item (or a field of it) as a related place for another item's problem."""
        if tokens and self.inherited and self.origin(str(tokens[0])) is not self:
            return self.origin(str(tokens[0])).place(*tokens)
        return (self.file, self.document, self.pointers.original(self.pointer + join_pointer(*tokens)))


@dataclass(frozen=True, slots=True)
class AttachedDocument:
    """An agreement's signed document: checked, hashed, and read again (and re-hashed) at apply."""

    path: str
    name: str
    size: int
    sha256: str
    media_type: str


@dataclass(frozen=True, slots=True)
class DesiredOrganization:
    """One organization as the configuration declares it.

    A section that no document declares is `None`: "not managed here" (never a reason to delete);
    an empty tuple means "none". `sections` holds every list section by its YAML key (`sections.DOCUMENT_
    SECTIONS`); `capacity_managed` the services whose capacity windows are declared (`capacity:` present).
    """

    slug: str
    parent: str | None
    labels: Mapping[str, str]
    profile: Profile | None
    sections: Mapping[str, tuple[Any, ...] | None] = field(default_factory=dict)
    capacity_managed: frozenset[str] = frozenset()
    documents: Mapping[str, AttachedDocument] = field(default_factory=dict)
    sources: Mapping[str, Source] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    templates: Mapping[str, ServiceTemplate] = field(default_factory=dict)
    """The service templates this organization declares (its sources under `templates/<key>`)."""
    service_templates: Mapping[str, str] = field(default_factory=dict)
    """Each service built from a template → that template, qualified (`org-slug/key`)."""

    @property
    def staff(self) -> tuple[Staff, ...] | None:
        return self.sections.get("staff")

    @property
    def steps(self) -> tuple[Step, ...] | None:
        return self.sections.get("steps")

    @property
    def services(self) -> tuple[Service, ...] | None:
        return self.sections.get("services")

    @property
    def schools(self) -> tuple[School, ...] | None:
        return self.sections.get("schools")

    @property
    def agreements(self) -> tuple[Agreement, ...] | None:
        return self.sections.get("agreements")

    def capacity(self, service_key: str) -> tuple[Capacity, ...]:
        for service in self.services or ():
            if service.key == service_key:
                return tuple(service.capacity or ())
        return ()


@dataclass(frozen=True, slots=True)
class DesiredState:
    """Every organization of a configuration tree, by slug, parents before children."""

    organizations: Mapping[str, DesiredOrganization]
    roots: tuple[str, ...] = ()

    def chain(self, slug: str) -> list[DesiredOrganization]:
        """The organization, then its parent, grandparent... (cycles are refused before this exists)."""
        orgs = self.organizations
        if slug not in orgs:
            return []
        return [orgs[s] for s in lineage(slug, lambda s: orgs[s].parent, orgs)]
