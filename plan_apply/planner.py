"""From configuration paths and a database to one plan: what `plan` and `apply` share.

`build_plan` plans one loaded batch (one read transaction, the pure diff, then file positions for the
plan's problems); `plan_tree` drives a whole tree through it.

Files are hashed first; organizations unchanged since their last apply are skipped without parsing
(unless `full`); the rest are loaded, checked and planned in batches of a hundred organizations (each
with the ancestors it inherits from; `batching`), so memory does not grow with the fleet, and in worker
processes when there is enough to load (`workers`). When a file's organizations cannot be told without
parsing it, everything is loaded at once instead, which is slower, never wrong.
"""

from __future__ import annotations

import datetime
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from nexus_config import DesiredState, LoadResult, Problem, load_configuration
from nexus_config.ancestry import lineage
from nexus_config.headers import Batch, declared_parents
from nexus_config.heap import paused_gc, settle
from nexus_config.loader import Scan, scan_configuration
from nexus_config.locations import Locator
from nexus_config.templates import template_digest, template_entry, templates_only, written_fields
from plan_apply.actual import ActualState, AppliedConfiguration
from plan_apply.batching import (
    HeadersWrong,
    batch_scans,
    declared_slugs,
    load_batch,
    moved,
    scan_batches,
    worth_workers,
)
from plan_apply.database.identity import database_identity
from plan_apply.database.reads import read_actual_state, read_applied_configurations, read_parents
from plan_apply.diff import PlanOptions, make_plan, mass_delete_checked
from plan_apply.errors import DatabaseError
from plan_apply.holds import held_for_schools
from plan_apply.incremental import clean_organizations
from plan_apply.moves import holders
from plan_apply.plan import Action, OrgPlan, Plan, PlanProblem
from plan_apply.prerequisites import linked_elsewhere, with_owners_first
from plan_apply.reach import Reach, combined, step_reach, with_reach
from plan_apply.selection import (
    EVERYTHING,
    Selection,
    balanced_shards,
    check_selection,
    chosen_organizations,
    root_of,
)
from plan_apply.template_origin import template_reach, templates_used, with_template_reach
from plan_apply.workers import Workers

__all__ = ["Selection", "TreePlan", "build_plan", "located_plan", "plan_tree", "utc_now"]


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _school_keys(state: DesiredState, slugs: Sequence[str]) -> set[str]:
    return {s.key for slug in slugs for s in state.organizations[slug].schools or ()}


def _invitation_problems(plan: Plan, state: DesiredState, actual: ActualState) -> Plan:
    """A school that is not on the platform needs a `contact_email` to be invited (FORMAT.md)."""
    organizations = []
    for org in plan.organizations:
        desired = state.organizations[org.slug]
        extra: list[PlanProblem] = []
        for change in org.changes:
            if change.type != "school" or change.action is not Action.CREATE:
                continue
            key = change.address.rsplit("/", 1)[1]
            if key not in actual.platform_schools and not change.after.get("contact_email"):
                source = desired.sources.get(f"schools/{key}")
                message = (
                    f'school "{key}" is not on the platform yet: give it a contact_email so it can be invited'
                )
                problem = source.problem(message) if source else None
                extra.append(
                    PlanProblem(
                        message,
                        problem.file if problem else "",
                        address=change.address,
                        pointer=problem.pointer if problem else "",
                        document=problem.document if problem else 0,
                    )
                )
        organizations.append(replace(org, problems=org.problems + tuple(extra)) if extra else org)
    return replace(plan, organizations=tuple(organizations))


