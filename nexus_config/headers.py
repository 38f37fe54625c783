"""Which organizations a file declares, read from its text without parsing it: to load a fleet in
batches of whole families instead of all at once (memory stays flat as the fleet grows).

A cheap look at `metadata` (block or flow style) in each document; when a file is written in a way this
does not understand, the answer is "unknown" and the caller loads everything together. The loader checks
the guess against what it then parses, so a wrong guess can cost time, never correctness.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar, cast

from nexus_config.ancestry import lineage

__all__ = ["Batch", "FileHeader", "batches", "declared_parents", "file_header"]

_DOCUMENT = re.compile(r"^---[ \t]*(?:#.*)?$", re.MULTILINE)
_FLOW = re.compile(r"^metadata:[ \t]*\{((?:[^{}\n]|\{[^{}\n]*\})*)\}", re.MULTILINE)
_NESTED = re.compile(r"\{[^{}\n]*\}")
_BLOCK = re.compile(r"^metadata:[ \t]*(?:#.*)?\n((?:[ \t]+.*\n|[ \t]*\n)+)", re.MULTILINE)
_FIELD = r"(?:^|[,{\s])(['\"]?)NAME\1:[ \t]*['\"]?([a-z0-9][a-z0-9-]*)['\"]?[ \t]*(?:#.*)?(?:,|$)"
_SLUG = re.compile(_FIELD.replace("NAME", "slug"), re.MULTILINE)
_PARENT = re.compile(_FIELD.replace("NAME", "parent"), re.MULTILINE)
_CONTENT = re.compile(r"^[^\s#]", re.MULTILINE)
_TOP_LEVEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]*:")
_LATER_TOP_LEVEL = re.compile(r"\n([A-Za-z_][A-Za-z0-9_]*)[ \t]*:")
_TEMPLATES_ONLY = frozenset({"apiVersion", "kind", "metadata", "templates"})
_T = TypeVar("_T")
_VERSION = re.compile(r"^apiVersion:[ \t]*(['\"]?)([A-Za-z0-9./-]+)\1[ \t]*(?:#.*)?$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class FileHeader:
    """The (slug, parent) of each document of a file that has content, and the apiVersion each says
    (with the line and column of its value): a file left unparsed still warns of an old version."""

    organizations: tuple[tuple[str, str | None], ...]
    versions: tuple[tuple[str, int, int], ...] = ()
    template_holders: frozenset[str] = frozenset()
    """The organizations whose documents in this file declare nothing but service templates (no parent,
    no section): one below such an organization depends on its part of the file only through the
    templates it uses, whatever other organizations the file also declares."""
    shares: bool = False
    """The file may share agreements across a family (it says `covers`, or a previous key `slug/key`):
    the family is then loaded and planned together."""


def _metadata(document: str) -> str | None:
    # str.find, not a MULTILINE regex search, takes the scan to the line: the same first `metadata:` at
    # the start of a line, in a fraction of the time on a fleet's worth of files.
    start = 0 if document.startswith("metadata:") else document.find("\nmetadata:") + 1
    if start == 0 and not document.startswith("metadata:"):
        return None
    flow = _FLOW.match(document, start)
    if flow:
        return _NESTED.sub("{}", flow.group(1))  # `labels: {...}` says nothing of slug or parent
    block = _BLOCK.match(document + "\n", start)
    if block:
        first_indent = re.match(r"[ \t]*", block.group(1))
        indent = first_indent.group(0) if first_indent else ""
        # Only the keys at the block's own indentation (not labels' values, say).
        return "\n".join(
            line
            for line in block.group(1).splitlines()
            if line.startswith(indent) and not line.startswith(indent + " ")
        )
    return None


def file_header(text: str) -> FileHeader | None:
    """The organizations of a file's documents, or None when the text is not understood this way."""
    organizations = []
    versions = []
    holders: dict[str, bool] = {}
    text = text.lstrip("\ufeff")
    line = 1
    # str searches first: a regex split or a key scan tried at every position of every file is what a
    # fleet's no-op plan would spend its time on (most files have no `---` line and no templates).
    starts_document = text.startswith("---") or "\n---" in text
    documents = _DOCUMENT.split(text) if starts_document else [text]
    for index, document in enumerate(documents):
        start = line
        if index + 1 < len(documents):  # where the next document starts (a lone document needs no count)
            line += document.count("\n")
        if not _CONTENT.search(document):
            continue  # empty or comment-only
        metadata = _metadata(document)
        if metadata is None:
            return None
        slugs = [value for _, value in _SLUG.findall(metadata)]  # the key written plain or quoted
        parents = [value for _, value in _PARENT.findall(metadata)]
        if not parents and "parent" in metadata:
            return None  # named some way this look does not read: the loader reads it
        if len(slugs) != 1 or len(parents) > 1:
            return None
        organizations.append((sys.intern(slugs[0]), sys.intern(parents[0]) if parents else None))
        alone = not parents and _templates_alone(document)
        holders[slugs[0]] = holders.get(slugs[0], True) and alone
        version = _VERSION.search(document)
        if version:
            at = start + document.count("\n", 0, version.start(1))
            column = version.start(1) - document.rfind("\n", 0, version.start(1))
            versions.append((version.group(2), at, column))
    template_holders = frozenset(slug for slug, alone in holders.items() if alone)
    return _shared(
        FileHeader(
            _shared(tuple(organizations)), _shared(tuple(versions)), _shared(template_holders), _shares(text)
        )
    )


