"""Changes shared across organizations: one change to something shared reads as one change in review.

A change is shared when several organizations have it identically: the same address within the
organization (`services/family-medicine`), the same action, the same fields before and after, the same
explanation and the same template they came from, if any (a template edit is then named for the
template). Grouping is a view concern: the plan (and its JSON) stays per organization.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from plan_apply.plan import Change, OrgPlan, Plan

__all__ = ["Cohort", "Group", "Grouping", "group_title", "grouped", "listed_slugs"]

MINIMUM = 2
"""Organizations that must share a change for it to be shown once."""


@dataclass(frozen=True, slots=True)
class Group:
    """One change made identically in several organizations: `change` is the first one's, its notes
    naming addresses within the organization."""

    where: str
    """The address within each organization (`services/family-medicine`; empty for the organization)."""
    change: Change
    slugs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Cohort:
    """Organizations that share the same changes (each of `groups` is made in every one of them)."""

    slugs: tuple[str, ...]
    groups: tuple[Group, ...]


@dataclass(frozen=True, slots=True)
class Grouping:
    """A plan's shared changes, and which (organization, address) pairs they stand for."""

    groups: tuple[Group, ...]
    shared: frozenset[tuple[str, str]]

    @property
    def cohorts(self) -> tuple[Cohort, ...]:
        """The shared changes by the organizations that share them: a fleet-wide edit usually touches
        the same organizations many times, which are then listed once."""
        found: dict[tuple[str, ...], list[Group]] = {}
        for group in self.groups:
            found.setdefault(group.slugs, []).append(group)
        return tuple(Cohort(slugs, tuple(groups)) for slugs, groups in found.items())

    def is_shared(self, slug: str, change: Change) -> bool:
        return (slug, change.address) in self.shared

    def own(self, org: OrgPlan) -> tuple[Change, ...]:
        """The organization's changes that no other organization shares (shown under it)."""
        return tuple(c for c in org.changes if (org.slug, c.address) not in self.shared)


def _where(slug: str, change: Change) -> str | None:
    if change.address == slug:
        return ""
    prefix = slug + "/"
    return change.address[len(prefix) :] if change.address.startswith(prefix) else None


def _relative(slug: str, change: Change) -> Change:
    """The change as said of any organization: its notes' addresses within the organization
    ("renamed from services/er" rather than "mercy-001/services/er")."""
    own = re.compile(r"(?<![\w.-])" + re.escape(slug) + "/")
    notes = tuple(own.sub("", note) for note in change.notes)
    return change if notes == change.notes else replace(change, notes=notes)


def _key(where: str, change: Change) -> str:
    """Everything a reviewer is shown of a shared change (its title is not: a group is named by
    `group_title`, so services named differently in each facility still share a change)."""
    return json.dumps(
        [
            where,
            change.type,
            change.action.value,
            change.before,
            change.after,
            change.cause,
            change.risk,
            change.notes,
            change.pending,
            change.template,
        ],
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )


def grouped(plan: Plan | Iterable[OrgPlan], minimum: int = MINIMUM) -> Grouping:
    """The changes at least `minimum` organizations share, in the order they first come in the plan."""
    organizations = plan.organizations if isinstance(plan, Plan) else tuple(plan)
    found: dict[str, tuple[str, Change, list[str]]] = {}
    for org in organizations:
        for change in org.changes:
            where = _where(org.slug, change)
            if where is None:
                continue
            relative = _relative(org.slug, change)
            key = _key(where, relative)
            entry = found.setdefault(key, (where, relative, []))
            if not entry[2] or entry[2][-1] != org.slug:
                entry[2].append(org.slug)
    groups = tuple(
        Group(where, change, tuple(slugs)) for where, change, slugs in found.values() if len(slugs) >= minimum
    )
    shared = frozenset((slug, slug + "/" + g.where if g.where else slug) for g in groups for slug in g.slugs)
    return Grouping(groups, shared)


def group_title(group: Group) -> str:
    """How a shared change is named: the template it came from ("template northstar-health/family-
    medicine", with the service when its key is not the template's), else the address within each
    organization. Changes from different templates, or from none, are never grouped together."""
    name = group.change.template
    if not name:
        return group.where or "the organization itself"
    if group.where.rsplit("/", 1)[-1] == name.rsplit("/", 1)[-1]:
        return f"template {name}"
    return f"{group.where} (template {name})"


def listed_slugs(slugs: tuple[str, ...], shown: int) -> str:
    """ "a, b, c and 237 more": the first `shown` organizations (all when only one more would be cut)."""
    if len(slugs) <= shown + 1:
        return ", ".join(slugs)
    return f"{', '.join(slugs[:shown])} and {len(slugs) - shown:,} more"