def build_plan(
    connection: Connection,
    state: DesiredState,
    selected: Sequence[str],
    *,
    database: str,
    options: PlanOptions | None = None,
    created_at: Callable[[], str] = utc_now,
    file_hashes: Mapping[str, str] | None = None,
    roots: Mapping[str, str] | None = None,
) -> Plan:
    """Read the selected organizations' actual state in one read transaction and plan against it.

    Selected organizations that are not in `state` (unchanged, skipped by an incremental load) appear
    in the plan as skipped, with no changes. `roots` (each file's configuration root) places documents
    relative to their tree, so a saved plan finds them from any working directory.
    """
    planned = [slug for slug in selected if slug in state.organizations]
    read = [*planned, *sorted(holders(state, planned))]  # the rows a move takes, also from one not planned
    with connection.begin():
        actual = read_actual_state(connection, read, _school_keys(state, planned))
    plan = make_plan(state, actual, planned, created_at=created_at(), database=database, options=options)
    plan = held_for_schools(_invitation_problems(plan, state, actual), actual)
    elsewhere = linked_elsewhere(plan)
    if elsewhere:  # `--org` left out a system whose agreement these services link
        from plan_apply.sections.services import agreement_statuses_found, takes_new_services

        with connection.begin():
            found = agreement_statuses_found(connection, elsewhere)
        plan = with_owners_first(plan, {a: found.get(a) for a in elsewhere}, takes_new_services)
    if file_hashes is not None:
        plan = replace(
            plan,
            organizations=tuple(
                replace(org, config_files=_config_files(state, org.slug, file_hashes))
                for org in plan.organizations
            ),
        )
    skipped = tuple(OrgPlan(slug, "", skipped=True) for slug in selected if slug not in state.organizations)
    if skipped:
        plan = replace(plan, organizations=plan.organizations + skipped)
    placed = {slug: _documents_of(state, slug, roots) for slug in planned}
    return replace(
        plan,
        organizations=tuple(
            _with_documents(org, *placed[org.slug]) if org.slug in placed else org
            for org in plan.organizations
        ),
    )


def _documents_of(
    state: DesiredState, slug: str, roots: Mapping[str, str] | None
) -> tuple[dict[str, str], str | None]:
    """The organization's documents by content hash, relative to its configuration root (and that root,
    absolute); without roots, relative to the working directory as before."""
    org = state.organizations[slug]
    root = next((roots[path] for path in org.files if roots and path in roots), None)
    if root is not None:
        real = os.path.realpath(root)
        inside = {d.sha256: os.path.relpath(d.path, real) for d in org.documents.values()}
        if not any(p.startswith("..") for p in inside.values()):
            return inside, real
    return {d.sha256: _relative(d.path) for d in org.documents.values()}, None


def _config_files(state: DesiredState, slug: str, hashes: Mapping[str, str]) -> dict[str, str]:
    """The files an organization's records come from: its own and its ancestors' (inherited steps), and
    the signed documents it names (a replaced document is a change, though no YAML changed). An
    ancestor's file of templates alone is replaced by the digests of the templates the organization uses
    (without the fields its services all write themselves), so only the users a change reaches are
    planned again."""
    org = state.organizations[slug]
    files = {path: hashes[path] for path in org.files if path in hashes}
    for ancestor in state.chain(slug)[1:]:
        files.update(
            (path, hashes[path])
            for path in ancestor.files
            if path in hashes and not templates_only(ancestor, path)
        )
    for name, written in sorted(written_fields(org).items()):
        owner, _, key = name.rpartition("/")
        template = state.organizations[owner].templates[key]
        # Interned: the facilities of a system use the same templates, and a fleet's plan keeps them all.
        files[sys.intern(template_entry(name, written))] = sys.intern(template_digest(template, written))
    files.update({d.path: d.sha256 for d in org.documents.values()})
    return files


