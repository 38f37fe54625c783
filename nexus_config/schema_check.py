"""Check each raw document against the schema of its own apiVersion and explain what is wrong.

Validation is pydantic (strict), the same models the committed JSON Schema is generated from; only a
document that fails is explained in detail, so the fast path stays fast.
"""

from __future__ import annotations

import re
import types
import typing
import unicodedata
from collections.abc import Callable
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError

from nexus_config.models import CURRENT_VERSION, MODELS
from nexus_config.models.v1 import ServiceTemplate
from nexus_config.problems import Problem, join_pointer
from nexus_config.suggest import did_you_mean
from nexus_config.yaml_reader import RawDocument

__all__ = ["checked_document"]

ScalarText = Callable[[str, int, str], str | None]
"""Looks up a scalar exactly as written in the file: (file, document, pointer) → text."""

_PATTERN_MEANINGS = {
    r"^[a-z0-9][a-z0-9-]{0,62}$": "a key: lowercase letters, digits and hyphens, at most 63 characters",
    r"^[a-z0-9][a-z0-9-]{1,62}$": "a slug: lowercase letters, digits and hyphens, 2 to 63 characters",
    r"^[a-z0-9][a-z0-9._-]{0,62}$": "a label name: lowercase letters, digits, '.', '_', '-'",
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$": "a date written YYYY-MM-DD",
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": "an email address",
    r"^[A-Z]{2}$": "a two-letter ISO 3166-1 country code such as US",
    r"^https://[^\s/?#]+\.[^\s]*$": "an https:// URL",
}
_NON_DECIMAL = re.compile(r"0x[0-9a-fA-F]+\Z|0o[0-7]+\Z")
_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "a whole number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "float_type": "a number",
}


_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _visible(text: str) -> str:
    """The text with invisible characters escaped (`e\\u200br`), so a message shows what is there."""
    return "".join(
        c
        if c.isprintable()
        else _ESCAPES.get(c, f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")
        for c in text
    )


def _unusual(text: str) -> str:
    """` (it contains U+0435 CYRILLIC SMALL LETTER IE)`: names look-alike or invisible characters."""
    odd = list(dict.fromkeys(c for c in text if not c.isascii() or not c.isprintable()))
    if not odd:
        return ""
    named = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed character')}" for c in odd[:3])
    return f" (it contains {named})"


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f'"{_visible(value)}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _field_name(loc: tuple[Any, ...]) -> str:
    """`profile.type: `, `services[0].capacity[1].workflow: `: which field a message is about, for the
    text output, which has no JSON pointer."""
    name = "".join(f"[{t}]" if isinstance(t, int) else f".{t}" for t in loc).lstrip(".")
    return f"{name}: " if name else ""


def _unwrap(annotation: Any) -> Any:
    """The model class or container behind Optional/Annotated wrappers."""
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            annotation = members[0]
        else:
            return annotation


def _tagged(annotation: Any, token: Any) -> Any:
    """The member of a tagged union (`services`: complete or templated) that `token` names, if any."""
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) not in (Union, types.UnionType):
        return None
    for member in get_args(annotation):
        if get_origin(member) is typing.Annotated and any(
            isinstance(meta, Tag) and meta.tag == token for meta in get_args(member)[1:]
        ):
            return get_args(member)[0]
    return None


def _untagged(loc: tuple[Any, ...], model: type[BaseModel]) -> tuple[Any, ...]:
    """`loc` without the tags of tagged unions, which are not in the document."""
    kept: list[Any] = []
    current: Any = model
    for token in loc:
        if not (isinstance(token, str) and _tagged(current, token) is not None):
            kept.append(token)
        current = _step(current, token)
    return tuple(kept)


def _step(current: Any, token: Any) -> Any:
    """The annotation one token further down (a field, an item, or the member a union tag names)."""
    member = _tagged(current, token) if isinstance(token, str) else None
    if member is not None:
        return member
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        field = current.model_fields.get(str(token))
        return None if field is None else field.annotation
    if get_origin(current) in (list, dict):
        return get_args(current)[-1]
    return None


def _model_at(model: Any, loc: tuple[Any, ...]) -> Any:
    """The annotation found by following `loc` through the model's fields (and union tags)."""
    current: Any = model
    for token in loc:
        current = _step(current, token)
        if current is None:
            return None
    return _unwrap(current)


