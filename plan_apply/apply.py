"""apply_plan: Plan → database, one transaction per organization, exactly as planned or not at all.

Each organization is locked first, as its database's dialect locks it (for the rest of the transaction,
never longer), then the rows its plan changes and its own row are locked against the platform's writers
(which never take nexus's lock), its state re-read and fingerprinted under those locks and compared with
the plan's, then written through the writers registry in plan order (every UPDATE and DELETE checked to
touch the rows it carries), then logged: what was written, and what was left alone as such. Applies of
one organization therefore serialize, with each other and with the platform, and never lose an update;
applies of different organizations run side by side. A failure rolls that organization back completely;
the others go on, and the result says which failed and why: a lock not had within the lock timeout (naming
its holder where the database can tell), a lost connection (and whether the outcome is unknown).
"""

from __future__ import annotations

import datetime
import functools
import getpass
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine

from nexus_config.ancestry import lineage
from nexus_config.heap import settle
from plan_apply.actual import ActualOrganization, ActualState
from plan_apply.database import DEFAULT_LOCK_TIMEOUT
from plan_apply.database import tables as t
from plan_apply.database.dialects import Locked, dialect_of, lock_rows
from plan_apply.database.dialects.sessions import lock_key, lock_milliseconds
from plan_apply.database.engine import LOCK_TIMEOUT_OPTION, CommitOutcomeUnknown, write_transaction
from plan_apply.database.reads import read_actual_state
from plan_apply.database.writes import WRITERS, WriteContext, locking_queries, row_address
from plan_apply.incremental import config_hash_of
from plan_apply.moves import as_taken, taking_fingerprint
from plan_apply.plan import Action, Change, OrgPlan, Plan
from plan_apply.prepared import Prepared, logged_changes, logged_summary, prepared
from plan_apply.rederive import refusals_under_lock

__all__ = [
    "Applier",
    "ApplyOptions",
    "ApplyProcesses",
    "ApplyResult",
    "OrgResult",
    "applied_before",
    "apply_plan",
    "lock_holder",
    "lock_key",
    "logged_changes",
    "logged_summary",
    "state_as_planned",
    "taken_earlier",
]

Status = Literal["applied", "left_alone", "unchanged", "failed", "stale", "refused", "skipped"]
"""`left_alone`: every change of the organization was left alone (a school's proposal); nothing written."""


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    counter_propose: bool = False
    actor: str = ""
    commit: str | None = None
    fail_fast: bool = False
    timeout_hint: str = ""
    """How the caller lets a user set the lock timeout, named in messages about waiting for a lock."""


@dataclass(frozen=True, slots=True)
class OrgResult:
    slug: str
    status: Status
    changes: int = 0
    message: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ApplyResult:
    organizations: tuple[OrgResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.status in ("applied", "left_alone", "unchanged", "skipped") for r in self.organizations)


SETTLE_EVERY = 100
"""Organizations applied between two `settle()`s of the paused collector (see nexus_config.heap)."""


class _Stale(Exception):
    pass


class _Cycle(Exception):
    """The organization's new parent chain leads back to it."""


class _AlreadyApplied(Exception):
    """This plan was applied to the organization before (a plan applies once)."""


class _Refused(Exception):
    """A change the guards refuse against the state read under the lock (a hand-edited plan)."""


def applied_before(connection: Connection, plan_hash: str, slugs: Sequence[str]) -> dict[str, str]:
    """The organizations this plan was already applied to, each with when and by whom."""
    log = t.apply_log
    found = connection.execute(
        sa.select(log.c.org_slug, log.c.finished_at, log.c.actor)
        .where(log.c.plan_hash == plan_hash, log.c.org_slug.in_(list(slugs)))
        .order_by(log.c.id)
    )
    return {row.org_slug: f"already applied at {_when(row.finished_at)} by {row.actor}" for row in found}


def _when(moment: datetime.datetime) -> str:
    utc = moment.astimezone(datetime.UTC) if moment.tzinfo else moment
    return utc.replace(microsecond=0, tzinfo=None).isoformat(sep=" ") + " UTC"