def _relative(path: str) -> str:
    """Document paths in a saved plan are relative to where nexus runs (the checkout), when inside it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _with_documents(org: OrgPlan, documents: Mapping[str, str], root: str | None) -> OrgPlan:
    needed = {
        c.after["document"]["sha256"]
        for c in org.changes
        if isinstance(c.after.get("document"), dict) and c.after["document"].get("sha256") in documents
    }
    if not needed:
        return org
    return replace(org, documents={sha: documents[sha] for sha in sorted(needed)}, documents_root=root)


def located_plan(plan: Plan, locator: Locator) -> Plan:
    """Plan problems with their line and column (read from the configuration files)."""
    organizations = []
    for org in plan.organizations:
        if not org.problems:
            organizations.append(org)
            continue
        problems = []
        for problem in org.problems:
            if problem.file and not problem.line:
                line, column = locator.position(problem.file, problem.document, problem.pointer)
                problem = replace(problem, line=line, column=column)
            problems.append(problem)
        organizations.append(replace(org, problems=tuple(problems)))
    return replace(plan, organizations=tuple(organizations))


@dataclass(frozen=True, slots=True)
class TreePlan:
    """The plan, or the configuration's problems (errors stop the plan; warnings do not)."""

    plan: Plan | None
    problems: tuple[Problem, ...]


def _chosen(
    members: Sequence[str],
    result: LoadResult,
    applied: dict[str, AppliedConfiguration],
    selection: Selection,
    parents: dict[str, str | None],
) -> list[str]:
    """The batch's members the selection takes: loaded ones by their labels, unchanged (skipped) ones
    by the labels they were last applied with; a member that failed to load has its problems reported."""
    candidates: dict[str, Mapping[str, str]] = {}
    for slug in members:
        if slug in result.state.organizations:
            candidates[slug] = result.state.organizations[slug].labels
        elif slug in result.skipped and slug in applied:
            candidates[slug] = applied[slug].labels
    return chosen_organizations(candidates, parents, selection)


def family_sizes(scan: Scan) -> dict[str, int]:
    """Each family's size (root → bytes of the files its organizations are declared in), from the file
    headers, without parsing: what `--shard` deals by, so that shards carry about the same work."""
    parents = declared_parents(scan.headers)
    sizes: dict[str, int] = {}
    for f in scan.files:
        declared = [slug for slug, _ in f.header.organizations] if f.header else []
        if not declared:
            continue
        size = os.stat(f.path).st_size
        for slug in declared:
            root = root_of(slug, parents)
            sizes[root] = sizes.get(root, 0) + size // len(declared)
    return sizes


