"""The cyclic garbage collector during bulk work: paused while a fleet is parsed, planned and applied.

A loaded fleet and its plan are millions of long-lived containers; every collection of the oldest
generation rescans them all, which cost a third of a 1,000-organization apply. Reference counting frees
almost everything nexus makes (its values are trees, not cycles), so the collector is paused for the
whole run and asked, between batches, to collect what the batch left and to freeze what survived, so
that no later pass looks at those objects again.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["bulk_heap", "paused_gc", "settle"]

_bulk_runs = 0


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


@contextmanager
def bulk_heap() -> Iterator[None]:
    """A whole bulk command (validate, plan, apply): the GC paused, `settle()` effective, and on the way out
    everything the run made handed back to the collector (its cycles become collectable again)."""
    global _bulk_runs
    _bulk_runs += 1
    with paused_gc():
        try:
            yield
        finally:
            _bulk_runs -= 1
            if _bulk_runs == 0:
                # Into the oldest generation, frozen or not: collectable again, and not walked by the
                # young pass that re-enabling the collector starts (it would rescan all the run made).
                gc.freeze()
                gc.unfreeze()


def settle() -> None:
    """Between batches of a bulk run: collect the cycles the last batch left behind, then freeze what
    survives (the plan so far), so the next collection scans only what is new. Outside `bulk_heap`,
    nothing: the collector runs on its own schedule there."""
    if _bulk_runs:
        gc.collect()
        gc.freeze()
