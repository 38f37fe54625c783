"""Records: the one shape both sides take before they are compared, keyed by address.

The diff never sees pydantic documents or SQLAlchemy rows: desired organizations and database rows are
both turned into `Record`s whose `fields` hold normalized, JSON-ready values (sets sorted, dates as
strings, absent lists as empty), so equal meaning compares equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Record"]


@dataclass(frozen=True, slots=True)
class Record:
    """One addressable item, from either side.

    `fields` are compared; a desired record lists every field it owns (`protect` only when the
    configuration says it). The remaining attributes describe the actual row and are ignored on the
    desired side: ownership (`managed`), what nexus last applied (`applied`), and live-data facts.
    """

    address: str
    type: str
    org: str
    key: str
    fields: Mapping[str, Any]
    parent: str | None = None
    previous_keys: tuple[str, ...] = ()
    managed: bool = True
    applied: Mapping[str, Any] | None = None
    archived: bool = False
    protected: bool = False
    rotations: int = 0
    status: str | None = None
    proposed: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
