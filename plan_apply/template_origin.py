"""Which service template a planned change came from, and how far that template reaches.

A template is not a record: editing one shows up in a plan as an update of every service built from it.
At plan time, from the desired state (which knows each service's template and which of its fields the
service writes itself), a service update whose every changed field came from the template is marked
with that template (`Change.template`), so views can show a template edit as one change, and it says
how many services in how many facilities use the template: "template northstar-health/family-medicine
reaches 240 services in 240 facilities". A field the service overrides is its own, never the template's.

The reach is counted like a step's (`reach`): over the organizations a plan compares, each batch its own
members, added up where the batches are joined. Organizations skipped as unchanged are not counted, so
when a user of a template was skipped (the template itself did not change) the note only names the
template ("from template …").
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace

from nexus_config import DesiredState
from nexus_config.templates import TEMPLATE_ENTRY
from plan_apply.plan import Action, Change, OrgPlan, Plan
from plan_apply.reach import Reach, add_reach, reach_note
from plan_apply.sections.services import SERVICES

__all__ = [
    "FROM_TEMPLATE",
    "TEMPLATE_PREFIX",
    "template_note",
    "template_reach",
    "templates_used",
    "with_template_reach",
    "with_templates",
]

TEMPLATE_PREFIX = "template "
FROM_TEMPLATE = "from template "


def template_reach(state: DesiredState, members: Iterable[str]) -> dict[str, Reach]:
    """Per template (`org-slug/key`), the services of `members` (organizations of `state`) built from it."""
    reach: dict[str, Reach] = {}
    for slug in members:
        org = state.organizations.get(slug)
        if org is None:
            continue
        add_reach(reach, slug, org.service_templates.values())
    return reach


def _origin(change: Change, state: DesiredState, slug: str) -> str:
    """The template every field `change` changes came from, or "" (a field of the service's own, a
    create, a rename, an edit made outside nexus undone)."""
    if change.type != SERVICES.type or change.action is not Action.UPDATE or change.cause != "config":
        return ""
    org = state.organizations.get(slug)
    key = change.address.rsplit("/", 1)[-1]
    if org is None or key not in org.service_templates:
        return ""
    source = org.sources.get(f"{SERVICES.section}/{key}")
    inherited = {name for name, _ in source.inherited} if source is not None else set()
    changed = set(change.before) | set(change.after)
    return org.service_templates[key] if changed and changed <= inherited else ""


def with_templates(plan: Plan, state: DesiredState) -> Plan:
    """The plan with each service update that only a template's fields make naming that template."""

    def marked(org: OrgPlan, change: Change) -> Change:
        origin = _origin(change, state, org.slug)
        return replace(change, template=origin) if origin else change

    return plan.with_changes(marked)


def template_note(name: str, reach: Reach | None) -> str:
    """ "template northstar-health/family-medicine reaches 240 services in 240 facilities", or, when
    the reach is not known, "from template northstar-health/family-medicine"."""
    if reach is None:
        return f"{FROM_TEMPLATE}{name}"
    return f"{TEMPLATE_PREFIX}{name} {reach_note(reach)}"


def _is_template_note(note: str) -> bool:
    return note.startswith((TEMPLATE_PREFIX, FROM_TEMPLATE))


def with_template_reach(plan: Plan, reach: Mapping[str, Reach], unknown: Collection[str] = ()) -> Plan:
    """The plan with each change from a template saying how far the template reaches (replacing what a
    part of the plan said); templates in `unknown` (some users not compared) are only named."""

    def annotated(_: OrgPlan, change: Change) -> Change:
        if not change.template:
            return change
        known = None if change.template in unknown else reach.get(change.template)
        notes = (
            *(n for n in change.notes if not _is_template_note(n)),
            template_note(change.template, known),
        )
        return change if notes == change.notes else replace(change, notes=notes)

    return plan.with_changes(annotated)


def templates_used(entries: Iterable[str]) -> set[str]:
    """The templates (`org-slug/key`) an organization's last apply used, from its recorded files."""
    return {
        entry.removeprefix(TEMPLATE_ENTRY).rpartition("@")[0].partition("!")[0]
        for entry in entries
        if entry.startswith(TEMPLATE_ENTRY)
    }
