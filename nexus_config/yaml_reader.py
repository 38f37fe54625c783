"""Read YAML 1.2 (core schema) safely and fast: libyaml's C parser, our own value construction.

Why not `yaml.safe_load` or ruamel: PyYAML resolves scalars by YAML 1.1 (`NO` → False, `02115` → 1101),
ruamel's round-trip loader is ~12× slower than libyaml. libyaml's composer is YAML-version neutral: we
let it build the node tree (in C), refuse anything a configuration never needs (directives, explicit
tags, non-string or duplicate keys, alias bombs, deep nesting) and resolve plain scalars by the YAML 1.2
core schema ourselves, so `NO`, `off`, `1:20`, `0o17` and `2026-01-02` stay strings.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from nexus_config.problems import Problem

_libyaml: Any = importlib.import_module("yaml._yaml")  # the C extension; PyYAML wheels always ship it

__all__ = [
    "ALIAS_BUDGET",
    "MAX_DEPTH",
    "RawDocument",
    "compose_nodes",
    "decode_text",
    "plain_scalar",
    "read_documents",
]

MAX_DEPTH = 64
"""Nesting deeper than this is refused by libyaml itself, before any Python recursion."""

ALIAS_BUDGET = 10_000
"""How many nodes aliases may add to one document (a real document adds a few dozen at most)."""

_IMPLICIT = "!nexus-implicit"
_DIRECTIVE = re.compile(r"^%", re.MULTILINE)

_libyaml._set_max_nest_level(MAX_DEPTH)


@dataclass(frozen=True, slots=True)
class RawDocument:
    """One YAML document of a file, as plain Python data (dicts, lists, str, int, float, bool, None)."""

    file: str
    index: int
    data: Any


class _Parser(_libyaml.CParser):  # type: ignore[misc]  # an untyped C extension class
    """libyaml's composer with resolution switched off: every implicit node gets one marker tag.

    A node whose tag is anything else carried an explicit tag in the source, which we refuse.
    """

    def resolve(self, kind: object, value: object, implicit: object) -> str:
        return _IMPLICIT

    def descend_resolver(self, current_node: object, current_index: object) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


class _InputError(Exception):
    """Raised inside construction to stop at the first structural refusal in a document."""

    def __init__(self, message: str, mark: Any, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark
        self.code = code


_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)\Z")
_NAN = re.compile(r"\.(nan|NaN|NAN)\Z")
_NUMERIC_START = frozenset("0123456789+-.")


def plain_scalar(text: str) -> Any:
    """Resolve a plain (unquoted) scalar by the YAML 1.2 core schema, except that numbers are decimal
    only (FORMAT.md: never octal): `0o17` and `0x10` stay strings, which a whole-number field refuses."""
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if text[0] not in _NUMERIC_START:
        return text
    if _INT.match(text):
        return int(text, 10)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return -math.inf if text[0] == "-" else math.inf
    if _NAN.match(text):
        return math.nan
    return text


_Scalar, _Alias = yaml.events.ScalarEvent, yaml.events.AliasEvent
_SequenceEnd, _MappingEnd = yaml.events.SequenceEndEvent, yaml.events.MappingEndEvent


def _plain_key(text: str, style: str | None) -> bool:
    """Whether a key's text is the string itself: quoted, or plain and not a null, bool, number or `<<`."""
    if style != "":
        return True
    return text[0] not in _NUMERIC_START and text not in _NULLS and text not in _BOOLS and text != "<<"