def _check_once_and_as_reviewed(
    tx: Connection, org: OrgPlan, actual: ActualOrganization, plan_hash: str, saved: bool
) -> None:
    """Under the lock: a saved plan was not applied to it yet, the state is the one the plan was made
    against (content and revision: A→B→A is not A), and every change passes the guards on that state."""
    done = applied_before(tx, plan_hash, [org.slug]) if saved else {}
    if done:
        raise _AlreadyApplied(done[org.slug])
    moved = org.revision is not None and actual.id is not None and actual.revision != org.revision
    if actual.fingerprint != org.state_fingerprint or moved:
        raise _Stale(org.slug)
    refusals = refusals_under_lock(org, actual)
    if refusals:
        raise _Refused("; ".join(refusals))


def _lock_timeout(connection: Connection) -> float:
    return float(connection.get_execution_options().get(LOCK_TIMEOUT_OPTION, DEFAULT_LOCK_TIMEOUT))


def _lock(connection: Connection, slugs: Iterable[str]) -> None:
    """Take the organizations' locks for the rest of this transaction, waiting at most the lock timeout
    (raising Locked), as the connection's dialect takes them."""
    dialect_of(connection).lock(connection, slugs, _lock_timeout(connection))


def lock_holder(engine: Engine, slug: str) -> str | None:
    """Who holds the organization's apply lock, as far as the database tells; None when nobody holds it
    (any more) or the database cannot tell."""
    return dialect_of(engine).lock_holder(engine, slug)


def _waited(timeout: float, hint: str) -> str:
    if lock_milliseconds(timeout) == 0:
        return f"did not wait ({hint or 'lock timeout'} 0)"
    return f"gave up after {timeout:g}s" + (f" ({hint})" if hint else "")


def _locked_message(engine: Engine, locked: Locked, hint: str) -> str:
    holder = lock_holder(engine, locked.slug)
    who = f"held by {holder}" if holder else "which has finished since: apply again"
    return (
        f"{locked.slug} is being applied by another session ({who}); {_waited(locked.timeout, hint)}; "
        "nothing was written to it"
    )


def _failure_message(
    engine: Engine, slug: str, exc: BaseException, describe_error: Callable[[BaseException], str], hint: str
) -> str:
    """What to tell about an organization whose transaction failed: rolled back, or (a COMMIT whose
    connection was lost) with an unknown outcome."""
    dialect = dialect_of(engine)
    reason = describe_error(exc)
    if isinstance(exc, CommitOutcomeUnknown) and exc.__cause__ is not None:
        return (
            f"the connection was lost while committing {slug}: whether it was applied is unknown "
            f"(not retried); run `nexus plan` to see: {describe_error(exc.__cause__)}"
        )
    if dialect.is_disconnect(exc):
        return f"the connection was lost while applying {slug}; nothing of it was written (rolled back): {reason}"
    return dialect.failure_wording(exc, slug, _lock_timeout_of(engine), hint, reason) or reason


def _lock_timeout_of(engine: Engine) -> float:
    return float(engine.get_execution_options().get(LOCK_TIMEOUT_OPTION, DEFAULT_LOCK_TIMEOUT))


