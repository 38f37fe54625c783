"""`nexus history`: the apply log, newest first, as a table or JSON (an audit trail for compliance)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from plan_apply.database import tables as t
from plan_apply.errors import UsageProblem
from plan_apply.render import escape_terminal

__all__ = ["HistoryEntry", "history_entries", "render_history_json", "render_history_text"]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: int
    organization: str
    started_at: str
    finished_at: str
    actor: str
    commit: str | None
    plan_hash: str
    summary: dict[str, int]
    changes: list[dict[str, Any]]


def _day(value: str | None, flag: str) -> datetime.datetime | None:
    if value is None:
        return None
    try:
        return datetime.datetime.combine(datetime.date.fromisoformat(value), datetime.time(), datetime.UTC)
    except ValueError:
        raise UsageProblem(f"{flag} takes a date YYYY-MM-DD, not {value!r}") from None


def _utc(value: datetime.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def history_entries(
    connection: Connection,
    *,
    orgs: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    limit: int = 50,
) -> list[HistoryEntry]:
    """Past applies matching the filters, newest first."""
    log = t.apply_log
    query = sa.select(log).order_by(log.c.started_at.desc(), log.c.id.desc()).limit(limit)
    if orgs:
        query = query.where(log.c.org_slug.in_(sorted(set(orgs))))
    start, end = _day(since, "--since"), _day(until, "--until")
    if start is not None:
        query = query.where(log.c.started_at >= start)
    if end is not None:
        query = query.where(log.c.started_at < end + datetime.timedelta(days=1))
    return [
        HistoryEntry(
            row.id,
            row.org_slug,
            _utc(row.started_at),
            _utc(row.finished_at),
            row.actor,
            row.commit_sha,
            row.plan_hash,
            dict(row.summary),
            list(row.changes),
        )
        for row in connection.execute(query)
    ]


def render_history_json(entries: Sequence[HistoryEntry]) -> str:
    return (
        json.dumps(
            [
                {
                    "id": e.id,
                    "organization": e.organization,
                    "started_at": e.started_at,
                    "finished_at": e.finished_at,
                    "actor": e.actor,
                    "commit": e.commit,
                    "plan_hash": e.plan_hash,
                    "summary": e.summary,
                    "changes": e.changes,
                }
                for e in entries
            ],
            indent=2,
            sort_keys=True,
            ensure_ascii=False,
        )
        + "\n"
    )


def render_history_text(entries: Sequence[HistoryEntry]) -> str:
    if not entries:
        return "No applies recorded.\n"
    rows = [("WHEN (UTC)", "ORGANIZATION", "WHO", "COMMIT", "CHANGES")]
    for e in entries:
        summary = ", ".join(f"{n} {a}" for a, n in sorted(e.summary.items())) or "none"
        rows.append((e.started_at, e.organization, e.actor, (e.commit or "-")[:12], summary))
    widths = [max(len(escape_terminal(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(escape_terminal(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines) + "\n"
