"""Changes apply will not make as things stand: an agreement whose school proposed changes is left alone
(unless the site counter-proposes), so its change is shown but not pending (`Change.pending`)."""

from __future__ import annotations

from dataclasses import replace

from plan_apply.actual import ActualState
from plan_apply.plan import Action, Change, OrgPlan, Plan

__all__ = ["held_for_schools", "waits_for_school"]


def waits_for_school(change: Change, status: str | None) -> bool:
    """Whether apply leaves `change` alone: it rewrites an existing agreement on which the school's
    proposal (`status` changes_proposed) is waiting for the site."""
    return change.type == "agreement" and change.action is not Action.CREATE and status == "changes_proposed"


def _row_address(change: Change) -> str:
    if change.action is Action.RENAME:
        return change.address.rsplit("/", 1)[0] + "/" + str(change.before["key"])
    return change.address


def _held(org: OrgPlan, actual: ActualState) -> OrgPlan:
    found = actual.organizations.get(org.slug)
    if found is None:
        return org
    changes = []
    for change in org.changes:
        row = found.records.get(_row_address(change))
        held = row is not None and waits_for_school(change, row.status)
        changes.append(replace(change, pending=False) if held else change)
    return replace(org, changes=tuple(changes))


def held_for_schools(plan: Plan, actual: ActualState) -> Plan:
    """The plan with every change apply leaves alone for a school marked not pending."""
    return replace(plan, organizations=tuple(_held(org, actual) for org in plan.organizations))
