"""`nexus validate`, `--version` and usage errors, as CI scripts see them: exit codes and streams.

Exit codes go through the real entry point (the console script's `plan_apply.__main__.main`, in a
subprocess where the process matters); the rest through click's CliRunner.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import nexus_config
from plan_apply.cli import cli, main

from .conftest import EXAMPLES

WriteTree = Callable[..., Path]
ROOT = Path(__file__).resolve().parents[1]
VALID = "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: lakeview}\nprofile: {name: Lakeview, type: hospital}\n"
UNROUTABLE = "postgresql+psycopg://nexus:s3cret-pw@10.255.255.1:5432/nexus?connect_timeout=30"


def nexus(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `nexus ARGS` as a user would (a new process, the real entry point)."""
    return subprocess.run(
        [sys.executable, "-m", "plan_apply", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {}), "NO_COLOR": "1"},
    )


def exit_code(*args: str) -> int:
    """The exit code `main` gives (in this process, quicker than a subprocess)."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    code = exited.value.code
    return code if isinstance(code, int) else 0


def test_the_examples_are_valid() -> None:
    run = nexus("validate", "examples/orgs")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "valid: 5 organizations in 13 files" in run.stderr
    assert "warning: apiVersion nexus/v1beta1 is deprecated" in run.stderr
    assert "error" not in run.stdout + run.stderr


def test_validating_the_examples_warns_that_the_v1beta1_file_is_deprecated() -> None:
    result = CliRunner().invoke(cli, ["validate", str(EXAMPLES)])
    warning = (
        f"{EXAMPLES}/riverbend-rehab/organization.yaml:10:13: warning: apiVersion nexus/v1beta1 is deprecated"
    )
    assert result.exit_code == 0 and warning in result.output


def test_invalid_configuration_exits_1_with_located_errors_on_stderr(write_tree: WriteTree) -> None:
    tree = write_tree({"org.yaml": VALID.replace("hospital", "hopsital")})
    run = nexus("validate", str(tree))
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr == (
        f'{tree}/org.yaml:4:{VALID.splitlines()[3].index("hospital") + 1}: error: profile.type: "hopsital" is not one of: health_system, hospital, clinic, other '
        '(did you mean "hospital"?)\n1 error in 1 file\n'
    )


def test_a_misspelt_flag_exits_1_not_2_and_suggests_the_flag() -> None:
    run = nexus("validate", "--fromat", "json", "examples/orgs")
    assert run.returncode == 1
    assert "No such option '--fromat'. Did you mean '--format'?" in run.stderr
    assert "did you mean" in run.stderr.lower()
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "--fromat", "json", "examples/orgs"],
        ["validate"],
        ["validate", "--format", "yaml", "examples/orgs"],
        ["valdate", "examples/orgs"],
        ["--no-such-flag"],
    ],
    ids=["unknown-flag", "no-path", "bad-choice", "unknown-command", "unknown-global-flag"],
)
def test_usage_errors_exit_1_never_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(*args) == 1
    assert "Error:" in capsys.readouterr().err


def test_version_prints_the_package_version() -> None:
    run = nexus("--version")
    assert run.returncode == 0
    assert run.stdout.startswith(f"nexus {nexus_config.__version__} ")
    assert "nexus/v1" in run.stdout


def test_version_answered_before_the_command_line_loads_is_what_the_command_line_prints() -> None:
    """`nexus --version` alone skips click; with another flag click answers it: both say the same."""
    assert nexus("--version").stdout == CliRunner().invoke(cli, ["--color", "never", "--version"]).output


def test_the_version_is_the_installed_packages() -> None:
    assert nexus_config.__version__ == importlib.metadata.version("nexus-config")


def test_an_empty_directory_exits_1_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code("validate", str(tmp_path)) == 1
    out = capsys.readouterr().err
    assert out.splitlines() == [
        f"{tmp_path}:1:1: error: no configuration files (*.yaml, *.yml) found here",
        "1 error in 1 file",
    ]


def test_a_missing_path_exits_1_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-dir"
    assert exit_code("validate", str(missing)) == 1
    assert capsys.readouterr().err.splitlines()[0] == f"{missing}:1:1: error: no such file or directory"


def test_one_bad_path_among_good_ones_still_reports_everything(
    write_tree: WriteTree, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = write_tree({"org.yaml": VALID.replace("{slug: lakeview}", "{slug: lakeview, colour: blue}")})
    assert exit_code("validate", str(tree), str(tmp_path / "missing")) == 1
    out = capsys.readouterr().err
    assert "no such file or directory" in out and 'unknown field "colour"' in out
    assert "2 errors in 2 files" in out.splitlines()


def test_validate_never_touches_the_database() -> None:
    """An unroutable PostgreSQL URL would hang a connection for 30 s: validate must not even try."""
    run = nexus("validate", "examples/orgs", env={"NEXUS_DATABASE_URL": UNROUTABLE})
    assert run.returncode == 0, run.stderr
    assert "s3cret-pw" not in run.stdout + run.stderr and "10.255.255.1" not in run.stdout + run.stderr


def test_validate_has_no_database_flag() -> None:
    assert exit_code("validate", "--database-url", UNROUTABLE, "examples/orgs") == 1


def test_json_format_writes_only_json_to_stdout(write_tree: WriteTree) -> None:
    tree = write_tree({"org.yaml": VALID + "servics: []\n"})
    run = nexus("validate", "--format", "json", str(tree))
    assert run.returncode == 1
    assert run.stdout.startswith("[") and run.stdout.rstrip().endswith("]")
    assert '"path": "/servics"' in run.stdout and '"line": 5' in run.stdout
    assert [p["format_version"] for p in json.loads(run.stdout)] == [1]


def test_json_problems_carry_the_pointer_and_line_of_what_is_wrong(write_tree: WriteTree) -> None:
    tree = write_tree({"x.yaml": "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: x1}\n"})
    run = nexus("validate", str(tree), "--format", "json")
    assert run.returncode == 1
    (problem,) = json.loads(run.stdout)
    assert problem["path"] == "/metadata/slug" and problem["line"] == 3
    assert 'organization "x1" has no profile' in problem["message"]


def test_a_valid_tree_exits_0_and_says_how_much_it_read(
    write_tree: WriteTree, capsys: pytest.CaptureFixture[str]
) -> None:
    assert exit_code("validate", str(write_tree({"org.yaml": VALID}))) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "valid: 1 organization in 1 file\n"
