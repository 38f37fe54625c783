"""The committed JSON Schemas: generated from the models, draft-07 only, and true of every example.

Editors (yaml-language-server) validate against these files, so they must say what the loader says.
"""

from __future__ import annotations

import difflib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from nexus_config.models import CURRENT_VERSION, MODELS
from nexus_config.schemas import SCHEMA_DIALECT, json_schema, schema_path, schema_text
from nexus_config.yaml_reader import read_documents
from plan_apply.cli import cli

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = sorted(MODELS)
EXAMPLES = sorted((ROOT / "examples" / "orgs").rglob("*.yaml"))

# Every keyword of JSON Schema draft-07 (https://json-schema.org/draft-07/json-schema-validation and -core).
DRAFT_07 = frozenset(
    {
        "$schema",
        "$id",
        "$ref",
        "$comment",
        "title",
        "description",
        "default",
        "readOnly",
        "writeOnly",
        "examples",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "additionalItems",
        "items",
        "maxItems",
        "minItems",
        "uniqueItems",
        "contains",
        "maxProperties",
        "minProperties",
        "required",
        "additionalProperties",
        "definitions",
        "properties",
        "patternProperties",
        "dependencies",
        "propertyNames",
        "const",
        "enum",
        "type",
        "format",
        "contentMediaType",
        "contentEncoding",
        "if",
        "then",
        "else",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
    }
)
_SUBSCHEMA = {
    "additionalItems",
    "additionalProperties",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "not",
}
_SUBSCHEMA_MAPS = {"definitions", "properties", "patternProperties", "dependencies"}
_SUBSCHEMA_LISTS = {"allOf", "anyOf", "oneOf"}


def keywords(schema: Any) -> set[str]:
    """Every keyword used anywhere in a schema (property names and definition names are not keywords)."""
    if not isinstance(schema, dict):
        return set()
    found = set(schema)
    for key, value in schema.items():
        if key in _SUBSCHEMA:
            found |= keywords(value)
        elif key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            for sub in value.values():
                found |= keywords(sub)
        elif key in _SUBSCHEMA_LISTS:
            for sub in value:
                found |= keywords(sub)
        elif key == "items":
            for sub in value if isinstance(value, list) else [value]:
                found |= keywords(sub)
    return found


@pytest.mark.parametrize("version", VERSIONS)
def test_the_committed_schema_is_the_generated_one(version: str) -> None:
    path = schema_path(ROOT, version)
    committed, generated = path.read_text(encoding="utf-8"), schema_text(version)
    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(True), generated.splitlines(True), "committed", "generated", n=2
        )
    )
    assert committed == generated, (
        f"{path.relative_to(ROOT)} is out of date: run `python -m nexus_config.schemas` to regenerate it\n{diff}"
    )


def test_the_regeneration_command_writes_the_committed_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "nexus_config.schemas", str(tmp_path)], check=True, capture_output=True
    )
    for version in VERSIONS:
        assert schema_path(tmp_path, version).read_bytes() == schema_path(ROOT, version).read_bytes()


@pytest.mark.parametrize("version", VERSIONS)
def test_the_schema_uses_only_draft_07_keywords(version: str) -> None:
    schema = json_schema(version)
    assert schema["$schema"] == SCHEMA_DIALECT == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    assert sorted(keywords(schema) - DRAFT_07) == []


def test_the_keyword_check_sees_newer_keywords() -> None:
    newer = {
        "type": "object",
        "properties": {"a": {"prefixItems": [], "unevaluatedProperties": False}},
        "$defs": {},
    }
    assert keywords(newer) - DRAFT_07 == {"prefixItems", "unevaluatedProperties", "$defs"}


def _validator(version: str) -> jsonschema.Draft7Validator:
    schema = json.loads(schema_path(ROOT, version).read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize(
    "path", EXAMPLES, ids=[str(p.relative_to(ROOT / "examples" / "orgs")) for p in EXAMPLES]
)
def test_every_example_validates_against_the_committed_schema_of_its_version(path: Path) -> None:
    documents, problems = read_documents(str(path), path.read_text(encoding="utf-8"))
    assert documents and not problems
    for document in documents:
        errors = sorted(_validator(document.data["apiVersion"]).iter_errors(document.data), key=str)
        assert not errors, f"{path}: {errors[0].json_path}: {errors[0].message}"


def test_there_are_examples_of_both_versions() -> None:
    versions = {
        d.data["apiVersion"]
        for path in EXAMPLES
        for d in read_documents(str(path), path.read_text(encoding="utf-8"))[0]
    }
    assert versions == set(VERSIONS)


def _paths(error: jsonschema.ValidationError) -> set[str]:
    """Where an error and the errors under it (an anyOf's alternatives) point."""
    return {error.json_path}.union(*(_paths(e) for e in error.context or ()))


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"metadata": {"slug": "x1", "colour": "blue"}}, "$.metadata"),
        ({"services": [{"key": "er", "name": "ER", "disciplines": []}]}, "$.services[0].disciplines"),
        ({"services": [{"key": "ER", "name": "ER", "disciplines": ["nursing"]}]}, "$.services[0].key"),
        ({"profile": {"name": "A", "type": "hopsital"}}, "$.profile.type"),
        ({"staff": None}, "$.staff"),
        (
            {"services": [{"key": "er", "name": "ER", "disciplines": ["nursing"], "capacity": None}]},
            "$.services[0].capacity",
        ),
        (
            {"profile": {"name": "A", "type": "clinic", "address": {"postal_code": 2115}}},
            "$.profile.address.postal_code",
        ),
    ],
    ids=[
        "unknown-field",
        "empty-disciplines",
        "key-pattern",
        "enum",
        "null-section",
        "null-capacity",
        "number-for-text",
    ],
)
def test_the_committed_schema_refuses_what_the_loader_refuses(change: dict[str, Any], where: str) -> None:
    document = {"apiVersion": CURRENT_VERSION, "kind": "Organization", "metadata": {"slug": "x1"}, **change}
    errors = list(_validator(CURRENT_VERSION).iter_errors(document))
    assert errors, "the schema accepts it"
    assert where in {p for e in errors for p in _paths(e)}


def test_nexus_schema_prints_the_committed_v1_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert result.stdout == schema_path(ROOT, CURRENT_VERSION).read_text(encoding="utf-8")


def test_nexus_schema_prints_the_v1beta1_schema_on_request() -> None:
    result = CliRunner().invoke(cli, ["schema", "--api-version", "nexus/v1beta1"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json_schema("nexus/v1beta1")


def _properties(schema: Any, where: str = "") -> list[tuple[str, Any]]:
    """Every (path, subschema) of a named property, anywhere in a schema."""
    if isinstance(schema, list):
        return [found for item in schema for found in _properties(item, where)]
    if not isinstance(schema, dict):
        return []
    found = []
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            for name, sub in value.items():
                found.append((f"{where}/{name}", sub))
                found += _properties(sub, f"{where}/{name}")
        else:
            found += _properties(value, where if key != "definitions" else "")
    return found


@pytest.mark.parametrize("version", VERSIONS)
def test_every_property_of_the_schema_has_a_description_for_editors_to_show(version: str) -> None:
    properties = _properties(json_schema(version))
    assert len(properties) > 90
    assert [path for path, sub in properties if not sub.get("description")] == []
