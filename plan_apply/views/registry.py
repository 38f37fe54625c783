"""The registry of formats: a `--format` name → the module of its view and what it can show."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, cast

if TYPE_CHECKING:
    from nexus_config.problems import Problem
    from plan_apply.history import HistoryEntry
    from plan_apply.plan import Plan
    from plan_apply.views.color import Paint

__all__ = ["FORMATS", "Format", "Output", "View", "format_names", "view"]

Output = Literal["plan", "problems", "history"]


class View(Protocol):
    """What a view module provides, for the outputs its `Format` lists."""

    def render_plan(self, plan: Plan, paint: Paint, *, every_slug: bool = False) -> str | Iterable[str]: ...
    def render_problems(self, problems: Sequence[Problem]) -> str: ...
    def render_history(self, entries: Sequence[HistoryEntry]) -> str: ...


@dataclass(frozen=True, slots=True)
class Format:
    """A `--format` name, the module of its view, and the outputs it can show."""

    name: str
    module: str
    shows: frozenset[Output]


_ALL: frozenset[Output] = frozenset({"plan", "problems", "history"})
FORMATS = (
    Format("text", "plan_apply.views.text", _ALL),
    Format("json", "plan_apply.views.json", _ALL),
    Format("markdown", "plan_apply.views.markdown", frozenset({"plan"})),
)


def format_names(output: Output) -> list[str]:
    """The formats that can show `output`: the choices of a command's --format."""
    return [f.name for f in FORMATS if output in f.shows]


def view(name: str, output: Output) -> View | None:
    """The view of format `name`, or None when that format does not show `output`."""
    found = next(f for f in FORMATS if f.name == name)
    return cast("View", importlib.import_module(found.module)) if output in found.shows else None
