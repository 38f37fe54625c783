"""The database is read in bulk: a fixed number of statements per table per batch, never one per row."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event

from nexus_config import load_configuration
from plan_apply.apply import ApplyOptions, apply_plan
from plan_apply.database.engine import engine_for
from plan_apply.database.reads import read_actual_state
from plan_apply.diff import PlanOptions
from plan_apply.plan import Plan
from plan_apply.planner import build_plan

ORG = """
apiVersion: nexus/v1
kind: Organization
metadata: {{slug: site-{n:03d}}}
profile: {{name: Site {n}, type: clinic}}
staff: [{{email: lead{n}@site.example.org, name: Lead, role: admin}}]
steps: [{{key: hipaa, stage: onboarding, name: HIPAA, type: upload}}]
schools: [{{key: state-u, name: State University, contact_email: placements@state.example.edu}}]
agreements:
  - {{key: state, school: state-u, name: State, start_date: 2027-01-01, services: [er], disciplines: [nursing]}}
services:
  - key: er
    name: Emergency
    disciplines: [nursing, medicine]
    steps: [hipaa]
    capacity:
      - {{key: spring, name: Spring, workflow: coordinator_scheduled, agreement: state, disciplines: [nursing],
          start_date: 2027-02-01, end_date: 2027-05-01, slots: 3}}
      - {{key: open, name: Open, workflow: student_requested, disciplines: [medicine],
          start_date: 2027-02-01, end_date: 2027-05-01, slots: 3}}
"""


def _fleet(write_tree: Callable[..., Path], count: int, first: int = 0) -> Path:
    numbers = range(first, first + count)
    return write_tree({f"site-{n:03d}.yaml": ORG.format(n=n) for n in numbers}, root=f"fleet-{first}-{count}")


def _counted_plan(url: str, folder: Path) -> tuple[int, Plan]:
    loaded = load_configuration([folder])
    assert loaded.ok
    engine = engine_for(url)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with engine.connect() as connection:
            plan = build_plan(connection, loaded.state, list(loaded.state.organizations), database="db")
    finally:
        engine.dispose()
    return len([s for s in statements if s.lstrip().upper().startswith("SELECT")]), plan


def test_planning_50_organizations_reads_with_as_many_statements_as_5(
    database_url: str, write_tree: Callable[..., Path]
) -> None:
    small, big = _fleet(write_tree, 5), _fleet(write_tree, 50)
    engine = engine_for(database_url)
    for folder in (big,):  # both fleets' organizations exist, so every table has rows to read
        loaded = load_configuration([folder])
        with engine.connect() as connection:
            plan = build_plan(
                connection,
                loaded.state,
                list(loaded.state.organizations),
                database="db",
                options=PlanOptions(allow_mass_delete=True),
            )
        assert apply_plan(engine, plan, ApplyOptions(actor="test")).ok
    engine.dispose()
    selects_small, plan_small = _counted_plan(database_url, small)
    selects_big, plan_big = _counted_plan(database_url, big)
    assert not plan_small.has_changes and not plan_big.has_changes
    assert selects_big == selects_small
    assert selects_small <= 15


def _apply_statements(url: str, folder: Path) -> tuple[int, int]:
    loaded = load_configuration([folder])
    engine = engine_for(url)
    statements: list[str] = []
    with engine.connect() as connection:
        plan = build_plan(connection, loaded.state, list(loaded.state.organizations), database="db")
    event.listen(engine, "before_cursor_execute", lambda c, cur, statement, *a: statements.append(statement))
    assert apply_plan(engine, plan, ApplyOptions(actor="test")).ok
    engine.dispose()
    return len(statements), len(plan.changes)


def test_applying_an_organization_takes_the_same_statements_whatever_the_fleet_size(
    database_url: str, write_tree: Callable[..., Path]
) -> None:
    small_statements, small_changes = _apply_statements(database_url, _fleet(write_tree, 3))
    assert small_changes == 3 * 9  # organization, profile, staff, step, school, agreement, service, 2 windows
    big_statements, _ = _apply_statements(database_url, _fleet(write_tree, 30, first=100))
    # Each organization is its own transaction with a fixed number of batched statements; a statement
    # per row would also grow with the organization's size, which the writers' batches avoid.
    assert big_statements / 30 == small_statements / 3
    assert small_statements / 3 < small_changes / 3 + 25


def _planned_fleet(
    sqlite_template: Path, tmp_path: Path, write_tree: Callable[..., Path]
) -> tuple[Any, Plan]:
    """A SQLite database of the migrated template, and the plan of a fleet of three sites into it."""
    shutil.copy(sqlite_template, tmp_path / "fleet.db")
    engine = engine_for(f"sqlite:///{tmp_path / 'fleet.db'}")
    loaded = load_configuration([_fleet(write_tree, 3)])
    with engine.connect() as connection:
        return engine, build_plan(connection, loaded.state, list(loaded.state.organizations), database="db")


@contextmanager
def _reads(engine: Any) -> Iterator[list[tuple[str, Any]]]:
    """The SELECTs (and WITH queries) the engine runs meanwhile, with their parameters."""
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_reading_some_organizations_scans_no_whole_table(
    sqlite_template: Path, tmp_path: Path, write_tree: Callable[..., Path]
) -> None:
    # A table read whole for each batch makes a fleet's plan grow with the square of its size: every read
    # of a batch's state finds its rows through an index (SQLite says SCAN for a read of the whole table).
    engine, plan = _planned_fleet(sqlite_template, tmp_path, write_tree)
    assert apply_plan(engine, plan, ApplyOptions(actor="test")).ok
    with engine.connect() as connection:
        with _reads(engine) as statements:
            read_actual_state(connection, ["site-001"], ["state-u"])
        scans = _table_scans(connection, statements)
    engine.dispose()
    assert len(statements) >= 10  # every section's read
    assert scans == []


def test_applying_an_organization_scans_no_whole_table(
    sqlite_template: Path, tmp_path: Path, write_tree: Callable[..., Path]
) -> None:
    # An organization's transaction reads too (its state, the ids it links to, the schools its family has
    # invited): one read of a whole table there makes a fleet's first apply grow with its square.
    engine, plan = _planned_fleet(sqlite_template, tmp_path, write_tree)
    with _reads(engine) as statements:
        assert apply_plan(engine, plan, ApplyOptions(actor="test")).ok
    with engine.connect() as connection:
        scans = _table_scans(connection, statements)
    engine.dispose()
    assert len(statements) >= 3 * 3  # each organization's state, step ids, invited schools
    assert scans == []


def _table_scans(connection: Any, statements: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """The steps of the statements' query plans that read a whole table (SQLite says SCAN, or builds an
    AUTOMATIC index for the one statement); a walk over a recursive query's own rows is not one."""
    tables = {
        name for (name,) in connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")
    }
    return [
        (statement.split("FROM", 1)[-1][:80], step[3])
        for statement, parameters in statements
        for step in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        if "AUTOMATIC" in step[3] or (step[3].startswith("SCAN") and step[3].split()[1] in tables)
    ]


