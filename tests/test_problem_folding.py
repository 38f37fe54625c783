"""The same problem repeated in one file is one line of text naming the others; JSON keeps each one."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from nexus_config import Problem, problems_to_text
from plan_apply.cli import cli

ENUM = '"wizard" is not one of: admin, coordinator, viewer'


def _unknown_step(line: int, file: str = "a.yaml") -> Problem:
    return Problem(file, 'unknown step "intake"', line=line, column=9, code="ref.step")


def _aliased_staff(tmp_path: Path, uses: int) -> Path:
    """One staff entry with a bad role, anchored once and used `uses` times through aliases."""
    lines = [
        "apiVersion: nexus/v1",
        "kind: Organization",
        "metadata: {slug: alias-clinic}",
        "staff:",
        "  - &person {email: a@x.org, name: A, role: wizard}",
        *["  - *person"] * (uses - 1),
    ]
    (tmp_path / "org.yaml").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_a_problem_repeated_in_one_file_is_one_line_naming_the_other_lines() -> None:
    text = problems_to_text([_unknown_step(line) for line in (3, 7, 9)])
    assert text == (
        'a.yaml:3:9: error: unknown step "intake" (and 2 more like it: lines 7, 9)\n3 errors in 1 file\n'
    )


def test_a_folded_problem_names_five_other_lines_and_counts_the_rest() -> None:
    text = problems_to_text([_unknown_step(line) for line in range(1, 21)])
    assert text.splitlines()[0].endswith("(and 19 more like it: lines 2, 3, 4, 5, 6 and 14 other lines)")


def test_the_same_problem_in_two_files_is_a_line_in_each() -> None:
    text = problems_to_text([_unknown_step(3, "a.yaml"), _unknown_step(3, "b.yaml")])
    assert text.splitlines() == [
        'a.yaml:3:9: error: unknown step "intake"',
        'b.yaml:3:9: error: unknown step "intake"',
        "2 errors in 2 files",
    ]


def test_problems_with_different_messages_or_codes_are_not_folded() -> None:
    other_message = Problem("a.yaml", 'unknown step "exit"', line=4, column=9, code="ref.step")
    other_code = Problem("a.yaml", 'unknown step "intake"', line=5, column=9, code="ref.other")
    assert len(problems_to_text([_unknown_step(3), other_message, other_code]).splitlines()) == 4


def test_a_problem_reached_through_many_yaml_aliases_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--color", "never", "validate", str(_aliased_staff(tmp_path, 50))])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if ENUM in line]
    # The first place names its field; the 49 others reached the same node through other fields.
    assert lines == [
        f"{tmp_path}/org.yaml:5:45: error: staff[0].role: {ENUM} (and 49 more like it: 49 on the same line)"
    ]
    assert "50 errors in 1 file" in result.output


def test_json_problems_keep_every_repeated_location(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--color", "never", "validate", str(_aliased_staff(tmp_path, 50)), "--format", "json"]
    )
    problems = json.loads(result.stdout)
    assert sorted(p["path"] for p in problems) == sorted(f"/staff/{i}/role" for i in range(50))
