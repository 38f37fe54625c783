"""`nexus --help` and `nexus completion SHELL` answered from the texts stored in `plan_apply.rendered_texts`
print exactly what click prints, and anything the stored texts would not match goes to click."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STORED = "plan_apply/rendered_texts.py"
CONSOLE_SCRIPT = "from plan_apply.__main__ import main; main()"  # what `nexus` runs
CLICK = "from plan_apply.cli import main; main()"  # the command line itself, always through click


def _run(
    entry: str, args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """A fresh process running `entry` with `args`, its stdout a pipe (as in `eval "$(nexus ...)"`)."""
    base = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "_NEXUS_COMPLETE")}
    return subprocess.run(
        [sys.executable, "-c", entry, *args], capture_output=True, check=False, env=base | (env or {})
    )


def test_the_stored_texts_are_what_click_renders_now() -> None:
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert (ROOT / STORED).read_text(encoding="utf-8") == generator.rendered_texts(), (
        f"{STORED} is out of date (the command line changed): run `python docs/generate.py`"
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--help"], {}),
        (["-h"], {}),
        (["--help"], {"COLUMNS": "100"}),
        (["--help"], {"COLUMNS": "200"}),
        (["--help"], {"COLUMNS": "60"}),
        (["completion", "bash"], {}),
        (["completion", "zsh"], {}),
        (["completion", "fish"], {}),
    ],
    ids=["help", "-h", "help-100-columns", "help-200-columns", "help-60-columns", "bash", "zsh", "fish"],
)
def test_help_and_completion_scripts_print_exactly_what_click_prints(
    args: list[str], env: dict[str, str]
) -> None:
    nexus, click = _run(CONSOLE_SCRIPT, args, env), _run(CLICK, args, env)
    assert (nexus.returncode, nexus.stdout, nexus.stderr) == (0, click.stdout, click.stderr)


def test_completion_bash_warns_as_click_does_when_bash_is_missing(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path)}  # no bash on it
    nexus, click = _run(CONSOLE_SCRIPT, ["completion", "bash"], env), _run(CLICK, ["completion", "bash"], env)
    assert b"Bash version" in click.stderr
    assert (nexus.returncode, nexus.stdout, nexus.stderr) == (0, click.stdout, click.stderr)


def test_completion_bash_warns_as_click_does_when_bash_is_older_than_4_4(tmp_path: Path) -> None:
    bash = tmp_path / "bash"
    bash.write_text("#!/bin/sh\necho '3.2.57(1)-release'\n")
    bash.chmod(0o755)
    env = {"PATH": str(tmp_path)}
    nexus, click = _run(CONSOLE_SCRIPT, ["completion", "bash"], env), _run(CLICK, ["completion", "bash"], env)
    assert b"older than 4.4" in click.stderr
    assert (nexus.returncode, nexus.stdout, nexus.stderr) == (0, click.stdout, click.stderr)


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["completion", "zsh"]], ids=" ".join)
def test_a_reader_that_went_away_ends_the_answer_without_a_traceback(args: list[str]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", CONSOLE_SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # as `nexus --help | head -c0` leaves it
    assert process.stderr.read() == b""
    assert process.wait() == 1


PLUGINS = "import os; from plan_apply.__main__ import main\ntry: main()\nfinally: print(repr(os.environ.get('PYDANTIC_DISABLE_PLUGINS')))"
METADATA = "import sys; from plan_apply.__main__ import main\ntry: main()\nfinally: print('importlib.metadata' in sys.modules)"
AT_EXIT = (
    "import atexit, gc, sys; from plan_apply.__main__ import main\n"
    "atexit.register(lambda: print(gc.get_freeze_count() > 0))\n"
    "entry = sys.argv.pop(1)\n"
    "main(None if entry == 'console' else sys.argv[1:])"
)
CLINIC = str(ROOT / "examples/orgs/prairie-family-clinic")


def _last_line(script: str, *args: str, plugins: str | None = None) -> str:
    """The last line printed by a fresh process running `script` with `args` (it must exit 0), with
    PYDANTIC_DISABLE_PLUGINS set to `plugins` (None: not set)."""
    base = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    env = base if plugins is None else base | {"PYDANTIC_DISABLE_PLUGINS": plugins}
    finished = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, check=False, env=env
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout.decode().splitlines()[-1]


@pytest.mark.parametrize(("given", "seen"), [(None, "'__all__'"), ("", "''"), ("logfire", "'logfire'")])
def test_a_command_looks_for_no_pydantic_plugins_unless_the_user_says_otherwise(
    given: str | None, seen: str
) -> None:
    # Looking for plugins reads every installed distribution's entry points: a tenth of a small `validate`.
    assert _last_line(PLUGINS, "validate", CLINIC, plugins=given) == seen


@pytest.mark.parametrize(("given", "imported"), [(None, "False"), ("1", "False"), ("logfire", "True")])
def test_where_no_pydantic_plugin_may_load_nothing_reads_the_installed_distributions(
    given: str | None, imported: str
) -> None:
    # pydantic's plugin loader imports importlib.metadata only to find nothing: a tenth of a small validate.
    assert _last_line(METADATA, "validate", CLINIC, plugins=given) == imported


def test_the_stand_in_plugin_loader_offers_all_pydantic_asks_of_the_real_one() -> None:
    # A newer pydantic asking its loader for more than `get_plugins` must fail here, not in users' hands.
    import ast

    import pydantic

    from plan_apply.__main__ import PLUGIN_LOADER

    root = Path(pydantic.__file__).parent

    def imported_from(path: Path, node: ast.ImportFrom) -> str:
        package = ["pydantic", *path.relative_to(root).parent.parts]
        base = package[: len(package) - node.level + 1] if node.level else []
        return ".".join([*base, *([node.module] if node.module else [])])

    asked = {
        alias.name
        for path in root.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and imported_from(path, node) == PLUGIN_LOADER
        for alias in node.names
    }
    assert asked == {"get_plugins"}


@pytest.mark.parametrize(("entry", "frozen"), [("console", "True"), ("caller", "False")])
def test_the_console_script_leaves_the_heap_to_the_process_end_and_a_caller_s_heap_alone(
    entry: str, frozen: str
) -> None:
    # The collection at the interpreter's exit would walk every object a no-op plan made: a third of it.
    assert _last_line(AT_EXIT, entry, "validate", CLINIC) == frozen


EMBEDDED = (
    "import os, sys; from plan_apply.__main__ import PLUGIN_LOADER, main\n"
    "try: main(['validate', sys.argv[1]])\n"
    "except SystemExit: pass\n"
    "print(getattr(sys.modules.get(PLUGIN_LOADER), '__file__', None) is not None,"
    " os.environ.get('PYDANTIC_DISABLE_PLUGINS'))"
)


def test_a_program_running_nexus_in_process_keeps_pydantic_s_plugins_and_its_environment() -> None:
    # The stand-in loader would answer "no plugins" for the rest of the host's life, whatever it set later.
    assert _last_line(EMBEDDED, CLINIC) == "True None"
