"""`nexus history`: the apply log from the database, filtered, in the format asked for.

Registered by the CLI at start-up: the database modules are imported when it runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from plan_apply.command_options import Day, HistoryArgs, database_option, format_option, org_option, takes
from plan_apply.console import show_data
from plan_apply.errors import UsageProblem

__all__ = ["history"]


@click.command("history")
@database_option
@org_option("Only these organizations (repeatable, or a comma list).")
@click.option("--since", type=Day(), help="Only applies on or after this day (UTC).")
@click.option("--until", type=Day(), help="Only applies on or before this day (UTC).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@format_option("history")
@takes(HistoryArgs)
def history(options: HistoryArgs) -> int:
    """List past applies: when, who, which commit, what changed."""
    from plan_apply.database.engine import open_database, redact
    from plan_apply.history import history_entries, recorded_organizations
    from plan_apply.views import view

    with (
        open_database(options.database_url, purpose="history") as (engine, url),
        engine.connect() as connection,
    ):
        entries = history_entries(
            connection, orgs=options.orgs, since=options.since, until=options.until, limit=options.limit
        )
        unknown = [slug for slug in options.orgs if slug not in (known := recorded_organizations(connection))]
    if unknown:
        raise UsageProblem(_unknown_organizations(unknown, known, redact(url)))
    shown = view(options.fmt, "history")
    assert shown is not None  # --format offers only formats that show the history
    show_data(shown.render_history(entries))
    return 0


def _unknown_organizations(unknown: Sequence[str], known: Sequence[str], database: str) -> str:
    """ "no organization "x" in DATABASE (did you mean "y"?)" for each slug it does not know."""
    import difflib

    from plan_apply.views.escape import escape_terminal

    parts = []
    for slug in unknown:
        close = difflib.get_close_matches(slug, known, n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        parts.append(f'"{slug}"{hint}')
    return escape_terminal(f"{database} knows no organization {', '.join(parts)}")
