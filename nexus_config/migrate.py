"""Rewrite `nexus/v1beta1` documents as `nexus/v1` in place (`nexus migrate`), keeping comments and key
order as far as the new shape allows.

Lossless by construction and by check: the whole tree is validated first (nothing is written when any
file has errors), every file is rewritten in memory, and the rewritten tree must load to the same
desired state, with no deprecation left, before anything may be written.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nexus_config.desired import DesiredState
from nexus_config.headers import file_header
from nexus_config.loader import LoadResult, Scan, load_configuration, scan_configuration
from nexus_config.locations import Locator
from nexus_config.problems import Problem
from nexus_config.rewrite import Located, Rewrite, rewrite_text, shift_comments, text_of
from nexus_config.yaml_reader import decode_text, read_documents

__all__ = ["BETA", "Migration", "migrate_document", "migrate_tree", "updated_modelines"]

BETA = "nexus/v1beta1"
CURRENT = "nexus/v1"
_STAGES = ("application", "onboarding", "offboarding")
_MODELINE = re.compile(r"^([ \t]*#[ \t]*yaml-language-server:[ \t]*\$schema=\S*?)\bv1beta1\b", re.MULTILINE)
_WINDOW_KEY_COLUMN = 8  # canonical form: `services:` → `  - key:` → `    capacity:` → `      - key:`
_STEP_KEY_COLUMN = 4


@dataclass(frozen=True, slots=True)
class Migration:
    """The files a migration rewrites (changed ones only), or the problems that stop it."""

    rewrites: tuple[Rewrite, ...]
    problems: tuple[Problem, ...] = ()
    roots: Mapping[str, str] = field(default_factory=dict)
    """The tree root each file was found under (nothing is written through a symlink below it)."""

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)


def updated_modelines(text: str) -> str:
    """`# yaml-language-server: $schema=…/v1beta1/…` lines pointed at the v1 schema (same path form)."""
    return _MODELINE.sub(r"\1v1", text)


# --- ruamel surgery: move items and keys without losing the comments attached to them ------------------


def _is_block(value: Any) -> bool:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    return isinstance(value, CommentedMap | CommentedSeq) and bool(value) and not value.fa.flow_style()


def _last_slot(node: Any) -> tuple[Any, Any, int] | None:
    """Where ruamel keeps what follows a block node's last line: (container, key or index, entry position)."""
    while True:
        if isinstance(node, dict) and node:
            key, position = next(reversed(node)), 2
        elif isinstance(node, list) and node:
            key, position = len(node) - 1, 0
        else:
            return None
        if not _is_block(node[key]):
            return node, key, position
        node = node[key]


def _take_tail(node: Any) -> str:
    """Detach the blank lines and comments that follow a node's last line (its end-of-line comment stays)."""
    slot = _last_slot(node)
    if slot is None:
        return ""
    container, key, position = slot
    entry = container.ca.items.get(key)
    token = entry[position] if entry and len(entry) > position else None
    if token is None:
        return ""
    head, _, tail = str(token.value).partition("\n")
    if head.strip():
        token.value = head + "\n"
    else:
        entry[position] = None
    return tail


def _give_tail(node: Any, tail: str) -> None:
    """Attach detached lines after a node's (new) last line."""
    slot = _last_slot(node) if tail else None
    if slot is None:
        return
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    container, key, position = slot
    entry = container.ca.items.setdefault(key, [None, None, None, None])
    if entry[position] is None:
        entry[position] = CommentToken("\n" + tail, CommentMark(0))
    else:
        entry[position].value += tail


def _append(mapping: Any, key: str, value: Any) -> None:
    """Add a last key; the blank lines and comments that followed the mapping now follow the new key."""
    tail = _take_tail(mapping)
    mapping[key] = value
    _give_tail(mapping, tail)


def _moved(source: Any, index: int, target: Any) -> None:
    """Append `source[index]` to the sequence `target`, with the comments ruamel keeps beside the item."""
    target.append(source[index])
    comments = source.ca.items.get(index)
    if comments is not None:
        target.ca.items[len(target) - 1] = comments


def _rename(mapping: Any, old: str, new: str) -> None:
    position = list(mapping).index(old)
    comments = mapping.ca.items.pop(old, None)
    mapping.insert(position, new, mapping.pop(old))
    if comments is not None:
        mapping.ca.items[new] = comments


