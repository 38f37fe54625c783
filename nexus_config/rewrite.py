"""Rewrite configuration files in canonical form, keeping comments and key order (`nexus fmt`), and the
one YAML emitter `migrate` and `export` share. Pure text → text functions, then a thin file layer.

Canonical form (README, "Formatting"): two-space mapping indent; sequences indented under their key
(`- ` two columns in); flow collections (`[a, b]`, `{k: v}`) kept as flow, on one line; long lines never
re-wrapped; every scalar keeps its quoting style and its spelling (`0777`, `1_000`, `NO`); `---` alone on
its line between documents (a leading `---` is kept if the file had one, `...` is dropped, empty
documents are dropped); no trailing whitespace, no blank line at the start of a document, runs of blank
lines collapsed to one, one newline at the end (whitespace inside `|` and `>` blocks is content: kept);
a UTF-8 BOM and CRLF line endings are kept if the file had them. ruamel.yaml does the round trip with a
resolver that reads plain scalars exactly as nexus does; every result is re-read with nexus's own reader
and refused if its data differ from the original's, so formatting never changes what a file says.
"""

from __future__ import annotations

import difflib
import functools
import io
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from nexus_config.problems import Problem
from nexus_config.yaml_reader import compose_nodes, decode_text, plain_scalar, read_documents

__all__ = [
    "Located",
    "Rewrite",
    "Transform",
    "dump_document",
    "format_text",
    "read_text",
    "rewrite_text",
    "shift_comments",
    "symlink_in_path",
    "text_of",
    "unified_diff",
    "write_atomically",
]

_BOM = "\ufeff"
_MARKER = re.compile(r"(---|\.\.\.)(?:[ \t]+(.*))?$")
_CONTENT = re.compile(r"^[ \t]*[^\s#]", re.MULTILINE)
_TAG_PREFIX = "tag:yaml.org,2002:"


def _tag_of(plain: str) -> str:
    """The YAML tag nexus's reader gives a plain scalar (null, bool, int, float or str)."""
    value = plain_scalar(plain)
    if value is None:
        return _TAG_PREFIX + "null"
    for kind in (bool, int, float):  # bool before int: True is an int too
        if isinstance(value, kind):
            return _TAG_PREFIX + kind.__name__
    return _TAG_PREFIX + "str"


@functools.cache
def _yaml() -> Any:
    """The configured round-trip YAML instance (ruamel is imported here only: never on validate/plan)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import ScalarNode
    from ruamel.yaml.resolver import VersionedResolver
    from ruamel.yaml.tag import Tag

    class NexusResolver(VersionedResolver):
        """Plain scalars resolve exactly as nexus reads them (YAML 1.2 core; dates stay strings)."""

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is ScalarNode and implicit[0]:
                return Tag(suffix=_tag_of(value))
            return super().resolve(kind, value, implicit)

    yaml = YAML(typ="rt")
    yaml.Resolver = NexusResolver
    yaml.preserve_quotes = True
    yaml.width = 1 << 30  # never re-wrap long lines
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


@dataclass(frozen=True, slots=True)
class Located:
    """Where a YAML document sits in its file: turns ruamel's 0-based in-document positions into problems."""

    file: str
    line_offset: int

    def problem(self, message: str, node: Any, key: Any = None, *, code: str = "rewrite") -> Problem:
        """A problem at `node[key]`'s value (or at the node itself), 1-based, in file coordinates."""
        line, column = 0, 0
        try:
            if key is None:
                line, column = node.lc.line, node.lc.col
            elif isinstance(key, int):
                line, column = node.lc.item(key)
            else:
                line, column = node.lc.value(key)
        except (AttributeError, KeyError, TypeError):
            pass
        return Problem(self.file, message, line=self.line_offset + line + 1, column=column + 1, code=code)


Transform = Callable[[Any, Located], tuple[bool, list[Problem]]]
"""Changes one loaded document in place: returns (whether it changed anything, problems)."""


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A file's text before and after; `after` is None when problems stopped the rewrite."""

    file: str
    before: str
    after: str | None
    problems: tuple[Problem, ...] = ()

    @property
    def changed(self) -> bool:
        return self.after is not None and self.after != self.before


@dataclass(frozen=True, slots=True)
class _Segment:
    """The lines of one document (or of the comments before the first `---`)."""

    first_line: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)

    @property
    def has_content(self) -> bool:
        return _CONTENT.search(self.text) is not None


def _segments(text: str) -> tuple[list[_Segment], bool]:
    """The file split at its document markers, and whether it starts with `---` (kept if so).

    A line starting with `---` or `...` followed by a blank or the end of the line is always a document
    marker in YAML (no scalar can contain one at column 0), so splitting lines is exact.
    """
    segments: list[_Segment] = []
    current: list[str] = []
    start = 0
    leading_marker = False
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start another
    for number, line in enumerate(lines):
        marker = _MARKER.match(line)
        if marker is None:
            current.append(line)
            continue
        if not segments and not _CONTENT.search("\n".join(current)) and marker.group(1) == "---":
            leading_marker = True
        segments.append(_Segment(start, tuple(current)))
        rest = (marker.group(2) or "").strip()
        current, start = ([rest] if rest else []), number + (0 if rest else 1)
    segments.append(_Segment(start, tuple(current)))
    return segments, leading_marker


