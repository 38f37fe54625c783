"""The `nexus` command line: parse, call the pipeline, render, write, exit. Nothing else lives here.

Exit codes (CLI.md): 0 success; 1 any error (usage errors too: 2 is reserved); `plan
--detailed-exitcode` exits 2 when changes are present. The one place exceptions are caught. Flags are
in `command_options`, what goes to which stream in `console`, the formats in `views`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from nexus_config._version import __version__
from plan_apply.command_options import (
    ApplyArgs,
    NexusGroup,
    PlanArgs,
    color_choice,
    color_option,
    database_option,
    format_option,
    jobs_option,
    lock_timeout_option,
    output_options,
    paths_argument,
    safety_options,
    selection_options,
    takes,
)
from plan_apply.console import say, show_plan, show_problems, without_passwords, write_plan_file
from plan_apply.errors import ConfigurationInvalid, DatabaseError, NexusError, StalePlan, UsageProblem
from plan_apply.version import version_line

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])


def _command() -> str | None:
    """The running command's name (`plan`, `apply`): how its connections show in pg_stat_activity."""
    context = click.get_current_context(silent=True)
    return context.info_name if context else None


def _bulk(command: F) -> F:
    """Run a bulk command with the cyclic GC paused and settled between batches (nexus_config.heap)."""
    from nexus_config.heap import bulk_heap

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        with bulk_heap():
            return command(*args, **kwargs)

    return run  # type: ignore[return-value]


def _cpus() -> int:
    """The default of --jobs."""
    return max(1, os.cpu_count() or 1)


def _color() -> bool:
    from plan_apply.views.color import color_enabled

    return color_enabled(sys.stdout, color_choice())


# --- commands -------------------------------------------------------------------------------------------


@click.group(
    cls=NexusGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
# with the version given, click never looks it up in the installed packages' metadata (`nexus --version`
# alone never gets here: plan_apply.__main__ answers it; `nexus --color never --version` does)
@click.version_option(__version__, "--version", prog_name="nexus", message=version_line())
@color_option
@click.option("--debug", is_flag=True, expose_value=False, help="Show tracebacks of internal errors.")
def cli() -> None:
    """nexus: clinical-site configuration as code. validate → plan → apply.

    \b
    Exit codes: 0 success, 1 error, 2 changes present (plan --detailed-exitcode only).
    """


@cli.result_callback()
@click.pass_context
def _exit_with(ctx: click.Context, /, code: Any, **_: Any) -> None:
    """A command returns its exit code; this makes it the process's (also under click's CliRunner)."""
    if isinstance(code, int) and code:
        ctx.exit(code)


def _planning_jobs(url: str, jobs: int | None) -> int:
    """Worker processes for planning: each opens its own connection, so the database's dialect says how
    many may (a database private to this process is planned here)."""
    from plan_apply.database.engine import planning_workers

    return planning_workers(url, jobs or _cpus())


def _make_plan(request: PlanArgs | ApplyArgs, fmt: str) -> Any:
    """Plan the configuration against the database (incrementally unless --full); print its problems."""
    from plan_apply.database.engine import open_database, redact
    from plan_apply.diff import PlanOptions
    from plan_apply.planner import Selection, plan_tree
    from plan_apply.progress import planning_bar
    from plan_apply.selection import parse_shard

    selection = Selection(request.orgs, request.selectors, parse_shard(request.shard))
    bar = planning_bar(sys.stderr, enabled=request.progress and not request.quiet and fmt == "text")
    with (
        open_database(request.database_url, request.lock_timeout, purpose=_command()) as (engine, url),
        engine.connect() as connection,
        contextlib.closing(bar) if bar else contextlib.nullcontext(),
    ):
        result = plan_tree(
            request.paths,
            connection,
            database=redact(url),
            selection=selection,
            options=PlanOptions(allow_mass_delete=request.allow_mass_delete),
            full=request.full,
            jobs=_planning_jobs(url, request.jobs),
            url=url,
            on_progress=bar.advance if bar else None,
        )
    show_problems(result.problems, fmt if result.plan is None else "text")
    if result.plan is None:
        raise ConfigurationInvalid("the configuration has errors; nothing was planned or applied")
    return result.plan


@cli.command()
@paths_argument()
@selection_options
@database_option
@safety_options
@format_option("plan")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=str),
    help="Also save the plan (JSON) for `apply --plan`.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when changes are present.",
)
@click.option(
    "--verbose",
    is_flag=True,
    help="Name every organization that shares a change (text and markdown name a few and count the rest).",
)
@click.option("--fail-on-drift", is_flag=True, help="Exit 1 when the database was changed outside nexus.")
@click.option(
    "--fail-on-held",
    is_flag=True,
    help="Exit 1 when a change waits on someone else (an agreement whose school proposed changes).",
)
@click.option(
    "--progress/--no-progress", default=True, help="A progress bar on a terminal (stderr, text format only)."
)
@jobs_option
@_bulk
@takes(PlanArgs)
def plan(options: PlanArgs) -> int:
    """Show what apply would change in the database. Writes nothing to the database."""
    the_plan = _make_plan(options, options.fmt)
    show_plan(the_plan, options.fmt, _color(), every_slug=options.verbose)
    if options.out:
        write_plan_file(options.out, the_plan.json_chunks())
        say(f"plan saved to {options.out}: apply it with `nexus apply --plan {options.out}`")
    if the_plan.has_problems:
        return 1
    if options.fail_on_drift and any(c.cause == "drift" for c in the_plan.changes):
        say("drift found: the database was changed outside nexus")
        return 1
    if options.fail_on_held and the_plan.held:
        say(
            f"{len(the_plan.held)} change(s) held: apply leaves them alone until the school's proposal is answered"
        )
        return 1
    return 2 if options.detailed_exitcode and the_plan.has_pending_changes else 0


