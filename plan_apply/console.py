"""What the CLI writes where: data on stdout (coloured when asked, also into a pipe), talk and located
problems on stderr, saved plans to owner-only files.

Every format prints a problem's `FILE:LINE:COLUMN` line on stderr, escaped: CI problem matchers read
it there whatever stdout holds, and no file name can start a line of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import click

from plan_apply.errors import NexusError
from plan_apply.views import view

if TYPE_CHECKING:
    from nexus_config.problems import Problem
    from plan_apply.plan import Plan

__all__ = ["say", "show_data", "show_plan", "show_problems", "without_passwords", "write_plan_file"]


def say(message: str) -> None:
    """Talk (progress, summaries, warnings, hints) goes to stderr; data goes to stdout."""
    click.echo(message, err=True)


def show_data(text: str | Iterable[str], color: bool = False) -> None:
    """Data on stdout, whole or in pieces (a big plan is written as a stream); with `color`, its colours
    are kept also when stdout is not a terminal."""
    for piece in [text] if isinstance(text, str) else text:
        click.echo(piece, nl=False, color=color)


def show_problems(problems: Sequence[Problem], fmt: str) -> None:
    """Configuration problems: the located lines on stderr, and in a format that shows problems as
    data (JSON) the same problems on stdout."""
    if problems:  # the text view is imported only when there is something to show
        from plan_apply.views.text import render_problems

        click.echo(render_problems(problems), err=True, nl=False)
    if fmt != "text" and (shown := view(fmt, "problems")) is not None:
        show_data(shown.render_problems(problems))


def show_plan(plan: Plan, fmt: str, color: bool, *, every_slug: bool = False) -> None:
    """The plan on stdout in `fmt` (coloured only as text; with `every_slug`, naming every organization
    that shares a change); its located problems and hints on stderr."""
    from plan_apply.views.color import painter
    from plan_apply.views.text import located_lines

    color = color and fmt == "text"
    shown = view(fmt, "plan")
    assert shown is not None  # --format offers only formats that show plans
    show_data(shown.render_plan(plan, painter(color), every_slug=every_slug), color)
    for line in located_lines(plan):
        say(line)
    skipped = sum(1 for org in plan.organizations if org.skipped)
    if skipped:
        say(f"{skipped} unchanged organization(s) skipped: --full compares them anyway")


def write_plan_file(path: str, text: str | Iterable[str]) -> None:
    """Save a plan atomically with owner-only permissions (plans can hold PII)."""
    from nexus_config.rewrite import write_atomically

    try:
        write_atomically(path, text, mode=0o600)
    except (OSError, ValueError) as exc:
        raise NexusError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}") from None


def without_passwords(text: str, args: Sequence[str]) -> str:
    """`text` with the passwords of every database URL this run was given hidden: an unexpected error's
    message may quote a URL, and it is printed whole."""
    from plan_apply.database.engine import scrub

    urls = [os.environ.get("NEXUS_DATABASE_URL", "")]
    for i, arg in enumerate(args):
        if arg == "--database-url" and i + 1 < len(args):
            urls.append(args[i + 1])
        elif arg.startswith("--database-url="):
            urls.append(arg.partition("=")[2])
    for url in filter(None, urls):
        text = scrub(text, url)
    return text