def _protected_lines(text: str) -> set[int]:
    """0-based lines whose trailing whitespace may be content: inside `|`/`>` blocks, or ending inside quotes."""
    protected: set[int] = set()
    pending = list(compose_nodes(text))
    while pending:
        node = pending.pop()
        value = node.value
        if isinstance(value, str):
            if node.style in ("|", ">"):
                end = node.end_mark.line + (0 if node.end_mark.column == 0 else 1)
                protected.update(range(node.start_mark.line + 1, end))
            elif node.style in ('"', "'"):  # a line end inside quotes may follow an escaped blank
                protected.update(range(node.start_mark.line, node.end_mark.line))
        elif isinstance(value, list):
            for item in value:
                pending.extend(item if isinstance(item, tuple) else (item,))
    return protected


def _tidy(text: str, protected: set[int]) -> list[str]:
    """Lines without trailing blanks, blank runs collapsed, no blank lines at either end (outside blocks)."""
    lines: list[str] = []
    for number, line in enumerate(text.split("\n")):
        if number in protected:
            lines.append(line)
            continue
        line = line.rstrip()
        if not line and (not lines or (not lines[-1] and number - 1 not in protected)):
            continue
        lines.append(line)
    while lines and not lines[-1] and len(lines) - 1 not in protected:
        lines.pop()
    return lines


def _comment_tokens(node: Any) -> list[Any]:
    """Every comment token attached to a ruamel node and its descendants."""
    from ruamel.yaml.comments import CommentedBase
    from ruamel.yaml.tokens import CommentToken

    found: dict[int, Any] = {}  # one token may hang in two places (a flow list and its key)

    def collect(value: Any) -> None:
        if isinstance(value, CommentToken):
            found[id(value)] = value
        elif isinstance(value, list):
            for item in value:
                collect(item)

    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, CommentedBase):
            collect(current.ca.comment)
            collect(list(current.ca.items.values()))
            collect(getattr(current.ca, "end", None))
        if isinstance(current, dict):
            pending.extend(current.values())
        elif isinstance(current, list):
            pending.extend(current)
    return list(found.values())


def shift_comments(node: Any, delta: int) -> None:
    """Shift the comments attached inside a node by `delta` columns (it moves to another indentation)."""
    if delta == 0:
        return
    marks: set[int] = set()
    for token in _comment_tokens(node):
        first, *rest = token.value.split("\n")
        mark = token.start_mark
        if first.startswith("#") and mark is not None and id(mark) not in marks:
            marks.add(id(mark))  # an end-of-line comment keeps the same gap after its value
            token.column = max(0, token.column + delta)
        shifted = []
        for line in rest:
            stripped = line.lstrip(" ")
            indent = len(line) - len(stripped)
            shifted.append(" " * max(0, indent + delta) + stripped if stripped.startswith("#") else line)
        token.value = "\n".join([first, *shifted])


