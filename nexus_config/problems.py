"""Input problems as values: every stage returns them, the CLI prints them together.

A problem knows where it is (file, document, JSON pointer); line and column are filled in at the end
by `locations.locate`, which re-reads only the files that have problems.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

__all__ = ["Problem", "escape_pointer", "join_pointer", "problems_to_json", "problems_to_text"]

Severity = Literal["error", "warning"]


def escape_pointer(token: str | int) -> str:
    """One JSON Pointer reference token, escaped as RFC 6901 says (`~` → `~0`, `/` → `~1`)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def join_pointer(*tokens: str | int) -> str:
    """A JSON Pointer from path tokens: `("services", 0, "key")` → `/services/0/key`."""
    return "".join("/" + escape_pointer(t) for t in tokens)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input, with enough location for an editor to jump to it.

    `line`/`column` are 1-based; 0 means "the whole file" (a file that could not be read at all).
    `document` is the 0-based index of the YAML document inside the file; `at_key` asks the locator
    for the position of the mapping key rather than of its value (unknown fields, duplicates).
    """

    file: str
    message: str
    pointer: str = ""
    line: int = 0
    column: int = 0
    code: str = "invalid"
    severity: Severity = "error"
    document: int = 0
    at_key: bool = False
    related: tuple[tuple[str, int, str], ...] = ()
    """Other places this problem names, as (file, document, pointer): "also declared at FILE:LINE"."""

    def at(self, line: int, column: int) -> Problem:
        return replace(self, line=line, column=column)

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line, self.column, self.message)

    def as_text(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}"

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.pointer,
            "message": self.message,
            "code": self.code,
            "severity": self.severity,
        }


FOLDED_LINES_SHOWN = 5
"""How many other lines a folded problem names before it only counts them."""


def _folded(first: Problem, others: Sequence[Problem], escape: Callable[[str], str]) -> str:
    """One line for a problem repeated in a file: the first place, then how many more and where."""
    if not others:
        return escape(first.as_text())
    same = sum(1 for p in others if p.line == first.line)  # one node reached through YAML aliases
    lines = list(dict.fromkeys(p.line for p in others if p.line != first.line))
    where = [f"{same} on the same line"] if same else []
    if lines:
        shown = ", ".join(str(line) for line in lines[:FOLDED_LINES_SHOWN])
        hidden = len(lines) - FOLDED_LINES_SHOWN
        where.append(
            f"line{'s' if len(lines) > 1 else ''} {shown}"
            + (f" and {hidden} other lines" if hidden > 0 else "")
        )
    return f"{escape(first.as_text())} (and {len(others)} more like it: {', '.join(where)})"


_FIELD_PATH = re.compile(r"^[A-Za-z_]\w*(?:\[\d+\]|\.[A-Za-z_]\w*)*: ")
"""The `staff[3].role: ` a message may start with, naming where it was reached (through an alias, say)."""


def _repeat_key(problem: Problem) -> tuple[str, str, str, str]:
    """What makes two problems "the same": file, severity, code and message, whichever field path led there."""
    return (problem.file, problem.severity, problem.code, _FIELD_PATH.sub("", problem.message, count=1))


def problems_to_text(problems: Sequence[Problem], escape: Callable[[str], str] = str) -> str:
    """The `FILE:LINE:COLUMN: error: MESSAGE` lines, then a count (the GCC problem-matcher form).

    The same problem repeated in one file (same message, code and severity: a misspelt alias used
    9,000 times) is one line at its first place, naming the others; the count still counts each.
    `problems_to_json` keeps every one: machines want each location.
    """
    repeats: dict[tuple[str, str, str, str], list[Problem]] = {}
    for p in problems:
        repeats.setdefault(_repeat_key(p), []).append(p)
    lines = []
    for p in problems:
        group = repeats[_repeat_key(p)]
        if group[0] is p:
            lines.append(_folded(p, group[1:], escape))
    errors = [p for p in problems if p.severity == "error"]
    files = {p.file for p in errors}
    if errors:
        noun = "error" if len(errors) == 1 else "errors"
        lines.append(f"{len(errors)} {noun} in {len(files)} file{'s' if len(files) != 1 else ''}")
    return "\n".join(lines) + ("\n" if lines else "")


def problems_to_json(problems: Iterable[Problem]) -> str:
    """The same problems as one JSON list (CLI.md: file, line, column, path, message)."""
    return json.dumps([p.as_json() for p in problems], indent=2, ensure_ascii=False) + "\n"