def _shared(value: _T) -> _T:
    """One object for equal headers and parts of headers: a plan keeps the header of every file of a
    fleet while it runs, and an organization's files (and a family's versions) mostly say the same."""
    return cast(_T, _first_seen(value))


@functools.lru_cache(maxsize=4096)
def _first_seen(value: Hashable) -> Hashable:
    return value


def _templates_alone(document: str) -> bool:
    """Whether the keys at the start of a line are only the header's and `templates`. Keys are looked at
    one by one and the first other key answers no, a few lines in for most documents (a fleet's no-op
    plan reads every file); a pattern that starts with a newline is searched for as a character, where a
    MULTILINE `^` is tried at every position."""
    first = _TOP_LEVEL.match(document)
    if first is not None and first.group(1) not in _TEMPLATES_ONLY:
        return False
    later = (key.group(1) for key in _LATER_TOP_LEVEL.finditer(document))
    return all(key in _TEMPLATES_ONLY for key in later) and "templates" in document


_COVERS = re.compile(r"[\s{,\"]covers\"?[ \t]*:")
_PREVIOUS = re.compile(r"previous_keys\"?[ \t]*:([^\n]*(?:\n[ \t]*-[^\n]*)*)")


def _shares(text: str) -> bool:
    """Whether a file may declare a system-wide agreement or move one (a false yes costs a bigger batch).
    `covers` is found with str.find and only its occurrences are matched: a search for the pattern
    tries it at every position of a file that never says it, and the no-op plan looks at every file."""
    at = text.find("covers", 1)
    while at != -1:
        if _COVERS.match(text, at - 1):
            return True
        at = text.find("covers", at + 1)
    at = text.find("previous_keys")
    return at != -1 and any("/" in m.group(1) for m in _PREVIOUS.finditer(text, at))


@dataclass(frozen=True, slots=True)
class Batch:
    """Organizations to plan together, and the files to load for them: their own files and their
    ancestors' (loaded for what the members inherit; an ancestor is planned in its own batch)."""

    members: tuple[str, ...]
    files: tuple[str, ...]


def declared_parents(headers: Mapping[str, FileHeader]) -> dict[str, str | None]:
    """Each organization the files declare, with the parent they name (a file that declares only its
    templates names none: another file's parent stands)."""
    parent_of: dict[str, str | None] = {}
    for _, header in sorted(headers.items()):
        for slug, parent in header.organizations:
            if parent is not None or slug not in parent_of:
                parent_of[slug] = parent
    return parent_of


def batches(
    headers: Mapping[str, FileHeader], size: int, together: Iterable[tuple[str, str]] = ()
) -> list[Batch]:
    """The organizations of a tree in batches of about `size` (a family that shares agreements is never
    split, nor are the two organizations of each pair `together`), parents before children, in a stable
    order; every file is loaded with every organization it declares."""
    parent_of = declared_parents(headers)
    files_of: dict[str, set[str]] = {}
    for path, header in headers.items():
        for slug, _ in header.organizations:
            files_of.setdefault(slug, set()).add(path)

    def chain(slug: str) -> list[str]:
        return lineage(slug, parent_of.get, parent_of)

    order = sorted(parent_of, key=lambda slug: (len(chain(slug)), slug))
    # Organizations that share a file must be planned together: union them first.
    group_of = {slug: slug for slug in order}

    def find(slug: str) -> str:
        while group_of[slug] != slug:
            group_of[slug] = group_of[group_of[slug]]
            slug = group_of[slug]
        return slug

    for header in headers.values():
        slugs = [slug for slug, _ in header.organizations]
        for other in slugs[1:]:
            group_of[find(other)] = find(slugs[0])
    for one, other in together:
        if one in group_of and other in group_of:
            group_of[find(other)] = find(one)
    # A family that shares agreements is planned together: a system's cover its facilities' services.
    shared = {
        chain(slug)[-1] for header in headers.values() if header.shares for slug, _ in header.organizations
    }
    for slug in order:
        root = chain(slug)[-1]
        if root in shared and find(slug) != find(root):
            group_of[find(slug)] = find(root)
    groups: dict[str, list[str]] = {}
    for slug in order:
        groups.setdefault(find(slug), []).append(slug)
    result: list[Batch] = []
    members: list[str] = []
    for group in sorted(groups.values(), key=lambda g: (min(len(chain(s)) for s in g), g[0])):
        members.extend(group)
        if len(members) >= size:
            result.append(_batch(members, chain, files_of))
            members = []
    if members:
        result.append(_batch(members, chain, files_of))
    return result


def _batch(members: list[str], chain: Callable[[str], list[str]], files_of: Mapping[str, set[str]]) -> Batch:
    needed = {ancestor for slug in members for ancestor in chain(slug)}
    files = sorted({path for slug in needed for path in files_of.get(slug, ())})
    return Batch(tuple(members), tuple(files))
