"""The shipped examples are valid, and apply then plan is empty on both backends."""

from __future__ import annotations

from click.testing import CliRunner

from nexus_config import load_configuration
from plan_apply.cli import cli

from .conftest import EXAMPLES


def test_examples_validate_without_errors() -> None:
    result = load_configuration([EXAMPLES])
    assert result.ok, [p.as_text() for p in result.errors]
    assert len(result.state.organizations) == 5


def test_examples_apply_then_plan_reports_no_changes(database_url: str) -> None:
    runner = CliRunner()
    applied = runner.invoke(
        cli,
        ["apply", str(EXAMPLES), "--auto-approve", "--database-url", database_url],
        catch_exceptions=False,
    )
    assert applied.exit_code == 0, applied.output
    planned = runner.invoke(
        cli,
        ["plan", str(EXAMPLES), "--detailed-exitcode", "--database-url", database_url],
        catch_exceptions=False,
    )
    assert planned.exit_code == 0, planned.output
    assert "No changes" in planned.output
