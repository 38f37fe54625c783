"""`--shard I/N` deals families by size: every organization once, families together, shards about even.

Hashing root slugs alone gave 6 / 18 / 26 organizations for 3 shards of a fleet whose systems differ in
size; the deal gives the largest family first to the lightest shard, the same way on every machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nexus_config.loader import scan_configuration
from plan_apply.planner import family_sizes
from plan_apply.selection import balanced_shards

from .test_cli_plan_apply import Run

ORG = "apiVersion: nexus/v1\nkind: Organization\nmetadata: {{slug: {slug}{parent}}}\nprofile: {{name: {slug}, type: clinic}}\n"


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str], database_url: str) -> Run:
    return Run(capsys, database_url)


def _org(slug: str, parent: str = "") -> str:
    return ORG.format(slug=slug, parent=f", parent: {parent}" if parent else "")


@given(
    sizes=st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.integers(1, 10_000), min_size=1),
    count=st.integers(1, 6),
)
def test_the_deal_is_even_within_one_family_and_names_every_family_once(
    sizes: dict[str, int], count: int
) -> None:
    deal = balanced_shards(sizes, count)
    assert set(deal) == set(sizes) and set(deal.values()) <= set(range(1, count + 1))
    loads = [sum(size for root, size in sizes.items() if deal[root] == i) for i in range(1, count + 1)]
    assert max(loads) - min(loads) <= max(sizes.values())
    assert (
        balanced_shards(dict(reversed(list(sizes.items()))), count) == deal
    )  # order of discovery does not matter


def test_shards_of_a_lopsided_fleet_carry_about_the_same_work(nexus: Run, write_tree: Any) -> None:
    files = {"big/system.yaml": _org("big-health")}
    files.update({f"big/site-{n}.yaml": _org(f"big-site-{n}", "big-health") for n in range(8)})
    files.update({f"clinic-{n}.yaml": _org(f"clinic-{n}") for n in range(9)})
    tree: Path = write_tree(files)
    shards = []
    for index in (1, 2, 3):
        assert nexus("plan", str(tree), "--shard", f"{index}/3", "--format", "json") == 0
        shards.append({o["slug"] for o in json.loads(nexus.out)["organizations"]})
    every = [slug for shard in shards for slug in shard]
    assert sorted(every) == sorted(
        {*(f"big-site-{n}" for n in range(8)), "big-health", *(f"clinic-{n}" for n in range(9))}
    )
    (big,) = [shard for shard in shards if "big-health" in shard]
    assert {f"big-site-{n}" for n in range(8)} <= big  # a family stays together
    assert sorted(len(shard) for shard in shards) == [4, 5, 9]  # the big family alone; the clinics share out
    sizes = family_sizes(scan_configuration([tree], keep_data=False))
    assert len(sizes) == 10 and sizes["big-health"] > 8 * sizes["clinic-0"]
