"""What the command line prints where: the database a plan was made against, located problems on
stderr in every format, colour, refused flags, and escaping of every string from files, environment
and database (issue 14)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from plan_apply.cli import cli
from plan_apply.views.escape import escape_markdown

from .test_cli_plan_apply import ORG, OTHER, Run

MATCHER = json.loads((Path(__file__).parents[1] / "examples/ci/nexus-problem-matcher.json").read_text())
PATTERN = re.compile(MATCHER["problemMatcher"][0]["pattern"][0]["regexp"])


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str], database_url: str) -> Run:
    return Run(capsys, database_url)


@pytest.fixture
def tree(write_tree: Callable[..., Path]) -> Path:
    return write_tree({"lakeview.yaml": ORG.replace(", PROTECT", ""), "hillcrest.yaml": OTHER})


def _slots_below_booked_rotations(nexus: Run, write_tree: Callable[..., Path]) -> Path:
    """A window with two rotations booked, and a configuration that lowers its slots to one: a plan-time
    error located at the slots."""
    assert (
        nexus("apply", str(write_tree({"lakeview.yaml": ORG.replace(", PROTECT", "")})), "--auto-approve")
        == 0
    )
    engine = sa.create_engine(nexus.url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        for student in ("Student One", "Student Two"):
            connection.execute(
                sa.text(
                    "INSERT INTO rotations (capacity_window_id, student, start_date, end_date) VALUES "
                    "((SELECT id FROM capacity_windows WHERE key = 'spring'), :student, '2027-02-01', '2027-02-28')"
                ),
                {"student": student},
            )
    engine.dispose()
    return write_tree(
        {"lakeview.yaml": ORG.replace(", PROTECT", "").replace("slots: 4", "slots: 1")}, root="fewer"
    )


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_a_plan_names_the_database_it_was_compared_against_without_its_password(
    capsys: pytest.CaptureFixture[str], database_url: str, tree: Path, fmt: str
) -> None:
    with_password = re.sub(r"://([^:@/]+)@", r"://\1:s3cret-pw@", database_url)
    nexus = Run(capsys, with_password)
    assert nexus("plan", str(tree), "--format", fmt) == 0
    assert "s3cret-pw" not in nexus.output
    shown = with_password.replace("s3cret-pw", "***")
    assert f"Against {shown}" in nexus.out or f"Against `{shown}`" in nexus.out


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_plan_time_errors_print_a_located_line_on_stderr_in_every_format(
    nexus: Run, write_tree: Callable[..., Path], fmt: str
) -> None:
    fewer = _slots_below_booked_rotations(nexus, write_tree)
    assert nexus("plan", str(fewer), "--format", fmt) == 1
    located = [m for m in map(PATTERN.match, nexus.err.splitlines()) if m]
    assert [(m.group(1), m.group(4)) for m in located] == [(str(fewer / "lakeview.yaml"), "error")]


def test_validate_and_plan_print_configuration_problems_on_stderr(
    nexus: Run, write_tree: Callable[..., Path]
) -> None:
    broken = write_tree({"lakeview.yaml": ORG.replace(", PROTECT", "").replace("hospital", "hopsital")})
    assert nexus("validate", str(broken), database=False) == 1
    validated = nexus.err
    assert nexus("plan", str(broken)) == 1
    assert nexus.out == "" and validated in nexus.err
    assert f"{broken / 'lakeview.yaml'}:" in validated


@pytest.mark.parametrize("color", [["--color", "always"], ["--color=always"]])
def test_color_after_the_command_colours_piped_output(nexus: Run, tree: Path, color: list[str]) -> None:
    assert nexus("plan", str(tree), *color) == 0
    assert "\x1b[" in nexus.out


def test_force_color_colours_piped_output_unless_color_never(
    nexus: Run, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert nexus("plan", str(tree)) == 0
    assert "\x1b[" in nexus.out
    assert nexus("plan", str(tree), "--color", "never") == 0
    assert "\x1b[" not in nexus.out


@pytest.mark.parametrize("flag", ["--full", "--allow-mass-delete"])
def test_applying_a_saved_plan_refuses_flags_it_would_ignore(
    nexus: Run, tree: Path, tmp_path: Path, flag: str
) -> None:
    saved = tmp_path / "plan.json"
    assert nexus("plan", str(tree), "--out", str(saved)) == 0
    assert nexus("apply", "--plan", str(saved), flag) == 1
    assert flag in nexus.err and "nothing" not in nexus.out


def test_apply_without_a_terminal_fails_before_printing_the_plan(nexus: Run, tree: Path) -> None:
    assert nexus("apply", str(tree)) == 1
    assert nexus.out == ""
    assert "--auto-approve" in nexus.err


def test_export_to_a_dash_is_refused_and_creates_nothing(
    nexus: Run, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert nexus("apply", str(tree), "--auto-approve") == 0
    monkeypatch.chdir(tmp_path)
    assert nexus("export", "--org", "lakeview", "--out", "-") == 1
    assert "--out" in nexus.err
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize(
    "orgs", [["--org", "lakeview,hillcrest"], ["--org", "lakeview", "--org", "hillcrest"]]
)
def test_org_takes_repeated_flags_and_comma_lists(nexus: Run, tree: Path, orgs: list[str]) -> None:
    assert nexus("plan", str(tree), *orgs, "--format", "json") == 0
    assert {o["slug"] for o in json.loads(nexus.out)["organizations"]} == {"lakeview", "hillcrest"}


def test_org_completes_the_slugs_of_the_configuration(tree: Path) -> None:
    env = {
        "_NEXUS_COMPLETE": "bash_complete",
        "COMP_WORDS": f"nexus plan {tree} --org hillcrest,la",
        "COMP_CWORD": "4",
    }
    result = CliRunner().invoke(cli, prog_name="nexus", env=env, complete_var="_NEXUS_COMPLETE")
    assert result.output.split() == ["plain,hillcrest,lakeview"]


def test_history_of_an_unknown_organization_is_an_error_with_a_suggestion(nexus: Run, tree: Path) -> None:
    assert nexus("apply", str(tree), "--auto-approve") == 0
    assert nexus("history", "--org", "lakevew") == 1
    assert 'did you mean "lakeview"' in nexus.err


def test_validate_and_history_json_carry_a_format_version(nexus: Run, tree: Path) -> None:
    # CLI.md fixes validate's JSON as a list of problem objects: each object carries the version.
    assert nexus("validate", str(tree), "--format", "json", database=False) == 0
    assert json.loads(nexus.out) == []
    (tree / "typo.yaml").write_text("apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: x1}\n")
    assert nexus("validate", str(tree), "--format", "json", database=False) == 1
    assert [p["format_version"] for p in json.loads(nexus.out)] == [1]
    assert nexus("history", "--format", "json") == 0
    assert json.loads(nexus.out) == {"format_version": 1, "applies": []}


def test_markdown_shows_mentions_and_email_addresses_as_code() -> None:
    shown = escape_markdown("ask @clinical-team or placements@state.example.edu")
    assert shown == "ask `@clinical-team` or `placements@state.example.edu`"


def _no_channel(output: str) -> None:
    """Nothing a CI runner or a terminal would act on: no workflow command line, no escape character."""
    assert "\x1b" not in output
    assert not [line for line in output.splitlines() if line.lstrip().startswith("::")]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_file_name_never_starts_a_workflow_command(
    nexus: Run, write_tree: Callable[..., Path], fmt: str
) -> None:
    hostile = "x\n::error file=a.yaml::pwned\x1b[31m.yaml"
    broken = write_tree({hostile: "apiVersion: nexus/v1\nkind: Organization\nmetadata: [\n"})
    assert nexus("validate", str(broken), "--format", fmt, database=False) == 1
    _no_channel(nexus.out + nexus.err)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_an_actor_from_the_environment_never_starts_a_workflow_command(
    nexus: Run, tree: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setenv("NEXUS_ACTOR", "bot\n::error::pwned\x1b[31m")
    assert nexus("apply", str(tree), "--auto-approve") == 0
    assert nexus("history", "--format", fmt) == 0
    _no_channel(nexus.out + nexus.err)
