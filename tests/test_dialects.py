"""The dialect seam: every backend answers one protocol, nothing outside `plan_apply/database/dialects/`
tests a backend's name, and a backend nexus does not know is refused by name, never applied unlocked."""

from __future__ import annotations

import ast
import datetime
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from plan_apply.database.bound import bound_row, bulk_insert, insert_bound
from plan_apply.database.dialects import DIALECTS, Dialect, EncodedJSON, json_column
from plan_apply.database.engine import (
    HEAD_REVISION,
    engine_for,
    parallel_applies,
    planning_workers,
    schema_state,
)
from plan_apply.database.identity import nexus_metadata
from plan_apply.errors import DatabaseError

from .test_cli_plan_apply import Run

PLAN_APPLY = Path(__file__).resolve().parents[1] / "plan_apply"
BACKEND_NAMES = {"sqlite", "postgresql", "postgres"}
# The platform tables' JSON type asks the dialect of the backend it is compiled for (a type, not a branch).
NAMES_A_BACKEND_BY_DESIGN: set[Path] = set()


def _protocol_members() -> list[str]:
    return sorted(
        {n for n in vars(Dialect) if not n.startswith("_")} | set(Dialect.__annotations__) - {"__weakref__"}
    )


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_every_dialect_answers_the_whole_protocol(dialect: Dialect) -> None:
    missing = [m for m in _protocol_members() if not hasattr(dialect, m)]
    assert missing == []
    for member in _protocol_members():
        if callable(getattr(Dialect, member, None)):
            assert callable(getattr(dialect, member)), member


def test_the_protocol_covers_what_differs_between_backends() -> None:
    assert {
        "lock",
        "lock_holder",
        "failure_wording",
        "is_disconnect",
        "parallel_applies",
        "insert_bound",
    } <= set(_protocol_members())


def _code_outside_dialects() -> list[Path]:
    return [
        path
        for path in PLAN_APPLY.rglob("*.py")
        if "dialects" not in path.parts
        and "migrations" not in path.parts
        and path not in NAMES_A_BACKEND_BY_DESIGN
    ]


def _names_a_backend(value: object) -> bool:
    """A backend's bare name or driver spelling (`sqlite`, `postgresql+psycopg`), not a URL."""
    return isinstance(value, str) and (
        value in BACKEND_NAMES or any(value.startswith(n + "+") for n in BACKEND_NAMES)
    )


def test_no_module_outside_the_dialects_tests_a_backends_name() -> None:
    offenders = []
    for path in _code_outside_dialects():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and _names_a_backend(node.value):
                offenders.append(f"{path.name}:{node.lineno}: {node.value!r}")
            if isinstance(node, ast.Attribute) and node.attr == "get_backend_name":
                offenders.append(f"{path.name}:{node.lineno}: get_backend_name")
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "name"
                and ast.unparse(node.value).endswith("dialect")
            ):
                offenders.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []


@pytest.mark.parametrize("url", ["mysql://u@h/d", "mssql+pyodbc://u@h/d", "oracle://u@h/d"])
def test_an_unknown_backend_is_refused_by_name(url: str) -> None:
    backend = sa.engine.make_url(url).get_backend_name()
    for ask in (lambda: engine_for(url), lambda: parallel_applies(url, 4), lambda: planning_workers(url, 4)):
        with pytest.raises(DatabaseError, match=f"unsupported database '{backend}'"):
            ask()


