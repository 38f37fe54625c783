"""Commands that read or write configuration files: validate, schema, fmt, migrate, export, render,
completion.

Thin: parse, call `nexus_config.rewrite` / `nexus_config.migrate` / `plan_apply.export`, print, write,
exit. Their modules (and ruamel.yaml) are imported inside the commands, never on validate/plan's path.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from nexus_config import CURRENT_VERSION
from plan_apply.command_options import (
    ValidateArgs,
    color_choice,
    format_option,
    jobs_option,
    org_option,
    paths_argument,
    takes,
)
from plan_apply.console import say, show_data, show_problems
from plan_apply.errors import UsageProblem

if TYPE_CHECKING:
    from nexus_config.problems import Problem

__all__ = ["COMMANDS"]

COMMANDS: list[click.Command] = []


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _paths(function: Callable[..., Any]) -> Callable[..., Any]:
    return paths_argument()(function)


@click.command("validate")
@paths_argument()
@format_option("problems")
@jobs_option
@takes(ValidateArgs)
def validate(options: ValidateArgs) -> int:
    """Check configuration files: YAML, schema, references and rules. No database."""
    from nexus_config.heap import bulk_heap
    from plan_apply.batching import check_tree

    with bulk_heap():
        result = check_tree(options.paths, jobs=options.jobs or max(1, os.cpu_count() or 1))
    show_problems(result.problems, options.fmt)
    if not result.ok:
        return 1
    say(f"valid: {_plural(result.organizations, 'organization')} in {_plural(result.files, 'file')}")
    return 0


@click.command("schema")
@click.option(
    "--api-version",
    type=click.Choice(["nexus/v1", "nexus/v1beta1"]),
    default=CURRENT_VERSION,
    show_default=True,
)
def schema(api_version: str) -> int:
    """Print the JSON Schema of a configuration apiVersion (for editors and CI)."""
    from nexus_config.schemas import schema_text

    show_data(schema_text(api_version))
    return 0


def _dry_run_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option(
        "--diff",
        "show_diff",
        is_flag=True,
        help="Write nothing; print what would change as a unified diff (exit 1 if anything would).",
    )(function)
    return click.option(
        "--check",
        is_flag=True,
        help="Write nothing; list the files that would change on stderr and exit 1 if there are any.",
    )(function)


def _colored_diff(diff: str, color: bool) -> str:
    if not color:
        return diff
    lines = []
    for line in diff.splitlines(keepends=True):
        if line.startswith(("+++", "---")):
            lines.append(click.style(line, bold=True))
        elif line.startswith("+"):
            lines.append(click.style(line, fg="green"))
        elif line.startswith("-"):
            lines.append(click.style(line, fg="red"))
        elif line.startswith("@@"):
            lines.append(click.style(line, fg="cyan"))
        else:
            lines.append(line)
    return "".join(lines)


def _report(problems: Sequence[Problem]) -> None:
    show_problems(sorted(problems, key=lambda p: p.sort_key), "text")


def _apply_rewrites(
    rewrites: Sequence[Any],
    roots: Mapping[str, str],
    problems: list[Problem],
    *,
    check: bool,
    show_diff: bool,
    all_or_nothing: bool,
) -> list[Any]:
    """Print, check or write the changed files; returns those that changed (written unless dry)."""
    from nexus_config.problems import Problem
    from nexus_config.rewrite import symlink_in_path, unified_diff, write_atomically
    from plan_apply.views.color import color_enabled

    changed = [r for r in rewrites if r.changed]
    if show_diff:
        color = color_enabled(sys.stdout, color_choice())
        for rewrite in changed:
            show_data(_colored_diff(unified_diff(rewrite.file, rewrite.before, rewrite.after), color), color)
    if check:
        for rewrite in changed:
            say(f"would rewrite {rewrite.file}")
    if check or show_diff:
        return changed
    refused = set()
    for rewrite in changed:
        link = symlink_in_path(rewrite.file, roots.get(rewrite.file, os.path.dirname(rewrite.file) or "."))
        if link is not None:
            refused.add(rewrite.file)
            problems.append(
                Problem(
                    rewrite.file,
                    f"not rewritten: {link} is a symlink and nexus never writes through one "
                    "(run it on the file the link points to)",
                    code="file",
                )
            )
    if all_or_nothing and (refused or any(p.severity == "error" for p in problems)):
        return []
    written = []
    for rewrite in changed:
        if rewrite.file in refused:
            continue
        try:
            write_atomically(rewrite.file, rewrite.after)
        except (OSError, ValueError) as exc:
            problems.append(
                Problem(rewrite.file, f"cannot write: {getattr(exc, 'strerror', None) or exc}", code="file")
            )
            continue
        written.append(rewrite)
    return written


@click.command("fmt")
@_paths
@_dry_run_options
def fmt(paths: tuple[str, ...], check: bool, show_diff: bool) -> int:
    """Rewrite YAML files in canonical form, keeping comments and key order.

    \b
    Only *.yaml/*.yml files under PATHS. A file with YAML errors is reported and left alone.
    Exit codes: 0 done (or, with --check/--diff, nothing to change); 1 a file would change or has errors.
    """
    from nexus_config.discovery import discover
    from nexus_config.rewrite import format_text, read_text

    found, problems = discover(list(paths))
    rewrites = []
    for file in found:
        text, read_problems = read_text(file.path)
        problems.extend(read_problems)
        if text is not None:
            rewrite = format_text(file.path, text)
            problems.extend(rewrite.problems)
            rewrites.append(rewrite)
    roots = {file.path: file.root for file in found}
    changed = _apply_rewrites(
        rewrites, roots, problems, check=check, show_diff=show_diff, all_or_nothing=False
    )
    _report(problems)
    unchanged = sum(1 for r in rewrites if r.after == r.before)
    if check or show_diff:
        say(f"{_plural(len(changed), 'file')} would be reformatted, {unchanged} already formatted")
    else:
        say(f"{_plural(len(changed), 'file')} reformatted, {unchanged} left unchanged")
    return 1 if problems or ((check or show_diff) and changed) else 0


@click.command("migrate")
@_paths
@_dry_run_options
def migrate(paths: tuple[str, ...], check: bool, show_diff: bool) -> int:
    """Rewrite nexus/v1beta1 documents as nexus/v1 in place, keeping comments.

    \b
    The whole tree is checked first: nothing is written if any file has errors, or if the rewritten
    files would not load to exactly the same configuration. Rewritten files are in canonical form.
    """
    from nexus_config.migrate import migrate_tree

    migration = migrate_tree(paths)
    problems = list(migration.problems)
    if not migration.ok:
        _report(problems)
        say("nothing was migrated: fix the errors above first")
        return 1
    written = _apply_rewrites(
        migration.rewrites, migration.roots, problems, check=check, show_diff=show_diff, all_or_nothing=True
    )
    _report(problems)
    if problems:
        say("nothing was migrated")
        return 1
    if not migration.rewrites:
        say("nothing to migrate: every document is nexus/v1")
        return 0
    if check or show_diff:
        say(f"{_plural(len(written), 'file')} would be migrated to nexus/v1")
        return 1
    for rewrite in written:
        say(f"migrated {rewrite.file}")
    say(f"{_plural(len(written), 'file')} migrated to nexus/v1")
    return 0


@click.command("export")
@org_option("Export these organizations (repeatable, or a comma list).", required=True)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Write DIR/SLUG/organization.yaml (and its documents) here.",
)
@click.option(
    "--database-url", metavar="URL", help="Database URL (else $NEXUS_DATABASE_URL, else sqlite:///nexus.db)."
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist (a previous export).")
@click.option(
    "--factor",
    is_flag=True,
    help="Write services that several facilities of an exported parent share as service templates of "
    "that parent, each facility keeping only what differs.",
)
def export(orgs: tuple[str, ...], out_dir: str, database_url: str | None, force: bool, factor: bool) -> int:
    """Write what the database holds for organizations as nexus/v1 files.

    \b
    Managed and unmanaged (web UI) rows alike; archived rows are history and are left out. Parents are
    exported with their children (a child's configuration needs its parent in the same tree). Planning
    the written files against the same database creates, updates or deletes nothing.
    """
    from nexus_config import load_configuration
    from nexus_config.schemas import json_schema
    from plan_apply.database.engine import open_database
    from plan_apply.export import (
        covered_facilities,
        read_export,
        render_export,
        schema_reference,
        write_export,
    )

    if out_dir == "-":
        raise UsageProblem("export writes a folder of files per organization: --out takes a folder, not -")
    with open_database(database_url, purpose="export") as (engine, _url), engine.connect() as connection:
        state, contents, added = read_export(connection, orgs)
    covered = set().union(*(covered_facilities(org) for org in state.organizations.values()))
    for slug in added:
        why = (
            "a facility a system-wide agreement covers" if slug in covered else "a parent of an organization"
        )
        say(f"also exporting {slug}: {why} asked for")
    slugs = [*dict.fromkeys(orgs), *added]
    reference = schema_reference(out_dir, json_schema("nexus/v1")["$id"])
    exported = render_export(state, slugs, contents, reference, factor=factor)
    written = write_export(out_dir, exported.files, force=force)
    for note in exported.notes:
        say(f"note: {note}")
    org_dirs = [os.path.join(out_dir, slug) for slug in slugs]
    ours = {os.path.normpath(p) for p in written}
    for directory in org_dirs:
        for name in sorted(os.listdir(directory)):
            path = os.path.normpath(os.path.join(directory, name))
            if name.endswith((".yaml", ".yml")) and path not in ours:
                say(f"note: {path} was already there and is not part of this export: plans will read it too")
    yaml_files = sum(1 for f in exported.files if f.path[-1] == "organization.yaml")
    say(
        f"exported {_plural(len(slugs), 'organization')} to {out_dir} "
        f"({_plural(yaml_files, 'file')}, {_plural(len(exported.files) - yaml_files, 'document')})"
    )
    loaded = load_configuration(org_dirs)
    if not loaded.ok:
        _report(loaded.errors)
        say(
            "error: the database holds what a configuration cannot say (listed above): fix those files "
            "before planning them"
        )
        return 1
    return 0


@click.command("render")
@paths_argument()
@org_option("Only these organizations (repeatable, or a comma list); default: every one.")
@click.option(
    "--origin",
    is_flag=True,
    help="Say where each value was written: file:line, and the template it came from.",
)
def render(paths: tuple[str, ...], orgs: tuple[str, ...], origin: bool) -> int:
    """Print organizations' effective configuration, templates expanded, as nexus/v1 YAML.

    \b
    One document per organization: exactly what `nexus plan` compares with the database. No database.
    """
    from nexus_config import load_configuration
    from nexus_config.locations import Locator
    from nexus_config.suggest import did_you_mean
    from plan_apply.effective import effective_texts

    locator = Locator()
    loaded = load_configuration(paths, locator)
    show_problems(loaded.problems, "text")
    if not loaded.ok:
        return 1
    known = loaded.state.organizations
    for slug in orgs:
        if slug not in known:
            raise UsageProblem(
                f'organization "{slug}" is not in {", ".join(paths)}{did_you_mean(slug, known)}'
            )
    chosen = {slug: known[slug] for slug in known if not orgs or slug in orgs}
    show_data(effective_texts(chosen, locator=locator if origin else None))
    return 0


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> int:
    """Print the shell completion script for SHELL.

    \b
    bash:  eval "$(nexus completion bash)"        (in ~/.bashrc; bash 4.4 or later)
    zsh:   eval "$(nexus completion zsh)"         (in ~/.zshrc)
    fish:  nexus completion fish > ~/.config/fish/completions/nexus.fish
    """
    from click.shell_completion import get_completion_class

    shell_class = get_completion_class(shell)
    assert shell_class is not None  # every choice is a shell click knows
    root = ctx.find_root().command
    click.echo(shell_class(root, {}, "nexus", "_NEXUS_COMPLETE").source())
    return 0


COMMANDS.extend([validate, schema, fmt, migrate, export, render, completion])
