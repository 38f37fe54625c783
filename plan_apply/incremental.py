"""Incremental plans: which organizations are unchanged since their last apply and may be skipped.

An organization is skipped only while its files hash as recorded and no write (through nexus or not)
moved its revision since; `ENGINE_VERSION` invalidates every record when the rules change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from plan_apply.actual import AppliedConfiguration

__all__ = ["ENGINE_VERSION", "clean_organizations", "config_hash_of"]

ENGINE_VERSION = "nexus-plan-1"
"""Bump when normalization or diff rules change: every organization is then compared again in full."""


def config_hash_of(files: Mapping[str, str]) -> str:
    """The identity of the configuration an organization was applied from (its and its parents' files)."""
    payload = json.dumps([ENGINE_VERSION, sorted(files.items())])
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


def clean_organizations(
    applied: Mapping[str, AppliedConfiguration], hashes: Mapping[str, str]
) -> dict[str, frozenset[str]]:
    """Organizations whose files and database rows are both unchanged since their last apply."""
    clean = {}
    for slug, config in applied.items():
        if (
            config.untouched
            and config.files
            and config.config_hash == config_hash_of(config.files)
            and all(hashes.get(path) == sha for path, sha in config.files.items())
        ):
            clean[slug] = frozenset(config.files)
    return clean
