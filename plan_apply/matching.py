"""Pairing desired and actual records by address: the one generic comparison of the diff.

Every desired record meets the row it describes: at its own address, under a previous key (a rename),
or under the old address of a renamed service (its capacity windows move with it). What no desired
record consumed is left to remove, within the sections the configuration manages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from plan_apply.order import backward, forward
from plan_apply.records import SECTION_OF, Record

__all__ = ["Matching", "Pair", "Removals", "left_to_remove", "matched"]


@dataclass(frozen=True, slots=True)
class Pair:
    """A desired record and the row it describes (None: the row does not exist yet)."""

    desired: Record
    actual: Record | None = None
    renamed: bool = False
    """`actual` was found under one of the desired record's `previous_keys`."""


@dataclass(frozen=True, slots=True)
class Matching:
    """Every desired record paired (in execution order), and which actual rows they consumed."""

    pairs: tuple[Pair, ...]
    consumed: frozenset[str]
    moved: Mapping[str, str]
    """Renamed services: new address → old address (their capacity windows are found under the old)."""


@dataclass(frozen=True, slots=True)
class Removals:
    """Managed rows no desired record claims, in execution order; and the unmanaged rows per section."""

    records: tuple[Record, ...]
    unmanaged: Mapping[str, int]


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


def matched(records: Sequence[Record], actual: Mapping[str, Record]) -> Matching:
    """Each desired record with the row it describes, parents before children (a service's rename is
    known before its capacity windows are looked up)."""
    desired = {r.address: r for r in records}
    moved: dict[str, str] = {}
    consumed: set[str] = set()
    pairs: list[Pair] = []
    for want in forward(records):
        lookup = want.address
        if want.type == "capacity" and want.parent in moved:
            lookup = moved[want.parent] + want.address[len(want.parent or "") :]
        current = actual.get(lookup)
        if current is not None:
            consumed.add(lookup)
            pairs.append(Pair(want, current))
            continue
        renamed = _renamed_from(want, actual, desired, moved)
        if renamed is None:
            pairs.append(Pair(want))
            continue
        consumed.add(renamed.address)
        if want.type == "service":
            moved[want.address] = renamed.address
        pairs.append(Pair(want, renamed, renamed=True))
    return Matching(tuple(pairs), frozenset(consumed), moved)


def _scope_of(record: Record, renamed_services: Mapping[str, str]) -> str:
    """The section (or service's capacity list) an actual record belongs to, after service renames."""
    if record.type == "capacity":
        assert record.parent is not None
        parent = renamed_services.get(record.parent, record.parent)
        return parent.split("/", 1)[1] + "/capacity"
    return SECTION_OF[record.type]


def left_to_remove(
    matching: Matching, desired: Mapping[str, Record], actual: Mapping[str, Record], scopes: set[str]
) -> Removals:
    """The managed rows nothing desired claims, in the sections this configuration manages (a removed
    service takes its capacity windows along); the organization and profile are never removed."""
    removed_parents = {
        r.address
        for r in actual.values()
        if r.type == "service" and r.address not in matching.consumed and r.managed and "services" in scopes
    }
    renamed_services = {old: new for new, old in matching.moved.items()}
    unmanaged: Counter[str] = Counter()
    removals: list[Record] = []
    for current in backward(actual.values()):
        if current.address in matching.consumed or current.address in desired:
            continue
        if not current.managed:
            unmanaged[SECTION_OF[current.type]] += 1
            continue
        scope = _scope_of(current, renamed_services)
        if scope not in scopes and current.parent not in removed_parents:
            continue  # the configuration does not manage this section here
        if current.type in ("organization", "profile") or current.archived:
            continue
        removals.append(current)
    return Removals(tuple(removals), dict(sorted(unmanaged.items())))
