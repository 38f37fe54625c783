"""Give problems their line and column by re-reading only the files that have problems.

The fast path keeps no positions (they would double the memory of a fleet); a file with a problem is
composed again by libyaml and the problem's JSON pointer is walked through its node tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from nexus_config.problems import Problem

__all__ = ["Locator", "locate", "split_pointer"]


def split_pointer(pointer: str) -> list[str]:
    """The unescaped tokens of a JSON pointer (`/a~1b/0` → `["a/b", "0"]`)."""
    if not pointer:
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


class Locator:
    """Node trees of files, composed on demand and cached, to turn pointers into positions."""

    def __init__(self, read: Callable[[str], bytes] | None = None) -> None:
        self._read = read or (lambda f: Path(f).read_bytes())
        self._documents: dict[str, list[Any]] = {}

    def _nodes(self, file: str) -> list[Any]:
        import yaml  # imported when a problem is located: the CLI imports this module for every command

        from nexus_config.yaml_reader import compose_nodes, decode_text

        if file not in self._documents:
            try:
                text, _ = decode_text(file, self._read(file))
                self._documents[file] = list(compose_nodes(text)) if text is not None else []
            except (OSError, yaml.YAMLError):
                self._documents[file] = []
        return self._documents[file]

    def node(self, file: str, document: int, pointer: str, at_key: bool = False) -> Any | None:
        """The deepest node on the pointer's way (or the key node when `at_key`)."""
        import yaml

        documents = self._nodes(file)
        if document >= len(documents):
            return None
        node = documents[document]
        tokens = split_pointer(pointer)
        for position, token in enumerate(tokens):
            last = position == len(tokens) - 1
            if isinstance(node, yaml.nodes.MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, yaml.nodes.ScalarNode) and key_node.value == token:
                        node = key_node if (last and at_key) else value_node
                        break
                else:
                    return node
            elif isinstance(node, yaml.nodes.SequenceNode) and token.isdigit():
                index = int(token)
                if index >= len(node.value):
                    return node
                node = node.value[index]
            else:
                return node
        return node

    def position(self, file: str, document: int, pointer: str, at_key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the pointer's node; (1, 1) when the file cannot be re-read."""
        node = self.node(file, document, pointer, at_key)
        if node is None:
            return 1, 1
        return node.start_mark.line + 1, node.start_mark.column + 1

    def scalar_text(self, file: str, document: int, pointer: str) -> str | None:
        """The scalar exactly as written in the file (to say `quote it: "02115"`)."""
        import yaml

        node = self.node(file, document, pointer)
        if isinstance(node, yaml.nodes.ScalarNode):
            return str(node.value)
        return None


def locate(problems: Iterable[Problem], locator: Locator | None = None) -> list[Problem]:
    """Every problem with a line and column, sorted by file, line, column."""
    locator = locator or Locator()
    located = []
    for problem in problems:
        if problem.line == 0 and problem.file and problem.code != "file":
            line, column = locator.position(problem.file, problem.document, problem.pointer, problem.at_key)
            problem = replace(problem, line=line, column=column)
        if problem.related:
            places = []
            for file, document, pointer in problem.related:
                line, column = locator.position(file, document, pointer, at_key=True)
                places.append(f"{file}:{line}:{column}")
            problem = replace(
                problem, message=f"{problem.message} (also declared at {', '.join(places)})", related=()
            )
        located.append(problem)
    return sorted(located, key=lambda p: p.sort_key)
