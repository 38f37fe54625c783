"""The incremental law: whatever was applied and whatever changed since (an organization, a family, files
shared or split), in any batch size, an incremental plan proposes exactly the changes a full plan proposes
(it only skips what has none), and worker processes plan exactly what one process plans."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from plan_apply import batching
from plan_apply.apply import ApplyOptions, apply_plan
from plan_apply.database.engine import engine_for, upgrade_schema
from plan_apply.plan import Plan

from .strategies import family, templated_family
from .test_batches import tree_plan
from .test_properties import emit

FAMILIES = st.one_of(family(), templated_family())

LAW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _tree(folder: Path, families: list[list[dict[str, Any]]], together: bool = False) -> Path:
    """The families written one file an organization (`together`: a family's facilities share one file),
    each family's slugs (and what names them) numbered."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for number, documents in enumerate(families):
        for document in documents:
            text = re.sub(r"\b(system|site-\d)\b(?![-_])", rf"\1-{number}", emit(document))
            name = (
                "sites" if together and document["metadata"].get("parent") else document["metadata"]["slug"]
            )
            path = folder / f"{name}-{number}.yaml"
            path.write_text((path.read_text() + "---\n" if path.exists() else "") + text, encoding="utf-8")
    return folder


def _plan(database_url: str, folder: Path, **kwargs: Any) -> Plan | None:
    """The tree's plan through `plan_tree` (None when the configuration has errors)."""
    return tree_plan(database_url, folder, **kwargs).plan


def _applied(url: str, plan: Plan) -> bool:
    """Whether `plan` applied in full to the database at `url`."""
    engine = engine_for(url)
    try:
        return apply_plan(engine, plan, ApplyOptions(actor="law"), jobs=1).ok
    finally:
        engine.dispose()


def _first_applied(database: Path, folder: Path) -> str:
    """The URL of a new SQLite file at `database`, migrated, with the tree's full plan applied (a tree
    with errors is no example)."""
    database.unlink(missing_ok=True)
    url = f"sqlite:///{database}"
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            upgrade_schema(connection)
    finally:
        engine.dispose()
    first = _plan(url, folder, full=True)
    assume(first is not None)
    assert first is not None and _applied(url, first)
    return url


def _changes(plan: Plan) -> dict[str, Any]:
    """Each organization's proposed changes (notes included), for those that have any."""
    return {
        org["slug"]: org["changes"]
        for org in json.loads(plan.to_json())["organizations"]
        if org.get("changes")
    }


def _edited(documents: list[dict[str, Any]], data: st.DataObject) -> list[dict[str, Any]]:
    """A family left alone, drawn anew, or with one of its organizations drawn anew (the rest as they were)."""
    how = data.draw(st.sampled_from(["keep", "family", "one"]))
    if how == "keep":
        return documents
    fresh: list[dict[str, Any]] = data.draw(FAMILIES)
    if how == "family":
        return fresh
    index = data.draw(st.integers(0, min(len(documents), len(fresh)) - 1))
    return [fresh[i] if i == index else document for i, document in enumerate(documents)]


@LAW
@given(before=st.lists(FAMILIES, min_size=2, max_size=3), data=st.data())
def test_an_incremental_plan_proposes_what_a_full_plan_proposes(
    tmp_path: Path, before: list[list[dict[str, Any]]], data: st.DataObject
) -> None:
    folder = _tree(tmp_path / "tree", before, data.draw(st.booleans()))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batching, "BATCH_ORGANIZATIONS", data.draw(st.integers(1, 3)))
        url = _first_applied(tmp_path / "law.sqlite", folder)
        after = [_edited(documents, data) for documents in before]
        folder = _tree(folder, after, data.draw(st.booleans()))
        full = _plan(url, folder, full=True)
        incremental = _plan(url, folder)
        in_workers = _plan(url, folder, jobs=2, url=url)
        full_in_workers = _plan(url, folder, full=True, jobs=2, url=url)
    assert (incremental is None) == (full is None)
    assert (in_workers and in_workers.to_json()) == (incremental and incremental.to_json())
    assert (full_in_workers and full_in_workers.to_json()) == (full and full.to_json())
    if full is not None and incremental is not None:
        event(
            f"valid, {len(_changes(full))} changed, {sum(o.skipped for o in incremental.organizations)} skipped"
        )
        assert _changes(incremental) == _changes(full)


@LAW
@given(before=st.lists(family(), min_size=2, max_size=3), data=st.data())
def test_a_facility_moved_to_another_family_is_planned_in_batches_as_at_once(
    tmp_path: Path, before: list[list[dict[str, Any]]], data: st.DataObject
) -> None:
    """Batches are told apart by the files, which name only a moved facility's new parent: whatever the
    batch size, the plan of the move proposes what the plan of the whole tree at once proposes, and once
    applied, nothing is left to do."""
    folder = _tree(tmp_path / "tree", before)
    url = _first_applied(tmp_path / "move.sqlite", folder)
    old, new = data.draw(st.permutations(range(len(before))))[:2]
    site = data.draw(st.integers(1, len(before[old]) - 1))
    path = folder / f"site-{site - 1}-{old}.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(f"parent: system-{old}\n") == 1, text
    path.write_text(text.replace(f"parent: system-{old}\n", f"parent: system-{new}\n"), encoding="utf-8")
    full = data.draw(st.booleans())
    at_once = _plan(url, folder, full=full)
    assume(at_once is not None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batching, "BATCH_ORGANIZATIONS", data.draw(st.integers(1, 3)))
        batched = _plan(url, folder, full=full)
        assert batched is not None and at_once is not None
        assert _changes(batched) == _changes(at_once)
        assert _applied(url, batched)
        again = _plan(url, folder)
    assert again is not None and not _changes(again)
