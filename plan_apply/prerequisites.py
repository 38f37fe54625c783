"""Changes that need another organization's apply first, said in the plan: a facility's service linked to
its system's agreement needs that agreement to exist, and to take new services (the school has not
answered it), or the facility's transaction is refused at apply. When the system has nothing in the plan
(`--org` left it out), the plan says so on the change, rather than the apply first."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from plan_apply.plan import Action, Change, OrgPlan, Plan
from plan_apply.sections.services import agreement_owner_key

__all__ = ["linked_elsewhere", "with_owners_first"]


def linked_elsewhere(plan: Plan) -> set[str]:
    """The agreements the plan's services are linked to whose owners have nothing to do in the plan (not
    in it, skipped, or without changes; an organization with a service change is never one of them)."""
    busy = {org.slug for org in plan.organizations if org.changes}
    return {
        address
        for org in plan.organizations
        for change in org.changes
        if change.type == "service"
        for address in change.after.get("agreements") or ()
        if agreement_owner_key(address)[0] not in busy
    }


def with_owners_first(
    plan: Plan, statuses: Mapping[str, str | None], takes: Callable[[str | None], bool]
) -> Plan:
    """The plan with a note on each service change that its apply would be refused, as things stand,
    until the owner of an agreement it links (not in the plan) is applied. `statuses`: the status of each
    of `linked_elsewhere`'s agreements (None: it does not exist); `takes`: whether a status takes new
    services."""

    def noted(org: OrgPlan, change: Change) -> Change:
        if change.type != "service":
            return change
        had = set() if change.action is Action.CREATE else set(change.before.get("agreements") or ())
        notes = []
        for address in change.after.get("agreements") or ():
            if address not in statuses:
                continue
            owner, status = agreement_owner_key(address)[0], statuses[address]
            if status is None:
                notes.append(
                    f"links {address}, which does not exist yet: {owner}'s apply creates it; until then "
                    f"{org.slug}'s apply is refused (apply {owner} first, or both)"
                )
            elif address not in had and not takes(status):
                notes.append(
                    f"joins {address}, which is {status} with the school: {owner}'s apply "
                    f"re-submits it first; until then {org.slug}'s apply is refused (apply {owner} first, "
                    "or both)"
                )
        return replace(change, notes=(*change.notes, *notes)) if notes else change

    return plan.with_changes(noted)
