"""The laws of plan/apply, property-tested over generated organizations.

- apply then plan is empty;
- any edit of the configuration, applied, then planned, is empty;
- `Plan.from_json(p.to_json()) == p`;
- no plan ever deletes or orphans a rotation.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plan_apply.apply import ApplyOptions, apply_plan
from plan_apply.database.engine import engine_for, upgrade_schema
from plan_apply.plan import Action, Plan

from .strategies import organization
from .support.harness import plan_folder

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _write(folder: Path, document: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    # JSON is YAML 1.2: the generated document is written exactly, with no emitter in between.
    (folder / "org.yaml").write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One upgraded SQLite file, copied for every example (migrating each time would dominate)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = engine_for(f"sqlite:///{path}")
    with engine.connect() as connection:
        upgrade_schema(connection)
    engine.dispose()
    return path


_TEMPLATE: list[Path] = []


@pytest.fixture(autouse=True)
def _remember_template(template_database: Path) -> None:
    _TEMPLATE[:] = [template_database]


def _fresh_engine(tmp_path: Path, name: str) -> sa.Engine:
    path = tmp_path / f"{name}.db"
    shutil.copyfile(_TEMPLATE[0], path)
    return engine_for(f"sqlite:///{path}")


def _apply(engine: sa.Engine, folder: Path) -> Plan:
    plan = plan_folder(engine, folder)
    if not plan.has_problems:
        result = apply_plan(engine, plan, ApplyOptions(actor="law"))
        assert result.ok, result
    return plan


@SETTINGS
@given(document=organization(plain=True))
def test_apply_then_plan_is_empty(tmp_path: Path, document: dict[str, Any]) -> None:
    engine = _fresh_engine(tmp_path, "first")
    try:
        folder = _write(tmp_path / "first", document)
        _apply(engine, folder)
        assert plan_folder(engine, folder).changes == ()
    finally:
        engine.dispose()


@SETTINGS
@given(before=organization(plain=True), after=organization(plain=True))
def test_any_edit_applied_then_planned_is_empty(
    tmp_path: Path, before: dict[str, Any], after: dict[str, Any]
) -> None:
    engine = _fresh_engine(tmp_path, "edit")
    try:
        _apply(engine, _write(tmp_path / "before", before))
        edited = _write(tmp_path / "after", after)
        planned = _apply(engine, edited)
        # A plan the guards refuse (a school still named by an agreement the school holds, say) is not
        # applied: planning again gives the same changes. Any other plan leaves nothing to do.
        expected = planned.changes if planned.has_problems else ()
        assert plan_folder(engine, edited).changes == expected
    finally:
        engine.dispose()


@SETTINGS
@given(
    before=organization(plain=True),
    after=organization(plain=True),
    booked=st.lists(st.integers(0, 50), max_size=6),
)
def test_no_plan_deletes_or_orphans_a_rotation(
    tmp_path: Path, before: dict[str, Any], after: dict[str, Any], booked: list[int]
) -> None:
    engine = _fresh_engine(tmp_path, "rotations")
    try:
        _apply(engine, _write(tmp_path / "before", before))
        with engine.begin() as connection:
            windows = (
                connection.execute(sa.text("SELECT id FROM capacity_windows ORDER BY id")).scalars().all()
            )
            for i, pick in enumerate(booked):
                if windows:
                    connection.execute(
                        sa.text(
                            "INSERT INTO rotations (capacity_window_id, student, start_date, end_date, status) "
                            "VALUES (:w, :s, '2027-02-01', '2027-02-28', 'scheduled')"
                        ),
                        {"w": windows[pick % len(windows)], "s": f"student {i}"},
                    )
            rotations_before = connection.execute(
                sa.text("SELECT id, capacity_window_id FROM rotations ORDER BY id")
            ).all()
        plan = plan_folder(engine, _write(tmp_path / "after", after))
        booked_addresses = {
            c.address for c in plan.changes if c.action is Action.DELETE and c.type in ("capacity", "service")
        }
        with engine.connect() as connection:
            used = connection.execute(
                sa.text(
                    "SELECT s.key AS service, c.key AS window FROM rotations r "
                    "JOIN capacity_windows c ON c.id = r.capacity_window_id JOIN services s ON s.id = c.service_id"
                )
            ).all()
        for row in used:
            assert f"generated-org/services/{row.service}/capacity/{row.window}" not in booked_addresses
            assert f"generated-org/services/{row.service}" not in booked_addresses
        if not plan.has_problems:
            assert apply_plan(engine, plan, ApplyOptions(actor="law")).ok
        with engine.connect() as connection:
            rotations_after = connection.execute(
                sa.text(
                    "SELECT r.id, r.capacity_window_id FROM rotations r "
                    "JOIN capacity_windows c ON c.id = r.capacity_window_id ORDER BY r.id"
                )
            ).all()
        assert rotations_after == rotations_before
    finally:
        engine.dispose()


@SETTINGS
@given(document=organization(plain=True))
def test_plan_json_round_trip_is_exact(tmp_path: Path, document: dict[str, Any]) -> None:
    engine = _fresh_engine(tmp_path, "json")
    try:
        plan = plan_folder(engine, _write(tmp_path / "json", document))
        assert Plan.from_json(plan.to_json()) == plan
    finally:
        engine.dispose()


@SETTINGS
@given(document=organization(plain=True))
def test_the_streamed_plan_json_is_the_plan_dict_dumped(tmp_path: Path, document: dict[str, Any]) -> None:
    engine = _fresh_engine(tmp_path, "stream")
    try:
        plan = plan_folder(engine, _write(tmp_path / "stream", document))
        whole = json.dumps(plan.to_json_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        assert "".join(plan.json_chunks()) == whole
    finally:
        engine.dispose()


def test_plan_from_json_refuses_a_tampered_plan(tmp_path: Path) -> None:
    engine = _fresh_engine(tmp_path, "tamper")
    try:
        plan = plan_folder(engine, Path(__file__).resolve().parents[1] / "examples" / "orgs")
    finally:
        engine.dispose()
    text = plan.to_json().replace('"slots": 4', '"slots": 40', 1)
    assert text != plan.to_json()
    with pytest.raises(ValueError, match="modified"):
        Plan.from_json(text)
