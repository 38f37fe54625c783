"""Package hygiene: public names, the one-way dependency, no dangerous APIs, schemas in sync."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
from pathlib import Path

import jsonschema
import pytest

import nexus_config
import plan_apply
from nexus_config.models import MODELS
from nexus_config.schemas import SCHEMA_DIALECT, json_schema, schema_path, schema_text
from nexus_config.yaml_reader import read_documents

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    m.name
    for package in (nexus_config, plan_apply)
    for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    if ".migrations" not in m.name
)


@pytest.mark.parametrize("name", ["nexus_config", "plan_apply", *MODULES])
def test_every_name_in_all_exists(name: str) -> None:
    module = importlib.import_module(name)
    for public in getattr(module, "__all__", []):
        assert hasattr(module, public), f"{name}.__all__ names {public}, which does not exist"


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_nexus_config_never_imports_plan_apply() -> None:
    for path in _sources("nexus_config"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            assert not any(n.split(".")[0] == "plan_apply" for n in names), path


ALLOWED_SUBPROCESS = {ROOT / "plan_apply" / "apply.py": "asks git for the commit being applied"}


def test_no_dangerous_apis() -> None:
    for package in ("nexus_config", "plan_apply"):
        for path in _sources(package):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    assert node.func.id not in ("eval", "exec", "compile"), (path, node.lineno)
                if isinstance(node, ast.Attribute):
                    assert node.attr not in ("FullLoader", "UnsafeLoader", "system", "popen"), (
                        path,
                        node.lineno,
                    )
                    if node.attr == "load" and isinstance(node.value, ast.Name) and node.value.id == "yaml":
                        pytest.fail(f"yaml.load in {path}:{node.lineno}")
                if isinstance(node, ast.keyword) and node.arg == "shell":
                    pytest.fail(f"shell= in {path}:{node.lineno}")
                if (
                    isinstance(node, ast.keyword)
                    and node.arg == "typ"
                    and getattr(node.value, "value", "") == "unsafe"
                ):
                    pytest.fail(f"YAML(typ='unsafe') in {path}:{node.lineno}")
                names = [a.name for a in node.names] if isinstance(node, ast.Import | ast.ImportFrom) else []
                if isinstance(node, ast.Import | ast.ImportFrom):
                    assert "pickle" not in names and getattr(node, "module", None) != "pickle", path
                    if "subprocess" in names:
                        assert path in ALLOWED_SUBPROCESS, f"subprocess in {path}"


@pytest.mark.parametrize("version", sorted(MODELS))
def test_committed_schema_matches_the_models(version: str) -> None:
    committed = schema_path(ROOT, version).read_text(encoding="utf-8")
    assert committed == schema_text(version), "run `python -m nexus_config.schemas` to regenerate schemas/"


@pytest.mark.parametrize("version", sorted(MODELS))
def test_schema_uses_only_draft_07_keywords(version: str) -> None:
    schema = json_schema(version)
    assert schema["$schema"] == SCHEMA_DIALECT
    jsonschema.Draft7Validator.check_schema(schema)
    text = json.dumps(schema)
    for newer in (
        "prefixItems",
        "unevaluatedProperties",
        "unevaluatedItems",
        "$dynamicRef",
        "dependentSchemas",
    ):
        assert newer not in text


def test_every_example_validates_against_the_committed_schema() -> None:
    validators = {
        v: jsonschema.Draft7Validator(
            json.loads(schema_path(ROOT, v).read_text()), format_checker=jsonschema.FormatChecker()
        )
        for v in MODELS
    }
    files = sorted((ROOT / "examples" / "orgs").rglob("*.yaml"))
    assert files
    for path in files:
        documents, problems = read_documents(str(path), path.read_text())
        assert not problems
        for document in documents:
            errors = list(validators[document.data["apiVersion"]].iter_errors(document.data))
            assert not errors, (path, errors[0].message)


def test_nexus_schema_prints_the_v1_schema() -> None:
    from click.testing import CliRunner

    from plan_apply.cli import cli

    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json_schema("nexus/v1")
