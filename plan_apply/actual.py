"""The actual state as a value: what the database holds for a set of organizations, as `Record`s.

Pure (no SQLAlchemy): the diff compares these with the desired records. `database.reads` fills them in
bulk; `fingerprint_of` is what a saved plan is checked against under the apply lock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from plan_apply.records import Record

__all__ = ["ActualOrganization", "ActualState", "AppliedConfiguration", "fingerprint_of"]


@dataclass(frozen=True, slots=True)
class ActualOrganization:
    """One organization as the database holds it; `id` is None when it does not exist yet."""

    slug: str
    id: int | None
    records: Mapping[str, Record]
    fingerprint: str
    revision: int = 0
    config_hash: str | None = None
    applied_revision: int | None = None


@dataclass(frozen=True, slots=True)
class ActualState:
    """The organizations read, and which of the schools they name are on the platform."""

    organizations: Mapping[str, ActualOrganization]
    platform_schools: frozenset[str] = field(default_factory=frozenset)


def fingerprint_of(slug: str, records: Iterable[Record]) -> str:
    """A content hash of everything a plan of this organization depends on ("absent" included)."""
    rows = sorted(
        (
            r.address,
            r.type,
            dict(r.fields),
            r.managed,
            r.archived,
            r.protected,
            r.rotations,
            r.status,
            r.proposed,
        )
        for r in records
    )
    payload = json.dumps([slug, rows] if rows else [slug, "absent"], sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AppliedConfiguration:
    """What an organization's last apply recorded: the files it came from and whether anything wrote to
    the organization since (`revision` moves with every write, by triggers, whoever makes it)."""

    slug: str
    files: Mapping[str, str]
    config_hash: str | None
    revision: int
    applied_revision: int | None
    labels: Mapping[str, str]
    parent: str | None = None

    @property
    def untouched(self) -> bool:
        return self.applied_revision is not None and self.revision == self.applied_revision