def test_apply_on_an_unknown_backend_writes_nothing_and_names_it(
    capsys: pytest.CaptureFixture[str], write_tree: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEXUS_DATABASE_URL", raising=False)
    nexus = Run(capsys, None)
    tree = write_tree({"a.yaml": "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: a}\n"})
    assert nexus("apply", str(tree), "--auto-approve", "--database-url", "mysql://u:pw@203.0.113.1/d") == 1
    assert "unsupported database 'mysql'" in nexus.err and "pw" not in nexus.err


def test_sqlite_applies_one_organization_at_a_time_whatever_is_asked(tmp_path: Path) -> None:
    assert parallel_applies(f"sqlite:///{tmp_path / 'x.db'}", 8) == 1


def test_postgresql_applies_as_many_organizations_at_once_as_asked() -> None:
    assert parallel_applies("postgresql://u@h/d", 8) == 8
    assert parallel_applies("postgresql+psycopg://u@h/d", 1) == 1


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"])
def test_a_database_private_to_this_process_is_planned_in_it(url: str) -> None:
    assert planning_workers(url, 8) == 1


def test_a_sqlite_file_not_there_yet_is_planned_in_this_process(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    assert planning_workers(missing, 8) == 1
    (tmp_path / "missing.db").touch()
    assert planning_workers(missing, 8) == 8


def test_lock_wording_names_no_command_line_flag_unless_given_one() -> None:
    (sqlite,) = [d for d in DIALECTS if d.name == "sqlite"]
    locked = sa.exc.OperationalError("BEGIN", {}, Exception("database is locked"))
    plain = sqlite.failure_wording(locked, "harbor", 1.0, "", "reason")
    assert plain is not None and "--" not in plain and "gave up after 1s" in plain
    hinted = sqlite.failure_wording(locked, "harbor", 1.0, "--lock-timeout", "reason")
    assert hinted is not None and "gave up after 1s (--lock-timeout)" in hinted


def test_bulk_insert_writes_every_row(engine: sa.Engine) -> None:
    rows = [{"key": f"test-{i}", "value": str(i)} for i in range(250)]
    with engine.connect() as connection, connection.begin():
        bulk_insert(connection, nexus_metadata, rows)
        count = connection.execute(
            sa.select(sa.func.count()).select_from(nexus_metadata).where(nexus_metadata.c.key.like("test-%"))
        ).scalar()
        connection.rollback()
    assert count == 250


def test_bound_rows_are_stored_as_sqlalchemy_stores_the_same_values(engine: sa.Engine) -> None:
    metadata = sa.MetaData()
    table = sa.Table(
        "bound_probe",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("doc", json_column()),
        sa.Column("day", sa.Date),
        sa.Column("flag", sa.Boolean),
        sa.Column("note", sa.String(20)),
    )
    values = {"doc": {"a": [1, None, "x"]}, "day": datetime.date(2027, 2, 1), "flag": True, "note": None}
    with engine.connect() as connection, connection.begin():
        metadata.create_all(connection)
        connection.execute(sa.insert(table), [{"id": 1, **values}])
        bulk_insert(connection, table, [{"id": 2, **values}])
        insert_bound(
            connection,
            table,
            [
                bound_row(table, row, connection.dialect)
                for row in ({"id": 3, "doc": {"a": 1}, "flag": True}, {"id": 4})
            ],
            defaults={"flag": False},
        )
        stored = {row.id: row._asdict() for row in connection.execute(sa.select(table))}
        connection.rollback()
    assert {k: v for k, v in stored[2].items() if k != "id"} == {
        k: v for k, v in stored[1].items() if k != "id"
    }
    # A column a row leaves out takes its default, bound as any value (JSON's None is JSON null: None).
    assert stored[3] == {"id": 3, "doc": {"a": 1}, "day": None, "flag": True, "note": None}
    assert stored[4] == {"id": 4, "doc": None, "day": None, "flag": False, "note": None}


def _stored_json(engine: sa.Engine, values: list[object]) -> list[object]:
    """`values` inserted into a JSON column of nexus's type, one row each, and read back in order."""
    metadata = sa.MetaData()
    table = sa.Table(
        "json_probe", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", json_column())
    )
    with engine.connect() as connection, connection.begin():
        metadata.create_all(connection)
        connection.execute(sa.insert(table), [{"id": n, "v": value} for n, value in enumerate(values)])
        stored = [row.v for row in connection.execute(sa.select(table.c.v).order_by(table.c.id))]
        connection.rollback()
    return stored


def test_a_json_value_encoded_ahead_is_stored_as_that_value(engine: sa.Engine) -> None:
    stored = _stored_json(engine, [EncodedJSON('{"a": [1, "x", null]}'), {"b": 2}])
    assert stored == [{"a": [1, "x", None]}, {"b": 2}]


@pytest.mark.parametrize(
    "value",
    [
        {"name": "Clínica São José ✚", "slots": 4, "tags": ["a", None, True], "ratio": 0.5},
        {"big": 2**70},  # beyond what orjson encodes: the standard library's json does
    ],
    ids=["text-beyond-ascii", "integer-beyond-64-bits"],
)
def test_a_value_encoded_ahead_reads_back_as_the_same_value(
    engine: sa.Engine, value: dict[str, object]
) -> None:
    assert _stored_json(engine, [EncodedJSON.of(value), value]) == [value, value]


def test_an_encoded_value_is_never_stored_as_a_string_by_a_plain_json_column() -> None:
    engine = sa.create_engine("sqlite://")
    table = sa.Table("plain", sa.MetaData(), sa.Column("v", sa.JSON))
    with engine.begin() as connection:
        table.create(connection)
        with pytest.raises(sa.exc.StatementError, match="not JSON serializable"):
            connection.execute(sa.insert(table), [{"v": EncodedJSON("{}")}])


def test_a_column_some_rows_of_a_bulk_insert_leave_out_takes_its_default(engine: sa.Engine) -> None:
    """A row stores what it would store inserted alone, whatever the rows beside it name."""
    metadata = sa.MetaData()
    table = sa.Table(
        "default_probe",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("flag", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("doc", json_column()),
    )
    with engine.connect() as connection, connection.begin():
        metadata.create_all(connection)
        bulk_insert(connection, table, [{"id": 1, "flag": True, "doc": {"a": 1}}, {"id": 2}])
        bulk_insert(connection, table, [{"id": 3}])
        stored = {
            row.id: (row.flag, row.doc_is_null)
            for row in connection.execute(
                sa.select(table.c.id, table.c.flag, table.c.doc.is_(None).label("doc_is_null"))
            )
        }
        connection.rollback()
    assert stored == {1: (True, False), 2: (False, True), 3: (False, True)}


def test_a_value_its_column_cannot_bind_fails_the_insert_as_sqlalchemy_fails_it(engine: sa.Engine) -> None:
    """A database error (the organization fails, the apply goes on), never a bare TypeError."""
    metadata = sa.MetaData()
    table = sa.Table("bind_probe", metadata, sa.Column("flag", sa.Boolean))
    with engine.connect() as connection, connection.begin():
        metadata.create_all(connection)
        with pytest.raises(sa.exc.StatementError) as sqlalchemys:
            connection.execute(sa.insert(table), [{"flag": "yes"}])
        with pytest.raises(sa.exc.StatementError) as ours:
            bulk_insert(connection, table, [{"flag": "yes"}])
        connection.rollback()
    assert type(ours.value.orig) is type(sqlalchemys.value.orig)


def test_a_created_row_binds_as_its_columns_bind_each_value(engine: sa.Engine) -> None:
    """`created_row` binds a whole row in one pass: the values SQLAlchemy's own processing gives, and a
    value its column cannot bind fails as the column-at-a-time binding fails it, naming the column."""
    from plan_apply.database import tables as t
    from plan_apply.database.writes import created_row
    from plan_apply.plan import Action, Change
    from plan_apply.sections import section_of

    capacity = section_of("capacity")
    after = {"key": "spring", "name": "Spring", "slots": 4, "allow_specific_dates": True, "protect": False}
    change = Change("clinic/services/er/capacity/spring", "capacity", Action.CREATE, {}, after)
    row = created_row(capacity, change, engine.dialect)
    table = t.metadata.tables[capacity.table]  # the table nexus writes, as it declares it
    bound = bound_row(table, {"allow_specific_dates": True, "protected": False}, engine.dialect)
    assert row["key"] == "spring" and row["slots"] == 4
    for column in ("allow_specific_dates", "protected"):  # converted (`protect`), then bound: 1, not True
        assert (type(row[column]), row[column]) == (type(bound[column]), bound[column])
    wrong = Change(change.address, "capacity", Action.CREATE, {}, {**after, "allow_specific_dates": "yes"})
    with pytest.raises(sa.exc.StatementError, match="allow_specific_dates"):
        created_row(capacity, wrong, engine.dialect)


def _statements(engine: sa.Engine) -> list[str]:
    """The statements `engine` runs from now on, but those that begin a transaction (a list that grows)."""
    seen: list[str] = []

    def record(_connection: object, _cursor: object, sql: str, *_: object) -> None:
        if not sql.startswith("BEGIN"):
            seen.append(sql)

    sa.event.listen(engine, "before_cursor_execute", record)
    return seen


def test_the_schema_revision_is_read_in_one_statement(engine: sa.Engine) -> None:
    seen = _statements(engine)
    with engine.connect() as connection:
        assert schema_state(connection) == (HEAD_REVISION, HEAD_REVISION)
    assert len(seen) == 1, seen


def test_a_database_without_a_version_table_has_no_revision_and_its_transaction_goes_on(
    engine: sa.Engine,
) -> None:
    with engine.connect() as connection:
        connection.exec_driver_sql("DROP TABLE alembic_version")
        seen = _statements(engine)
        assert schema_state(connection) == (None, HEAD_REVISION)
        assert len(seen) == 1, seen
        assert connection.execute(sa.select(sa.literal(1))).scalar() == 1
        connection.rollback()
