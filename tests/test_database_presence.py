"""Which commands may create a database (issue 14): an empty database URL is an error naming where it
came from, only `apply` creates the embedded default (and `db upgrade` any database), and commands that
only read (`plan`, `history`, `export`) never create one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .test_cli_plan_apply import ORG, Run


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with no `nexus.db`, and no NEXUS_DATABASE_URL: the embedded default is in force."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("NEXUS_DATABASE_URL", raising=False)
    return folder


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(capsys, None)


@pytest.fixture
def tree(write_tree: Callable[..., Path]) -> Path:
    return write_tree({"lakeview.yaml": ORG.replace(", PROTECT", "")})


def test_an_empty_nexus_database_url_is_an_error_naming_the_variable(
    nexus: Run, tree: Path, here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEXUS_DATABASE_URL", "")
    for command in (
        ["plan", str(tree)],
        ["apply", str(tree), "--auto-approve"],
        ["history"],
        ["db", "upgrade"],
    ):
        assert nexus(*command) == 1
        assert "NEXUS_DATABASE_URL is set but empty" in nexus.err
    assert list(here.iterdir()) == []


def test_an_empty_database_url_option_is_an_error(nexus: Run, tree: Path, here: Path) -> None:
    assert nexus("apply", str(tree), "--auto-approve", "--database-url", "") == 1
    assert "database URL given is empty" in nexus.err
    assert list(here.iterdir()) == []


def test_plan_before_the_embedded_database_exists_shows_everything_to_create_and_creates_nothing(
    nexus: Run, tree: Path, here: Path
) -> None:
    assert nexus("plan", str(tree), "--detailed-exitcode") == 2
    assert "to create" in nexus.out
    assert not (here / "nexus.db").exists()


def test_apply_creates_the_embedded_database_on_first_use(nexus: Run, tree: Path, here: Path) -> None:
    assert nexus("apply", str(tree), "--auto-approve") == 0, nexus.err
    assert (here / "nexus.db").is_file()
    assert nexus("plan", str(tree), "--detailed-exitcode") == 0


def test_a_plan_saved_before_the_embedded_database_exists_is_applied(
    nexus: Run, tree: Path, here: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    assert nexus("plan", str(tree), "--out", str(saved)) == 0
    assert nexus("apply", "--plan", str(saved)) == 0, nexus.err
    assert nexus("plan", str(tree), "--detailed-exitcode") == 0


@pytest.mark.parametrize("command", [["history"], ["export", "--org", "lakeview", "--out", "exported"]])
def test_a_reading_command_in_a_folder_without_the_database_names_the_file_and_creates_none(
    nexus: Run, here: Path, command: list[str]
) -> None:
    assert nexus(*command) == 1
    assert str(here / "nexus.db") in nexus.err and "does not exist" in nexus.err
    assert not (here / "nexus.db").exists()


@pytest.mark.parametrize(
    "command",
    [["plan", "{tree}"], ["apply", "{tree}", "--auto-approve"], ["history"], ["export", "--org", "x"]],
)
def test_no_command_but_db_upgrade_creates_a_sqlite_file_that_was_named(
    nexus: Run, tree: Path, tmp_path: Path, here: Path, command: list[str]
) -> None:
    missing = tmp_path / "missing.db"
    arguments = [a.format(tree=tree) for a in command]
    if arguments[0] == "export":
        arguments += ["--out", str(tmp_path / "exported")]
    assert nexus(*arguments, "--database-url", f"sqlite:///{missing}") == 1
    assert "has no nexus schema" in nexus.err and str(missing) in nexus.err
    assert not missing.exists()
    assert nexus("db", "upgrade", "--database-url", f"sqlite:///{missing}") == 0
    assert missing.is_file()
