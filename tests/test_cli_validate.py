"""`nexus validate` and the command line's contract: exit codes, formats, no database."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .conftest import EXAMPLES
from .test_validate_command import nexus


def test_examples_are_valid_and_the_v1beta1_one_is_flagged_deprecated() -> None:
    result = nexus("validate", str(EXAMPLES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning: apiVersion nexus/v1beta1 is deprecated" in result.stderr
    assert "valid: 5 organizations in 11 files" in result.stderr


def test_invalid_input_exits_1_with_located_errors_as_json(write_tree: Callable[..., Path]) -> None:
    tree = write_tree({"x.yaml": "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: x1}\n"})
    result = nexus("validate", str(tree), "--format", "json")
    assert result.returncode == 1
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["path"] == "/metadata/slug" and problem["line"] == 3
    assert 'organization "x1" has no profile' in problem["message"]


def test_a_misspelt_flag_exits_1_not_2_and_suggests() -> None:
    result = nexus("validate", str(EXAMPLES), "--fromat", "json")
    assert result.returncode == 1
    assert "--format" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_and_empty_paths_are_errors(tmp_path: Path) -> None:
    missing = nexus("validate", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "no such file or directory" in missing.stderr
    empty = nexus("validate", str(tmp_path))
    assert empty.returncode == 1 and "no configuration files" in empty.stderr


def test_validate_never_touches_a_database() -> None:
    env = {"NEXUS_DATABASE_URL": "postgresql://nexus:secret@203.0.113.1:5432/never", "PATH": "/usr/bin:/bin"}
    result = nexus("validate", str(EXAMPLES), env=env)
    assert result.returncode == 0


def test_version_names_the_formats_it_reads() -> None:
    result = nexus("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("nexus ") and "nexus/v1" in result.stdout
