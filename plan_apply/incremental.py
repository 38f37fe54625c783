"""Incremental plans: which organizations are unchanged since their last apply and may be skipped.

An organization is skipped only while its files (its YAML and the signed documents it names) hash as
recorded, no write (through nexus or not) moved its revision since, and no organization that is not
skipped shares a file with it (a shared file is parsed for both, or one's change would hide behind the
other's record), and no organization of its family is planned (a system's agreements cover its
facilities' services). `ENGINE_VERSION` invalidates every record when the rules change.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping

from nexus_config.ancestry import lineage
from nexus_config.attachments import MAX_DOCUMENT_BYTES
from nexus_config.headers import FileHeader, declared_parents
from nexus_config.templates import TEMPLATE_ENTRY, template_use
from plan_apply.actual import AppliedConfiguration

__all__ = ["DOCUMENT_SUFFIXES", "ENGINE_VERSION", "clean_organizations", "config_hash_of"]

ENGINE_VERSION = "nexus-plan-1"
"""Bump when normalization or diff rules change: every organization is then compared again in full."""

DOCUMENT_SUFFIXES = (".pdf", ".docx")
"""Recorded files that are documents, not configuration: hashed from disk when a plan starts."""


def config_hash_of(files: Mapping[str, str]) -> str:
    """The identity of the configuration an organization was applied from (its and its parents' files)."""
    payload = json.dumps([ENGINE_VERSION, sorted(files.items())])
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


def clean_organizations(
    applied: Mapping[str, AppliedConfiguration],
    hashes: Mapping[str, str],
    headers: Mapping[str, FileHeader | None] | None = None,
) -> dict[str, frozenset[str]]:
    """Organizations whose files and database rows are both unchanged since their last apply, and whose
    files hold no organization that is not (`headers`: what each scanned file declares; a file whose
    header is not understood is assumed to hold others, and is parsed)."""
    documents: dict[str, str | None] = {}

    def current(path: str) -> str | None:
        if path in hashes:
            return hashes[path]
        if not path.lower().endswith(DOCUMENT_SUFFIXES):
            return None
        if path not in documents:
            documents[path] = _document_sha256(path)
        return documents[path]

    def unchanged(path: str, sha: str) -> bool:
        # A template's digest is checked by the loader, once the files that declare it are parsed.
        return path.startswith(TEMPLATE_ENTRY) or current(path) == sha

    clean = {}
    for slug, config in applied.items():
        if (
            config.untouched
            and config.files
            and config.config_hash == config_hash_of(config.files)
            and all(unchanged(path, sha) for path, sha in config.files.items())
        ):
            clean[slug] = frozenset(
                template_use(path.removeprefix(TEMPLATE_ENTRY), sha) if _is_use(path) else path
                for path, sha in config.files.items()
            )
    clean = _below_planned(clean, applied, headers)
    if headers is None:
        return clean
    return _alone(_inheriting_all(clean, applied, headers), headers)


def _below_planned(
    clean: dict[str, frozenset[str]],
    applied: Mapping[str, AppliedConfiguration],
    headers: Mapping[str, FileHeader | None] | None,
) -> dict[str, frozenset[str]]:
    """The clean organizations left once the families that share agreements (their files say so) and have
    a member planned are dropped whole: a system's agreements cover its facilities' services, so planning
    it needs them loaded, and a facility's change (a service one of them covers) changes its terms."""
    parents = {slug: config.parent for slug, config in applied.items()}
    for header in (headers or {}).values():
        for slug, parent in header.organizations if header is not None else ():
            if parent is not None:
                parents[slug] = parent
    root = {slug: lineage(slug, parents.get)[-1] for slug in {*parents, *clean}}
    planned = {root[slug] for slug in root if slug not in clean}
    if headers is not None and all(h is not None for h in headers.values()):
        # Families whose files share no agreement: each organization is skipped on its own record.
        planned &= {
            root.get(slug, slug)
            for h in headers.values()
            if h is not None and h.shares
            for slug, _ in h.organizations
        }
    return {slug: files for slug, files in clean.items() if root[slug] not in planned}


def _inheriting_all(
    clean: dict[str, frozenset[str]],
    applied: Mapping[str, AppliedConfiguration],
    headers: Mapping[str, FileHeader | None],
) -> dict[str, frozenset[str]]:
    """The clean organizations that were applied from every file of their ancestors they may inherit
    from: one it did not record (templates it does not use) must still hold templates alone, or it is
    new or changed into something every descendant inherits (a step, a parent)."""
    if any(header is None for header in headers.values()):
        return {slug: files for slug, files in clean.items() if not any(_is_use(f) for f in files)}
    found = {path: header for path, header in headers.items() if header is not None}
    parent_of = declared_parents(found)
    files_of: dict[str, list[str]] = {}
    for path, header in found.items():
        for slug, _ in header.organizations:
            files_of.setdefault(slug, []).append(path)
    kept = {}
    for slug, files in clean.items():
        recorded = applied[slug].files
        ancestors = lineage(slug, parent_of.get, parent_of)[1:]
        if all(
            path in recorded or ancestor in found[path].template_holders
            for ancestor in ancestors
            for path in files_of.get(ancestor, ())
        ):
            kept[slug] = files
    return kept


def _is_use(entry: str) -> bool:
    return entry.startswith(TEMPLATE_ENTRY)


def _alone(
    clean: dict[str, frozenset[str]],
    headers: Mapping[str, FileHeader | None],
) -> dict[str, frozenset[str]]:
    """The clean organizations left once every one sharing a file with an organization that is not clean
    is dropped (to a fixed point: dropping one may expose another). Sharing is declaring in the same
    file: an ancestor's file a descendant was applied from is parsed for the ancestor alone (the loader
    parses every file that declares an organization not skipped), and checked by its hash."""
    holders: dict[str, set[str | None]] = {}
    for path, header in headers.items():
        holders.setdefault(path, set()).update(
            [slug for slug, _ in header.organizations] if header is not None else [None]
        )
    while True:
        shared = [
            slug
            for slug, files in clean.items()
            if any(
                other is None or (slug in holders[path] and other not in clean)
                for path in files
                for other in holders.get(path, ())
            )
        ]
        if not shared:
            return clean
        for slug in shared:
            del clean[slug]


def _document_sha256(path: str) -> str | None:
    """A recorded document's content hash, read as validate reads it (a regular file within the size
    limit, never blocking on a FIFO); None when it is gone or not such a file (it is planned again)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_DOCUMENT_BYTES:
            return None
        digest = hashlib.sha256()
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
