"""The actors nexus does not control, as plain SQL: the platform's web UI, students booking rotations,
schools answering agreements; and `nexus` itself run in-process, as a CI job runs it.

Every helper takes a database URL (SQLite or PostgreSQL) and opens its own short connection, so a test
reads like the story it tells: apply, a student books, the school accepts, plan again.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from plan_apply.apply import lock_key
from plan_apply.cli import main

__all__ = [
    "Nexus",
    "book",
    "execute",
    "rows",
    "scalar",
    "school_answers",
    "write_lock_held",
]


class Nexus:
    """Runs `nexus` in-process through `main` (real exit codes) against one database, keeping the output."""

    def __init__(self, capsys: pytest.CaptureFixture[str], url: str) -> None:
        self.capsys = capsys
        self.url = url
        self.out = ""
        self.err = ""

    @property
    def output(self) -> str:
        return self.out + self.err

    def __call__(self, *args: str, env: Mapping[str, str] | None = None, database: bool = True) -> int:
        saved = {name: os.environ.get(name) for name in env or {}}
        os.environ.update(env or {})
        try:
            main([*args, "--database-url", self.url] if database else list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        else:  # pragma: no cover - main always exits
            code = 0
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        captured = self.capsys.readouterr()
        self.out, self.err = captured.out, captured.err
        assert "Traceback" not in self.output, self.output
        return code


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def execute(url: str, statement: str, params: Mapping[str, Any] | None = None) -> int:
    """Run one write in its own transaction, as another program would; the number of rows it touched."""
    engine = _engine(url)
    try:
        with engine.begin() as connection:
            return connection.execute(sa.text(statement), dict(params or {})).rowcount
    finally:
        engine.dispose()


def rows(url: str, query: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(sa.text(query), dict(params or {}))]
    finally:
        engine.dispose()


def scalar(url: str, query: str, params: Mapping[str, Any] | None = None) -> Any:
    (row,) = rows(url, query, params)
    return row[0]


def book(url: str, window: str, students: Sequence[str], org: str | None = None) -> None:
    """Students booking rotations on the capacity window with key `window` (of organization `org`)."""
    where = "c.key = :w" + (" AND o.slug = :o" if org else "")
    for student in students:
        assert (
            execute(
                url,
                "INSERT INTO rotations (capacity_window_id, student, start_date, end_date, status) "
                "SELECT c.id, :s, '2027-02-01', '2027-02-28', 'scheduled' FROM capacity_windows c "
                "JOIN services v ON v.id = c.service_id JOIN organizations o ON o.id = v.org_id "
                f"WHERE {where}",
                {"w": window, "s": student, "o": org},
            )
            == 1
        )


def school_answers(url: str, agreement: str, status: str, proposed: str | None = None) -> None:
    """The school's answer to agreement `agreement`: accept (active), reject (closed), or propose terms
    (changes_proposed with `proposed` as JSON text)."""
    assert (
        execute(
            url,
            "UPDATE agreements SET status = :s, proposed = "
            + ("NULL" if proposed is None else f"'{proposed}'")
            + " WHERE key = :k",
            {"s": status, "k": agreement},
        )
        == 1
    )


@contextmanager
def write_lock_held(url: str, slug: str) -> Iterator[None]:
    """Another session holds what an apply of `slug` must take (SQLite's write lock, the advisory lock)."""
    if url.startswith("sqlite"):
        lite = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        lite.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            lite.execute("ROLLBACK")
            lite.close()
        return
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(slug),))
        yield
        holder.rollback()
