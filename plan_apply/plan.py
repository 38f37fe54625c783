"""The plan: a plain value of typed changes, in execution order, with an exact JSON round trip.

What drives apply (`action`, `before`, `after`, the fingerprints) is separate from what explains it
(`notes`, `cause`, `risk`): the executor never reads the explanation. A saved plan is untrusted input:
`Plan.from_json` parses it back through a strict schema and checks its integrity hash.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "ACTIONS",
    "Action",
    "Change",
    "OrgPlan",
    "Plan",
    "PlanFileInvalid",
    "PlanProblem",
]

FORMAT_VERSION = 1


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
Risk = Literal["low", "review", "destructive"]


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

    def to_json(self) -> dict[str, Any]:
        return {
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
    `documents` maps a content hash to the file to upload (its bytes are re-hashed at apply).
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

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "slug": self.slug,
            "state_fingerprint": self.state_fingerprint,
            "changes": [c.to_json() for c in self.changes],
            "unmanaged": dict(self.unmanaged),
        }
        if self.problems:
            result["problems"] = [p.to_json() for p in self.problems]
        if self.documents:
            result["documents"] = dict(self.documents)
        if self.config_files:
            result["config_files"] = dict(self.config_files)
        if self.skipped:
            result["skipped"] = True
        if self.notes:
            result["notes"] = list(self.notes)
        if self.revision is not None:
            result["revision"] = self.revision
        if self.parent is not None:
            result["parent"] = self.parent
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

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(c for org in self.organizations for c in org.changes)

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            counts[change.action.value] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        return any(org.changes for org in self.organizations)

    @property
    def identity(self) -> str:
        """A short, cheap identity of this plan for the apply log: when it was made, against what state.
        (The integrity hash of the whole JSON is for saved plans; encoding a big plan costs seconds.)"""
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

    def to_json_dict(self) -> dict[str, Any]:
        body = {
            "format_version": self.format_version,
            "created_at": self.created_at,
            "database": self.database,
            "organizations": [o.to_json() for o in self.organizations],
            "summary": self.summary,
        }
        if self.database_id is not None:
            body["database_id"] = self.database_id
        return {**body, "integrity": _integrity(body)}

    def to_json(self) -> str:
        """The plan JSON of CLI.md (also what `plan --out` writes): deterministic, sorted keys."""
        return json.dumps(self.to_json_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Parse a saved plan, refusing anything malformed, of another format or tampered with."""
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PlanFileInvalid(f"not a plan file (invalid JSON: {exc})") from None
        try:
            parsed = _PlanFile.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "/".join(str(x) for x in first["loc"])
            raise PlanFileInvalid(f"not a valid plan file: {where}: {first['msg']}") from None
        if parsed.format_version != FORMAT_VERSION:
            raise PlanFileInvalid(
                f"plan format_version {parsed.format_version} is not supported (this nexus writes {FORMAT_VERSION})"
            )
        body = {k: v for k, v in raw.items() if k != "integrity"}
        if parsed.integrity is not None and parsed.integrity != _integrity(body):
            raise PlanFileInvalid("plan file was modified after it was written (integrity hash mismatch)")
        return cls(
            created_at=parsed.created_at,
            database=parsed.database,
            database_id=parsed.database_id,
            format_version=parsed.format_version,
            organizations=tuple(
                OrgPlan(
                    slug=o.slug,
                    state_fingerprint=o.state_fingerprint,
                    changes=tuple(
                        Change(
                            address=c.address,
                            type=c.type,
                            action=Action(c.action),
                            before=c.before,
                            after=c.after,
                            cause=c.cause,
                            risk=c.risk,
                            notes=tuple(c.notes),
                            title=c.title,
                        )
                        for c in o.changes
                    ),
                    unmanaged=o.unmanaged,
                    problems=tuple(
                        PlanProblem(p.message, p.file, p.line, p.column, p.address, p.path, p.document)
                        for p in o.problems
                    ),
                    documents=o.documents,
                    config_files=o.config_files,
                    skipped=o.skipped,
                    notes=tuple(o.notes),
                    revision=o.revision,
                    parent=o.parent,
                )
                for o in parsed.organizations
            ),
        )


class PlanFileInvalid(ValueError):
    """A saved plan that cannot be trusted: not JSON, wrong shape, unknown version, or tampered with."""


def _integrity(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _ChangeFile(_Strict):
    address: str
    type: Literal["organization", "profile", "school", "step", "service", "agreement", "capacity", "staff"]
    action: Literal["create", "update", "delete", "archive", "adopt", "rename"]
    before: dict[str, Any]
    after: dict[str, Any]
    cause: Literal["config", "drift"]
    risk: Literal["low", "review", "destructive"]
    notes: list[str]
    title: str = ""


class _ProblemFile(_Strict):
    message: str
    file: str
    line: int
    column: int
    address: str
    path: str
    document: int


class _OrgFile(_Strict):
    slug: str
    state_fingerprint: str
    changes: list[_ChangeFile]
    unmanaged: dict[str, int]
    problems: list[_ProblemFile] = []
    documents: dict[str, str] = {}
    config_files: dict[str, str] = {}
    skipped: bool = False
    notes: list[str] = []
    revision: int | None = None
    parent: str | None = None


class _PlanFile(_Strict):
    format_version: int
    created_at: str
    database: str
    database_id: str | None = None
    organizations: list[_OrgFile]
    summary: dict[str, int]
    integrity: str | None = None
