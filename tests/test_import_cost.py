"""Short commands stay short: what `nexus --version` and the loader's import pull in (not how long it takes)."""

from __future__ import annotations

import subprocess
import sys

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
