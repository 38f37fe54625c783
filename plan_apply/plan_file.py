"""A saved plan as a file: untrusted input, parsed back through a strict schema and its integrity hash.

The schema's vocabularies are not typed twice: item types come from the registry (`records.TYPES`),
actions from `Action`, causes and risks from the plan's own literals, so a new section or action is
accepted in saved plans the moment it exists.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from plan_apply.plan import (
    FORMAT_VERSION,
    Action,
    Cause,
    Change,
    OrgPlan,
    Plan,
    PlanProblem,
    Risk,
    integrity_of,
)
from plan_apply.records import TYPES

__all__ = ["ActionName", "PlanFileInvalid", "TypeName", "parsed_plan"]

if TYPE_CHECKING:
    TypeName = str
    ActionName = str
else:
    TypeName = Literal.__getitem__(TYPES)
    """A record type of the registry, as a saved plan spells it."""
    ActionName = Literal.__getitem__(tuple(a.value for a in Action))
    """An action of the closed vocabulary, as a saved plan spells it."""


class PlanFileInvalid(ValueError):
    """A saved plan that cannot be trusted: not JSON, wrong shape, unknown version, or tampered with."""


def parsed_plan(text: str) -> Plan:
    """The plan a file holds, refusing anything malformed, of another format or tampered with."""
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
    if parsed.integrity != integrity_of(body):
        raise PlanFileInvalid("plan file was modified after it was written (integrity hash mismatch)")
    for org in parsed.organizations:
        if org.documents_root is not None and any(_escapes(path) for path in org.documents.values()):
            raise PlanFileInvalid(
                f"not a valid plan file: {org.slug}: a document path leaves its configuration root"
            )
    return Plan(
        created_at=parsed.created_at,
        database=parsed.database,
        database_id=parsed.database_id,
        format_version=parsed.format_version,
        organizations=tuple(o.value() for o in parsed.organizations),
        integrity=parsed.integrity,
    )


def _escapes(path: str) -> bool:
    pure = PurePosixPath(path.replace("\\", "/"))
    return pure.is_absolute() or ".." in pure.parts or (len(path) > 1 and path[1] == ":")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _ChangeFile(_Strict):
    address: str
    type: TypeName
    action: ActionName
    before: dict[str, Any]
    after: dict[str, Any]
    cause: Cause
    risk: Risk
    notes: list[str]
    title: str = ""
    pending: bool = True
    template: str = ""

    def value(self) -> Change:
        return Change(
            address=self.address,
            type=self.type,
            action=Action(self.action),
            before=self.before,
            after=self.after,
            cause=self.cause,
            risk=self.risk,
            notes=tuple(self.notes),
            title=self.title,
            pending=self.pending,
            template=self.template,
        )


class _ProblemFile(_Strict):
    message: str
    file: str
    line: int
    column: int
    address: str
    path: str
    document: int

    def value(self) -> PlanProblem:
        return PlanProblem(
            self.message, self.file, self.line, self.column, self.address, self.path, self.document
        )


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
    documents_root: str | None = None

    def value(self) -> OrgPlan:
        return OrgPlan(
            slug=self.slug,
            state_fingerprint=self.state_fingerprint,
            changes=tuple(c.value() for c in self.changes),
            unmanaged=self.unmanaged,
            problems=tuple(p.value() for p in self.problems),
            documents=self.documents,
            config_files=self.config_files,
            skipped=self.skipped,
            notes=tuple(self.notes),
            revision=self.revision,
            parent=self.parent,
            documents_root=self.documents_root,
        )


class _PlanFile(_Strict):
    format_version: int
    created_at: str
    database: str
    database_id: str | None = None
    organizations: list[_OrgFile]
    summary: dict[str, int]
    integrity: str
    """Mandatory: a plan without one is refused. It catches an edit, not an editor (anyone can hash):
    apply also re-checks every change against the guards under the lock (`rederive`)."""