def _message(
    error: Any, model: type[BaseModel], raw: RawDocument, pointer: str, scalar_text: ScalarText
) -> tuple[str, str, bool]:
    """(message, code, at_key) for one pydantic error, in the words of FORMAT.md."""
    kind = error["type"]
    loc = tuple(error["loc"])
    value = error.get("input")
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        allowed = (
            parent.model_fields.keys() if isinstance(parent, type) and issubclass(parent, BaseModel) else []
        )
        name = str(loc[-1])
        if name == "template" and parent is ServiceTemplate:
            return (
                "a template cannot use another template (templates do not nest): "
                "write its fields here, or use the other template from the services",
                "schema.template_nested",
                True,
            )
        return f'unknown field "{_visible(name)}"{did_you_mean(name, allowed)}', "schema.unknown_field", True
    if kind == "missing":
        return f'missing required field "{loc[-1]}"', "schema.required", False
    if kind in ("literal_error", "enum"):
        expected = get_args(_model_at(model, loc)) if loc else ()
        choices = [str(c) for c in expected]
        hint = did_you_mean(str(value), choices) if isinstance(value, str) else ""
        listed = ", ".join(choices) if choices else error.get("ctx", {}).get("expected", "")
        return (
            f"{_field_name(_untagged(loc, model))}{_shown(value)} is not one of: {listed}{hint}",
            "schema.enum",
            False,
        )
    if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
        text = scalar_text(raw.file, raw.index, pointer) or str(value)
        return f'must be a string; quote it: "{text}"', "schema.type", False
    if kind == "bool_type" and isinstance(value, str):
        return f"must be true or false (found {_shown(value)}, a string)", "schema.type", False
    if kind == "int_type" and isinstance(value, str) and _NON_DECIMAL.match(value):
        return (
            f'must be a whole number written in decimal, such as {int(value, 0)} (found "{value}")',
            "schema.type",
            False,
        )
    if kind == "int_type" and isinstance(value, float):
        return (
            f"must be a whole number (found {scalar_text(raw.file, raw.index, pointer) or value})",
            "schema.type",
            False,
        )
    if kind in _TYPE_NAMES:
        return f"must be {_TYPE_NAMES[kind]} (found {_shown(value)})", "schema.type", False
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        meaning = _PATTERN_MEANINGS.get(pattern, f"matching {pattern}")
        unusual = _unusual(value) if isinstance(value, str) else ""
        return f"{_shown(value)} is not {meaning}{unusual}", "schema.pattern", False
    if kind in ("too_short", "string_too_short"):
        if isinstance(value, list):
            return "must not be empty", "schema.length", False
        return "must not be empty", "schema.length", False
    if kind == "too_long":
        return f"has more than {error['ctx']['max_length']} items", "schema.length", False
    if kind == "string_too_long":
        return f"is longer than {error['ctx']['max_length']} characters", "schema.length", False
    if kind == "greater_than_equal":
        return f"must be at least {error['ctx']['ge']} (found {_shown(value)})", "schema.range", False
    if kind == "less_than_equal":
        return f"must be at most {error['ctx']['le']} (found {_shown(value)})", "schema.range", False
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, "), "schema.value", False
    return str(error["msg"]), "schema.invalid", False


def checked_document(raw: RawDocument, scalar_text: ScalarText) -> tuple[BaseModel | None, list[Problem]]:
    """The typed document (a model of its own apiVersion), or every schema problem in it."""

    def problem(
        message: str, pointer: str = "", code: str = "schema.invalid", at_key: bool = False
    ) -> Problem:
        return Problem(raw.file, message, pointer=pointer, code=code, document=raw.index, at_key=at_key)

    data = raw.data
    if not isinstance(data, dict):
        return None, [
            problem(f"a document must be a mapping with apiVersion, kind and metadata (found {_shown(data)})")
        ]
    version = data.get("apiVersion")
    if version is None:
        return None, [
            problem(f'missing required field "apiVersion" (use "{CURRENT_VERSION}")', code="schema.required")
        ]
    if not isinstance(version, str) or version not in MODELS:  # a list or mapping is not even hashable
        hint = did_you_mean(version, MODELS) if isinstance(version, str) else ""
        known = ", ".join(MODELS)
        return None, [
            problem(
                f"unknown apiVersion {_shown(version)}: this nexus reads {known}{hint}",
                "/apiVersion",
                "schema.version",
            )
        ]
    model = MODELS[version]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = _untagged(tuple(t for t in error["loc"] if t != "[key]"), model)
            pointer = join_pointer(*loc)
            message, code, at_key = _message(error, model, raw, pointer, scalar_text)
            if "[key]" in error["loc"]:
                message = f"label name {message}"
                at_key = True
            problems.append(problem(message, pointer, code, at_key))
        return None, problems
