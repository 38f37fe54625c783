"""make_plan: (desired, actual) → Plan. Pure: no I/O, no printing, no clock (it is passed in).

One generic comparison per organization (added / removed / common by address), per-field changes on
normalized records, the domain's exceptions from `guards`, and the order of execution taken from the
one table of types (`records.TYPES`): forward for create/rename/adopt/update, backward for removals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from nexus_config import DesiredState, Source
from plan_apply.actual import ActualOrganization, ActualState
from plan_apply.guards import (
    MassDeleteLimit,
    agreement_update_notes,
    changed_fields,
    drifted,
    is_mass_delete,
    must_archive,
    protection_refusal,
    slots_refusal,
)
from plan_apply.plan import Action, Change, OrgPlan, Plan, PlanProblem
from plan_apply.records import SECTION_OF, TYPES, Record, desired_records

__all__ = ["PlanOptions", "make_plan", "org_plan"]

_ORDER = {name: i for i, name in enumerate(TYPES)}
_FORWARD = {Action.RENAME: 0, Action.ADOPT: 1, Action.UPDATE: 2, Action.CREATE: 3}


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


def _scope_of(record: Record, renamed_services: Mapping[str, str]) -> str:
    """The section (or service's capacity list) an actual record belongs to, after service renames."""
    if record.type == "capacity":
        assert record.parent is not None
        parent = renamed_services.get(record.parent, record.parent)
        return parent.split("/", 1)[1] + "/capacity"
    return SECTION_OF[record.type]


def _renamed_from(
    want: Record, actual: Mapping[str, Record], desired: Mapping[str, Record], moved: Mapping[str, str]
) -> Record | None:
    prefix = want.address[: -len(want.key)]
    if want.parent is not None and want.parent in moved:
        prefix = moved[want.parent] + prefix[len(want.parent) :]
    for old_key in want.previous_keys:
        old_address = prefix + old_key
        old = actual.get(old_address)
        if old is not None and old_address not in desired:
            return old
    return None


def org_plan(
    slug: str,
    records: Sequence[Record],
    scopes: set[str],
    actual: ActualOrganization,
    sources: Mapping[str, Source],
    options: PlanOptions,
) -> OrgPlan:
    """The plan for one organization: the generic comparison plus the domain's rules."""
    desired = {r.address: r for r in records}
    have = dict(actual.records)
    # A renamed service carries its capacity windows: look them up under the old service address.
    moved: dict[str, str] = {}
    changes: list[Change] = []
    problems: list[PlanProblem] = []
    consumed: set[str] = set()
    org_notes: list[str] = []

    def source_of(address: str) -> Source | None:
        return sources.get(address.split("/", 1)[1] if "/" in address else "metadata")

    for want in sorted(records, key=lambda r: (_ORDER[r.type], r.address)):
        lookup = want.address
        if want.type == "capacity" and want.parent in moved:
            lookup = moved[want.parent] + want.address[len(want.parent or "") :]
        current = have.get(lookup)
        if current is None:
            renamed = _renamed_from(want, have, desired, moved)
            if renamed is not None:
                consumed.add(renamed.address)
                if want.type == "service":
                    moved[want.address] = renamed.address
                changed = changed_fields(want, renamed)
                changes.append(
                    Change(
                        want.address,
                        want.type,
                        Action.RENAME,
                        {"key": renamed.key, **{n: renamed.fields.get(n) for n in changed}},
                        {"key": want.key, **{n: want.fields[n] for n in changed}},
                        notes=(f"renamed from {renamed.address}; the row (and its history) is kept",),
                        title=_title(want.address, want.type, desired, have),
                    )
                )
                continue
            changes.append(
                Change(
                    want.address,
                    want.type,
                    Action.CREATE,
                    {},
                    dict(want.fields),
                    title=_title(want.address, want.type, desired, have),
                )
            )
            continue
        consumed.add(lookup)
        changed = changed_fields(want, current)
        refusal = slots_refusal(want, current)
        if refusal:
            problems.append(_source_problem(source_of(want.address), refusal, want.address))
        if not current.managed:
            changes.append(
                Change(
                    want.address,
                    want.type,
                    Action.ADOPT,
                    {n: current.fields.get(n) for n in changed},
                    {n: want.fields[n] for n in changed},
                    notes=("adopts an item created outside nexus: from now on the configuration owns it",),
                    title=_title(want.address, want.type, desired, have),
                )
            )
            continue
        if current.type == "agreement" and current.status == "closed":
            if changed:  # the school closed it: never resurrected by configuration
                org_notes.append(
                    f"{want.address}: the school closed this agreement; changes to it are not applied"
                )
            continue
        if not changed and not current.archived:
            continue
        notes: list[str] = []
        risk = "low"
        if current.archived:
            notes.append("restores an archived item")
        if want.type == "agreement":
            agreement_notes, review = agreement_update_notes(current, changed)
            notes.extend(agreement_notes)
            risk = "review" if review else risk
        if (
            want.type == "capacity"
            and "slots" in changed
            and want.fields["slots"] < (current.fields.get("slots") or 0)
        ):
            risk = "review"
            notes.append(f"fewer slots: {current.fields.get('slots')} → {want.fields['slots']}")
        before = {n: current.fields.get(n) for n in changed}
        after = {n: want.fields[n] for n in changed}
        if current.archived:
            before["archived"], after["archived"] = True, False
        changes.append(
            Change(
                want.address,
                want.type,
                Action.UPDATE,
                before,
                after,
                cause="drift" if drifted(current, changed) else "config",
                risk=risk,  # type: ignore[arg-type]
                notes=tuple(notes),
                title=_title(want.address, want.type, desired, have),
            )
        )

    removed_parents = {
        r.address
        for r in have.values()
        if r.type == "service" and r.address not in consumed and r.managed and "services" in scopes
    }
    renamed_services = {old: new for new, old in moved.items()}
    unmanaged: Counter[str] = Counter()
    removals: list[Change] = []
    for address, current in sorted(have.items(), key=lambda kv: (-_ORDER[kv[1].type], kv[0])):
        if address in consumed or address in desired:
            continue
        if not current.managed:
            unmanaged[SECTION_OF[current.type]] += 1
            continue
        scope = _scope_of(current, renamed_services)
        if scope not in scopes and current.parent not in removed_parents:
            continue  # the configuration does not manage this section here
        if current.type in ("organization", "profile") or current.archived:
            continue
        reason = must_archive(current, have)
        action = Action.ARCHIVE if reason else Action.DELETE
        refusal = protection_refusal(current, action.value)
        if refusal:
            problems.append(PlanProblem(refusal, address=address))
        removals.append(
            Change(
                address,
                current.type,
                action,
                dict(current.fields),
                {},
                risk="destructive",
                notes=(reason,) if reason else (),
                title=_title(address, current.type, desired, have),
            )
        )
    managed_items = sum(1 for r in have.values() if r.managed and r.type not in ("organization", "profile"))
    if (
        removals
        and is_mass_delete(len(removals), managed_items, options.mass_delete)
        and not options.allow_mass_delete
    ):
        problems.append(
            PlanProblem(
                f"this plan would delete or archive {len(removals)} of {managed_items} managed items of "
                f'"{slug}": check the configuration, then re-run with --allow-mass-delete',
                address=slug,
            )
        )
    forward = sorted(changes, key=lambda c: (_ORDER[c.type], _FORWARD[c.action], c.address))
    return OrgPlan(
        slug=slug,
        state_fingerprint=actual.fingerprint,
        changes=(*forward, *removals),
        unmanaged=dict(sorted(unmanaged.items())),
        problems=tuple(problems),
        notes=tuple(org_notes),
        revision=actual.revision if actual.id is not None else None,
    )


def _name(address: str, desired: Mapping[str, Record], have: Mapping[str, Record]) -> str:
    record = desired.get(address) or have.get(address)
    if record is None:
        return address.rsplit("/", 1)[-1]
    name = record.fields.get("name")
    return str(name) if name else record.key or address


def _title(address: str, type_: str, desired: Mapping[str, Record], have: Mapping[str, Record]) -> str:
    """The item as a coordinator would say it: "Emergency Medicine › Spring nursing block"."""
    if type_ == "organization":
        return address
    if type_ == "profile":
        return "Profile"
    name = _name(address, desired, have)
    if type_ == "capacity":
        service = address.split("/capacity/", 1)[0]
        return f"{_name(service, desired, have)} › {name}"
    if type_ == "staff":
        key = address.rsplit("/", 1)[-1]
        return f"{name} ({key})" if name != key else name
    return name


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
    for slug in selected:
        org = desired.organizations[slug]
        records, scopes = desired_records(org, desired)
        planned = org_plan(slug, records, scopes, actual.organizations[slug], org.sources, options)
        plans.append(replace(planned, parent=org.parent) if org.parent else planned)
    return Plan(created_at=created_at, database=database, organizations=tuple(plans))