def _confirm() -> None:
    answer = click.prompt("Apply these changes? Only 'yes' will be accepted", default="", show_default=False)
    if answer.strip() != "yes":
        raise NexusError("apply cancelled; nothing was changed")


def _saved_plan_staleness(engine: Any, the_plan: Any, plan_file: str) -> str | None:
    """Why a saved plan no longer applies, before anything is locked: it was applied already (a plan
    applies once), or the database changed since it was made (content or revision); None when it applies."""
    from plan_apply.apply import applied_before, state_as_planned, taken_earlier
    from plan_apply.database.reads import read_actual_state

    slugs = [o.slug for o in the_plan.organizations if o.changes]
    holders = {str(c.before["org"]) for o in the_plan.organizations for c in o.changes if "org" in c.before}
    with engine.connect() as connection, connection.begin():
        done = applied_before(connection, the_plan.identity, slugs)
        actual = read_actual_state(connection, sorted({*slugs, *holders}))
    if done:
        listed = "; ".join(f"{slug}: {when}" for slug, when in sorted(done.items()))
        return f"{plan_file} was applied before ({listed}); a plan applies once, nothing was applied"
    later = taken_earlier(the_plan)  # checked under the lock, after the transaction taking their rows
    stale = [
        o.slug
        for o in the_plan.organizations
        if o.changes
        and o.slug not in later
        and _moved(state_as_planned(o, actual), o.state_fingerprint, o.revision)
    ]
    if stale:
        return (
            f"the database changed since {plan_file} was made (organizations: {', '.join(stale)}); "
            "nothing was applied: run plan again"
        )
    return None


def _moved(actual: Any, fingerprint: str, revision: int | None) -> bool:
    moved = revision is not None and actual.id is not None and actual.revision != revision
    return bool(actual.fingerprint != fingerprint or moved)


def _saved_plan(plan_file: str, options: ApplyArgs) -> Any:
    from plan_apply.database.engine import database_url as resolve_url
    from plan_apply.database.identity import saved_plan_refusal
    from plan_apply.plan import Plan
    from plan_apply.plan_file import PlanFileInvalid

    if (
        options.paths
        or options.orgs
        or options.selectors
        or options.shard
        or options.full
        or options.allow_mass_delete
    ):
        raise UsageProblem(
            "--plan applies a saved plan exactly: give no paths, --org, --selector, --shard, --full or "
            "--allow-mass-delete (they were settled when the plan was made)"
        )
    try:
        the_plan = Plan.from_json(Path(plan_file).read_text(encoding="utf-8"))
    except PlanFileInvalid as exc:
        raise NexusError(f"{plan_file}: {exc}") from None
    url = resolve_url(options.database_url)
    refusal = saved_plan_refusal(plan_file, the_plan.database, the_plan.database_id, url)
    if refusal:
        raise UsageProblem(refusal)
    return the_plan


def _apply_jobs(url: str, jobs: int | None) -> int:
    """Organizations applied at once: as many as the database's dialect allows of `jobs` (by default one
    per CPU); a database with one writer takes them one at a time."""
    from plan_apply.database.engine import parallel_applies

    return parallel_applies(url, jobs or _cpus())


