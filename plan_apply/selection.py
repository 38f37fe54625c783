"""Which organizations a command works on: --org, --selector and --shard, decided in one place.

Shards keep families (a root organization and its descendants) together, so parents land with children.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from nexus_config import DesiredState
from nexus_config.ancestry import lineage
from nexus_config.suggest import did_you_mean
from plan_apply.actual import AppliedConfiguration
from plan_apply.errors import UsageProblem

__all__ = [
    "EVERYTHING",
    "Selection",
    "balanced_shards",
    "check_selection",
    "chosen_organizations",
    "in_selection",
    "parse_selectors",
    "parse_shard",
    "root_of",
    "selected_organizations",
    "shard_of",
]


@dataclass(frozen=True, slots=True)
class Selection:
    """What --org, --selector and --shard ask for (parsed: a shard is (I, N))."""

    orgs: Sequence[str] = ()
    selectors: Sequence[str] = ()
    shard: tuple[int, int] | None = None
    deal: Mapping[str, int] = field(default_factory=dict)
    """Each family's shard (root → I) as `balanced_shards` deals them by size; a root it does not name
    falls back to `shard_of`'s hash."""


EVERYTHING = Selection()
"""No --org, --selector or --shard: every organization of the configuration."""


def parse_selectors(selectors: Sequence[str]) -> dict[str, str]:
    """`--selector key=value[,key=value]` → a mapping; every pair must match (AND)."""
    wanted: dict[str, str] = {}
    for selector in selectors:
        for pair in selector.split(","):
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise UsageProblem(f"--selector takes key=value pairs, not {pair!r}")
            wanted[key.strip()] = value.strip()
    return wanted


def parse_shard(shard: str | None) -> tuple[int, int] | None:
    """`--shard I/N` (1-based) → (I, N)."""
    if shard is None:
        return None
    index, sep, count = shard.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise UsageProblem(f"--shard takes I/N with 1 ≤ I ≤ N, such as 2/8, not {shard!r}")
    return int(index), int(count)


def shard_of(root: str, count: int) -> int:
    """The 1-based shard of a family of organizations: stable across runs, machines and Python versions."""
    return int.from_bytes(hashlib.sha256(root.encode()).digest()[:8], "big") % count + 1


def root_of(slug: str, parents: Mapping[str, str | None]) -> str:
    """The top of an organization's parent chain (a cycle stops the walk)."""
    return lineage(slug, parents.get)[-1]


def balanced_shards(family_sizes: Mapping[str, int], count: int) -> dict[str, int]:
    """Families (root → size) dealt to `count` shards, the largest first to the lightest shard so far:
    the same tree deals the same way on every machine, so each shard's job computes the deal alone."""
    loads = [0] * count
    deal: dict[str, int] = {}
    for root, size in sorted(family_sizes.items(), key=lambda item: (-item[1], item[0])):
        lightest = min(range(count), key=lambda i: (loads[i], i))
        deal[root] = lightest + 1
        loads[lightest] += size
    return deal


def in_selection(
    slug: str,
    labels: Mapping[str, str],
    orgs: Sequence[str],
    wanted: Mapping[str, str],
    shard: tuple[int, int] | None,
    parents: Mapping[str, str | None],
    deal: Mapping[str, int] | None = None,
) -> bool:
    """Whether --org, --selector (parsed: `wanted`) and --shard take this organization."""
    if orgs and slug not in orgs:
        return False
    if not all(labels.get(k) == v for k, v in wanted.items()):
        return False
    if shard is None:
        return True
    root = root_of(slug, parents)
    return ((deal or {}).get(root) or shard_of(root, shard[1])) == shard[0]


def chosen_organizations(
    candidates: Mapping[str, Mapping[str, str]], parents: Mapping[str, str | None], selection: Selection
) -> list[str]:
    """The candidates (slug → labels, in order) that the selection takes: the one place both a loaded
    configuration and a batch of a tree are chosen from."""
    wanted = parse_selectors(selection.selectors)
    return [
        slug
        for slug, labels in candidates.items()
        if in_selection(slug, labels, selection.orgs, wanted, selection.shard, parents, selection.deal)
    ]


def check_selection(selection: Selection, known: Collection[str], chosen: Collection[str]) -> None:
    """Refuse an --org that is not in the configuration, and a selection that takes nothing (a shard may
    be empty: another job covers those organizations)."""
    unknown = [slug for slug in selection.orgs if slug not in known]
    if unknown:
        hint = did_you_mean(unknown[0], known)
        raise UsageProblem(f'organization "{unknown[0]}" is not in the configuration{hint}')
    if not chosen and selection.shard is None:
        raise UsageProblem("no organization matches the given --org/--selector")


def selected_organizations(
    state: DesiredState,
    orgs: Sequence[str],
    selectors: Sequence[str],
    skipped: Mapping[str, AppliedConfiguration] | None = None,
    shard: tuple[int, int] | None = None,
) -> list[str]:
    """The organizations a command works on, parents first; an unknown slug is a usage error.

    `skipped` are unchanged organizations that were not loaded (their labels and parent as last
    applied). `shard` (I, N) keeps the families (a root organization and its descendants) whose root
    hashes to shard I: N jobs with I = 1..N cover a fleet exactly once, parents with their children.
    """
    skipped = skipped or {}
    every = {slug: dict(org.labels) for slug, org in state.organizations.items()}
    every.update({slug: dict(c.labels) for slug, c in sorted(skipped.items()) if slug not in every})
    parents = {slug: c.parent for slug, c in skipped.items()} | {
        slug: org.parent for slug, org in state.organizations.items()
    }
    selection = Selection(orgs, selectors, shard)
    chosen = chosen_organizations(every, parents, selection)
    check_selection(selection, every, chosen)
    return chosen
