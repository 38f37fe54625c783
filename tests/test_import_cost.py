"""Short commands stay short: what `nexus --version` and the loader's import pull in (not how long it takes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def _imported_by_nexus(*args: str, env: dict[str, str] | None = None) -> set[str]:
    """The top-level packages a fresh `nexus ARGS` process has imported when it exits (it must exit 0)."""
    code = (
        "import sys, atexit\n"
        "atexit.register(lambda: sys.__stderr__.write('\\nIMPORTED ' + ' '.join(sorted({m.split('.')[0] for m in sys.modules}))))\n"
        "from plan_apply.cli import main\n"
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


SHORT_COMMAND_HEAVY = ("sqlalchemy", "pydantic", "rich", "ruamel", "alembic", "yaml", "psycopg")


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["completion", "bash"]])
def test_short_commands_load_no_database_toolkit_model_or_terminal_library(args: list[str]) -> None:
    imported = _imported_by_nexus(*args)
    assert imported.isdisjoint(SHORT_COMMAND_HEAVY), sorted(imported & set(SHORT_COMMAND_HEAVY))


def test_a_no_op_plan_loads_neither_alembic_nor_pydantic_nor_a_yaml_parser(tmp_path: Path) -> None:
    env = {"NEXUS_DATABASE_URL": f"sqlite:///{tmp_path / 'nexus.db'}"}
    assert "alembic" in _imported_by_nexus("db", "upgrade", env=env)  # migrating needs it
    _imported_by_nexus("apply", str(EXAMPLES), "--auto-approve", "-q", env=env)
    imported = _imported_by_nexus("plan", str(EXAMPLES), env=env)
    assert "sqlalchemy" in imported
    assert imported.isdisjoint({"alembic", "pydantic", "yaml"}), sorted(
        imported & {"alembic", "pydantic", "yaml"}
    )
