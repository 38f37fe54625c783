"""The plan: a plain value of typed changes, in execution order, with an exact JSON round trip.

What drives apply (`action`, `before`, `after`, the fingerprints) is separate from what explains it
(`notes`, `cause`, `risk`): the executor never reads the explanation. These are plain values; reading
a saved plan back (untrusted input: a strict schema and an integrity hash) is `plan_file`'s business.
"""

from __future__ import annotations

import enum
import hashlib
import json
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = [
    "ACTIONS",
    "FORMAT_VERSION",
    "Action",
    "Cause",
    "Change",
    "OrgPlan",
    "Plan",
    "PlanProblem",
    "Risk",
    "integrity_of",
]

FORMAT_VERSION = 1
_CHUNK_SIZE = 1 << 16
"""Characters per piece of a streamed plan JSON."""


class Action(enum.StrEnum):
    """The closed vocabulary of CLI.md; every consumer matches it exhaustively."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    ARCHIVE = "archive"
    ADOPT = "adopt"
    RENAME = "rename"


ACTIONS = tuple(a.value for a in Action)
Cause = Literal["config", "drift"]
"""Why a change is proposed: the configuration changed, or the database was changed outside nexus."""
Risk = Literal["low", "review", "destructive"]
"""How carefully a reviewer should read a change (CLI.md)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One change to one addressed item.

    Contract: `before`/`after` hold only the fields that change (every field for create/delete);
    `address` is stable (CLI.md); `notes` are for people and never drive apply.
    """

    address: str
    type: str
    action: Action
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    cause: Cause = "config"
    risk: Risk = "low"
    notes: tuple[str, ...] = ()
    title: str = ""
    """How people call the item ("Emergency Medicine › Spring block"): for renderers only."""
    pending: bool = True
    """False for a change apply will not make as things stand (an agreement whose school proposed
    changes is left alone): shown, but not "changes present" for `plan --detailed-exitcode`."""
    template: str = ""
    """The service template (`org-slug/key`) every changed field came from, named at plan time; empty
    when any of them is the service's own, or the change is not a service update (`template_origin`)."""

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "title": self.title,
            "address": self.address,
            "type": self.type,
            "action": self.action.value,
            "before": dict(self.before),
            "after": dict(self.after),
            "cause": self.cause,
            "risk": self.risk,
            "notes": list(self.notes),
        }
        if not self.pending:
            result["pending"] = False
        if self.template:
            result["template"] = self.template
        return result

    def __getstate__(self) -> tuple[Any, ...]:
        """Its fields as one tuple: a plan crosses from the planning workers a change at a time, hundreds
        of thousands of them, and dataclasses' own pickling walks `fields()` for each one."""
        return _change_fields(self)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(Change.__slots__, state, strict=True):
            object.__setattr__(self, name, value)


_change_fields = operator.attrgetter(*Change.__slots__)


@dataclass(frozen=True, slots=True)
class PlanProblem:
    """Why an organization cannot be applied as configured (a plan-time rule), with its location."""

    message: str
    file: str = ""
    line: int = 0
    column: int = 0
    address: str = ""
    pointer: str = ""
    document: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "address": self.address,
            "path": self.pointer,
            "document": self.document,
        }


