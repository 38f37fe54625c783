"""The loading pipeline: paths → files → documents → schema → v1 → merged organizations → rules.

Every stage returns values and problems; nothing prints. The result is a checked `DesiredState`
(parents before children) and every problem of the whole tree, located and sorted.

The stages that need pydantic or PyYAML are imported when a load starts, not with this module: the
command line imports the loader for every command, `nexus --version` included.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from nexus_config.discovery import discover
from nexus_config.headers import FileHeader, declared_parents, file_header
from nexus_config.heap import paused_gc
from nexus_config.locations import Locator, locate
from nexus_config.models import CURRENT_VERSION
from nexus_config.problems import Problem
from nexus_config.templates import stale_template_users

if TYPE_CHECKING:
    from nexus_config.attachments import attached_document
    from nexus_config.desired import DesiredOrganization, DesiredState
    from nexus_config.merge import LocatedDocument, merged_organizations
    from nexus_config.models.v1 import ServiceTemplate
    from nexus_config.rules import rule_problems
    from nexus_config.schema_check import checked_document
    from nexus_config.templates import expanded_organizations
    from nexus_config.versions import upgrade
    from nexus_config.yaml_reader import decode_text, read_documents

__all__ = ["LoadResult", "Scan", "ScannedFile", "load_configuration", "scan_configuration"]

_STAGES = {
    "attached_document": "nexus_config.attachments",
    "DesiredState": "nexus_config.desired",
    "LocatedDocument": "nexus_config.merge",
    "merged_organizations": "nexus_config.merge",
    "rule_problems": "nexus_config.rules",
    "checked_document": "nexus_config.schema_check",
    "expanded_organizations": "nexus_config.templates",
    "upgrade": "nexus_config.versions",
    "decode_text": "nexus_config.yaml_reader",
    "read_documents": "nexus_config.yaml_reader",
}
"""The stages imported when the first load starts, as names of this module (so a test may replace one)."""


def _import_stages(names: Sequence[str] = tuple(_STAGES)) -> None:
    namespace = globals()
    for name in names:
        if name not in namespace:
            namespace[name] = getattr(importlib.import_module(_STAGES[name]), name)


@dataclass(frozen=True, slots=True)
class ScannedFile:
    """A configuration file's content hash, what it declares, and (unless dropped) its bytes."""

    path: str
    root: str
    data: bytes | None
    sha256: str
    header: FileHeader | None = None

    def content(self) -> bytes:
        """The bytes, read again when the scan kept only hashes (they are re-hashed: same or refused)."""
        if self.data is not None:
            return self.data
        data = Path(self.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise OSError(f"{self.path} changed while nexus was reading the configuration")
        return data


@dataclass(frozen=True, slots=True)
class Scan:
    """Every configuration file under the paths, read and hashed but not parsed."""

    files: tuple[ScannedFile, ...]
    problems: tuple[Problem, ...]

    @property
    def hashes(self) -> dict[str, str]:
        return {f.path: f.sha256 for f in self.files}

    @property
    def headers(self) -> dict[str, FileHeader]:
        """Each file's header, by path (a file not understood without parsing it has none)."""
        return {f.path: f.header for f in self.files if f.header is not None}


def scan_configuration(paths: Sequence[str | Path], *, keep_data: bool = True) -> Scan:
    """Discover and read the files: their hashes (what an incremental plan decides on) and what
    organizations each declares (to load a fleet in batches). `keep_data=False` drops the bytes,
    which are read again when a batch is loaded: memory then stays flat however large the fleet."""
    found, problems = discover([str(p) for p in paths])
    files = []
    for f in found:
        try:
            with open(f.path, "rb") as stream:  # not pathlib: a fleet's no-op plan reads every file
                data = stream.read()
        except OSError as exc:
            problems.append(Problem(f.path, f"cannot read: {exc.strerror}", line=1, column=1, code="file"))
            continue
        try:
            header = file_header(data.decode("utf-8"))
        except UnicodeDecodeError:
            header = None
        digest = hashlib.sha256(data).hexdigest()
        files.append(ScannedFile(f.path, f.root, data if keep_data else None, digest, header))
    return Scan(tuple(files), tuple(problems))


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A loaded configuration: the desired state of every valid organization, and all problems.

    `skipped` are organizations the caller declared unchanged (`skip`) whose files were not parsed;
    `file_hashes` are the content hashes of every file read.
    """

    state: DesiredState
    problems: tuple[Problem, ...]
    files: int
    skipped: frozenset[str] = frozenset()
    file_hashes: Mapping[str, str] = field(default_factory=dict)

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors


def _documents(
    found: ScannedFile, locator: Locator, problems: list[Problem], failed_slugs: set[str]
) -> Iterator[LocatedDocument]:
    try:
        content = found.content()
    except OSError as exc:
        problems.append(Problem(found.path, f"cannot read: {exc}", line=1, column=1, code="file"))
        return
    text, decode_problems = decode_text(found.path, content)
    problems.extend(decode_problems)
    if text is None:
        return
    raws, read_problems = read_documents(found.path, text)
    problems.extend(read_problems)
    if read_problems:
        failed_slugs.add(f"file:{found.path}")
    warned = False
    for raw in raws:
        model, schema_problems = checked_document(raw, locator.scalar_text)
        if model is None:
            problems.extend(schema_problems)
            metadata = raw.data.get("metadata") if isinstance(raw.data, dict) else None
            if isinstance(metadata, dict) and isinstance(metadata.get("slug"), str):
                failed_slugs.add(metadata["slug"])
            continue
        upgraded = upgrade(model)
        if upgraded.version != CURRENT_VERSION and not warned:
            warned = True
            problems.append(_deprecated(found.path, upgraded.version, document=raw.index))
        yield LocatedDocument(found.path, raw.index, upgraded)


def _deprecated(path: str, version: str, *, document: int = 0, line: int = 0, column: int = 0) -> Problem:
    return Problem(
        path,
        f"apiVersion {version} is deprecated; run `nexus migrate {path}` to rewrite it as {CURRENT_VERSION}",
        pointer="/apiVersion",
        line=line,
        column=column,
        code="version.deprecated",
        severity="warning",
        document=document,
    )


def _unparsed_warnings(files: Sequence[ScannedFile]) -> list[Problem]:
    """The deprecation warning of each file left unparsed (its organizations unchanged), told from its
    header: skipping a file never hides that it needs `nexus migrate`."""
    warnings = []
    for found in files:
        versions = found.header.versions if found.header else ()
        old = [
            (v, line, column) for v, line, column in versions if v != CURRENT_VERSION and v in _OLD_VERSIONS
        ]
        if old:
            version, line, column = old[0]
            warnings.append(_deprecated(found.path, version, line=line, column=column))
    return warnings


_OLD_VERSIONS = frozenset({"nexus/v1beta1"})
"""The older apiVersions this nexus still reads (and upgrades), each deprecated."""


def _with_documents(
    org: DesiredOrganization, roots: dict[str, str], problems: list[Problem]
) -> DesiredOrganization:
    documents = {}
    for agreement in org.agreements or ():
        if agreement.document is None:
            continue
        source = org.sources[f"agreements/{agreement.key}"]
        attached, found = attached_document(agreement.document, source.file, roots[source.file], source)
        problems.extend(found)
        if attached is not None:
            documents[agreement.key] = attached
    return replace(org, documents=documents) if documents else org


def _parents_first(orgs: dict[str, DesiredOrganization]) -> list[str]:
    """Slugs ordered so every parent precedes its children (level by level, ties by slug); cycles go
    last. Breadth-first from the roots: linear in the tree, also for a 1,000-deep chain."""
    children: dict[str, list[str]] = {}
    level = []
    for slug in sorted(orgs):
        parent = orgs[slug].parent
        if parent is None or parent not in orgs:
            level.append(slug)
        else:
            children.setdefault(parent, []).append(slug)
    order: list[str] = []
    while level:
        order.extend(level)
        level = sorted(child for slug in level for child in children.get(slug, ()))
    placed = set(order)
    order.extend(slug for slug in sorted(orgs) if slug not in placed)
    return order


def _parse(
    files: Sequence[ScannedFile], locator: Locator, problems: list[Problem], failed: set[str]
) -> list[LocatedDocument]:
    if files:
        _import_stages()
    return [doc for f in files for doc in _documents(f, locator, problems, failed)]


def _declares_other(found: ScannedFile, clean: Mapping[str, frozenset[str]]) -> bool:
    """The file declares an organization not declared unchanged (an ancestor some unchanged descendant
    was applied from): it is parsed for that organization."""
    return found.header is not None and any(slug not in clean for slug, _ in found.header.organizations)


def _templates_of(parsed: Iterable[list[LocatedDocument]]) -> dict[str, dict[str, ServiceTemplate]]:
    """The service templates of every organization some parsed document declares (maybe none)."""
    templates: dict[str, dict[str, ServiceTemplate]] = {}
    for docs in parsed:
        for doc in docs:
            document = doc.upgraded.document
            declared = templates.setdefault(document.metadata.slug, {})
            declared.update((t.key, t) for t in document.templates or ())
    return templates


def _parsed_subset(
    scan: Scan,
    skip: Mapping[str, frozenset[str]],
    locator: Locator,
    problems: list[Problem],
    failed: set[str],
) -> tuple[list[LocatedDocument], frozenset[str], frozenset[str]]:
    """Parse every file except those that only hold organizations declared unchanged, and the files of
    any unchanged organization that turns out to be needed (a changed file names it, or it is the parent
    of a changed one). Returns the documents, the organizations left unparsed, and the files parsed."""
    clean = dict(skip)
    parent_of = declared_parents(scan.headers)
    by_path = {f.path: f for f in scan.files}
    kept = {path for files in clean.values() for path in files}
    wanted = {f.path for f in scan.files if f.path not in kept or _declares_other(f, clean)}
    parsed: dict[str, list[LocatedDocument]] = {}
    while True:
        pending = [by_path[path] for path in sorted(wanted - set(parsed)) if path in by_path]
        if not pending:
            break
        for f in pending:
            parsed[f.path] = _parse([f], locator, problems, failed)
        metadata = [d.upgraded.document.metadata for docs in parsed.values() for d in docs]
        needed = ({m.slug for m in metadata} | {m.parent for m in metadata if m.parent}) & set(clean)
        needed |= stale_template_users(clean, _templates_of(parsed.values()), parent_of)
        for slug in needed:
            wanted.update(clean.pop(slug))
    documents = [d for path in sorted(parsed) for d in parsed[path] if path in by_path]
    return documents, frozenset(clean), frozenset(parsed)


def load_configuration(
    paths: Sequence[str | Path],
    locator: Locator | None = None,
    *,
    scan: Scan | None = None,
    skip: Mapping[str, frozenset[str]] | None = None,
) -> LoadResult:
    """Load, check and merge every configuration file under `paths` into a desired state.

    `skip` names organizations known to be unchanged since they were last applied, with the files they
    came from: those files are not parsed unless a changed file needs them (incremental plans).
    """
    _import_stages(["DesiredState"])  # the parsing stages (pydantic, the YAML reader) when a file is parsed
    locator = locator or Locator()
    problems: list[Problem] = []
    with paused_gc():
        scan = scan or scan_configuration(paths)
        problems.extend(scan.problems)
        failed: set[str] = set()
        if skip:
            documents, skipped, parsed = _parsed_subset(scan, skip, locator, problems, failed)
            problems.extend(_unparsed_warnings([f for f in scan.files if f.path not in parsed]))
        else:
            documents, skipped = _parse(scan.files, locator, problems, failed), frozenset()
        orgs, merge_problems = merged_organizations(documents) if documents else ({}, [])
        complete = {slug: org for slug, org in orgs.items() if slug not in failed}
        problems.extend(
            p
            for p in merge_problems
            if not (p.code == "merge.profile_missing" and _org_of(p, orgs) in failed)
        )
        complete, template_problems = expanded_organizations(complete) if complete else ({}, [])
        problems.extend(
            p
            for p in template_problems
            if not (p.code == "ref.template" and _parent_failed(p, complete, failed))
        )
        problems.extend(
            p
            for p in (rule_problems(complete) if complete else ())
            if not (p.code == "ref.parent" and _parent_failed(p, complete, failed))
        )
        roots = {f.path: f.root for f in scan.files}
        checked = {slug: _with_documents(org, roots, problems) for slug, org in complete.items()}
        order = _parents_first(checked)
        state = DesiredState({slug: checked[slug] for slug in order}, tuple(order))
    # A template's problem is found once per service using it: report it once.
    located = list(dict.fromkeys(locate(problems, locator)))
    return LoadResult(state, tuple(located), len(scan.files), skipped, scan.hashes)


def _org_of(problem: Problem, orgs: dict[str, DesiredOrganization]) -> str | None:
    for slug, org in orgs.items():
        if problem.file in org.files:
            return slug
    return None


def _parent_failed(problem: Problem, orgs: dict[str, DesiredOrganization], failed: set[str]) -> bool:
    return any(org.parent in failed for org in orgs.values() if problem.file in org.files)
