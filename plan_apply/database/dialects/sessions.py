"""What every backend's sessions share: lock timeouts in whole milliseconds (with a ceiling meaning "no
limit"), an organization's lock key, and the name a session shows to others."""

from __future__ import annotations

import getpass
import hashlib
import math
import os
import socket

__all__ = ["FOREVER_MS", "application_name", "lock_key", "lock_milliseconds"]

FOREVER_MS = 2**31 - 1
"""The largest lock wait either database takes (about 24 days)."""


def lock_milliseconds(seconds: float) -> int | None:
    """A lock timeout in whole milliseconds (at least 1 unless it is 0), or None for "no limit"
    (infinite, not a number, or beyond what the databases accept)."""
    if not math.isfinite(seconds) or seconds * 1000 >= FOREVER_MS:
        return None
    return 0 if seconds <= 0 else max(1, round(seconds * 1000))


def application_name(purpose: str | None = None) -> str:
    """How this process shows in `pg_stat_activity` (and so to an apply waiting for its lock):
    `nexus apply alice@ci-runner-7 pid 4242`, within PostgreSQL's 63 bytes, ASCII only."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name (a container without passwd entry): still say which process
        user = "?"
    host = socket.gethostname().split(".", 1)[0] or "?"
    name = f"nexus {purpose + ' ' if purpose else ''}{user}@{host} pid {os.getpid()}"
    name = name.encode("ascii", "replace").decode()
    if len(name) > 63:
        tail = f" pid {os.getpid()}"
        name = name[: 63 - len(tail)] + tail
    return name


def lock_key(slug: str) -> int:
    """A stable signed 64-bit advisory-lock key for an organization."""
    return int.from_bytes(hashlib.sha256(b"nexus:" + slug.encode()).digest()[:8], "big", signed=True)