@cli.command()
@paths_argument(required=False)
@selection_options
@database_option
@safety_options
@lock_timeout_option
@output_options
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, exists=True, path_type=str),
    help="Apply this saved plan exactly.",
)
@click.option(
    "--auto-approve", is_flag=True, help="Apply without asking (required when stdin is not a terminal)."
)
@click.option("--counter-propose", is_flag=True, help="Overwrite agreements whose school proposed changes.")
@click.option(
    "--fail-fast/--keep-going",
    default=False,
    help="Stop at the first organization that fails, or apply every other one and list the failures at the "
    "end (the default).",
)
@jobs_option
@_bulk
@takes(ApplyArgs)
def apply(options: ApplyArgs) -> int:
    """Make the database match the configuration: plan, confirm, then apply per organization."""

    from plan_apply.apply import ApplyOptions, ApplyProcesses, apply_plan, default_actor, default_commit
    from plan_apply.database.engine import FailureDescriber, open_database
    from plan_apply.progress import reporter, summary_lines

    plan_file = options.plan_file
    if plan_file:
        the_plan = _saved_plan(plan_file, options)
    else:
        if not options.paths:
            raise UsageProblem("give the configuration PATHs to apply, or --plan FILE")
        the_plan = _make_plan(options, "text")
    asks = not plan_file and not options.auto_approve and the_plan.has_changes and not the_plan.has_problems
    if asks and not sys.stdin.isatty():
        raise UsageProblem(
            "standard input is not a terminal: re-run with --auto-approve to apply without asking"
        )
    if not options.quiet:
        show_plan(the_plan, "text", _color())
    if the_plan.has_problems:
        raise NexusError("the plan has errors; nothing was applied")
    if not the_plan.has_changes:
        if options.quiet:
            say("No changes. The database matches the configuration.")
        return 0
    if asks:
        _confirm()
    with open_database(options.database_url, options.lock_timeout, purpose=_command()) as (engine, url):
        if plan_file:
            staleness = _saved_plan_staleness(engine, the_plan, plan_file)
            if staleness:
                raise StalePlan(staleness)
        progress = reporter(sys.stderr, bar=None if options.progress else False, quiet=options.quiet)
        progress.start(len(the_plan.organizations))
        try:
            result = apply_plan(
                engine,
                the_plan,
                ApplyOptions(
                    counter_propose=options.counter_propose,
                    actor=default_actor(),
                    commit=default_commit(),
                    fail_fast=options.fail_fast,
                    timeout_hint="--lock-timeout",
                ),
                on_result=progress.result,
                describe_error=FailureDescriber(url),
                jobs=_apply_jobs(url, options.jobs),
                processes=ApplyProcesses(url, purpose=_command()),
            )
        finally:
            progress.close()
    for line in summary_lines(result.organizations):
        say(line)
    if not result.ok:
        raise NexusError("some organizations were not applied (listed above)")
    return 0


@cli.group(cls=NexusGroup)
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@database_option
def db_upgrade(database_url: str | None) -> int:
    """Create or upgrade the database schema to this nexus's version (Alembic)."""
    import sqlalchemy as sa

    from plan_apply.database.engine import database_url as resolve_url
    from plan_apply.database.engine import describe_failure, engine_for, redact, upgrade_schema

    url = resolve_url(database_url)
    engine = engine_for(url, purpose="db upgrade")
    try:
        with engine.connect() as connection:
            before, after = upgrade_schema(connection, url)
    except sa.exc.DBAPIError as exc:
        raise DatabaseError(describe_failure(exc, url)) from None
    finally:
        engine.dispose()
    if before == after:
        say(f"{redact(url)}: schema already at revision {after}")
    else:
        say(f"{redact(url)}: schema upgraded from {before or 'empty'} to {after}")
    return 0


def _register_file_commands() -> None:
    from plan_apply.file_commands import COMMANDS
    from plan_apply.history_command import history

    for command in [*COMMANDS, history]:
        cli.add_command(command)


_register_file_commands()


# --- entry point --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI and exit with the contract's exit codes; no traceback for expected failures."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or bool(os.environ.get("NEXUS_DEBUG"))
    try:
        code = cli.main(args=args, prog_name="nexus", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        say("aborted")
        code = 1
    except click.ClickException as exc:
        exc.show()
        code = 1  # usage errors exit 1: 2 means "changes present"
    except NexusError as exc:
        say(f"error: {exc.message}")
        code = exc.exit_code
    except KeyboardInterrupt:
        say("interrupted")
        code = 130
    except Exception as exc:  # the unexpected: say so plainly, traceback only on request
        if debug:
            import traceback

            traceback.print_exc()
        say(
            f"internal error: {type(exc).__name__}: {without_passwords(str(exc), args)} (re-run with --debug for details)"
        )
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