class _Builder:
    """Builds one document's Python values from libyaml's events, enforcing the refusals above.

    Events, not libyaml's composed node tree: the tree of a 20 MB file is ~30 bytes of Python objects per
    byte of YAML, held whole until the values are built; events are dropped as they are consumed, so
    memory is the values themselves (plus the values of anchors, which aliases share).
    """

    __slots__ = ("anchors", "expanded", "open", "parser")

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.open: set[str] = set()
        self.expanded = 0

    def value(self, event: Any, at: Any) -> tuple[Any, int]:
        """The value starting at `event` and its size in nodes; `at` is the mark to blame for an alias."""
        if isinstance(event, yaml.events.AliasEvent):
            return self._alias(event, at)
        if event.tag is not None and event.tag != "!":
            raise _InputError(
                f"explicit YAML tags are not allowed (found {_shown_tag(event.tag)}); write a plain value",
                event.start_mark,
                "yaml.tag",
            )
        anchor = event.anchor
        if anchor is not None:
            self.open.add(anchor)
        if isinstance(event, yaml.events.ScalarEvent):
            result: tuple[Any, int] = ((plain_scalar(event.value) if event.style == "" else event.value), 1)
        elif isinstance(event, yaml.events.SequenceStartEvent):
            result = self._sequence(event)
        else:
            result = self._mapping(event)
        if anchor is not None:
            self.open.discard(anchor)
            self.anchors[anchor] = result
        return result

    def _alias(self, event: Any, at: Any) -> tuple[Any, int]:
        seen = self.anchors.get(event.anchor)
        if seen is None:
            if event.anchor in self.open:
                raise _InputError(
                    "an alias cannot refer to the node that contains it",
                    event.start_mark,
                    "yaml.alias_budget",
                )
            raise yaml.composer.ComposerError(None, None, "found undefined alias", event.start_mark)
        self.expanded += seen[1]
        if self.expanded > ALIAS_BUDGET:
            raise _InputError(
                f"alias expansion exceeds {ALIAS_BUDGET} nodes; write the repeated content out",
                at,
                "yaml.alias_budget",
            )
        return seen

    def _sequence(self, start: Any) -> tuple[Any, int]:
        items = []
        size = 1
        get_event = self.parser.get_event
        while (kind := type(event := get_event())) is not _SequenceEnd:
            if kind is _Scalar and event.tag is None and event.anchor is None:  # most items: inline
                items.append(plain_scalar(event.value) if event.style == "" else event.value)
                size += 1
                continue
            # An alias item blames this list, as the line a reader looks at.
            v, n = self.value(event, start.start_mark if kind is _Alias else None)
            items.append(v)
            size += n
        return items, size

    def _mapping(self, start: Any) -> tuple[Any, int]:
        mapping: dict[str, Any] = {}
        key_marks: dict[str, Any] = {}
        size = 1
        get_event = self.parser.get_event
        while (kind := type(key_event := get_event())) is not _MappingEnd:
            text = key_event.value if kind is _Scalar else None
            if text and key_event.tag is None and _plain_key(text, key_event.style):
                key = text  # most keys: a plain word, as `_key` would find it
            else:
                key = self._key(key_event)
            if key in mapping:
                first = key_marks[key]
                raise _InputError(
                    f"duplicate key {key!r} (first defined at line {first.line + 1})",
                    key_event.start_mark,
                    "yaml.duplicate_key",
                )
            key_marks[key] = key_event.start_mark
            event = get_event()
            if type(event) is _Scalar and event.tag is None and event.anchor is None:  # most values: inline
                mapping[key] = plain_scalar(event.value) if event.style == "" else event.value
                size += 2
                continue
            v, n = self.value(event, key_event.start_mark)
            mapping[key] = v
            size += n + 1
        return mapping, size

    @staticmethod
    def _key(event: Any) -> str:
        if not isinstance(event, yaml.events.AliasEvent) and event.tag is not None and event.tag != "!":
            raise _InputError(
                f"explicit YAML tags are not allowed (found {_shown_tag(event.tag)})",
                event.start_mark,
                "yaml.tag",
            )
        if not isinstance(event, yaml.events.ScalarEvent):
            raise _InputError("mapping keys must be strings", event.start_mark, "yaml.key_type")
        key = plain_scalar(event.value) if event.style == "" else event.value
        if not isinstance(key, str):
            raise _InputError(
                f"mapping keys must be strings (found {event.value!r}); quote it",
                event.start_mark,
                "yaml.key_type",
            )
        if key == "<<" and event.style == "":
            raise _InputError(
                "merge keys (<<) are a YAML 1.1 feature nexus does not read; write the fields out",
                event.start_mark,
                "yaml.merge_key",
            )
        return key


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset into `text`."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def decode_text(file: str, data: bytes) -> tuple[str | None, list[Problem]]:
    """UTF-8 text (a BOM is allowed and dropped), or a located problem naming the bad byte."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode("utf-8")
        line, column = _position(good, len(good))
        message = f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x}); save it as UTF-8"
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            message = "file is UTF-16; save it as UTF-8"
        return None, [Problem(file, message, line=line, column=column, code="yaml.encoding")]


def _mark_problem(file: str, index: int, message: str, mark: Any, code: str) -> Problem:
    line = mark.line + 1 if mark is not None else 1
    column = mark.column + 1 if mark is not None else 1
    return Problem(file, message, line=line, column=column, code=code, document=index)


def _char_at(text: str, mark: Any) -> str:
    line, column = int(mark.line), int(mark.column)
    lines = text.split("\n", line + 1)
    if line < len(lines) and column < len(lines[line]):
        return lines[line][column]
    return ""


def _shown_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag


def _syntax_problem(file: str, text: str, index: int, exc: yaml.YAMLError) -> Problem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        if "maximum nesting depth" in problem:
            return _mark_problem(file, index, f"nesting deeper than {MAX_DEPTH} levels", mark, "yaml.depth")
        if "cannot start any token" in problem and mark is not None and _char_at(text, mark) == "\t":
            problem = "a tab cannot indent YAML; use spaces"
            context = ""
        return _mark_problem(file, index, f"YAML syntax: {problem}{context}", mark, "yaml.syntax")
    if isinstance(exc, yaml.reader.ReaderError) or hasattr(exc, "position"):
        position = int(getattr(exc, "position", 0))
        # libyaml reports reader positions as offsets into the UTF-8 bytes of the text.
        raw = text.encode("utf-8")[:position].decode("utf-8", errors="replace")
        line, column = _position(raw, len(raw))
        character = getattr(exc, "character", None)
        code_point = ord(character) if isinstance(character, str) else int(character or 0)
        shown = f"U+{code_point:04X}"
        return Problem(
            file,
            f"character {shown} is not allowed in YAML",
            line=line,
            column=column,
            code="yaml.character",
            document=index,
        )
    return Problem(file, f"YAML: {exc}", line=1, column=1, code="yaml.syntax", document=index)


def compose_nodes(text: str) -> Iterator[Any]:
    """The node tree of each document of `text` (positions only, no values): for locating problems."""
    parser = _Parser(text)
    try:
        while parser.check_node():
            yield parser.get_node()
    finally:
        parser.dispose()


def read_documents(file: str, text: str) -> tuple[list[RawDocument], list[Problem]]:
    """Every non-empty document of one file's text, or the problems that stopped each one."""
    directive = _DIRECTIVE.search(text)
    if directive is not None:
        line, column = _position(text, directive.start())
        return [], [
            Problem(
                file,
                "YAML directives (%YAML, %TAG) are not allowed: nexus always reads YAML 1.2",
                line=line,
                column=column,
                code="yaml.directive",
            )
        ]
    next_line = text.find("\x85")
    if next_line >= 0:  # libyaml treats U+0085 as a line break (YAML 1.1) and folds it away silently
        line, column = _position(text, next_line)
        return [], [
            Problem(
                file,
                "character U+0085 (NEXT LINE) is not allowed in YAML; write it as \\N in double quotes",
                line=line,
                column=column,
                code="yaml.character",
            )
        ]
    documents: list[RawDocument] = []
    problems: list[Problem] = []
    parser = _Parser(text)
    index = 0
    try:
        while True:
            try:
                event = parser.get_event()
                if isinstance(event, yaml.events.StreamStartEvent):
                    event = parser.get_event()
                if isinstance(event, yaml.events.StreamEndEvent):
                    break
                root = parser.get_event()  # the document's start is `event`; its root node starts here
                try:
                    value, _ = _Builder(parser).value(root, root.start_mark)
                except _InputError as exc:
                    refused = _mark_problem(file, index, exc.message, exc.mark, exc.code)
                    while not isinstance(parser.get_event(), yaml.events.DocumentEndEvent):
                        pass  # the rest of the document; a syntax error in it is reported instead
                    problems.append(refused)
                else:
                    parser.get_event()  # the document's end
                    if value is not None:
                        documents.append(RawDocument(file, index, value))
                    elif root.value:  # `~` or `null` written as the whole document (an empty one is skipped)
                        problems.append(
                            _mark_problem(
                                file,
                                index,
                                "a document must be a mapping with apiVersion, kind and metadata (found null); "
                                "delete it, or leave the document empty",
                                root.start_mark,
                                "yaml.null_document",
                            )
                        )
            except yaml.YAMLError as exc:
                problems.append(_syntax_problem(file, text, index, exc))
                break  # the parser cannot resynchronise after a syntax error
            except RecursionError:  # pragma: no cover - libyaml's depth limit comes first
                problems.append(_mark_problem(file, index, "nesting too deep", None, "yaml.depth"))
                break
            index += 1
    finally:
        parser.dispose()
    return documents, problems