def default_actor() -> str:
    """Who applies: the CI's actor when there is one, else the local user."""
    for variable in ("NEXUS_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def default_commit() -> str | None:
    """The commit being applied: from CI variables, else git (if this is a checkout)."""
    for variable in ("GITHUB_SHA", "CI_COMMIT_SHA"):
        if os.environ.get(variable):
            return os.environ[variable]
    import subprocess  # only to ask git for HEAD, never with user input

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _batches(changes: Sequence[Change]) -> list[list[Change]]:
    return [list(group) for _, group in itertools.groupby(changes, key=lambda c: (c.type, c.action))]


def _record_configuration(
    connection: Connection, org_id: int | None, org: OrgPlan, config_hash: str | None, complete: bool
) -> None:
    """Remember what this apply came from. The triggers have bumped `revision` with every write; an
    incremental plan skips the organization only while `revision` stays at `applied_revision` and the
    files hash the same. The organization's row has been locked since before its state was read, so no
    other writer's bump can be in `revision` here: it is the revision read plus this apply's own writes.
    An apply that left changes pending (a school's proposal) is never "clean"."""
    connection.execute(
        _recording(complete),
        {
            "org_id_": org_id,
            "files_": dict(org.config_files) or None,
            "hash_": config_hash,
        },
    )


@functools.cache
def _recording(complete: bool) -> sa.Update:
    """`_record_configuration`'s UPDATE, built once for each of its two forms."""
    o = t.organizations
    return (
        sa.update(o)
        .where(o.c.id == sa.bindparam("org_id_"))
        .values(
            applied_revision=o.c.revision if complete else None,
            config_files=sa.bindparam("files_", type_=o.c.config_files.type),
            config_hash=sa.bindparam("hash_"),
        )
    )


def _apply_org(
    connection: Connection,
    org: OrgPlan,
    plan_hash: str,
    options: ApplyOptions,
    now: datetime.datetime,
    saved: bool = False,
    ahead: Prepared | None = None,
    committing: Callable[[], None] = lambda: None,
) -> OrgResult:
    """One organization's transaction; `ahead` is what was computed of it beforehand (`prepared`), and
    `committing` is called just before the COMMIT (to compute the next one's meanwhile)."""
    ahead = ahead or prepared(org, connection.dialect)
    with write_transaction(connection) as tx:
        _lock(tx, [org.slug])
        lock_rows(tx, lambda: locking_queries(org.slug, org.changes))
        school_keys = [c.address.rsplit("/", 1)[1] for c in org.changes if c.type == "school"]
        holders = sorted({str(c.before["org"]) for c in org.changes if "org" in c.before} - {org.slug})
        state = read_actual_state(tx, [org.slug, *holders], school_keys)
        actual = state_as_planned(org, state)
        _check_once_and_as_reviewed(tx, org, actual, plan_hash, saved)
        ids = {address: int(r.extra["id"]) for address, r in actual.records.items() if "id" in r.extra}
        if actual.id is not None:
            ids[org.slug] = actual.id
        ctx = WriteContext(
            tx,
            org.slug,
            actual.id,
            dict(actual.records),
            ids,
            org.document_files,
            now,
            counter_propose=options.counter_propose,
            platform_schools=state.platform_schools,
            prepared=ahead.rows,
        )
        for batch in _batches(org.changes):
            WRITERS[(batch[0].type, batch[0].action)](ctx, batch)
        if any(_reparented(c) for c in org.changes):
            _refuse_cycle(tx, org.slug, ctx.org_id)
        left = {c.address for c in ctx.left_alone}
        written = [c for c in org.changes if c.address not in left]
        _record_configuration(tx, ctx.org_id, org, ahead.config_hash, complete=not left)
        tx.execute(
            t.apply_log.insert(),
            {
                "org_slug": org.slug,
                "started_at": now,
                "finished_at": datetime.datetime.now(datetime.UTC),
                "actor": options.actor or default_actor(),
                "commit_sha": options.commit,
                "plan_hash": plan_hash,
                "fingerprint_before": org.state_fingerprint,
                "summary": logged_summary(written, ctx.left_alone) if left else ahead.log_summary,
                "changes": logged_changes(written, ctx.left_alone) if left else ahead.log_changes,
            },
        )
        committing()
    status: Status = "left_alone" if not written else "applied"
    return OrgResult(org.slug, status, len(written), notes=tuple(ctx.skipped))


def state_as_planned(org: OrgPlan, state: ActualState) -> ActualOrganization:
    """The organization as its plan depends on it: its own rows and, under their holders' addresses, the
    rows of other organizations of the family it takes over, fingerprinted together as the plan did."""
    actual = state.organizations[org.slug]
    moving = [c for c in org.changes if "org" in c.before]
    if not moving:
        return actual
    taken = [
        row
        for c in moving
        if (holder := state.organizations.get(str(c.before["org"]))) is not None
        and (row := holder.records.get(row_address(c))) is not None
    ]
    fingerprint = taking_fingerprint(
        org.slug, actual.records.values(), [as_taken(r, org.slug) for r in taken]
    )
    return replace(
        actual, records={**actual.records, **{r.address: r for r in taken}}, fingerprint=fingerprint
    )


def taken_earlier(plan: Plan) -> frozenset[str]:
    """The organizations whose rows an organization applied before them takes over: each is planned as
    its transaction will find it then, so only that transaction can check it."""
    seen: set[str] = set()
    found: set[str] = set()
    for org in plan.organizations:
        found.update(
            str(c.before["org"]) for c in org.changes if "org" in c.before and c.before["org"] not in seen
        )
        seen.add(org.slug)
    return frozenset(found)


def _reparented(change: Change) -> bool:
    """An existing organization given another parent: its new chain may lead back to it. A new one
    cannot close a cycle: no row names it as a parent before it commits."""
    return change.type == "organization" and change.action is not Action.CREATE and "parent" in change.after


def _refuse_cycle(connection: Connection, slug: str, org_id: int | None) -> None:
    """Walk the organization's new parent chain, locking each ancestor's row (so two applies cannot close
    a cycle between them); raise _Cycle when it leads back to the organization."""
    o = t.organizations
    seen, current = {org_id}, org_id
    while current is not None:
        ancestor = sa.select(o.c.id).where(o.c.id == current)
        lock_rows(connection, lambda query=ancestor: [query])  # type: ignore[misc]
        current = connection.execute(sa.select(o.c.parent_id).where(o.c.id == current)).scalar()
        if current in seen:
            raise _Cycle(slug)
        seen.add(current)


def _families(plan: Plan) -> list[list[OrgPlan]]:
    """Organizations grouped by their root ancestor, each group in plan (parents-first) order: a family
    is applied in sequence (children need their parent's steps), families in parallel."""
    parent_of = {org.slug: org.parent for org in plan.organizations}
    families: dict[str, list[OrgPlan]] = {}
    for org in plan.organizations:
        families.setdefault(lineage(org.slug, parent_of.get, parent_of)[-1], []).append(org)
    return list(families.values())


def apply_plan(
    engine: Engine,
    plan: Plan,
    options: ApplyOptions | None = None,
    *,
    on_result: Callable[[OrgResult], None] | None = None,
    describe_error: Callable[[BaseException], str] = str,
    jobs: int = 1,
    processes: ApplyProcesses | None = None,
) -> ApplyResult:
    """Apply every organization of the plan in its own transaction; report each outcome in plan order.

    A family (a health system and its facilities) is applied parent first; a child whose parent was not
    applied is not applied either. With `jobs` > 1, families are applied side by side, each transaction on
    its own connection: in threads, or in `jobs` worker processes when `processes` says how to reach the
    database from one and the plan is large enough to repay them (`describe_error` must then pickle).
    Each result goes to `on_result` as its transaction ends; they are returned in plan order.
    """
    options = options or ApplyOptions()
    plan_hash = plan.identity
    saved = plan.integrity is not None
    futures: dict[str, Future[OrgResult]] = {org.slug: Future() for org in plan.organizations}
    reported = _Reporter(on_result)

    def report(result: OrgResult) -> None:
        reported(result)
        futures[result.slug].set_result(result)

    families = _families(plan)
    parallel = jobs > 1 and len(families) > 1 and not options.fail_fast  # fail-fast: in order, one at a time
    applier = Applier(engine, plan_hash, saved, options, describe_error)
    if parallel and processes is not None and processes.worth(families):
        from plan_apply.apply_processes import apply_in_processes

        apply_in_processes(processes, families, jobs, applier, report)
    elif parallel:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="nexus-apply") as appliers:
            runs = [appliers.submit(applier.run, family, report) for family in families]
        for run in runs:
            run.result()  # what a family's thread did not expect is raised here, never waited for
    else:  # one sequence, so that each organization is prepared while the one before it commits
        applier.run([org for family in families for org in family], report)
    results = [futures[org.slug].result() for org in plan.organizations]
    _record_unchanged(engine, plan, results)
    return ApplyResult(tuple(results))


