"""make_plan: (desired, actual) → Plan. Pure: no I/O, no printing, no clock (it is passed in).

Per organization, a small orchestration of three parts: `matching` pairs desired records with rows
by address (renames, moved capacity, what is left to remove), `guards` run the domain's rules on each
pair and removal, and `changes` turns what is left into typed changes; `order` puts them in the order
apply executes them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

from nexus_config import DesiredState, Source
from plan_apply.actual import ActualOrganization, ActualState, fingerprint_of
from plan_apply.changes import change_of, created, removed, title_of
from plan_apply.guards import (
    MassDeleteLimit,
    changed_fields,
    dependents_refusal,
    managed_items,
    mass_delete_refusal,
    must_archive,
    plan_mass_delete_refusal,
    protection_refusal,
    verdict_on,
)
from plan_apply.matching import Pair, left_to_remove, matched
from plan_apply.moves import Moves, after_giving, agreement_moves, taking_fingerprint
from plan_apply.order import execution_order
from plan_apply.plan import Action, Change, OrgPlan, Plan, PlanProblem
from plan_apply.reach import step_reach, with_reach
from plan_apply.records import Record, desired_records
from plan_apply.sections.agreements import linked_within
from plan_apply.template_origin import template_reach, with_template_reach, with_templates

__all__ = ["PlanOptions", "make_plan", "mass_delete_checked", "org_plan"]


_WHOLE_PLAN = "the whole plan would"


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """What a plan is allowed to propose."""

    mass_delete: MassDeleteLimit = field(default_factory=MassDeleteLimit)
    allow_mass_delete: bool = False


def _source_problem(source: Source | None, message: str, address: str) -> PlanProblem:
    if source is None:
        return PlanProblem(message, address=address)
    located = source.problem(message)
    # Line and column are filled in by the CLI's locator (reading files is not the diff's business).
    return PlanProblem(message, located.file, 0, 0, address, located.pointer, located.document)


def _source_of(sources: Mapping[str, Source], address: str) -> Source | None:
    return sources.get(address.split("/", 1)[1] if "/" in address else "metadata")


def org_plan(
    slug: str,
    records: Sequence[Record],
    scopes: set[str],
    actual: ActualOrganization,
    sources: Mapping[str, Source],
    options: PlanOptions,
    moves: Moves | None = None,
) -> OrgPlan:
    """The plan for one organization: the generic comparison plus the domain's rules. `moves` are the
    agreements that change organization (taken over from another, or given to another)."""
    moves = moves or Moves()
    desired = {r.address: r for r in records}
    have = dict(actual.records)
    changes: list[Change] = []
    problems: list[PlanProblem] = []
    org_notes: list[str] = []
    matching = matched(records, have)
    pairs = [
        Pair(p.desired, moves.taken[p.desired.address], renamed=True)
        if p.actual is None and p.desired.address in moves.taken
        else p
        for p in matching.pairs
    ]
    for pair in pairs:
        want, row = pair.desired, pair.actual
        title = title_of(want.address, want.type, desired, have)
        if row is None:
            changes.append(created(want, title))
            continue
        changed = changed_fields(want, row)
        verdict = verdict_on(want, row, changed)
        source = _source_of(sources, want.address)
        problems.extend(_source_problem(source, refusal, want.address) for refusal in verdict.refusals)
        org_notes.extend(verdict.org_notes)
        change = change_of(pair, changed, verdict, title)
        if change is not None:
            changes.append(change)

    removals = left_to_remove(matching, desired, have, scopes)
    # What each row becomes (by the row's address: renamed and adopted rows too), for the dependents
    # a removal must see; children are decided before their parents (removals go backward).
    claimed = {p.actual.address: p.desired for p in matching.pairs if p.actual is not None}
    deleted: set[str] = set()
    gone: set[str] = set()
    for current in removals.records:
        if current.address in moves.given:
            org_notes.append(
                f"{current.address} moves to {moves.given[current.address]}: the row, the school's answer "
                "and the windows scheduled under it are kept"
            )
            continue
        title = title_of(current.address, current.type, desired, have)
        change = removed(current, must_archive(current, have, claimed, deleted), title)
        refusals = (
            protection_refusal(current, change.action.value),
            dependents_refusal(current, have, claimed, deleted, gone),
        )
        problems.extend(PlanProblem(r, address=current.address) for r in refusals if r)
        gone.add(current.address)
        if change.action is Action.DELETE:
            deleted.add(current.address)
        changes.append(change)
    if not options.allow_mass_delete:
        count = len(removals.records)
        refusal = mass_delete_refusal(slug, count, managed_items(have.values()), options.mass_delete)
        if refusal:
            problems.append(PlanProblem(refusal, address=slug))
    fingerprint, revision = actual.fingerprint, actual.revision if actual.id is not None else None
    own: Sequence[Record] = list(have.values())
    if any(address in moves.given_first for address in have):
        # A parent's transaction takes agreements over first: this one finds its rows as they will be
        # then, and its revision moved by that write.
        own, revision = after_giving(have, moves), None
        fingerprint = fingerprint_of(slug, own)
    taken = [p.actual for p in pairs if p.actual is not None and p.actual.org != slug]
    if taken:  # the rows it takes over are checked under its lock like its own
        fingerprint = taking_fingerprint(slug, own, taken)
    return OrgPlan(
        slug=slug,
        state_fingerprint=fingerprint,
        changes=execution_order(changes),
        unmanaged=removals.unmanaged,
        problems=tuple(problems),
        notes=tuple(org_notes),
        revision=revision,
    )


def make_plan(
    desired: DesiredState,
    actual: ActualState,
    selected: Sequence[str],
    *,
    created_at: str,
    database: str,
    options: PlanOptions | None = None,
) -> Plan:
    """The plan that makes the database match the configuration for the `selected` organizations."""
    options = options or PlanOptions()
    plans = []
    parents = {slug: org.parent for slug, org in desired.organizations.items()}
    moves = agreement_moves(desired, selected, actual, parents)
    declaring = {slug for slug, org in desired.organizations.items() if org.agreements is not None}
    for slug in selected:
        org = desired.organizations[slug]
        records, scopes = desired_records(org, desired)
        found = _within(actual.organizations[slug], desired.organizations)
        records = _leaving_systems(records, found, declaring)
        planned = org_plan(slug, records, scopes, found, org.sources, options, moves)
        plans.append(replace(planned, parent=org.parent) if org.parent else planned)
    whole = Plan(created_at=created_at, database=database, organizations=tuple(plans))
    # How far each step reaches, counted over every organization the state holds (a batch's plan is
    # counted again, over the whole tree, where the batches are joined: `planner.plan_tree`).
    whole = with_reach(whole, step_reach(desired, desired.organizations))
    # Which template each service update came from, and the template's reach, counted the same way.
    whole = with_templates(whole, desired)
    whole = with_template_reach(whole, template_reach(desired, desired.organizations))
    return mass_delete_checked(whole, options)


def _within(actual: ActualOrganization, organizations: Collection[str]) -> ActualOrganization:
    """The organization's rows as the configuration holding `organizations` owns them: a system's
    agreement's links to facilities outside it are not compared (it is fingerprinted as read)."""
    records = {a: linked_within(r, organizations) for a, r in actual.records.items()}
    if all(records[a] is r for a, r in actual.records.items()):
        return actual
    return replace(actual, records=records)


