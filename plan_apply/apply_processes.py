"""Families applied in worker processes: on a database that takes applies side by side (PostgreSQL), the
client's own work per statement (building, binding, COPY rows) held one interpreter, and its threads took
turns at it while the server waited.

Each worker opens its own engine and applies whole runs of families, one organization per transaction as
ever (`Applier`). It says on a pipe when it starts an organization and sends the result the moment its
transaction ends, so the caller reports it then, as it does for threads. A worker that ends abruptly
(killed, out of memory) leaves the organization it had started failed with its outcome unknown (nobody
retries it blindly), and those not started failed as not attempted. A worker outlives nobody: when the
calling process is gone (killed), it exits at once, and its open transaction is rolled back. Ctrl-C is
the caller's: its workers finish the runs already handed to them (as threads finish the families queued
for them) and print no traceback of their own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from plan_apply.apply import Applier, ApplyOptions, ApplyProcesses, OrgResult
from plan_apply.plan import OrgPlan
from plan_apply.workers import WorkerDied, Workers, worker_context

__all__ = ["ENDED_ABRUPTLY", "NOT_ATTEMPTED", "WorkerTraceback", "apply_in_processes"]

RUN_ORGANIZATIONS = 16
"""Families are handed to workers in runs of at least this many organizations: few enough tasks that
handing them over costs nothing next to their transactions, enough that two workers stay balanced."""

ENDED_ABRUPTLY = (
    "the worker process applying it ended abruptly (killed, or out of memory?): whether it was applied "
    "is unknown (not retried); run `nexus plan` to see"
)
NOT_ATTEMPTED = (
    "not attempted: a worker process applying the fleet ended abruptly (killed, or out of memory?)"
)


def apply_in_processes(
    processes: ApplyProcesses,
    families: Sequence[Sequence[OrgPlan]],
    jobs: int,
    applier: Applier,
    report: Callable[[OrgResult], None],
) -> None:
    """Apply `families` in `jobs` worker processes, as `applier` would here; every organization's result
    goes to `report` as its transaction ends, or as unknown or not attempted if a worker died."""
    from multiprocessing.connection import wait

    from plan_apply.apply import _lock_timeout_of  # the engine's own setting, for the workers' engines

    context = worker_context()
    incoming, outgoing = context.Pipe(duplex=False)
    finished, finishing = context.Pipe(duplex=False)
    watched, alive = context.Pipe(duplex=False)  # only this process holds `alive`: its end is theirs
    setup = _Setup(
        processes.url,
        processes.purpose,
        _lock_timeout_of(applier.engine),
        applier.plan_hash,
        applier.saved,
        applier.options,
        applier.describe_error,
        _Results(outgoing, context.Lock()),
        watched,
    )
    runs = list(_runs(families))
    started: set[str] = set()
    reported: set[str] = set()
    failures: list[BaseException] = []

    def relay() -> None:
        """Report each result as it comes, until every worker is done and the pipe is empty (or ends
        in a message a killed worker left half-written). A report that fails is raised in the caller's
        thread, as a thread's would be; the pipe is still drained, or the workers would block on it."""
        try:
            while incoming in wait([incoming, finished]):
                message: OrgResult | str = incoming.recv()
                if isinstance(message, str):
                    started.add(message)
                    continue
                reported.add(message.slug)
                if not failures:
                    try:
                        report(message)
                    except BaseException as exc:
                        failures.append(exc)
        except (EOFError, OSError):
            pass  # the workers are gone and nothing complete is left

    reader = threading.Thread(target=relay, name="nexus-apply-results", daemon=True)
    reader.start()
    died = False
    worker_failures: list[BaseException] = []  # kept as they come: a worker's death later loses none
    try:
        for failure in Workers(jobs, _start, (setup,), ended_abruptly=ENDED_ABRUPTLY).map(_apply_run, runs):
            if failure is not None:
                error, where = failure
                error.__cause__ = WorkerTraceback(where)  # a cause does not cross pickling: set here
                worker_failures.append(error)
    except WorkerDied:
        died = True
    finally:  # every worker has returned or was stopped: nothing more will be written
        outgoing.close()
        finishing.send(None)
        reader.join()
        for end in (incoming, finished, finishing, watched, alive):
            end.close()
    if failures:
        raise failures[0]
    if died:
        for run in runs:
            for org in run:
                if org.slug not in reported:
                    message = ENDED_ABRUPTLY if org.slug in started else NOT_ATTEMPTED
                    report(OrgResult(org.slug, "failed", message=message))
    if worker_failures:
        raise worker_failures[0]


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
class _Results:
    """The workers' end of the results pipe, one writer at a time: an organization's slug as it is
    started, its result as its transaction ends."""

    pipe: Any
    lock: Any

    def __call__(self, message: OrgResult | str) -> None:
        with self.lock:
            self.pipe.send(message)


@dataclass(frozen=True, slots=True)
class _Setup:
    """What each worker is started with: how to open its engine, what its applier applies, the pipe its
    results go back on, and the pipe that ends when the calling process does."""

    url: str
    purpose: str | None
    lock_timeout: float
    plan_hash: str
    saved: bool
    options: ApplyOptions
    describe_error: Callable[[BaseException], str]
    results: _Results
    caller: Any


_worker: tuple[Applier, _Results] | None = None


def _start(setup: _Setup) -> None:
    """In a worker process, once: its engine and applier; Ctrl-C left to the caller; and a watch that
    ends this process the moment the caller's end of `setup.caller` closes (the caller is gone)."""
    global _worker
    import signal

    from plan_apply.database.engine import engine_for

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(setup.caller,), name="nexus-caller-watch", daemon=True).start()
    engine = engine_for(setup.url, setup.lock_timeout, purpose=setup.purpose)
    applier = Applier(engine, setup.plan_hash, setup.saved, setup.options, setup.describe_error)
    _worker = (applier, setup.results)


def _exit_with(caller: Any) -> None:
    """Block until the caller's end of the pipe closes, then end this process without another statement:
    the server rolls back what it had not committed."""
    from multiprocessing.connection import wait

    wait([caller])
    os._exit(1)


def _apply_run(run: list[OrgPlan]) -> tuple[BaseException, str] | None:
    """In a worker process: apply a run of families, each organization onto the pipe as it starts and as
    its transaction ends. What went wrong unexpectedly is returned, not raised, so that the other runs go
    on (as other families' threads do), and the caller raises it at the end with the traceback here as
    its cause (`_returnable`)."""
    from nexus_config.heap import paused_gc

    assert _worker is not None
    applier, results = _worker
    try:
        with paused_gc():
            applier.run(run, results, starting=results)
    except Exception as exc:
        return _returnable(exc)
    return None


class WorkerTraceback(Exception):
    """The traceback, in the worker process, of an error a worker returned (its `__cause__`)."""


def _returnable(exc: Exception) -> tuple[BaseException, str]:
    """`exc` as the caller can surely receive it, a RuntimeError naming it (an exception whose arguments
    do not rebuild it would break the whole pool), and its traceback in this worker."""
    import traceback

    return RuntimeError(f"{type(exc).__name__}: {exc}"), "".join(traceback.format_exception(exc))