@dataclass(frozen=True, slots=True)
class ApplyProcesses:
    """How worker processes reach the database (its URL, password included: it goes to this run's own
    workers only), and the fewest organizations with a transaction that repay starting them (a planning
    batch's worth: a worker costs about a third of a second to start)."""

    url: str
    purpose: str | None = "apply"
    minimum: int = 100

    def worth(self, families: Sequence[Sequence[OrgPlan]]) -> bool:
        writing = sum(1 for family in families for org in family if _without_transaction(org, False) is None)
        return writing >= max(self.minimum, 1)


@dataclass(frozen=True, slots=True)
class Applier:
    """What applies organizations one after another, on one connection at a time: a family, or a run of
    families (in a thread or in a worker process); each organization is prepared while the one before it
    commits (`_Ahead`)."""

    engine: Engine
    plan_hash: str
    saved: bool
    options: ApplyOptions
    describe_error: Callable[[BaseException], str]
    stop: threading.Event = field(default_factory=threading.Event)

    def run(
        self,
        orgs: Sequence[OrgPlan],
        report: Callable[[OrgResult], None],
        starting: Callable[[str], None] = lambda slug: None,
    ) -> None:
        """Apply `orgs` in order, each result to `report` as its transaction ends (`starting` is told each
        organization's slug before it is attempted); a child whose parent was not applied is not attempted."""
        not_applied: set[str] = set()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexus-prepare") as pool:
            ahead = _Ahead(pool, self.engine.dialect)
            for org, following in itertools.zip_longest(orgs, orgs[1:]):
                if org.parent in not_applied:
                    result = OrgResult(
                        org.slug, "skipped", message=f"not applied: its parent {org.parent} was not applied"
                    )
                else:
                    starting(org.slug)
                    result = _apply_one(
                        self.engine,
                        org,
                        self.plan_hash,
                        self.options,
                        self.describe_error,
                        self.stop.is_set(),
                        self.saved,
                        functools.partial(ahead.take, org),
                        functools.partial(ahead.start, following),
                    )
                if result.status in ("failed", "stale", "refused", "skipped"):
                    not_applied.add(org.slug)
                if self.options.fail_fast and result.status in ("failed", "stale", "refused"):
                    self.stop.set()
                report(result)


