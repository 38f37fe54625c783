"""Find the configuration files under the paths a command was given: recursively, sorted, safely.

Only `*.yaml`/`*.yml` regular files are read; hidden entries (`.git`, `.#x.yaml`) and editor or temp
leftovers are skipped; a symlink is followed only while its target stays inside the tree it was found
in; FIFOs and devices are refused without being opened; sizes are checked before reading.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from nexus_config.problems import Problem

__all__ = ["MAX_FILE_BYTES", "FoundFile", "discover"]

MAX_FILE_BYTES = 4 * 1024 * 1024
"""4 MiB per YAML file: a whole facility is ~50 KB; anything near this is a mistake or an attack."""

_SUFFIXES = (".yaml", ".yml")
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules"})


@dataclass(frozen=True, slots=True)
class FoundFile:
    """A configuration file and the tree root it was found under (documents must stay inside it)."""

    path: str
    root: str


def _file_problem(path: str, message: str) -> Problem:
    """A problem with a whole file or path, placed at its first line: editors and problem matchers
    need a real position, never 0:0."""
    return Problem(path, message, line=1, column=1, code="file")


def _skipped(name: str) -> bool:
    return name.startswith(".") or name.endswith(("~", ".tmp", ".swp", ".bak"))


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def _check_file(path: str, root: str, real_root: str, problems: list[Problem]) -> FoundFile | None:
    try:
        info = os.stat(path)
    except OSError as exc:
        problems.append(_file_problem(path, f"cannot read: {exc.strerror}"))
        return None
    if os.path.islink(path) and not _inside(os.path.realpath(path), real_root):
        problems.append(_file_problem(path, "symlink points outside the configuration tree"))
        return None
    if not stat.S_ISREG(info.st_mode):
        problems.append(_file_problem(path, "not a regular file"))
        return None
    if info.st_size > MAX_FILE_BYTES:
        problems.append(
            _file_problem(
                path,
                f"file is {info.st_size:,} bytes; the limit is {MAX_FILE_BYTES:,} (split the organization "
                "over several files)",
            )
        )
        return None
    return FoundFile(path, root)


def _walk(top: str, real_root: str, problems: list[Problem]) -> list[tuple[str, str]]:
    """YAML file paths under `top`, sorted, each with its real path (a file reached twice is read
    once), following in-tree directory symlinks once each."""
    found: list[tuple[str, str]] = []
    visited: set[str] = set()
    pending = [top]
    while pending:
        directory = pending.pop()
        real = os.path.realpath(directory)
        if real in visited:
            continue
        visited.add(real)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            problems.append(_file_problem(directory, f"cannot list directory: {exc.strerror}"))
            continue
        subdirs = []
        for entry in entries:
            if _skipped(entry.name) or entry.name in _SKIPPED_DIRS:
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                if entry.is_symlink() and not _inside(os.path.realpath(entry.path), real_root):
                    problems.append(
                        _file_problem(entry.path, "symlink points outside the configuration tree")
                    )
                    continue
                subdirs.append(entry.path)
            elif entry.name.endswith(_SUFFIXES):
                # The directory's real path is known: only a symlinked file needs resolving itself.
                key = os.path.realpath(entry.path) if entry.is_symlink() else os.path.join(real, entry.name)
                found.append((os.path.normpath(entry.path), key))
        pending.extend(reversed(subdirs))
    return sorted(found)


def discover(paths: list[str]) -> tuple[list[FoundFile], list[Problem]]:
    """Every configuration file under `paths` (each file once), or why a path cannot be read."""
    problems: list[Problem] = []
    files: dict[str, FoundFile] = {}
    for given in paths:
        path = os.path.normpath(given)
        if not os.path.lexists(path):
            problems.append(_file_problem(given, "no such file or directory"))
            continue
        if os.path.isdir(path):
            real_root = os.path.realpath(path)
            candidates = _walk(path, real_root, problems)
            if not candidates:
                problems.append(_file_problem(given, "no configuration files (*.yaml, *.yml) found here"))
            root = path
        else:
            root = os.path.dirname(path) or "."
            real_root = os.path.realpath(root)
            candidates = [(path, os.path.realpath(path))]
        for candidate, key in candidates:
            if key in files:
                continue
            found = _check_file(candidate, root, real_root, problems)
            if found is not None:
                files[key] = found
    return sorted(files.values(), key=lambda f: f.path), problems
