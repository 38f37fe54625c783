"""Short commands stay short: what `nexus --version` and the loader's import pull in (not how long it takes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from plan_apply.__main__ import PLUGIN_LOADER

from .conftest import EXAMPLES

HEAVY = ("pydantic", "yaml", "sqlalchemy", "alembic", "psycopg", "jsonschema", "ruamel")


def _imported_after(code: str) -> set[str]:
    """The top-level packages a fresh interpreter has imported after running `code`."""
    report = "import sys; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    run = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"], capture_output=True, text=True, check=True
    )
    return set(run.stdout.split())


def test_importing_the_configuration_api_loads_neither_pydantic_nor_a_yaml_parser() -> None:
    imported = _imported_after(
        "import nexus_config\n"
        "from nexus_config import CURRENT_VERSION, LoadResult, load_configuration, problems_to_json, problems_to_text\n"
        "from nexus_config.locations import Locator"
    )
    assert imported.isdisjoint(HEAVY), sorted(imported & set(HEAVY))


def test_the_models_are_imported_when_first_asked_for() -> None:
    imported = _imported_after("from nexus_config.models import MODELS\nassert 'nexus/v1' in MODELS")
    assert "pydantic" in imported


def _imported_by_nexus(*args: str, env: dict[str, str] | None = None, first: str = "") -> set[str]:
    """Every module a fresh `nexus ARGS` process (the console script's entry point) has imported when it
    exits (it must exit 0); `first`, code run before it."""
    code = (
        f"{first}\n"
        "import sys, atexit\n"
        "atexit.register(lambda: sys.__stderr__.write('\\nIMPORTED ' + ' '.join(sorted(sys.modules))))\n"
        "from plan_apply.__main__ import main\n"
        f"sys.argv = ['nexus', *{list(args)!r}]\n"
        "main()\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"NO_COLOR": "1"} | (env or {}),
    )
    assert run.returncode == 0, run.stderr
    return set(run.stderr.rpartition("IMPORTED ")[2].split())


def _packages(modules: set[str]) -> set[str]:
    """Top-level packages of `modules`; the console script's stand-in for pydantic's plugin loader is not
    pydantic (`plan_apply.__main__`: it is registered, nothing is imported)."""
    return {m.split(".")[0] for m in modules if m != PLUGIN_LOADER}


SHORT_COMMAND_HEAVY = ("sqlalchemy", "pydantic", "rich", "ruamel", "alembic", "yaml", "psycopg", "jsonschema")
TAB = {"_NEXUS_COMPLETE": "bash_complete", "COMP_WORDS": "nexus pl", "COMP_CWORD": "1"}


def test_version_loads_neither_the_command_line_nor_the_installed_packages_metadata() -> None:
    imported = _imported_by_nexus("--version")
    assert {"click", "importlib.metadata", "plan_apply.cli"}.isdisjoint(imported), sorted(
        {"click", "importlib.metadata", "plan_apply.cli"} & imported
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--help"], {}), (["completion", "bash"], {}), ([], TAB)],
    ids=["help", "completion", "tab-completion"],
)
def test_short_commands_load_no_database_toolkit_model_schema_or_terminal_library(
    args: list[str], env: dict[str, str]
) -> None:
    imported = _packages(_imported_by_nexus(*args, env=env))
    assert imported.isdisjoint(SHORT_COMMAND_HEAVY), sorted(imported & set(SHORT_COMMAND_HEAVY))


def test_validate_loads_no_database_toolkit_terminal_library_or_rewriter() -> None:
    imported = _packages(_imported_by_nexus("validate", str(EXAMPLES / "prairie-family-clinic")))
    unwanted = {"sqlalchemy", "alembic", "psycopg", "rich", "ruamel", "jsonschema"}
    assert imported.isdisjoint(unwanted), sorted(imported & unwanted)


def test_a_no_op_plan_loads_neither_alembic_nor_pydantic_nor_a_yaml_parser(tmp_path: Path) -> None:
    env = {"NEXUS_DATABASE_URL": f"sqlite:///{tmp_path / 'nexus.db'}"}
    assert "alembic" in _packages(_imported_by_nexus("db", "upgrade", env=env))  # migrating needs it
    _imported_by_nexus("apply", str(EXAMPLES), "--auto-approve", "-q", env=env)
    imported = _packages(_imported_by_nexus("plan", str(EXAMPLES), env=env))
    assert "sqlalchemy" in imported
    assert imported.isdisjoint({"alembic", "pydantic", "yaml"}), sorted(
        imported & {"alembic", "pydantic", "yaml"}
    )


def test_a_plan_on_sqlite_loads_no_postgresql_dialect_or_driver(tmp_path: Path) -> None:
    env = {"NEXUS_DATABASE_URL": f"sqlite:///{tmp_path / 'nexus.db'}"}
    _imported_by_nexus("db", "upgrade", env=env)
    _imported_by_nexus("apply", str(EXAMPLES), "--auto-approve", "-q", env=env)
    imported = _imported_by_nexus("plan", str(EXAMPLES), "--full", env=env)
    postgresql = {m for m in imported if m.startswith(("sqlalchemy.dialects.postgresql", "psycopg"))}
    assert "sqlalchemy.dialects.sqlite" in imported
    assert postgresql == set()


@pytest.mark.parametrize(
    "args",
    [["--help"], ["-h"], ["completion", "bash"], ["completion", "zsh"], ["completion", "fish"]],
    ids=["help", "-h", "bash", "zsh", "fish"],
)
def test_help_and_completion_scripts_are_printed_without_loading_click(args: list[str]) -> None:
    imported = _imported_by_nexus(*args)  # stdout a pipe: click would render the help 80 columns wide
    assert {"click", "plan_apply.cli"}.isdisjoint(imported), sorted({"click", "plan_apply.cli"} & imported)


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--help"], {"COLUMNS": "60"}),
        (["validate", "--help"], {}),
        (["--color", "never", "--help"], {}),
        (["completion", "bash"], {"PYTHONIOENCODING": "ascii"}),
        ([], TAB),
    ],
    ids=["help-narrow-terminal", "command-help", "other-flags", "ascii-stdout", "tab-completion"],
)
def test_help_or_scripts_the_stored_texts_would_not_match_go_through_click(
    args: list[str], env: dict[str, str]
) -> None:
    assert "click" in _imported_by_nexus(*args, env=env)


def test_help_goes_through_click_when_another_click_release_rendered_the_stored_texts() -> None:
    other = "import plan_apply.rendered_texts as stored; stored.CLICK_VERSION = '8.0.0'"
    assert "click" in _imported_by_nexus("--help", first=other)