def plan_tree(
    paths: Sequence[str | Path],
    connection: Connection,
    *,
    database: str,
    selection: Selection = EVERYTHING,
    options: PlanOptions | None = None,
    full: bool = False,
    created_at: Callable[[], str] = utc_now,
    jobs: int = 1,
    url: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> TreePlan:
    """Plan a configuration tree against the database, incrementally and in batches (`on_progress`
    hears of each: organizations planned so far, and in all).

    With `jobs` > 1 and the database's `url`, batches are loaded and planned by that many worker
    processes (parsing is CPU-bound; threads would share one core), each with its own connection; the
    parts come back in batch order, so the plan does not depend on scheduling."""
    scan = scan_configuration(paths, keep_data=False)
    with connection.begin():
        # A full plan skips nothing, so it needs no record of the last applies (a fleet's worth of files).
        applied = {} if full else read_applied_configurations(connection)
        database_id = database_identity(connection)
    skip = {} if full else clean_organizations(applied, scan.hashes, {f.path: f.header for f in scan.files})
    # What the batches still need of the records: the labels and parents of the organizations skipped.
    applied = {slug: replace(applied[slug], files={}) for slug in skip if slug in applied}
    if selection.shard is not None:
        selection = replace(selection, deal=balanced_shards(family_sizes(scan), selection.shard[1]))
    planning = _Planning(scan, skip, applied, database, selection, options, created_at())
    parents = declared_parents(scan.headers)  # batching, the moves between families and the final order
    workers = Workers(jobs, _start_worker, (url,)) if url and jobs > 1 else None
    total = len(declared_slugs(scan))
    try:
        parts = []
        seen: set[str] = set()  # counted as the parts come: not the union of all parts at each one
        for part in planning.batched(connection, workers, parents):
            parts.append(part)
            if on_progress is not None:
                seen |= part.slugs
                on_progress(min(len(seen), total), total)
    except HeadersWrong:
        parts = []
    if not parts:
        parts = [planning.at_once(connection)]
    problems = sorted({p for part in parts for p in part.problems}, key=lambda p: p.sort_key)
    problems = list(scan.problems) + problems
    if any(p.severity == "error" for p in problems):
        return TreePlan(None, tuple(problems))
    organizations = tuple(org for part in parts if part.plan for org in part.plan.organizations)
    if len(parts) > 1:  # batches hold whole families: back to the tree's order, level by level
        depth = {org.slug: len(lineage(org.slug, parents.get)) for org in organizations}
        organizations = tuple(sorted(organizations, key=lambda org: (depth[org.slug], org.slug)))
    planned = [org.slug for org in organizations]
    check_selection(selection, set(planned) | _all_slugs(parts), planned)
    plan = Plan(planning.planned_at, database, organizations, database_id=database_id)
    if len(parts) > 1:  # a batch's plan counted only what the batch loaded
        plan = with_reach(plan, combined(part.reach for part in parts))
    unknown = {name for part in parts for name in part.unseen_templates}
    if len(parts) > 1 or unknown:
        plan = with_template_reach(plan, combined(part.templates for part in parts), unknown)
    return TreePlan(mass_delete_checked(plan, options or PlanOptions()), tuple(problems))


@dataclass(frozen=True, slots=True)
class _Part:
    plan: Plan | None
    problems: tuple[Problem, ...]
    slugs: frozenset[str]
    reach: Mapping[str, Reach] = field(default_factory=dict)
    """How far steps reach into this part's own members (`reach.step_reach`), added up over the parts."""
    templates: Mapping[str, Reach] = field(default_factory=dict)
    """How far templates reach into them (`template_origin.template_reach`), added up the same way."""
    unseen_templates: frozenset[str] = frozenset()
    """The templates members skipped as unchanged use: their services are not counted."""


def _all_slugs(parts: Sequence[_Part]) -> set[str]:
    return {slug for part in parts for slug in part.slugs}


@dataclass(frozen=True, slots=True)
class _Planning:
    """What every batch is planned with (no connection: it travels to worker processes)."""

    scan: Scan
    skip: dict[str, frozenset[str]]
    applied: dict[str, AppliedConfiguration]
    database: str
    selection: Selection
    options: PlanOptions | None
    planned_at: str

    def part(
        self,
        connection: Connection,
        result: LoadResult,
        members: Sequence[str],
        locator: Locator,
        parents: dict[str, str | None],
        reaching: frozenset[str] | None = None,
    ) -> _Part:
        """Plan one loaded batch. `reaching`, when given, names the organizations some other one of the
        tree descends from: only their steps can reach elsewhere, so only theirs are counted."""
        slugs = frozenset(result.state.organizations) | result.skipped
        if not result.ok:
            return _Part(None, result.problems, slugs)
        own = [m for m in members if m in result.state.organizations]
        chosen = _chosen(members, result, self.applied, self.selection, parents)
        plan = build_plan(
            connection,
            result.state,
            chosen,
            database=self.database,
            options=self.options,
            created_at=lambda: self.planned_at,
            file_hashes=result.file_hashes,
            roots={f.path: f.root for f in self.scan.files},
        )
        reach = step_reach(result.state, own)
        if reaching is not None:  # a fleet's facilities' own steps: held to the end, never noted
            reach = {step: n for step, n in reach.items() if step.partition("/")[0] in reaching}
        templates = template_reach(result.state, own)
        unseen = frozenset(
            name
            for slug in result.skipped
            if slug in members
            for name in templates_used(self.skip.get(slug, ()))
        )
        return _Part(located_plan(plan, locator), result.problems, slugs, reach, templates, unseen)

    def batched(
        self, connection: Connection, workers: Workers | None, parents: Mapping[str, str | None]
    ) -> Iterator[_Part]:
        """One part per batch, or nothing when the tree is small or not understood without parsing
        (`parents`: the tree's `declared_parents`)."""
        plan_batches = scan_batches(self.scan)
        if plan_batches is None or len(plan_batches) < 2:
            return
        with connection.begin():
            together = moved(parents, read_parents(connection, declared_slugs(self.scan)))
        if together:
            plan_batches = scan_batches(self.scan, together) or plan_batches
        reaching = frozenset(parent for parent in parents.values() if parent)
        loading = [sum(1 for m in b.members if m not in self.skip) for b in plan_batches]
        tasks = (
            self._task(subset, batch, parents, reaching)
            for subset, batch in zip(batch_scans(self.scan, plan_batches), plan_batches, strict=True)
        )
        if workers is not None and worth_workers(loading):
            yield from workers.map(_plan_batch, list(tasks))
            return
        for task in tasks:
            part = _batch_part(connection, task)
            yield part
            if part.plan is None or any(not org.skipped for org in part.plan.organizations):
                settle()  # the batch's files and records are gone; its plan stays, frozen

    def _task(
        self, subset: Scan, batch: Batch, parents: Mapping[str, str | None], reaching: frozenset[str]
    ) -> _BatchTask:
        """What one batch is planned with: its files, and of the tree's skipped organizations, parents
        and organizations with descendants only those its files declare (a worker is sent its batch's)."""
        slugs = declared_slugs(subset)
        planning = replace(
            self,
            scan=subset,
            skip={slug: self.skip[slug] for slug in slugs if slug in self.skip},
            applied={slug: self.applied[slug] for slug in slugs if slug in self.applied},
        )
        return _BatchTask(
            planning,
            batch,
            {slug: parents[slug] for slug in slugs if slug in parents},
            reaching & slugs,
        )

    def at_once(self, connection: Connection) -> _Part:
        locator = Locator()
        result = load_configuration([], locator, scan=replace(self.scan, problems=()), skip=self.skip)
        parents = {slug: org.parent for slug, org in result.state.organizations.items()}
        parents.update({slug: self.applied[slug].parent for slug in result.skipped if slug in self.applied})
        members = [*result.state.organizations, *sorted(result.skipped)]
        return self.part(connection, result, members, locator, parents)


@dataclass(frozen=True, slots=True)
class _BatchTask:
    """One batch to load and plan (here or in a worker process), with what it needs of the tree."""

    planning: _Planning
    batch: Batch
    parents: dict[str, str | None]
    reaching: frozenset[str]


def _batch_part(connection: Connection, task: _BatchTask) -> _Part:
    """Load and plan one batch; `task.planning.scan` holds the batch's files only."""
    planning, locator = task.planning, Locator()
    result = load_batch(planning.scan, task.batch, planning.skip, locator)
    return planning.part(connection, result, task.batch.members, locator, task.parents, task.reaching)


_worker: tuple[Engine, str] | None = None


def _start_worker(url: str) -> None:
    """In a worker process, once: its engine on the database being planned."""
    global _worker
    from plan_apply.database.engine import engine_for

    _worker = (engine_for(url, purpose="plan"), url)


def _plan_batch(task: _BatchTask) -> _Part:
    """In a worker process: load and plan one batch. Database failures come back as DatabaseError,
    described (and any password scrubbed) here, since a driver's exception may not survive pickling."""
    from plan_apply.database.engine import describe_failure

    assert _worker is not None
    engine, url = _worker
    try:
        with engine.connect() as connection, paused_gc():
            return _batch_part(connection, task)
    except SQLAlchemyError as exc:
        raise DatabaseError(describe_failure(exc, url)) from None