class _Ahead:
    """Computes an organization's `prepared` on another thread, started as the organization before it in
    the same sequence commits (and so waits for the disk, the interpreter free), taken just before its
    own transaction begins: the prepared work never competes with its own sequence's statements (with
    parallel families, other families' transactions still run beside it, as they run beside each other)."""

    def __init__(self, pool: ThreadPoolExecutor, dialect: Dialect) -> None:
        self.pool, self.dialect, self.started = pool, dialect, dict[str, Future[Prepared]]()

    def start(self, org: OrgPlan | None) -> None:
        if org is not None and _without_transaction(org, stopped=False) is None:
            self.started[org.slug] = self.pool.submit(prepared, org, self.dialect)

    def take(self, org: OrgPlan) -> Prepared | None:
        future = self.started.pop(org.slug, None)
        return future.result() if future is not None else None


class _Reporter:
    """Hands each result to `on_result` as soon as its transaction has ended (so a killed run has printed
    every organization it committed), one at a time whatever thread finished it."""

    def __init__(self, on_result: Callable[[OrgResult], None] | None) -> None:
        self.on_result, self.lock, self.count = on_result, threading.Lock(), 0

    def __call__(self, result: OrgResult) -> None:
        with self.lock:
            self.count += 1
            if self.on_result is not None:
                self.on_result(result)
            if self.count % SETTLE_EVERY == 0:
                settle()


