"""System-wide agreements: which organizations a parent's agreement covers, and which services it links.

An agreement with `covers` belongs to the organization that declares it and covers that organization
and the descendants `covers` selects; each key of its `services` names the service with that key in
every covered organization that has one. Rules, desired records and the planner all ask here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from nexus_config.ancestry import lineage
from nexus_config.desired import DesiredOrganization

if TYPE_CHECKING:  # the models import pydantic, which a plan that reads no document never needs
    from nexus_config.models.v1 import Agreement

__all__ = [
    "covered_organizations",
    "covers_descendant",
    "descendants",
    "linked_services",
    "qualified",
    "school_keys",
    "split_reference",
]

Organizations = Mapping[str, DesiredOrganization]


def split_reference(reference: str) -> tuple[str | None, str]:
    """A window's `agreement`: `(owner slug, key)` for `parent-slug/key`, `(None, key)` for a plain key."""
    owner, _, key = reference.rpartition("/")
    return (owner or None), key


def qualified(owner: str, key: str) -> str:
    """How a service or an agreement of another organization of the family is named: `slug/key`."""
    return f"{owner}/{key}"


def descendants(slug: str, orgs: Organizations) -> list[str]:
    """The organizations whose parent chain passes through `slug` (not `slug` itself), in tree order."""
    return [
        other
        for other, org in orgs.items()
        if other != slug and slug in lineage(other, lambda s: orgs[s].parent if s in orgs else None, orgs)
    ]


def covered_organizations(slug: str, agreement: Agreement, orgs: Organizations) -> list[str]:
    """The declaring organization, then the descendants `covers` selects (a slug that is not a
    descendant selects nothing: the rules say so)."""
    covers = agreement.covers
    if covers is None:
        return [slug]
    below = descendants(slug, orgs)
    if covers == "all":
        chosen = below
    elif isinstance(covers, list):
        wanted = set(covers)
        chosen = [s for s in below if s in wanted]
    else:
        labels = covers.labels
        chosen = [s for s in below if all(orgs[s].labels.get(k) == v for k, v in labels.items())]
    return [slug, *chosen]


def covers_descendant(agreement: Agreement, org: DesiredOrganization) -> bool:
    """Whether an ancestor's agreement covers `org`, one of its descendants (no walk of the tree)."""
    covers = agreement.covers
    if covers is None:
        return False
    if covers == "all":
        return True
    if isinstance(covers, list):
        return org.slug in covers
    return all(org.labels.get(k) == v for k, v in covers.labels.items())


def linked_services(slug: str, agreement: Agreement, orgs: Organizations) -> list[tuple[str, str]]:
    """`(organization, service key)` of every service the agreement links, in covered order."""
    keys = set(agreement.services)
    return [
        (covered, service.key)
        for covered in covered_organizations(slug, agreement, orgs)
        for service in orgs[covered].services or ()
        if service.key in keys
    ]


def school_keys(org: DesiredOrganization, orgs: Organizations) -> set[str] | None:
    """The schools an organization partners with: its own and its ancestors' (a facility inherits the
    system's partnerships); None when neither it nor an ancestor declares `schools`."""
    chain = [
        org,
        *(
            orgs[s]
            for s in lineage(org.slug, lambda s: orgs[s].parent if s in orgs else org.parent, orgs)[1:]
        ),
    ]
    declared = [o.schools for o in chain if o.schools is not None]
    if not declared:
        return None
    return {school.key for schools in declared for school in schools}