@functools.cache
def _yaml_with_null() -> Any:
    """`_yaml()` writing null as `null` (ruamel leaves the value empty): generated files only, where a
    service clears its template's value and should say so."""
    from ruamel.yaml.representer import RoundTripRepresenter

    class NullRepresenter(RoundTripRepresenter):
        """Null as `null` (a subclass: ruamel's representer table is per class)."""

    NullRepresenter.add_representer(
        type(None), lambda representer, _: representer.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    base = _yaml()
    yaml = base.__class__(typ="rt")
    yaml.Resolver = base.Resolver
    yaml.Representer = NullRepresenter
    yaml.preserve_quotes = True
    yaml.width = base.width
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def dump_document(data: Any, *, explicit_null: bool = False) -> str:
    """One document in canonical form (ruamel data: CommentedMap, plain dicts and lists, scalars);
    `explicit_null` writes null as `null` instead of leaving the value empty."""
    root_list = isinstance(data, list) and not (hasattr(data, "fa") and data.fa.flow_style())
    if root_list:
        shift_comments(data, 2)  # … so its comments move with it when it is dedented below
    stream = io.StringIO()
    (_yaml_with_null() if explicit_null else _yaml()).dump(data, stream)
    text = stream.getvalue()
    if text.endswith("\n...\n"):  # ruamel ends a document after a keep-chomped (`|+`) block: not needed
        text = text[: -len("...\n")]
    if root_list:  # ruamel indents a top-level sequence by its offset: `- ` belongs in column 0 there
        text = "".join(line[2:] if line.startswith("  ") else line for line in text.splitlines(keepends=True))
    return "".join(line + "\n" for line in _tidy(text, _protected_lines(text)))


def _data_of(file: str, text: str) -> tuple[str, list[Problem]]:
    documents, problems = read_documents(file, text)
    return json.dumps([d.data for d in documents], ensure_ascii=False), problems


def _emit_segment(
    segment: _Segment, located: Located, transform: Transform | None
) -> tuple[str, bool, list[Problem]]:
    from ruamel.yaml.error import MarkedYAMLError

    if not segment.has_content:
        return "".join(line + "\n" for line in _tidy(segment.text, set())), False, []
    try:
        data = _yaml().load(segment.text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = (mark.line if mark else 0) + located.line_offset + 1
        column = (mark.column if mark else 0) + 1
        message = f"YAML: {exc.problem or exc.context or 'cannot be rewritten'}"
        return "", False, [Problem(located.file, message, line=line, column=column, code="rewrite.yaml")]
    changed, problems = transform(data, located) if transform is not None else (False, [])
    return dump_document(data), changed, problems


def rewrite_text(
    file: str, text: str, transform: Transform | None = None, *, check_data: bool = True
) -> Rewrite:
    """`text` in canonical form, each document first passed through `transform` (if any).

    With a transform, a text whose documents it leaves alone is returned unchanged (not reformatted).
    `check_data` refuses a result whose data differ from the original's (always, for `fmt`).
    """
    bom = text.startswith(_BOM)
    body = text[1:] if bom else text
    newline = "\r\n" if body.split("\n", 1)[0].endswith("\r") else "\n"
    body = body.replace("\r\n", "\n")
    original, problems = _data_of(file, body)
    if problems:
        return Rewrite(file, text, None, tuple(problems))
    # Trailing blanks outside blocks and quotes are never content, and ruamel may choke on them.
    protected = _protected_lines(body)
    body = "\n".join(
        line if number in protected else line.rstrip() for number, line in enumerate(body.split("\n"))
    )
    segments, leading_marker = _segments(body)
    parts: list[str] = []
    changed = False
    for number, segment in enumerate(segments):
        emitted, touched, found = _emit_segment(segment, Located(file, segment.first_line), transform)
        problems.extend(found)
        changed = changed or touched
        preamble = number == 0 and leading_marker
        if emitted or preamble:
            parts.append(emitted + ("---\n" if preamble else ""))
    if problems:
        return Rewrite(file, text, None, tuple(problems))
    if transform is not None and not changed:
        return Rewrite(file, text, text)
    result = parts[0] if parts else ""
    for part in parts[1:]:
        result += ("" if result.endswith("---\n") or not result else "---\n") + part
    if check_data:
        after, after_problems = _data_of(file, result)
        if after_problems or after != original:
            message = (
                "cannot be rewritten without changing its data (a bug in nexus: please report it); left as is"
            )
            return Rewrite(
                file, text, None, (Problem(file, message, line=1, column=1, code="rewrite.unsafe"),)
            )
    if newline != "\n":
        result = result.replace("\n", newline)
    return Rewrite(file, text, (_BOM if bom else "") + result)


def format_text(file: str, text: str) -> Rewrite:
    """The canonical form of one file's text (`nexus fmt`): same data, comments and key order."""
    return rewrite_text(file, text)


# --- the file layer ----------------------------------------------------------------------------------


def text_of(path: str, data: bytes) -> tuple[str | None, list[Problem]]:
    """A file's text with its UTF-8 BOM kept as U+FEFF (so it is written back), or why it is not UTF-8."""
    text, problems = decode_text(path, data)
    if text is None:
        return None, problems
    return (_BOM + text if data.startswith(b"\xef\xbb\xbf") else text), []


def read_text(path: str) -> tuple[str | None, list[Problem]]:
    """A file's text (see `text_of`), or why it cannot be read."""
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as exc:
        return None, [Problem(path, f"cannot read: {exc.strerror}", code="file")]
    return text_of(path, data)


def symlink_in_path(path: str, root: str) -> str | None:
    """The first symlink on the way from `root` (the path the user named, itself included) to `path`."""
    if os.path.islink(root):
        return root
    relative = os.path.relpath(path, root)
    current = root
    for part in [] if relative == "." else relative.split(os.sep):
        current = os.path.join(current, part)
        if os.path.islink(current):
            return current
    return None


def write_atomically(path: str, text: str | Iterable[str], *, mode: int | None = None) -> None:
    """Replace or create a file's content atomically (temp file beside it, then rename), keeping an
    existing file's mode unless `mode` is given (a new file gets `mode`, else owner-only). `text` may
    come in pieces (a big plan is written as a stream).

    Refuses a symlink (ValueError): nexus never writes through one.
    """
    try:
        info: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISLNK(info.st_mode):
        raise ValueError(f"{path} is a symlink; nexus does not write through symlinks")
    if mode is None:
        mode = stat.S_IMODE(info.st_mode) if info is not None else 0o600
    directory, name = os.path.split(path)
    fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory or ".")
    try:
        with os.fdopen(fd, "wb") as stream:
            for piece in [text] if isinstance(text, str) else text:
                stream.write(piece.encode("utf-8"))
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.lexists(temp):
            os.unlink(temp)
        raise


def unified_diff(path: str, before: str, after: str) -> str:
    """A unified diff (`a/PATH`, `b/PATH`), as `git diff` and reviewers read it."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