def _without_transaction(org: OrgPlan, stopped: bool) -> OrgResult | None:
    """The result of an organization that gets no transaction (nothing to write, refused by its plan, or
    not attempted after a failure); None when it gets one."""
    if stopped:
        return OrgResult(org.slug, "skipped", message="not attempted (--fail-fast)")
    if org.skipped:
        return OrgResult(org.slug, "unchanged", message="unchanged since its last apply")
    if org.problems:
        return OrgResult(org.slug, "refused", message=org.problems[0].message)
    if not org.changes:
        return OrgResult(org.slug, "unchanged")
    return None


def _apply_one(
    engine: Engine,
    org: OrgPlan,
    plan_hash: str,
    options: ApplyOptions,
    describe_error: Callable[[BaseException], str],
    stopped: bool,
    saved: bool = False,
    ahead: Callable[[], Prepared | None] = lambda: None,
    committing: Callable[[], None] = lambda: None,
) -> OrgResult:
    unwritten = _without_transaction(org, stopped)
    if unwritten is not None:
        return unwritten
    now = datetime.datetime.now(datetime.UTC)
    try:
        with engine.connect() as connection:
            return _apply_org(connection, org, plan_hash, options, now, saved, ahead(), committing)
    except _AlreadyApplied as already:
        return OrgResult(org.slug, "stale", message=f"this plan was {already}: a plan applies once")
    except _Refused as refused:
        return OrgResult(org.slug, "refused", message=f"nothing was written to it: {refused}")
    except _Stale:
        return OrgResult(
            org.slug, "stale", message="the database changed since this plan was made: run plan again"
        )
    except _Cycle:
        return OrgResult(
            org.slug,
            "failed",
            message=f"its new parent chain leads back to {org.slug} (a cycle); nothing of it was written",
        )
    except sa.exc.IntegrityError as exc:
        message = (
            f"another session wrote a row that conflicts with {org.slug}'s meanwhile "
            f"({str(exc.orig or exc).strip().splitlines()[0]}); nothing of it was written: plan again"
        )
        return OrgResult(org.slug, "failed", message=message)
    except Locked as locked:
        return OrgResult(org.slug, "failed", message=_locked_message(engine, locked, options.timeout_hint))
    except (sa.exc.SQLAlchemyError, CommitOutcomeUnknown) as exc:
        message = _failure_message(engine, org.slug, exc, describe_error, options.timeout_hint)
        return OrgResult(org.slug, "failed", message=message)
    except (LookupError, ValueError, OSError) as exc:
        return OrgResult(org.slug, "failed", message=describe_error(exc))


def _record_unchanged(engine: Engine, plan: Plan, results: Sequence[OrgResult]) -> None:
    """Organizations that needed no change are recorded as applied from these files, in one statement,
    but only where nothing was written since the plan read them (`revision` unchanged)."""
    unchanged = {r.slug for r in results if r.status == "unchanged"}
    rows = [
        {
            "slug_": org.slug,
            "revision_": org.revision,
            "files_": dict(org.config_files),
            "hash_": config_hash_of(org.config_files),
        }
        for org in plan.organizations
        if org.slug in unchanged and org.config_files and org.revision is not None
    ]
    if not rows:
        return
    o = t.organizations
    statement = (
        sa.update(o)
        .where(o.c.slug == sa.bindparam("slug_"), o.c.revision == sa.bindparam("revision_"))
        .values(
            applied_revision=o.c.revision,
            config_files=sa.bindparam("files_", type_=o.c.config_files.type),
            config_hash=sa.bindparam("hash_"),
        )
    )
    try:
        with engine.connect() as connection, write_transaction(connection) as tx:
            tx.execute(statement, rows)
    except (sa.exc.SQLAlchemyError, CommitOutcomeUnknown):
        pass  # only an optimization for the next incremental plan; the next apply records it again
