"""Progress of a bulk run, on stderr: while planning, a bar on a terminal; while applying, a bar on a
terminal or one plain line per organization otherwise, and a closing summary that names every
organization that failed and why.

Talk goes to stderr so stdout stays data. Rich is imported only when a bar is drawn; user text never
goes through Rich markup.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from plan_apply.views.escape import escape_terminal

if TYPE_CHECKING:
    from plan_apply.apply import OrgResult

__all__ = ["PlanningBar", "Reporter", "planning_bar", "reporter", "summary_lines"]


_DONE = ("applied", "left_alone", "unchanged")
"""Outcomes that are not failures: a change left alone for a school is said, and counted apart."""


class Reporter(Protocol):
    def start(self, total: int) -> None: ...
    def result(self, result: OrgResult) -> None: ...
    def close(self) -> None: ...


def _line(result: OrgResult) -> str:
    line = f"{result.slug}: {result.status.replace('_', ' ')}"
    if result.status == "applied":
        line += f" ({result.changes} change{'s' if result.changes != 1 else ''})"
    if result.message and result.status != "unchanged":
        line += f": {result.message}"
    return escape_terminal(line)


class _Lines:
    """One line per organization that changed or failed (an unchanged one is only counted)."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream, self.quiet, self.total, self.done = stream, quiet, 0, 0

    def start(self, total: int) -> None:
        self.total = total

    def result(self, result: OrgResult) -> None:
        self.done += 1
        failed = result.status not in _DONE
        if result.status == "unchanged" or (self.quiet and not failed):
            return
        print(f"[{self.done}/{self.total}] {_line(result)}", file=self.stream, flush=True)
        for note in result.notes:
            print(f"  note: {escape_terminal(note)}", file=self.stream, flush=True)

    def close(self) -> None:
        return None


class _Bar:
    """A transient Rich progress bar; failures and notes are printed above it as they happen."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(file=stream, highlight=False)
        self.progress = Progress(
            TextColumn("applying"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.task: Any = None

    def start(self, total: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("apply", total=total)

    def result(self, result: OrgResult) -> None:
        if result.status not in _DONE or result.notes:
            self.console.print(_line(result), markup=False, highlight=False, soft_wrap=True)
            for note in result.notes:
                self.console.print(f"  note: {escape_terminal(note)}", markup=False, highlight=False)
        self.progress.advance(self.task)

    def close(self) -> None:
        self.progress.stop()


class PlanningBar:
    """A transient bar while a fleet is loaded and planned, batch by batch (a terminal only: in a log
    the plan that follows is the per-organization output)."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("planning"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=stream, highlight=False),
            transient=True,
        )
        self.task: Any = None

    def advance(self, done: int, total: int) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("plan", total=total)
        self.progress.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()


def planning_bar(stream: TextIO | None = None, *, enabled: bool = True) -> PlanningBar | None:
    """A planning bar when `enabled` and `stream` is a terminal, else None (nothing is printed)."""
    stream = stream or sys.stderr
    if not enabled or not getattr(stream, "isatty", lambda: False)():
        return None
    return PlanningBar(stream)


def reporter(stream: TextIO | None = None, *, bar: bool | None = None, quiet: bool = False) -> Reporter:
    """A bar when `stream` is a terminal (and not `quiet`), else plain lines."""
    stream = stream or sys.stderr
    if bar is None:
        bar = bool(getattr(stream, "isatty", lambda: False)()) and not quiet
    return _Bar(stream) if bar else _Lines(stream, quiet)


def summary_lines(results: Sequence[OrgResult]) -> list[str]:
    """The closing summary: counts by outcome, then a table of the organizations that did not apply."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    changes = sum(r.changes for r in results if r.status == "applied")
    failed = [r for r in results if r.status not in _DONE]
    parts = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(counts.items()))
    lines = [
        f"Apply {'incomplete' if failed else 'complete'}: {changes} change(s) applied; organizations: {parts}."
    ]
    if failed:
        width = max(len(r.slug) for r in failed)
        lines.append("Not applied:")
        lines.extend(
            escape_terminal(f"  {r.slug.ljust(width)}  {r.status:<8} {r.message}".rstrip()) for r in failed
        )
    return lines
