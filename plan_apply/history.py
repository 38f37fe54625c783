"""`nexus history`: the apply log, newest first (an audit trail for compliance). Its views are
`render_history` of `plan_apply.views.text` and `.json`."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from plan_apply.database import tables as t

__all__ = ["HistoryEntry", "history_entries", "recorded_organizations"]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One apply of one organization, as the log recorded it."""

    id: int
    organization: str
    started_at: str
    finished_at: str
    actor: str
    commit: str | None
    plan_hash: str
    summary: dict[str, int]
    changes: list[dict[str, Any]]


def _midnight(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(), datetime.UTC)


def _utc(value: datetime.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def history_entries(
    connection: Connection,
    *,
    orgs: Sequence[str] = (),
    since: datetime.date | None = None,
    until: datetime.date | None = None,
    limit: int = 50,
) -> list[HistoryEntry]:
    """Past applies matching the filters, newest first; `since` and `until` are UTC days, both included."""
    log = t.apply_log
    query = sa.select(log).order_by(log.c.started_at.desc(), log.c.id.desc()).limit(limit)
    if orgs:
        query = query.where(log.c.org_slug.in_(sorted(set(orgs))))
    if since is not None:
        query = query.where(log.c.started_at >= _midnight(since))
    if until is not None:
        query = query.where(log.c.started_at < _midnight(until) + datetime.timedelta(days=1))
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


def recorded_organizations(connection: Connection) -> list[str]:
    """The slugs the database knows (configured or with applies logged): what a history filter can name."""
    log, orgs = t.apply_log, t.organizations
    query = sa.union(sa.select(orgs.c.slug), sa.select(log.c.org_slug))
    return sorted(connection.scalars(query))
