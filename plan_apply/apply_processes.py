"""Families applied in worker processes: on a database that takes applies side by side (PostgreSQL), the
client's own work per statement (building, binding, COPY rows) held one interpreter, and its threads took
turns at it while the server waited.

Each worker opens its own engine and applies whole runs of families, one organization per transaction as
ever (`Applier`). Every result crosses back on a queue the moment its transaction ends, so the caller
reports it then, as it does for threads. A worker that ends abruptly (killed, out of memory) leaves the
organizations it had not reported failed, with their outcome unknown: nobody retries them blindly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from plan_apply.apply import Applier, ApplyOptions, ApplyProcesses, OrgResult
from plan_apply.errors import NexusError
from plan_apply.plan import OrgPlan
from plan_apply.workers import Workers

__all__ = ["apply_in_processes"]

RUN_ORGANIZATIONS = 16
"""Families are handed to workers in runs of at least this many organizations: few enough tasks that
handing them over costs nothing next to their transactions, enough that two workers stay balanced."""

ENDED_ABRUPTLY = (
    "the worker process applying it ended abruptly (killed, or out of memory?): whether it was applied "
    "is unknown (not retried); run `nexus plan` to see"
)


def apply_in_processes(
    processes: ApplyProcesses,
    families: Sequence[Sequence[OrgPlan]],
    jobs: int,
    applier: Applier,
    report: Callable[[OrgResult], None],
) -> None:
    """Apply `families` in `jobs` worker processes, as `applier` would here; every organization's result
    goes to `report` (in this thread) as its transaction ends, or as unknown if its worker died."""
    import multiprocessing
    from multiprocessing.connection import wait

    from plan_apply.apply import _lock_timeout_of  # the engine's own setting, for the workers' engines

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    incoming, outgoing = context.Pipe(duplex=False)
    finished, finishing = context.Pipe(duplex=False)
    setup = _Setup(
        processes.url,
        processes.purpose,
        _lock_timeout_of(applier.engine),
        applier.plan_hash,
        applier.saved,
        applier.options,
        applier.describe_error,
        _Results(outgoing, context.Lock()),
    )
    runs = list(_runs(families))
    unreported = {org.slug for run in runs for org in run}
    failures: list[BaseException] = []

    def relay() -> None:
        """Report each result as it comes; stop once every worker is done and the pipe is empty. (Only
        workers write to it, a result at a time: one killed while writing cannot block this process.) A
        report that fails is raised in the caller's thread, as a thread's would be; the pipe is still
        drained, or the workers would block on it."""
        while incoming in wait([incoming, finished]):
            result: OrgResult = incoming.recv()
            unreported.discard(result.slug)
            if not failures:
                try:
                    report(result)
                except BaseException as exc:
                    failures.append(exc)

    reader = threading.Thread(target=relay, name="nexus-apply-results", daemon=True)
    reader.start()
    died = False
    try:
        for _ in Workers(jobs, _start, (setup,), ended_abruptly=ENDED_ABRUPTLY).map(_apply_run, runs):
            pass
    except NexusError:
        died = True
    finally:
        finishing.send(None)  # every worker has returned or been stopped: its last write is in the pipe
        reader.join()
        for end in (incoming, outgoing, finished, finishing):
            end.close()
    if failures:
        raise failures[0]
    if died:
        for run in runs:
            for org in run:
                if org.slug in unreported:
                    report(OrgResult(org.slug, "failed", message=ENDED_ABRUPTLY))


@dataclass(frozen=True, slots=True)
class _Results:
    """The workers' end of the results pipe, one writer at a time (a result is one small write)."""

    pipe: Any
    lock: Any

    def __call__(self, result: OrgResult) -> None:
        with self.lock:
            self.pipe.send(result)


def _runs(families: Sequence[Sequence[OrgPlan]]) -> Iterator[list[OrgPlan]]:
    """Consecutive families joined into runs of at least RUN_ORGANIZATIONS organizations, in plan order."""
    run: list[OrgPlan] = []
    for family in families:
        run.extend(family)
        if len(run) >= RUN_ORGANIZATIONS:
            yield run
            run = []
    if run:
        yield run


@dataclass(frozen=True, slots=True)
class _Setup:
    """What each worker is started with: how to open its engine, what its applier applies, and the queue
    its results go back on."""

    url: str
    purpose: str | None
    lock_timeout: float
    plan_hash: str
    saved: bool
    options: ApplyOptions
    describe_error: Callable[[BaseException], str]
    results: _Results


_worker: tuple[Applier, _Results] | None = None


def _start(setup: _Setup) -> None:
    """In a worker process, once: its engine, and the applier that uses it."""
    global _worker
    from plan_apply.database.engine import engine_for

    engine = engine_for(setup.url, setup.lock_timeout, purpose=setup.purpose)
    applier = Applier(engine, setup.plan_hash, setup.saved, setup.options, setup.describe_error)
    _worker = (applier, setup.results)


def _apply_run(run: list[OrgPlan]) -> int:
    """In a worker process: apply a run of families, each result onto the queue as its transaction ends."""
    from nexus_config.heap import paused_gc

    assert _worker is not None
    applier, results = _worker
    with paused_gc():
        applier.run(run, results)
    return len(run)