def _leaving_systems(
    records: Sequence[Record], actual: ActualOrganization, declaring: Collection[str]
) -> list[Record]:
    """A service whose parents declare no agreements leaves its links alone, except those to agreements
    of organizations whose `agreements` the tree declares (a system the facility left): those go, written
    by its own transaction, as no other can."""
    result = []
    for record in records:
        row = actual.records.get(record.address)
        if record.type != "service" or "agreements" in record.fields or row is None:
            result.append(record)
            continue
        linked = list(row.fields.get("agreements") or ())
        kept = [a for a in linked if a.split("/", 1)[0] not in declaring]
        result.append(
            record if kept == linked else replace(record, fields={**record.fields, "agreements": kept})
        )
    return result


def _removals(org: OrgPlan) -> int:
    return sum(1 for c in org.changes if c.action in (Action.DELETE, Action.ARCHIVE))


def mass_delete_checked(plan: Plan, options: PlanOptions) -> Plan:
    """The plan with the "more than N items" half of the mass-delete guard counted over all its
    organizations. Plans are made per batch; where their parts are joined this runs again over the
    whole (it replaces what it said of a part), so the count is always the run's."""
    total = sum(_removals(org) for org in plan.organizations)
    organizations = []
    for org in plan.organizations:
        said = [p for p in org.problems if p.message.startswith(_WHOLE_PLAN)]
        problems = tuple(p for p in org.problems if p not in said)
        refusal = None
        if not options.allow_mass_delete and not any("--allow-mass-delete" in p.message for p in problems):
            refusal = plan_mass_delete_refusal(org.slug, _removals(org), total, options.mass_delete)
        if refusal:  # where a part said it, its location is kept
            problems += (
                replace(said[0], message=refusal) if said else PlanProblem(refusal, address=org.slug),
            )
        organizations.append(replace(org, problems=problems) if problems != org.problems else org)
    return replace(plan, organizations=tuple(organizations))