def _drop(mapping: Any, key: str) -> None:
    """Remove a key; its comments go to the key above (when that one has none of its own)."""
    keys = list(mapping)
    position = keys.index(key)
    comments = mapping.ca.items.pop(key, None)
    del mapping[key]
    if comments is not None and position > 0 and keys[position - 1] not in mapping.ca.items:
        mapping.ca.items[keys[position - 1]] = comments


def _empty_list() -> Any:
    from ruamel.yaml.comments import CommentedSeq

    empty = CommentedSeq()
    empty.fa.set_flow_style()
    return empty


def _steps_as_list(document: Any) -> None:
    """`steps: {application: [...], ...}` → one list, `stage:` after each item's `key:`."""
    from ruamel.yaml.comments import CommentedSeq

    grouped = document["steps"]
    tail = _take_tail(grouped) if isinstance(grouped, dict) else ""
    steps = CommentedSeq()
    for stage in _STAGES:
        items = grouped.get(stage) or ()
        stage_comment = grouped.ca.items.get(stage)
        for index, item in enumerate(items):
            keys = list(item)
            item.insert(keys.index("key") + 1 if "key" in keys else 0, "stage", stage)
            shift_comments(item, _STEP_KEY_COLUMN - item.lc.col)
            _moved(items, index, steps)
            token = stage_comment[2] if index == 0 and stage_comment and len(stage_comment) > 2 else None
            if token is not None and token.value.lstrip(" ").startswith("#"):  # `onboarding:  # why`
                text = token.value.split("\n", 1)[0].lstrip(" ")[1:].strip()
                steps.yaml_set_comment_before_after_key(len(steps) - 1, before=text, indent=2)
    if not steps:
        steps.fa.set_flow_style()
    _give_tail(steps, tail)
    document["steps"] = steps


def _nest_capacity(document: Any, services: Mapping[str, Any]) -> None:
    """Top-level `capacity:` windows into their service's `capacity:` list (`workflow_type` → `workflow`)."""
    from ruamel.yaml.comments import CommentedSeq

    windows = document["capacity"]
    nested: dict[str, Any] = {}
    for index, window in enumerate(windows):
        service = window["service"]
        _drop(window, "service")
        if "workflow_type" in window:
            _rename(window, "workflow_type", "workflow")
        shift_comments(window, _WINDOW_KEY_COLUMN - window.lc.col)
        _moved(windows, index, nested.setdefault(service, CommentedSeq()))
    for key, seq in nested.items():
        _append(services[key], "capacity", seq)
    _drop(document, "capacity")


def migrate_document(
    document: Any,
    located: Located,
    *,
    capacity_managed: Callable[[str], frozenset[str]],
    service_place: Callable[[str, str], str | None],
) -> tuple[bool, list[Problem]]:
    """Rewrite one loaded document in place: v1beta1 → v1, and every service whose capacity windows the
    organization manages says `capacity:` (v1beta1's top-level list made all of them managed).

    A window whose service is declared in another document cannot be nested: it is refused, located.
    """
    if not isinstance(document, dict) or not isinstance(document.get("metadata"), dict):
        return False, []
    slug = str(document["metadata"].get("slug"))
    services = {s["key"]: s for s in document.get("services") or () if isinstance(s, dict) and "key" in s}
    changed = False
    if document.get("apiVersion") == BETA:
        problems = []
        for window in document.get("capacity") or ():
            if window["service"] not in services:
                where = service_place(slug, window["service"])
                problems.append(
                    located.problem(
                        f'capacity window "{window["key"]}" names service "{window["service"]}", which is declared '
                        f"in another document{f' ({where})' if where else ''}: v1 nests capacity windows under "
                        "their service, so a window must live in its service's document: move the window there "
                        "(or move the service here), then run `nexus migrate` again",
                        window,
                        "service",
                        code="migrate.capacity_elsewhere",
                    )
                )
        if problems:
            return False, problems
        document["apiVersion"] = type(document["apiVersion"])(CURRENT)  # keeps its quoting style
        if "steps" in document:
            _steps_as_list(document)
        if "capacity" in document:
            _nest_capacity(document, services)
        changed = True
    managed = capacity_managed(slug)
    for key, service in services.items():
        if key in managed and "capacity" not in service:
            _append(service, "capacity", _empty_list())
            changed = True
    return changed, []


