"""How far a parent's step reaches: the services (and their organizations) that will use it, counted
from the desired state at plan time, so a reviewer reads "reaches 1,240 services in 240 facilities"
beside a one-line change and no renderer ever has to query.

A service uses a step it lists (resolved up its parent chain) and every step with `all_services: true`
of its organization or an ancestor. Plans made in batches count each batch's own members and add the
counts up where the parts are joined (`with_reach` replaces what a part said).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from nexus_config import DesiredState
from plan_apply.plan import Action, Change, Plan
from plan_apply.sections.steps import STEPS

__all__ = ["REACH_PREFIX", "Reach", "add_reach", "combined", "reach_note", "step_reach", "with_reach"]

REACH_PREFIX = "reaches "
_ANNOTATED = (Action.CREATE, Action.UPDATE, Action.RENAME, Action.ADOPT)


@dataclass(frozen=True, slots=True)
class Reach:
    """The services using one step, the organizations they belong to, and how many of those are not
    the step's own (a step only its own organization uses is not news)."""

    services: int = 0
    organizations: int = 0
    elsewhere: int = 0

    def __add__(self, other: Reach) -> Reach:
        return Reach(
            self.services + other.services,
            self.organizations + other.organizations,
            self.elsewhere + other.elsewhere,
        )


def step_reach(state: DesiredState, members: Iterable[str]) -> dict[str, Reach]:
    """Per step address, the services of `members` (organizations of `state`) that will use it."""
    reach: dict[str, Reach] = {}
    for slug in members:
        chain = state.chain(slug)
        if not chain or chain[0].services is None:
            continue
        declared: dict[str, str] = {}  # step key → address, the nearest declaration winning
        everywhere: set[str] = set()
        for org in chain:
            for step in org.steps or ():
                address = STEPS.address(org.slug, step.key)
                declared.setdefault(step.key, address)
                if step.all_services:
                    everywhere.add(address)
        used = (
            address
            for service in chain[0].services
            for address in everywhere | {declared[key] for key in service.steps or () if key in declared}
        )
        add_reach(reach, slug, used)
    return reach


def add_reach(reach: dict[str, Reach], slug: str, used: Iterable[str]) -> None:
    """Add to `reach` one organization, `slug`, whose services use what `used` names (once per service
    using it): each name reaches those services and this organization, and elsewhere when not its own."""
    counted: dict[str, int] = {}
    for name in used:
        counted[name] = counted.get(name, 0) + 1
    for name, services in counted.items():
        elsewhere = int(not name.startswith(slug + "/"))
        reach[name] = reach.get(name, Reach()) + Reach(services, 1, elsewhere)


def combined(parts: Iterable[Mapping[str, Reach]]) -> dict[str, Reach]:
    """The reach of a whole tree from its batches' (each counting its own members)."""
    total: dict[str, Reach] = {}
    for part in parts:
        for address, reach in part.items():
            total[address] = total.get(address, Reach()) + reach
    return total


def reach_note(reach: Reach) -> str:
    """ "reaches 1,240 services in 240 facilities"."""
    services = "service" if reach.services == 1 else "services"
    facilities = "facility" if reach.organizations == 1 else "facilities"
    return f"{REACH_PREFIX}{reach.services:,} {services} in {reach.organizations:,} {facilities}"


def _annotated(change: Change, reach: Mapping[str, Reach]) -> Change:
    found = reach.get(change.address)
    if change.type != STEPS.type or change.action not in _ANNOTATED:
        return change
    notes = tuple(n for n in change.notes if not n.startswith(REACH_PREFIX))
    if found is not None and found.elsewhere:
        notes += (reach_note(found),)
    return change if notes == change.notes else replace(change, notes=notes)


def with_reach(plan: Plan, reach: Mapping[str, Reach]) -> Plan:
    """The plan with each created or changed step that services of other organizations use saying how
    far it reaches (replacing what a part of the plan said)."""
    return plan.with_changes(lambda _, change: _annotated(change, reach))
