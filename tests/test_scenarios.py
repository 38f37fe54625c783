"""Golden scenarios: a configuration, a database made by an earlier configuration and seeded changes,
and the exact plan nexus must show, in text, JSON and markdown.

Each `tests/scenarios/NNN-name/` holds `before/` (applied first, when present), `seed.sql` (statements run
after it: rotations, edits made in the web UI, a school's answer), `config/` (what is planned) and the
expected renderings. After checking the plan, the scenario is applied and planned again: apply then plan
is empty, for every scenario that can be applied. Regenerate goldens with `pytest --update-goldens`.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from nexus_config import load_configuration
from nexus_config.locations import Locator
from plan_apply.apply import ApplyOptions, apply_plan
from plan_apply.database.engine import engine_for
from plan_apply.diff import PlanOptions
from plan_apply.planner import build_plan, located_plan
from plan_apply.selection import selected_organizations
from plan_apply.views.markdown import render_markdown
from plan_apply.views.text import render_text

SCENARIOS = Path(__file__).parent / "scenarios"
CREATED_AT = "2026-11-28T12:00:00Z"
DATABASE = "sqlite:///nexus.db"


def _scenarios() -> list[Path]:
    return sorted(p for p in SCENARIOS.iterdir() if p.is_dir() and (p / "config").is_dir())


def _plan(engine: sa.Engine, config: Path, allow_mass_delete: bool = False):  # type: ignore[no-untyped-def]
    locator = Locator()
    loaded = load_configuration([config], locator)
    assert loaded.ok, [p.as_text() for p in loaded.errors]
    selected = selected_organizations(loaded.state, [], [])
    with engine.connect() as connection:
        plan = build_plan(
            connection,
            loaded.state,
            selected,
            database=DATABASE,
            options=PlanOptions(allow_mass_delete=allow_mass_delete),
            created_at=lambda: CREATED_AT,
        )
    return located_plan(plan, locator)


def _apply(engine: sa.Engine, config: Path) -> None:
    plan = _plan(engine, config, allow_mass_delete=True)
    assert not plan.has_problems, [p.message for o in plan.organizations for p in o.problems]
    result = apply_plan(engine, plan, ApplyOptions(actor="test"))
    assert result.ok, result


def _relative(text: str, scenario: Path) -> str:
    """Goldens hold paths relative to the scenario folder, whatever the checkout's location, and no
    database-specific counters: the revision (and so the integrity hash) depends on the backend's
    trigger granularity (SQLite bumps per row, PostgreSQL once per transaction)."""
    text = text.replace(str(scenario) + "/", "").replace(str(scenario.resolve()) + "/", "")
    text = re.sub(r'"revision": \d+', '"revision": "*"', text)
    return re.sub(r'"integrity": "sha256:[0-9a-f]+"', '"integrity": "*"', text)


def _compare(path: Path, actual: str, update: bool) -> None:
    if update or not path.exists():
        path.write_text(actual, encoding="utf-8")
        if not update:
            pytest.fail(f"{path.name} did not exist: written; review it and re-run")
        return
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), actual.splitlines(True), f"{path.name} (expected)", "actual"
            )
        )
        pytest.fail(f"{path} differs (run pytest --update-goldens to accept):\n{diff}")


@pytest.mark.parametrize("scenario", _scenarios(), ids=lambda p: p.name)
def test_scenario_plan_matches_golden_files(
    scenario: Path, database_url: str, request: pytest.FixtureRequest
) -> None:
    update = bool(request.config.getoption("--update-goldens"))
    engine = engine_for(database_url)
    try:
        if (scenario / "before").is_dir():
            _apply(engine, scenario / "before")
        seed = scenario / "seed.sql"
        if seed.exists():
            with engine.begin() as connection:
                lines = [
                    ln for ln in seed.read_text(encoding="utf-8").splitlines() if not ln.startswith("--")
                ]
                for statement in "\n".join(lines).split(";\n"):
                    if statement.strip():
                        connection.exec_driver_sql(statement)
        plan = _plan(engine, scenario / "config", allow_mass_delete=(scenario / "allow-mass-delete").exists())
        _compare(scenario / "expected.txt", _relative(render_text(plan), scenario), update)
        _compare(scenario / "expected.json", _relative(plan.to_json(), scenario), update)
        _compare(scenario / "expected.md", _relative(render_markdown(plan), scenario), update)
        if not plan.has_problems:
            result = apply_plan(engine, plan, ApplyOptions(actor="test"))
            left_alone = {note.split(":")[0] for org in result.organizations for note in org.notes}
            again = _plan(engine, scenario / "config", allow_mass_delete=True)
            leftovers = [c.address for c in again.changes if c.address not in left_alone]
            assert not leftovers, f"apply then plan is not empty: {leftovers}"
    finally:
        engine.dispose()