# --- the tree ------------------------------------------------------------------------------------------


def _meaning(state: DesiredState) -> dict[str, tuple[Any, ...]]:
    """What a desired state says, without where it was said (sources and files move in a migration)."""
    return {
        slug: (
            org.parent,
            dict(org.labels),
            org.profile,
            org.staff,
            org.steps,
            org.services,
            org.schools,
            org.agreements,
            org.capacity_managed,
            dict(org.documents),
        )
        for slug, org in state.organizations.items()
    }


def _beta_slugs(scan: Scan) -> set[str]:
    slugs = set()
    for found in scan.files:
        text, _ = decode_text(found.path, found.content())
        if text is None or BETA not in text:
            continue
        documents, _ = read_documents(found.path, text)
        for raw in documents:
            if isinstance(raw.data, dict) and raw.data.get("apiVersion") == BETA:
                metadata = raw.data.get("metadata")
                if isinstance(metadata, dict):
                    slugs.add(str(metadata.get("slug")))
    return slugs


def _place(loaded: LoadResult, locator: Locator) -> Callable[[str, str], str | None]:
    def place(slug: str, service: str) -> str | None:
        org = loaded.state.organizations.get(slug)
        source = org.sources.get(f"services/{service}") if org is not None else None
        if source is None:
            return None
        file, document, pointer = source.place()
        line, _ = locator.position(file, document, pointer)
        return f"{file}:{line}"

    return place


def _rewritten_scan(scan: Scan, rewrites: Mapping[str, Rewrite]) -> Scan:
    files = []
    for found in scan.files:
        rewrite = rewrites.get(found.path)
        if rewrite is None or rewrite.after is None:
            files.append(found)
            continue
        data = rewrite.after.encode("utf-8")
        header = file_header(rewrite.after)
        files.append(replace(found, data=data, sha256=hashlib.sha256(data).hexdigest(), header=header))
    return Scan(tuple(files), scan.problems)


def migrate_tree(paths: Sequence[str | Path]) -> Migration:
    """Every file under `paths` that needs rewriting for v1, rewritten in memory and proven lossless."""
    scan = scan_configuration(paths)
    locator = Locator()
    loaded = load_configuration(paths, locator, scan=scan)
    if not loaded.ok:
        return Migration((), loaded.errors)
    beta = _beta_slugs(scan)
    candidates = {path for slug in beta for path in loaded.state.organizations[slug].files}
    organizations = loaded.state.organizations

    def capacity_managed(slug: str) -> frozenset[str]:
        org = organizations.get(slug)
        return org.capacity_managed if org is not None and slug in beta else frozenset()

    service_place = _place(loaded, locator)

    def transform(document: Any, located: Located) -> tuple[bool, list[Problem]]:
        return migrate_document(
            document, located, capacity_managed=capacity_managed, service_place=service_place
        )

    rewrites: dict[str, Rewrite] = {}
    problems: list[Problem] = []
    for found in scan.files:
        if found.path not in candidates:
            continue
        text, decode_problems = text_of(found.path, found.content())
        if text is None:  # pragma: no cover - the load above already refused it
            problems.extend(decode_problems)
            continue
        rewrite = rewrite_text(found.path, text, transform, check_data=False)
        if rewrite.after is not None and rewrite.changed:
            rewrite = replace(rewrite, after=updated_modelines(rewrite.after))
        problems.extend(rewrite.problems)
        rewrites[found.path] = rewrite
    if problems:
        return Migration((), tuple(sorted(problems, key=lambda p: p.sort_key)))
    changed = {path: r for path, r in rewrites.items() if r.changed}
    reloaded = load_configuration(paths, Locator(), scan=_rewritten_scan(scan, changed))
    left = [p for p in reloaded.problems if p.severity == "error" or p.code == "version.deprecated"]
    if left or _meaning(reloaded.state) != _meaning(loaded.state):
        first = next(iter(changed), str(paths[0]) if paths else "")
        message = (
            "the migrated files would not load to the same configuration (a bug in nexus: please report "
            f"it); nothing was written{': ' + left[0].message if left else ''}"
        )
        return Migration((), (Problem(first, message, line=1, column=1, code="migrate.unsafe"),))
    roots = {found.path: found.root for found in scan.files if found.path in changed}
    return Migration(tuple(changed[path] for path in sorted(changed)), roots=roots)
