"""Agreements moving between a health system and its facilities: a rename across organizations.

A system agreement whose `previous_keys` name a facility's agreement (`lake/state-2027`), or a facility's
agreement naming the system's (`northwind/state-system`), takes that row over: the row changes owner and
key, keeping its id, the school's answer and every window scheduled under it. The first named row that
exists, is managed and is no longer declared is taken; its old owner's plan leaves it alone. The
taking organization's plan depends on the row it takes as on its own: its fingerprint covers it, and its
apply locks and reads it again. Pure: it reads the records of the organizations planned together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from nexus_config import DesiredState
from nexus_config.ancestry import lineage
from nexus_config.coverage import qualified
from plan_apply.actual import ActualState, fingerprint_of
from plan_apply.records import Record
from plan_apply.sections.agreements import AGREEMENTS
from plan_apply.sections.services import SERVICES, agreement_owner_key

__all__ = [
    "Moves",
    "after_giving",
    "agreement_moves",
    "as_taken",
    "holders",
    "moved_fields",
    "taking_fingerprint",
]


@dataclass(frozen=True, slots=True)
class Moves:
    """`taken`: desired address → the other organization's row it takes over (its fields as the new
    owner says them); `given`: a row's address → the address it moves to; `given_first`: those of them
    taken by a parent, whose transaction runs before the giver's (so the giver is planned as it will be
    found then)."""

    taken: Mapping[str, Record] = field(default_factory=dict)
    given: Mapping[str, str] = field(default_factory=dict)
    given_first: frozenset[str] = frozenset()


def moved_fields(fields: Mapping[str, Any], holder: str, owner: str) -> dict[str, Any]:
    """An agreement's fields as `owner` would read them once it holds the row `holder` holds: the
    services it links named from there (its own by key, the others' as `slug/key`)."""
    if "services" not in fields:
        return dict(fields)
    services = []
    for name in fields["services"] or ():
        full = name if "/" in name else f"{holder}/{name}"
        services.append(full.split("/", 1)[1] if full.startswith(owner + "/") else full)
    return {**fields, "services": sorted(services)}


def as_taken(row: Record, owner: str) -> Record:
    """Another organization's row as `owner`, taking it over, compares it with its desired record."""
    applied = moved_fields(row.applied, row.org, owner) if row.applied is not None else None
    return replace(row, fields=moved_fields(row.fields, row.org, owner), applied=applied)


def taking_fingerprint(slug: str, own: Iterable[Record], taken: Iterable[Record]) -> str:
    """What the plan of an organization that takes rows over depends on: its own rows and the ones it
    takes (a school's answer to one of those, landing before its transaction, makes the plan stale)."""
    return fingerprint_of(slug, [*own, *taken])


def _only_for(row: Record, owner: str) -> bool:
    """Whether a parent's agreement links and schedules only `owner`'s services and windows: a facility
    takes back only such a one (its siblings' windows would change owner under them)."""
    moved = moved_fields(row.fields, row.org, owner)
    used_by = row.extra.get("used_by", ())
    return all("/" not in s for s in moved.get("services", ())) and all(
        a.startswith(owner + "/") for a, _ in used_by
    )


def holders(desired: DesiredState, selected: Sequence[str]) -> set[str]:
    """The other organizations whose agreements the `selected` ones may take over (named by a previous
    key `slug/key`): read with them, planned or not (`--org` may choose one side of a move)."""
    return {
        previous.rpartition("/")[0]
        for slug in selected
        for agreement in desired.organizations[slug].agreements or ()
        for previous in agreement.previous_keys or ()
        if "/" in previous
    } - set(selected)


def agreement_moves(
    desired: DesiredState, selected: Sequence[str], actual: ActualState, parents: Mapping[str, str | None]
) -> Moves:
    """Which rows the agreements planned here (of the `selected` organizations) take over from other
    organizations of their families (planned with them or not: their rows are read, see `holders`).
    Read from the declared agreements, not their records: a batch's records are made one organization
    at a time."""
    declared = {
        AGREEMENTS.address(slug, a.key)
        for slug, org in desired.organizations.items()
        for a in org.agreements or ()
    }
    taken: dict[str, Record] = {}
    given: dict[str, str] = {}
    first: set[str] = set()
    for slug in selected:
        own = actual.organizations.get(slug)
        for agreement in desired.organizations[slug].agreements or ():
            address = AGREEMENTS.address(slug, agreement.key)
            if own is not None and address in own.records:
                continue
            for previous in agreement.previous_keys or ():
                owner, _, key = previous.rpartition("/")
                old = AGREEMENTS.address(owner, key)
                holder = actual.organizations.get(owner)
                row = holder.records.get(old) if holder is not None else None
                if row is None or not row.managed or old in declared or old in given:
                    continue
                above = owner in lineage(slug, parents.get)
                if above and not _only_for(row, slug):
                    continue
                taken[address] = as_taken(row, slug)
                given[old] = address
                if not above:
                    first.add(old)
                break
    return Moves(taken, given, frozenset(first))


def after_giving(records: Mapping[str, Record], moves: Moves) -> list[Record]:
    """An organization's rows as its transaction will find them once a parent took its agreements over:
    those gone, its windows scheduled under them and its services linked by them now naming the parent's."""
    gone = {address: moves.given[address] for address in records if address in moves.given_first}
    if not gone:
        return list(records.values())
    linked: dict[str, list[str]] = {}
    for address, new in gone.items():
        row = records[address]
        for key in row.fields.get("services") or ():
            linked.setdefault(SERVICES.address(row.org, key), []).append(new)
    result = []
    for row in records.values():
        if row.address in gone:
            continue
        if row.type == "capacity" and row.fields.get("agreement"):
            target = gone.get(AGREEMENTS.address(row.org, row.fields["agreement"]))
            if target is not None:
                owner, key = agreement_owner_key(target)
                row = replace(row, fields={**row.fields, "agreement": qualified(owner, key)})
        if row.type == "service" and row.address in linked:
            agreements = sorted({*row.fields.get("agreements", ()), *linked[row.address]})
            row = replace(row, fields={**row.fields, "agreements": agreements})
        result.append(row)
    return result
