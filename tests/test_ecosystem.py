"""What ships for CI, editors and shells: workflow files, the problem matcher, pre-commit hooks, completion.

The workflows are documentation people copy: every `nexus ...` command line in them must be a real
command with real flags and choices, or a pipeline breaks the day it is adopted.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest

from nexus_config.yaml_reader import read_documents
from plan_apply.cli import cli

from .test_cli_plan_apply import Run

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = [ROOT / "examples" / "ci" / "github-actions.yml", ROOT / "examples" / "ci" / "gitlab-ci.yml"]
OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", "&", "(", ")", "2>", "2>&1"}


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(capsys, "")


def _load(path: Path) -> Any:
    documents, problems = read_documents(str(path), path.read_text(encoding="utf-8"))
    assert not problems, [p.as_text() for p in problems]
    [document] = documents
    return document.data


def _shell_scripts(node: Any) -> list[str]:
    """Every `run:` (GitHub) and `script:` / `before_script:` (GitLab) shell text in a workflow."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "run" and isinstance(value, str):
                found.append(value)
            elif key in ("script", "before_script") and isinstance(value, list):
                found.extend(v for v in value if isinstance(v, str))
            else:
                found.extend(_shell_scripts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_shell_scripts(item))
    return found


def _nexus_commands(script: str) -> list[list[str]]:
    """The argument lists of every `nexus` invocation in a shell script."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        if line.strip().startswith("#"):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
        for index, token in enumerate(tokens):
            if token == "nexus" and (index == 0 or tokens[index - 1] in OPERATORS | {"then", "do"}):
                args = []
                for arg in tokens[index + 1 :]:
                    if arg in OPERATORS:
                        break
                    args.append(arg)
                commands.append(args)
    return commands


def _check_command(args: list[str]) -> click.Command:
    """Walk the click tree like the parser would; fail on an unknown command, flag or choice."""
    command: click.Command = cli
    rest = list(args)
    while isinstance(command, click.Group):
        assert rest, f"nexus {' '.join(args)}: no subcommand"
        name = rest.pop(0)
        sub = command.get_command(click.Context(command), name)
        assert sub is not None, f"nexus {' '.join(args)}: no command {name!r}"
        command = sub
    options = {
        opt: p for p in command.params if isinstance(p, click.Option) for opt in p.opts + p.secondary_opts
    }
    while rest:
        token = rest.pop(0)
        if not token.startswith("-"):
            continue  # an argument (a path, a variable)
        name, _, inline = token.partition("=")
        assert name in options, f"nexus {' '.join(args)}: {command.name} has no option {name}"
        option = options[name]
        if option.is_flag or option.count:
            continue
        value = inline or rest.pop(0)
        if isinstance(option.type, click.Choice) and not value.startswith("$"):
            assert value in option.type.choices, (
                f"nexus {' '.join(args)}: {value!r} is not a choice of {name}"
            )
    return command


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_commands_are_real_commands_with_real_flags(path: Path, nexus: Run) -> None:
    commands = [args for script in _shell_scripts(_load(path)) for args in _nexus_commands(script)]
    assert commands, f"no nexus command found in {path}"
    names = set()
    for args in commands:
        command = _check_command(args)
        names.add(command.name)
        assert nexus(args[0], "--help", database=False) == 0
    assert {"validate", "plan", "apply", "fmt"} <= names
    joined = [" ".join(args) for args in commands]
    assert any(
        re.search(r"--out \S*plan\.json", c) and "--detailed-exitcode" in c and "--format markdown" in c
        for c in joined
    )
    assert any(re.match(r"apply --plan \S*plan\.json$", c) for c in joined)


def test_the_github_workflow_posts_one_comment_found_by_its_marker_and_keeps_the_plan() -> None:
    text = (ROOT / "examples" / "ci" / "github-actions.yml").read_text()
    workflow = _load(ROOT / "examples" / "ci" / "github-actions.yml")
    assert set(workflow["on"]) >= {"pull_request", "push"}
    jobs = workflow["jobs"]
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in jobs["plan"]["steps"])
    assert any(s.get("uses", "").startswith("actions/github-script") for s in jobs["comment"]["steps"])
    assert "<!-- nexus-plan -->" in text and "updateComment" in text
    assert '[ "$code" -ne 2 ]' in text  # exit 2 means "changes present", not failure
    assert "::add-matcher::" in text


def test_the_gitlab_pipeline_updates_one_note_and_applies_on_the_default_branch() -> None:
    pipeline = _load(ROOT / "examples" / "ci" / "gitlab-ci.yml")
    text = (ROOT / "examples" / "ci" / "gitlab-ci.yml").read_text()
    assert "<!-- nexus-plan -->" in text and "-X PUT" in text
    assert pipeline["plan"]["artifacts"]["public"] is False
    assert "$CI_DEFAULT_BRANCH" in pipeline["apply"]["rules"][0]["if"]


def test_the_problem_matcher_reads_nexus_errors(nexus: Run, write_tree: Any) -> None:
    tree = write_tree(
        {"x.yaml": "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: x}\nprofil: {}\n"}
    )
    assert nexus("validate", str(tree), database=False) == 1
    matcher = json.loads((ROOT / "examples" / "ci" / "nexus-problem-matcher.json").read_text())
    [pattern] = matcher["problemMatcher"][0]["pattern"]
    regexp = re.compile(pattern["regexp"])
    lines = nexus.err.splitlines()
    matches = [m for m in map(regexp.match, lines) if m]
    assert len(matches) == len(lines) - 1  # every problem, not the count line
    first = matches[0]
    assert first.group(pattern["file"]) == str(tree / "x.yaml")
    assert first.group(pattern["line"]).isdigit() and first.group(pattern["column"]).isdigit()
    assert first.group(pattern["severity"]) == "error"
    assert first.group(pattern["message"])


def test_the_problem_matcher_takes_the_located_line_not_the_plans_marked_one() -> None:
    matcher = json.loads((ROOT / "examples" / "ci" / "nexus-problem-matcher.json").read_text())
    [pattern] = matcher["problemMatcher"][0]["pattern"]
    regexp = re.compile(pattern["regexp"])
    assert regexp.match("  ! orgs/x.yaml:3:4: error: slots below booked") is None
    located = regexp.match("orgs/x.yaml:3:4: error: slots below booked")
    assert located is not None and located.group(pattern["file"]) == "orgs/x.yaml"


def test_pre_commit_hooks_name_existing_commands() -> None:
    hooks = {hook["id"]: hook for hook in _load(ROOT / ".pre-commit-hooks.yaml")}
    assert set(hooks) == {"nexus-fmt", "nexus-validate"}
    for hook in hooks.values():
        program, *args = shlex.split(hook["entry"])
        assert program == "nexus"
        _check_command(args + list(hook.get("args", [])))
        assert hook["language"] == "python"
    assert hooks["nexus-validate"]["pass_filenames"] is False
    assert hooks["nexus-validate"]["args"]
    assert hooks["nexus-fmt"].get("pass_filenames", True) is True


def test_completion_prints_click_scripts_for_each_shell(nexus: Run) -> None:
    for shell, marker in (("bash", "complete -o"), ("zsh", "compdef"), ("fish", "complete --no-files")):
        assert nexus("completion", shell, database=False) == 0
        assert "_NEXUS_COMPLETE" in nexus.out and marker in nexus.out
    assert nexus("completion", "powershell", database=False) == 1


def test_completion_completes_commands(nexus: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_NEXUS_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "nexus mig")
    monkeypatch.setenv("COMP_CWORD", "1")
    assert nexus(database=False) == 0
    assert nexus.out.split() == ["plain,migrate"]


def test_the_shipped_yaml_is_in_canonical_form(nexus: Run) -> None:
    shipped = [str(ROOT / ".pre-commit-hooks.yaml"), *map(str, WORKFLOWS)]
    assert nexus("fmt", "--check", *shipped, database=False) == 0, nexus.err
