"""The `nexus` command line: parse, call the pipeline, render, write, exit. Nothing else lives here.

Exit codes (CLI.md): 0 success; 1 any error (usage errors too: 2 is reserved); `plan
--detailed-exitcode` exits 2 when changes are present. The one place exceptions are caught.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from nexus_config import CURRENT_VERSION, LoadResult, load_configuration, problems_to_json, problems_to_text
from nexus_config.locations import Locator
from plan_apply.database import DEFAULT_LOCK_TIMEOUT
from plan_apply.errors import ConfigurationInvalid, DatabaseError, NexusError, StalePlan, UsageProblem

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])
VERSION = "0.1.0"


# --- output -----------------------------------------------------------------------------------------


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


def jobs_option(function: F) -> F:
    return click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        help="Processes loading and planning batches of organizations, and organizations applied in "
        "parallel (default: the number of CPUs; on SQLite, which has one writer, applies run one at a time).",
    )(function)


_STYLES = {"bold": {"bold": True}, "dim": {"dim": True}}


def _painter(enabled: bool) -> Callable[[str, str], str]:
    if not enabled:
        return lambda text, color: text
    return lambda text, color: click.style(text, **_STYLES.get(color, {"fg": color}))


def _say(message: str) -> None:
    """Talk (progress, summaries, warnings) goes to stderr; data goes to stdout."""
    click.echo(message, err=True)


def _write_file(path: str, text: str) -> None:
    """Write atomically (temp file + rename) with owner-only permissions: plans can hold PII."""
    target = Path(path)
    temp = target.with_name(f".{target.name}.nexus-tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temp, target)


# --- shared options -----------------------------------------------------------------------------------


def database_option(function: F) -> F:
    return click.option(
        "--database-url",
        metavar="URL",
        help="Database URL (else $NEXUS_DATABASE_URL, else sqlite:///nexus.db).",
    )(function)


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
    return click.option(
        "--org", "orgs", multiple=True, metavar="SLUG", help="Only this organization (repeatable)."
    )(function)


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


def paths_argument(required: bool = True) -> Callable[[F], F]:
    return click.argument("paths", nargs=-1, required=required, type=click.Path(path_type=str))


# --- configuration and database ------------------------------------------------------------------------


def _load(
    paths: Sequence[str], fmt: str = "text", *, scan: Any = None, skip: Any = None
) -> tuple[LoadResult, Locator]:
    locator = Locator()
    result = load_configuration(paths, locator, scan=scan, skip=skip)
    if result.problems:
        if fmt == "json" and not result.ok:
            click.echo(problems_to_json(result.problems), nl=False)
        else:
            click.echo(problems_to_text(result.problems), err=True, nl=False)
    if not result.ok:
        raise ConfigurationInvalid("the configuration has errors; nothing was planned or applied")
    return result, locator


# --- commands -------------------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(
    VERSION,
    "--version",
    prog_name="nexus",
    message=f"%(prog)s %(version)s (config {CURRENT_VERSION}; reads nexus/v1beta1)",
)
@click.option(
    "--color", type=click.Choice(["auto", "always", "never"]), default="auto", help="Colour output."
)
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.pass_context
def cli(ctx: click.Context, color: str, debug: bool) -> None:
    """nexus: clinical-site configuration as code. validate → plan → apply.

    \b
    Exit codes: 0 success, 1 error, 2 changes present (plan --detailed-exitcode only).
    """
    ctx.obj = {"color": color, "debug": debug}


@cli.result_callback()
@click.pass_context
def _exit_with(ctx: click.Context, /, code: Any, **_: Any) -> None:
    """A command returns its exit code; this makes it the process's (also under click's CliRunner)."""
    if isinstance(code, int) and code:
        ctx.exit(code)


@cli.command()
@paths_argument()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@jobs_option
@_bulk
def validate(paths: tuple[str, ...], fmt: str, jobs: int | None) -> int:
    """Check configuration files: YAML, schema, references and rules. No database."""
    from plan_apply.batching import check_tree

    result = check_tree(paths, jobs=jobs or _cpus())
    if fmt == "json":
        click.echo(problems_to_json(result.problems), nl=False)
    elif result.problems:
        click.echo(problems_to_text(result.problems), nl=False)
    if result.ok:
        count = result.organizations
        _say(
            f"valid: {count} organization{'s' if count != 1 else ''} in {result.files} file{'s' if result.files != 1 else ''}"
        )
        return 0
    return 1


@cli.command()
@click.option(
    "--api-version",
    type=click.Choice(["nexus/v1", "nexus/v1beta1"]),
    default=CURRENT_VERSION,
    show_default=True,
)
def schema(api_version: str) -> int:
    """Print the JSON Schema of a configuration apiVersion (for editors and CI)."""
    from nexus_config.schemas import schema_text

    click.echo(schema_text(api_version), nl=False)
    return 0


def _render(plan: Any, fmt: str, color: bool) -> str:
    from plan_apply.render import render_json, render_markdown, render_text

    if fmt == "json":
        return render_json(plan)
    if fmt == "markdown":
        return render_markdown(plan)
    return render_text(plan, _painter(color))


@dataclass(frozen=True)
class PlanRequest:
    """What `plan` and `apply` were asked to compare."""

    paths: Sequence[str]
    orgs: Sequence[str]
    selectors: Sequence[str]
    database_url: str | None
    allow_mass_delete: bool = False
    full: bool = False
    fmt: str = "text"
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    shard: str | None = None
    jobs: int | None = None
    progress: bool = True


def _planning_jobs(url: str, jobs: int | None) -> int:
    """Worker processes for planning: each opens its own connection, so the database's dialect says how
    many may (a database private to this process is planned here)."""
    from plan_apply.database.engine import planning_workers

    return planning_workers(url, jobs or _cpus())


def _make_plan(request: PlanRequest) -> Any:
    """Plan the configuration against the database (incrementally unless --full); print its problems."""
    from plan_apply.database.engine import open_database, redact
    from plan_apply.diff import PlanOptions
    from plan_apply.planner import Selection, plan_tree
    from plan_apply.progress import planning_bar
    from plan_apply.selection import parse_shard

    selection = Selection(request.orgs, request.selectors, parse_shard(request.shard))
    bar = planning_bar(sys.stderr, enabled=request.progress and request.fmt == "text")
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
    if result.problems:
        if request.fmt == "json" and result.plan is None:
            click.echo(problems_to_json(result.problems), nl=False)
        else:
            click.echo(problems_to_text(result.problems), err=True, nl=False)
    if result.plan is None:
        raise ConfigurationInvalid("the configuration has errors; nothing was planned or applied")
    return result.plan


def output_options(function: F) -> F:
    function = click.option(
        "--quiet", "-q", is_flag=True, help="Print only the summary and what failed (no plan, no bar)."
    )(function)
    return click.option(
        "--progress/--no-progress", default=True, help="A progress bar on a terminal (stderr)."
    )(function)


@cli.command()
@paths_argument()
@selection_options
@database_option
@safety_options
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True
)
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
@click.option("--fail-on-drift", is_flag=True, help="Exit 1 when the database was changed outside nexus.")
@click.option(
    "--progress/--no-progress", default=True, help="A progress bar on a terminal (stderr, text format only)."
)
@jobs_option
@click.pass_obj
@_bulk
def plan(obj: dict[str, Any], /, **options: Any) -> int:
    """Show what apply would change in the database. Writes nothing to the database."""
    from plan_apply.render import color_enabled

    fmt, out = options["fmt"], options["out"]
    the_plan = _make_plan(_request(options))
    click.echo(_render(the_plan, fmt, color_enabled(sys.stdout, obj["color"])), nl=False)
    if out:
        _write_file(out, the_plan.to_json())
        _say(f"plan saved to {out}: apply it with `nexus apply --plan {out}`")
    if the_plan.has_problems:
        return 1
    if options["fail_on_drift"] and any(c.cause == "drift" for c in the_plan.changes):
        _say("drift found: the database was changed outside nexus")
        return 1
    return 2 if options["detailed_exitcode"] and the_plan.has_changes else 0


def _request(options: dict[str, Any], fmt: str | None = None) -> PlanRequest:
    return PlanRequest(
        paths=options["paths"],
        orgs=options["orgs"],
        selectors=options["selectors"],
        database_url=options["database_url"],
        allow_mass_delete=options["allow_mass_delete"],
        full=options["full"],
        fmt=fmt or options.get("fmt", "text"),
        lock_timeout=options.get("lock_timeout", DEFAULT_LOCK_TIMEOUT),
        shard=options["shard"],
        jobs=options.get("jobs"),
        progress=options.get("progress", True) and not options.get("quiet", False),
    )


def _confirm(auto_approve: bool) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise UsageProblem(
            "standard input is not a terminal: re-run with --auto-approve to apply without asking"
        )
    answer = click.prompt("Apply these changes? Only 'yes' will be accepted", default="", show_default=False)
    if answer.strip() != "yes":
        raise NexusError("apply cancelled; nothing was changed")


def _stale_orgs(engine: Any, the_plan: Any) -> list[str]:
    from plan_apply.database.reads import read_actual_state

    slugs = [o.slug for o in the_plan.organizations if o.changes]
    with engine.connect() as connection, connection.begin():
        actual = read_actual_state(connection, slugs)
    return [
        o.slug
        for o in the_plan.organizations
        if o.changes and actual.organizations[o.slug].fingerprint != o.state_fingerprint
    ]


def _saved_plan(plan_file: str, options: dict[str, Any]) -> Any:
    from plan_apply.database.engine import database_url as resolve_url
    from plan_apply.database.identity import saved_plan_refusal
    from plan_apply.plan import Plan
    from plan_apply.plan_file import PlanFileInvalid

    if options["paths"] or options["orgs"] or options["selectors"] or options["shard"]:
        raise UsageProblem("--plan applies a saved plan exactly: give no paths, --org, --selector or --shard")
    try:
        the_plan = Plan.from_json(Path(plan_file).read_text(encoding="utf-8"))
    except PlanFileInvalid as exc:
        raise NexusError(f"{plan_file}: {exc}") from None
    url = resolve_url(options["database_url"])
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
@click.pass_obj
@_bulk
def apply(obj: dict[str, Any], /, **options: Any) -> int:
    """Make the database match the configuration: plan, confirm, then apply per organization."""
    import sqlalchemy as sa

    from plan_apply.apply import ApplyOptions, apply_plan, default_actor, default_commit
    from plan_apply.database.engine import describe_failure, open_database
    from plan_apply.progress import reporter, summary_lines
    from plan_apply.render import color_enabled

    color = color_enabled(sys.stdout, obj["color"])
    plan_file = options["plan_file"]
    if plan_file:
        the_plan = _saved_plan(plan_file, options)
    else:
        if not options["paths"]:
            raise UsageProblem("give the configuration PATHs to apply, or --plan FILE")
        the_plan = _make_plan(_request(options, fmt="text"))
    if not options["quiet"]:
        click.echo(_render(the_plan, "text", color), nl=False)
    if the_plan.has_problems:
        raise NexusError("the plan has errors; nothing was applied")
    if not the_plan.has_changes:
        if options["quiet"]:
            _say("No changes. The database matches the configuration.")
        return 0
    if not plan_file:
        _confirm(options["auto_approve"])
    with open_database(options["database_url"], options["lock_timeout"], purpose=_command()) as (engine, url):
        if plan_file:
            stale = _stale_orgs(engine, the_plan)
            if stale:
                raise StalePlan(
                    f"the database changed since {plan_file} was made (organizations: {', '.join(stale)}); "
                    "nothing was applied: run plan again"
                )
        progress = reporter(sys.stderr, bar=None if options["progress"] else False, quiet=options["quiet"])
        progress.start(len(the_plan.organizations))
        try:
            result = apply_plan(
                engine,
                the_plan,
                ApplyOptions(
                    counter_propose=options["counter_propose"],
                    actor=default_actor(),
                    commit=default_commit(),
                    fail_fast=options["fail_fast"],
                    timeout_hint="--lock-timeout",
                ),
                on_result=progress.result,
                describe_error=lambda exc: (
                    describe_failure(exc, url) if isinstance(exc, sa.exc.SQLAlchemyError) else str(exc)
                ),
                jobs=_apply_jobs(url, options["jobs"]),
            )
        finally:
            progress.close()
    for line in summary_lines(result.organizations):
        _say(line)
    if not result.ok:
        raise NexusError("some organizations were not applied (listed above)")
    return 0


@cli.group()
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
        _say(f"{redact(url)}: schema already at revision {after}")
    else:
        _say(f"{redact(url)}: schema upgraded from {before or 'empty'} to {after}")
    return 0


@cli.command()
@database_option
@click.option("--org", "orgs", multiple=True, metavar="SLUG", help="Only this organization (repeatable).")
@click.option("--since", metavar="YYYY-MM-DD", help="Only applies on or after this date (UTC).")
@click.option("--until", metavar="YYYY-MM-DD", help="Only applies before the end of this date (UTC).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def history(
    database_url: str | None,
    orgs: tuple[str, ...],
    since: str | None,
    until: str | None,
    limit: int,
    fmt: str,
) -> int:
    """List past applies: when, who, which commit, what changed."""
    from plan_apply.database.engine import open_database
    from plan_apply.history import history_entries, render_history_json, render_history_text

    with open_database(database_url, purpose=_command()) as (engine, _url), engine.connect() as connection:
        entries = history_entries(connection, orgs=orgs, since=since, until=until, limit=limit)
    click.echo(render_history_json(entries) if fmt == "json" else render_history_text(entries), nl=False)
    return 0


def _register_file_commands() -> None:
    from plan_apply.file_commands import COMMANDS

    for command in COMMANDS:
        cli.add_command(command)


_register_file_commands()


# --- entry point --------------------------------------------------------------------------------------


def _hidden(text: str, args: Sequence[str]) -> str:
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


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI and exit with the contract's exit codes; no traceback for expected failures."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or bool(os.environ.get("NEXUS_DEBUG"))
    try:
        code = cli.main(args=args, prog_name="nexus", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        _say("aborted")
        code = 1
    except click.ClickException as exc:
        exc.show()
        code = 1  # usage errors exit 1: 2 means "changes present"
    except NexusError as exc:
        if not isinstance(exc, ConfigurationInvalid) or debug:
            _say(f"error: {exc.message}")
        else:
            _say(f"error: {exc.message}")
        code = exc.exit_code
    except KeyboardInterrupt:
        _say("interrupted")
        code = 130
    except Exception as exc:  # the unexpected: say so plainly, traceback only on request
        if debug:
            traceback.print_exc()
        _say(
            f"internal error: {type(exc).__name__}: {_hidden(str(exc), args)} (re-run with --debug for details)"
        )
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
