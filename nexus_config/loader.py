"""The loading pipeline: paths → files → documents → schema → v1 → merged organizations → rules.

Every stage returns values and problems; nothing prints. The result is a checked `DesiredState`
(parents before children) and every problem of the whole tree, located and sorted.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from nexus_config.attachments import attached_document
from nexus_config.desired import DesiredOrganization, DesiredState
from nexus_config.discovery import FoundFile, discover
from nexus_config.locations import Locator, locate
from nexus_config.merge import LocatedDocument, merged_organizations
from nexus_config.models import CURRENT_VERSION
from nexus_config.problems import Problem
from nexus_config.rules import rule_problems
from nexus_config.schema_check import checked_document
from nexus_config.versions import upgrade
from nexus_config.yaml_reader import decode_text, read_documents

__all__ = ["LoadResult", "load_configuration", "paused_gc"]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic GC around bulk work: a parsed fleet is millions of containers, and every
    generation-2 pass rescans them all (it doubles parse time). Reference counting still frees."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A loaded configuration: the desired state of every valid organization, and all problems."""

    state: DesiredState
    problems: tuple[Problem, ...]
    files: int

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
    found: FoundFile, locator: Locator, problems: list[Problem], failed_slugs: set[str]
) -> Iterator[LocatedDocument]:
    try:
        data = Path(found.path).read_bytes()
    except OSError as exc:
        problems.append(Problem(found.path, f"cannot read: {exc.strerror}", code="file"))
        return
    text, decode_problems = decode_text(found.path, data)
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
            problems.append(
                Problem(
                    found.path,
                    f"apiVersion {upgraded.version} is deprecated; run `nexus migrate {found.path}` "
                    f"to rewrite it as {CURRENT_VERSION}",
                    pointer="/apiVersion",
                    code="version.deprecated",
                    severity="warning",
                    document=raw.index,
                )
            )
        yield LocatedDocument(found.path, raw.index, upgraded)


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
    """Slugs ordered so every parent precedes its children (ties by slug); cycles go last."""
    order: list[str] = []
    placed: set[str] = set()
    remaining = sorted(orgs)
    while remaining:
        ready = [s for s in remaining if orgs[s].parent in (None, *placed) or orgs[s].parent not in orgs]
        if not ready:
            order.extend(remaining)
            break
        order.extend(ready)
        placed.update(ready)
        remaining = [s for s in remaining if s not in placed]
    return order


def load_configuration(paths: Sequence[str | Path], locator: Locator | None = None) -> LoadResult:
    """Load, check and merge every configuration file under `paths` into a desired state."""
    locator = locator or Locator()
    problems: list[Problem] = []
    with paused_gc():
        found, discovery_problems = discover([str(p) for p in paths])
        problems.extend(discovery_problems)
        failed: set[str] = set()
        documents = [doc for f in found for doc in _documents(f, locator, problems, failed)]
        orgs, merge_problems = merged_organizations(documents)
        complete = {slug: org for slug, org in orgs.items() if slug not in failed}
        problems.extend(
            p
            for p in merge_problems
            if not (p.code == "merge.profile_missing" and _org_of(p, orgs) in failed)
        )
        problems.extend(
            p
            for p in rule_problems(complete)
            if not (p.code == "ref.parent" and _parent_failed(p, complete, failed))
        )
        roots = {f.path: f.root for f in found}
        checked = {slug: _with_documents(org, roots, problems) for slug, org in complete.items()}
        order = _parents_first(checked)
        state = DesiredState({slug: checked[slug] for slug in order}, tuple(order))
    located = locate(problems, locator)
    return LoadResult(state, tuple(located), len(found))


def _org_of(problem: Problem, orgs: dict[str, DesiredOrganization]) -> str | None:
    for slug, org in orgs.items():
        if problem.file in org.files:
            return slug
    return None


def _parent_failed(problem: Problem, orgs: dict[str, DesiredOrganization], failed: set[str]) -> bool:
    return any(org.parent in failed for org in orgs.values() if problem.file in org.files)