def test_items_that_set_protect_and_items_that_do_not_are_inserted_in_one_statement_per_table(
    database_url: str, write_tree: Callable[..., Path]
) -> None:
    folder = write_tree({"site.yaml": ORG.replace("slots: 3}}", "slots: 3, protect: true}}", 1).format(n=7)})
    loaded = load_configuration([folder])
    engine = engine_for(database_url)
    with engine.connect() as connection:
        plan = build_plan(connection, loaded.state, list(loaded.state.organizations), database="db")
    windows: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith(("INSERT INTO capacity_windows", "COPY capacity_windows")):
            windows.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    assert apply_plan(engine, plan, ApplyOptions(actor="test")).ok
    engine.dispose()
    assert len(windows) == 1, windows


def test_a_facility_looks_up_its_systems_agreements_once_for_its_services_and_its_windows(
    database_url: str, write_tree: Callable[..., Path]
) -> None:
    from .test_system_agreements import family

    engine = engine_for(database_url)
    lookups: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if (
            statement.lstrip().startswith("SELECT agreements.id, agreements.")
            and "JOIN organizations" in statement
        ):
            lookups.append(statement)

    try:
        folder = write_tree(family())
        loaded = load_configuration([folder])
        with engine.connect() as connection:
            plan = build_plan(connection, loaded.state, ["northwind"], database="db")
        assert apply_plan(engine, plan, ApplyOptions(actor="test")).ok
        with engine.connect() as connection:
            plan = build_plan(connection, loaded.state, ["lake"], database="db")
        event.listen(engine, "before_cursor_execute", record)
        assert apply_plan(engine, plan, ApplyOptions(actor="test")).ok
    finally:
        engine.dispose()
    assert len(lookups) == 1, lookups
