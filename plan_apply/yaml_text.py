"""A value as a person would type it in a configuration file: one line of YAML (flow style).

Notes tell a reviewer what to write to keep a value (`set slots: 8 to keep it`), so the value is said
in the files' own language, not as JSON; and since notes quote it between backticks, it never holds one
(a backtick in a string is written `\\u0060`, which YAML reads back as one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["inline_yaml"]

_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9 _.@/-]*[A-Za-z0-9_.]|[A-Za-z]")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def inline_yaml(value: Any) -> str:
    """`value` as flow-style YAML that reads back to the same value (dates stay plain, as files write them)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        plain = (_PLAIN.fullmatch(value) and value.lower() not in _RESERVED) or _DATE.fullmatch(value)
        return value if plain else json.dumps(value, ensure_ascii=False).replace("`", "\\u0060")
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{inline_yaml(str(k))}: {inline_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(inline_yaml(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False, default=str)
