"""The apply log keeps each entry's changes packed (zlib-compressed JSON, migration 0008), and `nexus
history` reads them whole: entries written before the migration included."""

from __future__ import annotations

import datetime
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from plan_apply.database.dialects import json_column
from plan_apply.database.engine import engine_for

from .test_cli_plan_apply import ORG, Run

EARLIER = 1_001
"""Entries logged before the migration: more than one of its batches."""


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str], database_url: str) -> Run:
    return Run(capsys, database_url)


@pytest.fixture
def lakeview(write_tree: Callable[..., Path]) -> Path:
    return write_tree({"lakeview.yaml": ORG.replace(", PROTECT", "")})


def _history(nexus: Run) -> list[dict[str, object]]:
    assert nexus("history", "--format", "json", "--limit", str(EARLIER + 10)) == 0
    applies: list[dict[str, object]] = json.loads(nexus.out)["applies"]
    return applies


def _stored_changes(url: str) -> list[bytes]:
    engine = engine_for(url)
    with engine.connect() as connection:
        values = [bytes(v) for v in connection.scalars(sa.text("SELECT changes FROM apply_log ORDER BY id"))]
    engine.dispose()
    return values


@pytest.fixture
def alembic_at(database_url: str) -> Iterator[Callable[[str], None]]:
    """Move the database's schema to a revision; it is put back at the newest afterwards."""
    from alembic import command

    from plan_apply.database.engine import HEAD_REVISION, _alembic_config

    def move(revision: str) -> None:
        engine = engine_for(database_url)
        with engine.connect() as connection:
            config = _alembic_config(connection)
            current = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            (command.upgrade if str(revision) > str(current) else command.downgrade)(config, revision)
            connection.commit()
        engine.dispose()

    yield move
    move(HEAD_REVISION)


def test_a_history_entry_is_stored_packed_and_read_back_whole(
    nexus: Run, lakeview: Path, database_url: str
) -> None:
    assert nexus("apply", str(lakeview), "--auto-approve") == 0
    (entry,) = _history(nexus)
    (stored,) = _stored_changes(database_url)
    as_json = zlib.decompress(stored)
    assert json.loads(as_json) == entry["changes"] and entry["changes"]
    assert len(stored) < len(as_json) / 3


def _log_as_before_0008() -> sa.TableClause:
    """`apply_log` as a nexus older than revision 0008 writes it: changes as its JSON type."""
    return sa.table(
        "apply_log",
        *(
            sa.column(name)
            for name in ("org_slug", "started_at", "finished_at", "actor", "plan_hash", "fingerprint_before")
        ),
        sa.column("summary", json_column()),
        sa.column("changes", json_column()),
    )


def _entry(n: int) -> dict[str, object]:
    moment = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return {
        "org_slug": "lakeview",
        "started_at": moment,
        "finished_at": moment,
        "actor": "web-ui",
        "plan_hash": f"h{n}",
        "fingerprint_before": "f",
        "summary": {"update": 1},
        "changes": [{"address": f"lakeview/services/s{n}", "after": {"slots": n, "é": "ü"}}],
    }


def test_an_entry_an_older_nexus_writes_after_the_upgrade_is_read_as_written_or_refused(
    nexus: Run, lakeview: Path, database_url: str, alembic_at: Callable[[str], None]
) -> None:
    """An older nexus still running while another upgraded the schema writes its entry as JSON: SQLite
    stores it whatever the column's type, and history (and a downgrade) read it; PostgreSQL refuses it."""
    assert nexus("apply", str(lakeview), "--auto-approve") == 0
    engine = engine_for(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(_log_as_before_0008().insert(), [_entry(7)])
    except sa.exc.DBAPIError as refused:
        assert not database_url.startswith("sqlite"), refused
        assert "bytea" in str(refused.orig)
        assert len(_history(nexus)) == 1
        return
    finally:
        engine.dispose()
    assert database_url.startswith("sqlite")
    (stale,) = [entry for entry in _history(nexus) if entry["actor"] == "web-ui"]
    assert stale["changes"] == _entry(7)["changes"]
    alembic_at("0007")
    engine = engine_for(database_url)
    with engine.connect() as connection:
        logged = connection.execute(sa.select(_log_as_before_0008().c.changes)).scalars().all()
    engine.dispose()
    assert _entry(7)["changes"] in logged and len(logged) == 2


def test_upgrading_packs_every_earlier_entry_and_downgrading_unpacks_them(
    nexus: Run, lakeview: Path, database_url: str, alembic_at: Callable[[str], None]
) -> None:
    assert nexus("apply", str(lakeview), "--auto-approve") == 0
    alembic_at("0007")
    earlier = _log_as_before_0008()
    engine = engine_for(database_url)
    with engine.begin() as connection:
        connection.execute(earlier.insert(), [_entry(n) for n in range(EARLIER)])
    engine.dispose()
    alembic_at("0008")
    entries = _history(nexus)
    assert len(entries) == EARLIER + 1
    by_hash = {entry["plan_hash"]: entry["changes"] for entry in entries}
    assert all(by_hash[f"h{n}"] == _entry(n)["changes"] for n in range(EARLIER))
    applied = next(entry["changes"] for entry in entries if entry["actor"] != "web-ui")
    alembic_at("0007")
    engine = engine_for(database_url)
    with engine.connect() as connection:
        unpacked = connection.execute(
            sa.select(earlier.c.changes).where(earlier.c.actor != "web-ui")
        ).scalar_one()
    engine.dispose()
    assert unpacked == applied