@dataclass(frozen=True, slots=True)
class OrgPlan:
    """The changes for one organization, and the state they were computed against.

    `state_fingerprint` is re-checked under the organization's lock before anything is written;
    `documents` maps a content hash to the file to upload, relative to `documents_root` (the
    configuration tree it was found in; its bytes are re-read with validate's checks and re-hashed at
    apply), so a saved plan finds its documents whatever folder apply runs in.
    """

    slug: str
    state_fingerprint: str
    changes: tuple[Change, ...] = ()
    unmanaged: Mapping[str, int] = field(default_factory=dict)
    problems: tuple[PlanProblem, ...] = ()
    documents: Mapping[str, str] = field(default_factory=dict)
    config_files: Mapping[str, str] = field(default_factory=dict)
    skipped: bool = False
    notes: tuple[str, ...] = ()
    revision: int | None = None
    parent: str | None = None
    documents_root: str | None = None

    @property
    def document_files(self) -> dict[str, str]:
        """Where each document is read at apply: under `documents_root`, or (a plan of an older nexus,
        without one) where the path leads from the working directory."""
        if self.documents_root is None:
            return dict(self.documents)
        return {sha: os.path.join(self.documents_root, path) for sha, path in self.documents.items()}

    def to_json(self) -> dict[str, Any]:
        return self._json_fields([c.to_json() for c in self.changes])

    def _json_fields(self, changes: object) -> dict[str, Any]:
        """The JSON object with `changes` as given (a list, or items encoded one at a time)."""
        result: dict[str, Any] = {
            "slug": self.slug,
            "state_fingerprint": self.state_fingerprint,
            "changes": changes,
            "unmanaged": dict(self.unmanaged),
        }
        # Lists and maps are written even when empty (a reader never tells "none" from "absent"); what
        # has no value (revision, parent, the documents' root) is left out.
        result["problems"] = [p.to_json() for p in self.problems]
        result["documents"] = dict(self.documents)
        result["config_files"] = dict(self.config_files)
        if self.skipped:
            result["skipped"] = True
        result["notes"] = list(self.notes)
        if self.revision is not None:
            result["revision"] = self.revision
        if self.parent is not None:
            result["parent"] = self.parent
        if self.documents_root is not None:
            result["documents_root"] = self.documents_root
        return result


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything `apply` would do, per organization, in the order it would do it."""

    created_at: str
    database: str
    organizations: tuple[OrgPlan, ...]
    format_version: int = FORMAT_VERSION
    database_id: str | None = None
    """What the database is (plan_apply.database.identity), however it was reached; None for a plan of
    an older nexus or of a database that did not exist yet, which `apply --plan` matches by URL."""
    integrity: str | None = field(default=None, compare=False)
    """The integrity hash a saved plan was read back with (`plan_file`); None for a plan made in this
    process. A saved plan is identified by it, and applies once."""

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(c for org in self.organizations for c in org.changes)

    @property
    def summary(self) -> dict[str, int]:
        """How many changes of each action, counted where they are (no tuple of every change: writing a
        plan of any size as a stream counts them without one)."""
        counts = dict.fromkeys(ACTIONS, 0)
        for org in self.organizations:
            for change in org.changes:
                counts[change.action.value] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        return any(org.changes for org in self.organizations)

    @property
    def has_pending_changes(self) -> bool:
        """Whether apply would write anything: changes it leaves alone (`pending` false) do not count."""
        return any(c.pending for c in self.changes)

    @property
    def held(self) -> tuple[Change, ...]:
        """The changes apply leaves alone as things stand (a school's proposal)."""
        return tuple(c for c in self.changes if not c.pending)

    @property
    def identity(self) -> str:
        """This plan's identity in the apply log: a saved plan's integrity hash (its whole content), else a
        cheap one of when it was made against what state (encoding a big plan costs seconds)."""
        if self.integrity is not None:
            return self.integrity
        states = json.dumps(
            [self.created_at, self.database, [(o.slug, o.state_fingerprint) for o in self.organizations]]
        )
        return "sha256:" + hashlib.sha256(states.encode()).hexdigest()

    @property
    def skipped(self) -> tuple[str, ...]:
        return tuple(o.slug for o in self.organizations if o.skipped)

    @property
    def has_problems(self) -> bool:
        return any(org.problems for org in self.organizations)

    def with_changes(self, change_of: Callable[[OrgPlan, Change], Change]) -> Plan:
        """The plan with each change replaced by `change_of(its organization, it)`: what notes and marks
        added after planning go through (an organization whose changes all stay is kept as it is)."""

        def organization(org: OrgPlan) -> OrgPlan:
            changes = tuple(change_of(org, c) for c in org.changes)
            return org if changes == org.changes else replace(org, changes=changes)

        return replace(self, organizations=tuple(organization(o) for o in self.organizations))

    def to_json_dict(self) -> dict[str, Any]:
        body = self._json_body([o.to_json() for o in self.organizations])
        return {**body, "integrity": integrity_of(body)}

    def _json_body(self, organizations: object) -> dict[str, Any]:
        body = {
            "format_version": self.format_version,
            "created_at": self.created_at,
            "database": self.database,
            "organizations": organizations,
            "summary": self.summary,
        }
        if self.database_id is not None:
            body["database_id"] = self.database_id
        return body

    def _streamed_body(self) -> dict[str, Any]:
        """The body with every change encoded when it is reached, never all of them at once."""
        return self._json_body(
            _Items(
                self.organizations,
                lambda org: org._json_fields(_Items(org.changes, Change.to_json)),
            )
        )

    def json_chunks(self) -> Iterator[str]:
        """The plan JSON of CLI.md (`to_json`) in pieces, for writing a plan of any size as a stream: two
        passes over the plan (the integrity hash, then the text), one change in memory at a time."""
        digest = hashlib.sha256()
        for chunk in _chunks(self._streamed_body(), 0, pretty=False):
            digest.update(chunk.encode())
        body = {**self._streamed_body(), "integrity": "sha256:" + digest.hexdigest()}
        pieces: list[str] = []
        size = 0
        for chunk in _chunks(body, 0, pretty=True):
            pieces.append(chunk)
            size += len(chunk)
            if size >= _CHUNK_SIZE:  # few large writes, whatever the number of changes
                yield "".join(pieces)
                pieces, size = [], 0
        yield "".join(pieces) + "\n"

    def to_json(self) -> str:
        """The plan JSON of CLI.md (also what `plan --out` writes): deterministic, sorted keys."""
        return "".join(self.json_chunks())

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Parse a saved plan (`plan_file.parsed_plan`): refusing anything malformed or tampered with."""
        from plan_apply.plan_file import parsed_plan

        return parsed_plan(text)


def integrity_of(body: Mapping[str, Any]) -> str:
    """The hash a saved plan carries of everything else in it: a hand-edited plan is refused."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class _Items:
    """A JSON array whose items are made (by `encode`) only when the encoder reaches them."""

    def __init__(self, values: Iterable[Any], encode: Callable[[Any], Any]) -> None:
        self.values, self.encode = values, encode

    def __iter__(self) -> Iterator[Any]:
        return (self.encode(value) for value in self.values)


def _chunks(value: Any, level: int, *, pretty: bool) -> Iterator[str]:
    """`value` encoded exactly as `json.dumps(..., sort_keys=True, ensure_ascii=False)` would, with
    `indent=2` when `pretty`, else compact separators (the integrity hash's canonical form); `_Items`
    arrays, and objects holding one, are written piece by piece."""
    newline = "\n" + "  " * (level + 1) if pretty else ""
    if isinstance(value, _Items):
        empty = True
        for item in value:
            yield ("[" if empty else ",") + newline
            yield from _chunks(item, level + 1, pretty=pretty)
            empty = False
        yield "[]" if empty else ("\n" + "  " * level if pretty else "") + "]"
    elif isinstance(value, dict) and any(isinstance(v, _Items) for v in value.values()):
        for i, key in enumerate(sorted(value)):
            yield (
                ("{" if i == 0 else ",")
                + newline
                + json.dumps(key, ensure_ascii=False)
                + (": " if pretty else ":")
            )
            yield from _chunks(value[key], level + 1, pretty=pretty)
        yield ("\n" + "  " * level if pretty else "") + "}"
    elif pretty:
        text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
        yield text.replace("\n", "\n" + "  " * level) if level else text
    else:
        yield json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
