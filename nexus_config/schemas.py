"""JSON Schema of each apiVersion, generated from the pydantic models and committed under `schemas/`.

Editors (yaml-language-server) read it for completion and hover text; a test regenerates it and fails
when the committed copy drifts. Regenerate with `python -m nexus_config.schemas`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import CoreSchema

from nexus_config.models import MODELS

__all__ = ["SCHEMA_DIALECT", "json_schema", "schema_path", "schema_text"]

SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
"""Draft-07: the dialect yaml-language-server (VS Code, JetBrains) implements fully. Only draft-07
keywords are generated: pydantic's `$defs` (a 2019-09 keyword) become draft-07 `definitions`."""

_DESCRIPTIONS = {
    "nexus/v1": "A nexus organization document (apiVersion nexus/v1): some or all sections of one organization.",
    "nexus/v1beta1": "A nexus organization document in the deprecated preview format nexus/v1beta1.",
}


class _NexusSchema(GenerateJsonSchema):
    """Pydantic's generator without auto-titles (hover text comes from descriptions), its shared
    definitions under draft-07's `definitions`."""

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        result: JsonSchemaValue = _without_titles(super().generate(schema, mode))
        if "$defs" in result:
            result["definitions"] = result.pop("$defs")
        return result


def _without_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_titles(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(node, list):
        return [_without_titles(v) for v in node]
    return node


def json_schema(version: str) -> dict[str, Any]:
    """The JSON Schema of one apiVersion (`nexus/v1`, `nexus/v1beta1`)."""
    body = MODELS[version].model_json_schema(
        ref_template="#/definitions/{model}", schema_generator=_NexusSchema
    )
    slug = version.split("/", 1)[1]
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"https://nexus.dev/schemas/{slug}/nexus.schema.json",
        "description": _DESCRIPTIONS[version],
        **{k: v for k, v in body.items() if k != "description"},
    }


def schema_text(version: str) -> str:
    """The schema exactly as committed: sorted keys, two-space indent, trailing newline."""
    return json.dumps(json_schema(version), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_path(root: Path, version: str) -> Path:
    return root / "schemas" / version.split("/", 1)[1] / "nexus.schema.json"


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    repo = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    for name in MODELS:
        target = schema_path(repo, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(schema_text(name), encoding="utf-8")
        print(f"wrote {target}")
