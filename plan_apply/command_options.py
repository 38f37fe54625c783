"""The CLI's flags: each shared flag is one decorator, and each command's flags arrive as one frozen
value (`PlanArgs`, `ApplyArgs`, …) built once from click's parameters by `takes`.

Imported at start-up: only click here; what a flag needs at run time (discovery, YAML) is imported then.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from plan_apply.database import DEFAULT_LOCK_TIMEOUT
from plan_apply.views import Output, format_names
from plan_apply.views.color import COLOR_CHOICES

__all__ = [
    "ApplyArgs",
    "Day",
    "HistoryArgs",
    "NexusGroup",
    "PlanArgs",
    "ValidateArgs",
    "color_choice",
    "color_option",
    "database_option",
    "format_option",
    "jobs_option",
    "lock_timeout_option",
    "org_option",
    "output_options",
    "paths_argument",
    "safety_options",
    "selection_options",
    "takes",
]

F = TypeVar("F", bound=Callable[..., Any])
A = TypeVar("A")


# --- the typed values -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValidateArgs:
    paths: tuple[str, ...]
    fmt: str
    jobs: int | None


@dataclass(frozen=True, slots=True)
class PlanArgs:
    paths: tuple[str, ...]
    orgs: tuple[str, ...]
    selectors: tuple[str, ...]
    shard: str | None
    database_url: str | None
    full: bool
    allow_mass_delete: bool
    fmt: str
    out: str | None
    detailed_exitcode: bool
    fail_on_drift: bool
    fail_on_held: bool
    progress: bool
    jobs: int | None
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    quiet: bool = False
    verbose: bool = False


@dataclass(frozen=True, slots=True)
class ApplyArgs:
    paths: tuple[str, ...]
    orgs: tuple[str, ...]
    selectors: tuple[str, ...]
    shard: str | None
    database_url: str | None
    full: bool
    allow_mass_delete: bool
    lock_timeout: float
    quiet: bool
    progress: bool
    plan_file: str | None
    auto_approve: bool
    counter_propose: bool
    fail_fast: bool
    jobs: int | None


@dataclass(frozen=True, slots=True)
class HistoryArgs:
    database_url: str | None
    orgs: tuple[str, ...]
    since: datetime.date | None
    until: datetime.date | None
    limit: int
    fmt: str


class Day(click.ParamType[datetime.date, "str | datetime.date"]):
    """A UTC day given as YYYY-MM-DD."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime.date:
        if isinstance(value, datetime.date):
            return value
        try:
            return datetime.date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"takes a date YYYY-MM-DD, not {value!r}", param, ctx)


def takes(kind: Callable[..., A]) -> Callable[[Callable[[A], int]], Callable[..., int]]:
    """A command body that takes its flags as one `kind` value instead of keyword arguments."""

    def decorate(command: Callable[[A], int]) -> Callable[..., int]:
        @functools.wraps(command)
        def run(**params: Any) -> int:
            return command(kind(**params))

        return run

    return decorate


# --- colour: a flag of the group and of every command ------------------------------------------------------

_COLOR = "nexus.color"


def _remember_color(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta[_COLOR] = value


def color_option(function: F) -> F:
    """--color, accepted before or after the command name (the last one given wins)."""
    return click.option(
        "--color",
        type=click.Choice(COLOR_CHOICES),
        default=None,
        expose_value=False,
        callback=_remember_color,
        help="Colour output: auto (a terminal, unless NO_COLOR; FORCE_COLOR forces), always or never.",
    )(function)


class NexusGroup(click.Group):
    """A command group whose every command also takes --color (so it works after the command name)."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not isinstance(cmd, click.Group):
            color_option(cmd)
        super().add_command(cmd, name)


def color_choice() -> str:
    """The --color given to this run (auto when none)."""
    context = click.get_current_context(silent=True)
    return str(context.meta.get(_COLOR, "auto")) if context else "auto"


# --- shared flags ---------------------------------------------------------------------------------------


def paths_argument(required: bool = True) -> Callable[[F], F]:
    return click.argument("paths", nargs=-1, required=required, type=click.Path(path_type=str))


def format_option(output: Output) -> Callable[[F], F]:
    """--format, with the formats whose views can show `output`."""
    return click.option(
        "--format", "fmt", type=click.Choice(format_names(output)), default="text", show_default=True
    )


def jobs_option(function: F) -> F:
    return click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        help="Processes loading and planning batches of organizations, and organizations applied in "
        "parallel (default: the number of CPUs; on SQLite, which has one writer, applies run one at a time).",
    )(function)


def database_option(function: F) -> F:
    return click.option(
        "--database-url",
        metavar="URL",
        help="Database URL (else $NEXUS_DATABASE_URL, else sqlite:///nexus.db).",
    )(function)


def _slugs(_ctx: click.Context, _param: click.Parameter, values: Sequence[str]) -> tuple[str, ...]:
    """--org a --org b,c: repeated, comma-separated, or both; order kept, duplicates dropped."""
    slugs = (slug.strip() for value in values for slug in value.split(","))
    return tuple(dict.fromkeys(slug for slug in slugs if slug))


def _complete_slugs(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion: the slugs of the organizations configured under the PATHs given (else here)."""
    import yaml

    from nexus_config.discovery import discover

    # while completing, click leaves the PATHs typed so far unparsed in ctx.args
    found, _problems = discover(list(ctx.params.get("paths") or ctx.args or ["."]))
    slugs: set[str] = set()
    for file in found:
        try:
            with open(file.path, encoding="utf-8") as stream:
                documents = list(yaml.safe_load_all(stream))
        except Exception:  # a file that does not parse has no slug to offer
            continue
        for document in documents:
            metadata = document.get("metadata") if isinstance(document, dict) else None
            slug = metadata.get("slug") if isinstance(metadata, dict) else None
            if isinstance(slug, str):
                slugs.add(slug)
    done, _, last = incomplete.rpartition(",")
    prefix = f"{done}," if done else ""
    return [prefix + slug for slug in sorted(slugs) if slug.startswith(last)]


def org_option(
    help: str = "Only these organizations (repeatable, or a comma list).", **extra: Any
) -> Callable[[F], F]:
    return click.option(
        "--org",
        "orgs",
        multiple=True,
        metavar="SLUG[,SLUG…]",
        callback=_slugs,
        shell_complete=_complete_slugs,
        help=help,
        **extra,
    )


def selection_options(function: F) -> F:
    function = click.option(
        "--shard",
        metavar="I/N",
        help="Only the I-th of N deterministic shards of the selection (families stay together).",
    )(function)
    function = click.option(
        "--selector",
        "selectors",
        multiple=True,
        metavar="KEY=VALUE",
        help="Only organizations with these labels.",
    )(function)
    return org_option()(function)


def lock_timeout_option(function: F) -> F:
    return click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0),
        default=DEFAULT_LOCK_TIMEOUT,
        show_default=True,
        metavar="SECONDS",
        help="How long to wait for another apply of the same organization.",
    )(function)


def safety_options(function: F) -> F:
    function = click.option(
        "--full",
        is_flag=True,
        help="Compare every organization, also those unchanged since their last apply.",
    )(function)
    return click.option(
        "--allow-mass-delete",
        is_flag=True,
        help="Allow plans that delete or archive more than 10 items or 25% of an organization's items.",
    )(function)


def output_options(function: F) -> F:
    function = click.option(
        "--quiet", "-q", is_flag=True, help="Print only the summary and what failed (no plan, no bar)."
    )(function)
    return click.option(
        "--progress/--no-progress", default=True, help="A progress bar on a terminal (stderr)."
    )(function)
