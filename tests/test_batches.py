"""A fleet is loaded and planned in batches of whole organizations (with their ancestors), and the plan
is the same as when everything is loaded at once."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from nexus_config import load_configuration
from nexus_config.headers import file_header
from plan_apply import batching
from plan_apply.batching import check_tree
from plan_apply.database.engine import engine_for
from plan_apply.planner import Selection, TreePlan, plan_tree

from .conftest import EXAMPLES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from fleet import write_fleet


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fleet") / "fleet"
    write_fleet(out, 12, seed=11, systems=3)
    return out


def tree_plan(database_url: str, folder: Path, /, **kwargs: Any) -> TreePlan:
    """The tree's plan and problems through `plan_tree`, on a fresh engine, with a fixed clock (`kwargs`
    are `plan_tree`'s, its `url` for worker processes among them)."""
    engine = engine_for(database_url)
    try:
        with engine.connect() as connection:
            return plan_tree(
                [folder], connection, database="db", created_at=lambda: "2026-11-28T12:00:00Z", **kwargs
            )
    finally:
        engine.dispose()


def _plan_json(url: str, folder: Path, batch: int, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> str:
    monkeypatch.setattr(batching, "BATCH_ORGANIZATIONS", batch)
    result = tree_plan(url, folder, **kwargs)
    assert result.plan is not None, [p.as_text() for p in result.problems][:5]
    return result.plan.to_json()


@pytest.mark.parametrize("folder_name", ["fleet", "examples"])
def test_batched_plan_equals_the_plan_loaded_at_once(
    database_url: str, folder_name: str, fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = fleet if folder_name == "fleet" else EXAMPLES
    at_once = _plan_json(database_url, folder, 10_000, monkeypatch)
    batched = _plan_json(database_url, folder, 2, monkeypatch)
    assert batched == at_once


def test_batched_selection_by_shard_and_org(
    database_url: str, fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _plan_json(database_url, fleet, 10_000, monkeypatch, selection=Selection(shard=(1, 2)))
    parts = _plan_json(database_url, fleet, 3, monkeypatch, selection=Selection(shard=(1, 2)))
    assert whole == parts


def test_every_generated_file_is_understood_without_parsing(fleet: Path) -> None:
    for path in sorted(fleet.rglob("*.yaml")):
        assert file_header(path.read_text()) is not None, path


_PIECES = ["covers", "previous_keys", ":", " ", "\t", "\n", "{", ",", '"', "/", "-", "#", "x", "a: b"]


@given(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join))
def test_the_quick_look_finds_sharing_and_template_holders_where_the_patterns_do(body: str) -> None:
    """The header's look at a file is searched for quickly (a no-op plan looks at every file of a
    fleet); what it finds is what the plain patterns find anywhere in the text."""
    text = "apiVersion: nexus/v1\nmetadata:\n  slug: lake\n" + body
    header = file_header(text)
    assume(header is not None)
    assert header is not None
    covers = re.search(r"[\s{,\"]covers\"?[ \t]*:", text) is not None
    previous = any(
        "/" in m.group(1) for m in re.finditer(r"previous_keys\"?[ \t]*:([^\n]*(?:\n[ \t]*-[^\n]*)*)", text)
    )
    assert header.shares is (covers or previous)
    keys = set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)[ \t]*:", text, re.MULTILINE))
    templates_only = (
        "templates" in text
        and keys <= {"apiVersion", "kind", "metadata", "templates"}
        and header.organizations[0][1] is None
    )
    assert ("lake" in header.template_holders) is templates_only


def test_a_file_the_quick_look_cannot_read_makes_everything_load_at_once(
    database_url: str, write_tree: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Flow-style metadata over two lines: organizations of this file are only known by parsing it.
    tree = write_tree(
        {
            "a.yaml": "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: alpha}\nprofile: {name: A, type: clinic}\n",
            "b.yaml": "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: bravo,\n  parent: alpha}\n"
            "profile: {name: B, type: clinic}\n",
            "c.yaml": "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: charlie, parent: bravo}\n"
            "profile: {name: C, type: clinic}\n",
        }
    )
    assert file_header((tree / "b.yaml").read_text()) is None
    batched = _plan_json(database_url, tree, 1, monkeypatch)
    assert batched == _plan_json(database_url, tree, 10_000, monkeypatch)
    assert '"slug": "charlie"' in batched


def _broken_copy(fleet: Path, target: Path) -> Path:
    """The fleet with errors in files far apart (several batches), one of them a parent's."""
    shutil.copytree(fleet, target)
    files = sorted(target.rglob("*.yaml"))
    for victim in (files[0], files[len(files) // 2], files[-1]):
        text = victim.read_text()
        victim.write_text(text.replace("name:", "nmae:", 1) if "name:" in text else text + "\nbogus: 1\n")
    return target


@pytest.mark.parametrize("jobs", [1, 3])
def test_batched_validation_reports_what_loading_at_once_reports(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    monkeypatch.setattr(batching, "BATCH_ORGANIZATIONS", 2)
    broken = _broken_copy(fleet, tmp_path / "broken")
    at_once = load_configuration([broken])
    assert len(at_once.errors) >= 3
    checked = check_tree([broken], jobs=jobs)
    assert [p.as_text() for p in checked.problems] == [p.as_text() for p in at_once.problems]
    assert not checked.ok


@pytest.mark.parametrize("jobs", [1, 3])
def test_batched_validation_counts_what_loading_at_once_counts(
    fleet: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    monkeypatch.setattr(batching, "BATCH_ORGANIZATIONS", 2)
    at_once = load_configuration([fleet])
    checked = check_tree([fleet], jobs=jobs)
    assert checked.ok and checked.problems == at_once.problems
    assert (checked.organizations, checked.files) == (len(at_once.state.organizations), at_once.files)


def test_a_parent_named_under_a_quoted_key_is_batched_with_its_parent(
    database_url: str, fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quoted = tmp_path / "quoted"
    shutil.copytree(fleet, quoted)
    for path in quoted.rglob("profile.yaml"):
        path.write_text(re.sub(r"^(\s+)parent:", r'\1"parent":', path.read_text(), flags=re.MULTILINE))
    assert any('"parent":' in p.read_text() for p in quoted.rglob("profile.yaml"))
    assert _plan_json(database_url, quoted, 2, monkeypatch) == _plan_json(
        database_url, quoted, 10_000, monkeypatch
    )
