"""A configuration tree in batches of whole families: loaded a batch at a time (memory stays flat as
the fleet grows), in worker processes when there is enough to load, and checked without a database.

Which files a batch needs comes from each file's text-only header (`nexus_config.headers`); a batch
that loads organizations its headers did not predict raises `HeadersWrong`, and the caller loads the
tree at once instead: slower, never wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from nexus_config import LoadResult, Problem, load_configuration
from nexus_config.headers import Batch, batches
from nexus_config.heap import paused_gc, settle
from nexus_config.loader import Scan, scan_configuration
from nexus_config.locations import Locator
from nexus_config.templates import TEMPLATE_ENTRY
from plan_apply.workers import Workers

__all__ = [
    "BATCH_ORGANIZATIONS",
    "HeadersWrong",
    "TreeCheck",
    "batch_scan",
    "batch_scans",
    "check_tree",
    "declared_slugs",
    "load_batch",
    "moved",
    "scan_batches",
    "worth_workers",
]

BATCH_ORGANIZATIONS = 100
"""Organizations loaded and planned together: big enough to amortize the batched reads."""


class HeadersWrong(Exception):
    """A batch loaded organizations the text-only look did not predict: load everything at once."""


def scan_batches(scan: Scan, together: Iterable[tuple[str, str]] = ()) -> list[Batch] | None:
    """The tree's batches (each pair `together` in one), or None when some file cannot be understood
    without parsing it."""
    if any(f.header is None for f in scan.files):
        return None
    return batches(scan.headers, BATCH_ORGANIZATIONS, together)


def moved(declared: Mapping[str, str | None], parents: Mapping[str, str | None]) -> list[tuple[str, str]]:
    """Each organization whose parent the files change (`declared`: the tree's `declared_parents`), with
    the parent it has now (`parents`, from the database) where the tree declares that one: planned
    together, the facility leaves its old system's agreements in the same plan that sees it go."""
    return [
        (slug, old)
        for slug, parent in declared.items()
        if (old := parents.get(slug)) is not None and old != parent and old in declared
    ]


def declared_slugs(scan: Scan) -> set[str]:
    """Every organization the files' headers declare."""
    return {slug for f in scan.files if f.header for slug, _ in f.header.organizations}


def batch_scans(scan: Scan, tree_batches: Sequence[Batch]) -> list[Scan]:
    """The scan of only the files each batch loads (what a worker process is sent), in the scan's order:
    the tree is indexed once, so the cost grows with the files, not with files times batches."""
    order = {f.path: i for i, f in enumerate(scan.files)}
    return [
        Scan(tuple(scan.files[i] for i in sorted(order[p] for p in b.files if p in order)), ())
        for b in tree_batches
    ]


def batch_scan(scan: Scan, batch: Batch) -> Scan:
    """The scan of only the files `batch` loads."""
    return batch_scans(scan, [batch])[0]


def load_batch(scan: Scan, batch: Batch, skip: Mapping[str, frozenset[str]], locator: Locator) -> LoadResult:
    """Load one batch's files (organizations in `skip` unparsed where their files allow); `scan` may be
    the whole tree's or already the batch's."""
    subset = batch_scan(scan, batch)
    files = set(batch.files)
    kept = {
        k: v
        for k in declared_slugs(subset)
        if (v := skip.get(k)) is not None and {p for p in v if not p.startswith(TEMPLATE_ENTRY)} <= files
    }
    result = load_configuration([], locator, scan=subset, skip=kept)
    loaded = set(result.state.organizations) | set(result.skipped)
    if not loaded <= declared_slugs(subset):
        raise HeadersWrong
    return result


def worth_workers(loading: Sequence[int]) -> bool:
    """Whether batches with these numbers of organizations to load repay starting worker processes
    (about a third of a second): a batch's worth in all, in at least two batches."""
    return sum(loading) >= BATCH_ORGANIZATIONS and sum(1 for n in loading if n) >= 2


@dataclass(frozen=True, slots=True)
class TreeCheck:
    """What `validate` reports: every problem, and how many organizations and files were checked."""

    problems: tuple[Problem, ...]
    organizations: int
    files: int

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)


def check_tree(paths: Sequence[str | Path], *, jobs: int = 1) -> TreeCheck:
    """Load and check a configuration tree, no database: a batch at a time, in `jobs` worker processes
    when the tree is big enough. Problems come out as one load of the whole tree reports them."""
    scan = scan_configuration(paths, keep_data=False)
    found: list[tuple[tuple[Problem, ...], int]] | None = None
    tree_batches = scan_batches(scan)
    if tree_batches is not None and len(tree_batches) >= 2:
        tasks = list(zip(batch_scans(scan, tree_batches), tree_batches, strict=True))
        try:
            if jobs > 1 and worth_workers([len(b.members) for b in tree_batches]):
                found = list(Workers(jobs).map(_check_batch, tasks))
            else:
                found = []
                for task in tasks:
                    found.append(_check_batch(task))
                    settle()
        except HeadersWrong:
            found = None
    if found is None:
        result = load_configuration([], Locator(), scan=replace(scan, problems=()))
        found = [(result.problems, len(result.state.organizations))]
    problems = {p for part, _ in found for p in part} | set(scan.problems)
    return TreeCheck(
        tuple(sorted(problems, key=lambda p: p.sort_key)), sum(n for _, n in found), len(scan.files)
    )


def _check_batch(task: tuple[Scan, Batch]) -> tuple[tuple[Problem, ...], int]:
    """Load one batch (in a worker process, or here): its problems, and how many members loaded."""
    scan, batch = task
    with paused_gc():
        result = load_batch(scan, batch, {}, Locator())
        return result.problems, sum(1 for m in batch.members if m in result.state.organizations)
