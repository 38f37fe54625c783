"""Worker processes for CPU-bound batches (parsing, checking, planning): threads would share one core.

Workers are started by a fork server (a clean interpreter that imports the function's module once),
never forked from the calling process, whose open connections and threads a child must not inherit.
Results come back in the order of the tasks, so output never depends on scheduling.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from nexus_config.heap import settle
from plan_apply.errors import NexusError

__all__ = ["WorkerDied", "Workers", "worker_context"]

R = TypeVar("R")


def worker_context() -> Any:
    """The multiprocessing context workers start in (a fork server where there is one, else spawn): what
    the pool and anything shared with its workers (pipes, locks) are made from."""
    import multiprocessing  # here, not at the top: a run in one process never pays for it

    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class WorkerDied(NexusError):
    """A worker process ended abruptly (killed, out of memory): the whole map failed."""


@dataclass(frozen=True, slots=True)
class Workers:
    """Up to `jobs` processes, each set up once by `initializer(*initargs)` (a module-level function)."""

    jobs: int
    initializer: Callable[..., None] | None = None
    initargs: tuple[Any, ...] = ()
    ended_abruptly: str = (
        "a worker process checking the configuration ended abruptly (killed, or out of memory?), so "
        "nothing was planned or applied: run again, or with --jobs 1 to work in one process"
    )
    """What a worker that dies means for the whole map (its WorkerDied)."""

    def map(self, function: Callable[[Any], R], tasks: Sequence[Any]) -> Iterator[R]:
        """`function` (module-level, so it pickles by name) over `tasks`, results in task order. A worker
        that dies fails the whole map with one WorkerDied (nothing of it may be half-used)."""
        from concurrent.futures import ProcessPoolExecutor  # here: a run in one process never pays for it
        from concurrent.futures.process import BrokenProcessPool

        context = worker_context()
        if context.get_start_method() == "forkserver":
            context.set_forkserver_preload([function.__module__])
        pool = ProcessPoolExecutor(
            max_workers=max(1, min(self.jobs, len(tasks))),
            mp_context=context,
            initializer=self.initializer,
            initargs=self.initargs,
        )
        try:
            for result in pool.map(function, tasks):
                yield result
                settle()  # what the batch left here is collected; the results so far are frozen
        except BrokenProcessPool:
            raise WorkerDied(self.ended_abruptly) from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
