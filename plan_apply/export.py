"""`nexus export`: what the database holds for some organizations, written as `nexus/v1` files.

Records (the same ones plans compare) → documents in FORMAT.md's key order with only non-default values
→ canonical YAML, then a writer that only ever writes inside the output directory. The law (CLI.md):
planning the written files against the same database changes nothing. Rows created in the web UI are
exported too and then plan as `adopt` with no field changes: exporting them is how they become managed.
Archived rows are history, not configuration: they are not exported.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from nexus_config.sections import DOCUMENT_SECTIONS
from nexus_config.suggest import did_you_mean
from nexus_config.yaml_reader import read_documents
from plan_apply.actual import ActualOrganization, ActualState
from plan_apply.database import tables as t
from plan_apply.database.reads import read_actual_state
from plan_apply.errors import NexusError, UsageProblem
from plan_apply.sections import SECTIONS, Record
from plan_apply.sections.section import ExportContext, put

__all__ = [
    "Export",
    "ExportedFile",
    "document_text",
    "organization_document",
    "read_export",
    "render_export",
    "safe_file_name",
    "schema_reference",
    "write_export",
    "yaml_data",
]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
_SCHEMA = ("schemas", "v1", "nexus.schema.json")


@dataclass(frozen=True, slots=True)
class ExportedFile:
    """One file to write: its path under the output directory, as safe components, and its bytes."""

    path: tuple[str, ...]
    content: bytes

    @property
    def relative(self) -> str:
        return "/".join(self.path)


@dataclass(frozen=True, slots=True)
class Export:
    """The files of an export, the organizations they hold, and what they cannot say exactly."""

    files: tuple[ExportedFile, ...]
    organizations: tuple[str, ...]
    notes: tuple[str, ...] = ()


# --- reading ---------------------------------------------------------------------------------------------


def read_export(
    connection: Connection, slugs: Sequence[str]
) -> tuple[ActualState, dict[str, bytes], list[str]]:
    """The organizations (and their ancestors: a child's file needs its parent in the same tree; and the
    facilities their system-wide agreements cover), the bytes of their agreements' documents, and the
    organizations added. One read transaction."""
    with connection.begin():
        wanted = list(dict.fromkeys(slugs))
        actual = read_actual_state(connection, wanted)
        missing = [slug for slug in wanted if actual.organizations[slug].id is None]
        if missing:
            known = connection.execute(sa.select(t.organizations.c.slug)).scalars().all()
            hint = did_you_mean(missing[0], known)
            raise UsageProblem(f'organization "{missing[0]}" is not in the database{hint}')
        organizations = dict(actual.organizations)
        added: list[str] = []
        while parents := sorted(
            {_parent(org) or "" for org in organizations.values()}.union(
                *(covered_facilities(org) for org in organizations.values())
            )
            - {""}
            - set(organizations)
        ):
            added.extend(parents)
            organizations.update(read_actual_state(connection, parents).organizations)
        hashes = sorted(
            {
                r.fields["document"]["sha256"]
                for org in organizations.values()
                for r in org.records.values()
                if r.type == "agreement" and not r.archived and r.fields.get("document")
            }
        )
        contents: dict[str, bytes] = {}
        for start in range(0, len(hashes), 500):
            rows = connection.execute(
                sa.select(t.documents.c.sha256, t.documents.c.content).where(
                    t.documents.c.sha256.in_(hashes[start : start + 500])
                )
            )
            contents.update({row.sha256: bytes(row.content) for row in rows})
    return ActualState(organizations), contents, added


# --- records → documents -------------------------------------------------------------------------------


def covered_facilities(org: ActualOrganization) -> set[str]:
    """The facilities whose services the organization's live (system-wide) agreements link: their
    files go with it, or its `covers` would name organizations the exported tree does not hold."""
    return {
        name.split("/", 1)[0]
        for r in org.records.values()
        if r.type == "agreement" and not r.archived
        for name in r.fields.get("services") or ()
        if "/" in name
    }


def _parent(org: ActualOrganization) -> str | None:
    record = org.records.get(org.slug)
    parent = record.fields.get("parent") if record is not None else None
    return str(parent) if parent else None


def safe_file_name(name: str) -> str:
    """`name` as one safe path component: no separators, control or reserved characters, no leading dot."""
    cleaned = _UNSAFE_NAME.sub("_", name).lstrip(".").strip()
    return cleaned[:200] or "document"


def organization_document(
    org: ActualOrganization,
    state: ActualState,
    contents: Mapping[str, bytes],
) -> tuple[dict[str, Any], list[ExportedFile], list[str]]:
    """One organization as a v1 document (FORMAT.md's key order, defaults left out), the agreement
    documents to write beside it (paths relative to its directory), and notes on what it cannot say."""
    notes: list[str] = []
    record = org.records[org.slug]
    metadata: dict[str, Any] = {"slug": org.slug}
    put(metadata, "parent", record.fields.get("parent"))
    put(metadata, "labels", dict(record.fields.get("labels") or {}))
    document: dict[str, Any] = {"apiVersion": "nexus/v1", "kind": "Organization", "metadata": metadata}
    files: list[ExportedFile] = []
    used: dict[str, str] = {}

    def attach(record: Record, attached: Mapping[str, Any]) -> str | None:
        path, file = _document_file(record, attached, contents, used, notes)
        if file is not None:
            files.append(file)
        return path

    context = ExportContext(org, state, notes, attach)
    for section in _EXPORTED:
        assert section.export is not None and section.document is not None
        items = section.export(context)
        if items:
            document[section.document.key] = items if section.document.many else items[0]
    return document, files, notes


_EXPORTED = sorted(
    (s for s in SECTIONS if s.export is not None and s.document is not None),
    key=lambda s: [d.key for d in DOCUMENT_SECTIONS].index(s.document.key if s.document else ""),
)
"""The sections a document lists, in FORMAT.md's key order (capacity is exported inside services)."""


def _document_file(
    record: Record,
    attached: Mapping[str, Any],
    contents: Mapping[str, bytes],
    used: dict[str, str],
    notes: list[str],
) -> tuple[str | None, ExportedFile | None]:
    """Where an agreement's document goes (`documents/NAME`, or `documents/N/NAME` when two differ)."""
    name, sha256 = str(attached.get("name") or ""), str(attached.get("sha256"))
    content = contents.get(sha256)
    if content is None:
        notes.append(f"{record.address}: its document {name!r} is missing from the database; left out")
        return None, None
    safe = safe_file_name(name)
    if safe != name:
        notes.append(
            f"{record.address}: document name {name!r} is not a safe file name; written as {safe!r} (the next "
            "plan will show the document's name changing)"
        )
    folder: tuple[str, ...] = ("documents",)
    number = 1
    while used.get("/".join((*folder, safe)).lower(), sha256) != sha256:
        number += 1
        folder = ("documents", str(number))
    path = "/".join((*folder, safe))
    if path.lower() in used:  # the same document, named by another agreement: written once
        return path, None
    used[path.lower()] = sha256
    return path, ExportedFile((*folder, safe), content)


# --- documents → YAML ----------------------------------------------------------------------------------


def _literal_safe(text: str) -> bool:
    lines = text.split("\n")
    return (
        "\n" in text.rstrip("\n")
        and not text.startswith((" ", "\t", "\n"))
        and all(line == line.rstrip() for line in lines)
        and all(c in "\n\t" or c.isprintable() for c in text)
    )


_FLOW_UNSAFE = re.compile(r"[,\[\]{}#:&*!|>'\"%@`?]|^-|^\s|\s$")


def _flow_safe(item: Any) -> bool:
    """Whether a list item reads back the same inside `[...]`: ruamel leaves `:0` unquoted there, where a
    flow sequence reads it as a mapping; such a list is written one item a line instead."""
    return not isinstance(item, dict | list) and not (isinstance(item, str) and _FLOW_UNSAFE.search(item))


def yaml_data(value: Any) -> Any:
    """Plain data as ruamel types in the canonical style: block mappings, lists of scalars in flow
    style (`[a, b]`), multi-line text as `|` blocks where that reads back exactly."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import LiteralScalarString

    if isinstance(value, dict):
        mapping = CommentedMap()
        for key, item in value.items():
            mapping[key] = yaml_data(item)
        return mapping
    if isinstance(value, list):
        sequence = CommentedSeq(yaml_data(item) for item in value)
        if all(_flow_safe(item) for item in value):
            sequence.fa.set_flow_style()
        return sequence
    if isinstance(value, str) and _literal_safe(value):
        return LiteralScalarString(value)
    return value


def document_text(document: Mapping[str, Any], schema_ref: str) -> str:
    """The canonical YAML of one exported document, starting with the yaml-language-server modeline."""
    from nexus_config.rewrite import dump_document

    data = yaml_data(dict(document))
    for key in list(data)[3:]:  # a blank line before each section, as people write them
        data.yaml_set_comment_before_after_key(key, before="\n")
    text = f"# yaml-language-server: $schema={schema_ref}\n" + dump_document(data, explicit_null=True)
    read, problems = read_documents("export", text)
    if problems or [d.data for d in read] != [json.loads(json.dumps(document))]:  # pragma: no cover - a bug
        raise NexusError("internal error: exported YAML does not read back as written (please report it)")
    return text


def render_export(
    state: ActualState,
    slugs: Sequence[str],
    contents: Mapping[str, bytes],
    schema_ref: str,
    *,
    factor: bool = False,
) -> Export:
    """Every file of an export: `SLUG/organization.yaml` and its documents under `SLUG/documents/`;
    with `factor`, services shared by a parent's children as service templates of the parent."""
    notes: list[str] = []
    documents: dict[str, dict[str, Any]] = {}
    attached: dict[str, list[ExportedFile]] = {}
    for slug in slugs:
        if not _SLUG.match(slug):
            raise UsageProblem(
                f"organization slug {slug!r} in the database is not a valid slug (lowercase letters, digits and "
                "hyphens): it can be neither a directory nor a configuration; rename it on the platform first"
            )
        documents[slug], attached[slug], org_notes = organization_document(
            state.organizations[slug], state, contents
        )
        notes.extend(org_notes)
    if factor:
        from plan_apply.factor import factored_documents

        documents = factored_documents(documents)
    files: list[ExportedFile] = []
    for slug in slugs:
        text = document_text(documents[slug], schema_ref)
        files.append(ExportedFile((slug, "organization.yaml"), text.encode()))
        files.extend(ExportedFile((slug, *f.path), f.content) for f in attached[slug])
    return Export(tuple(files), tuple(slugs), tuple(notes))


def schema_reference(out_dir: str, url: str) -> str:
    """The modeline's schema: relative to the nearest `schemas/v1/nexus.schema.json` above the output
    (exporting into a repository that holds it), else the schema's public URL."""
    org_dir = os.path.join(os.path.realpath(out_dir), "_")
    current = os.path.realpath(out_dir)
    while True:
        candidate = os.path.join(current, *_SCHEMA)
        if os.path.isfile(candidate):
            return os.path.relpath(candidate, org_dir).replace(os.sep, "/")
        parent = os.path.dirname(current)
        if parent == current:
            return url
        current = parent


# --- writing -------------------------------------------------------------------------------------------


_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def _check_targets(out_dir: str, files: Sequence[ExportedFile], force: bool) -> None:
    """Refuse symlinks anywhere below the output directory and, without --force, existing files."""
    existing = []
    for file in files:
        current = out_dir
        for number, part in enumerate(file.path):
            current = os.path.join(current, part)
            if os.path.islink(current):
                raise NexusError(f"{current} is a symlink: nexus export never writes through symlinks")
            last = number == len(file.path) - 1
            if os.path.lexists(current) and not last and not os.path.isdir(current):
                raise NexusError(f"{current} is in the way: it should be a directory")
            if last and os.path.lexists(current):
                if not os.path.isfile(current):
                    raise NexusError(f"{current} is in the way: it is not a regular file")
                existing.append(current)
    if existing and not force:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise NexusError(f"{shown} already exist(s): nothing was written; re-run with --force to overwrite")


def _write_file(directory_fd: int, name: str, content: bytes, force: bool) -> None:
    target = f".{name}.{secrets.token_hex(4)}.tmp" if force else name
    fd = os.open(target, _NEW_FILE, 0o666, dir_fd=directory_fd)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        if force:
            os.replace(target, name, src_dir_fd=directory_fd, dst_dir_fd=directory_fd)
    except BaseException:
        if force:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target, dir_fd=directory_fd)
        raise


def write_export(out_dir: str, files: Sequence[ExportedFile], *, force: bool) -> list[str]:
    """Write the files under `out_dir` and nowhere else: every directory is opened without following
    symlinks, files are created exclusively (or replaced atomically with `force`). Returns their paths."""
    if os.path.islink(out_dir):
        raise NexusError(f"{out_dir} is a symlink: give the real directory to export into")
    for file in files:
        if any(
            part in ("", ".", "..") or "/" in part or "\\" in part or "\x00" in part for part in file.path
        ):
            raise NexusError(f"refusing to write {file.relative!r}: not a safe path")  # pragma: no cover
    _check_targets(out_dir, files, force)
    written = []
    try:
        os.makedirs(out_dir, exist_ok=True)
        root = os.open(out_dir, _DIRECTORY)
        try:
            for file in files:
                opened: list[int] = []
                directory = root
                try:
                    for part in file.path[:-1]:
                        with contextlib.suppress(FileExistsError):
                            os.mkdir(part, 0o777, dir_fd=directory)
                        directory = os.open(part, _DIRECTORY, dir_fd=directory)
                        opened.append(directory)
                    _write_file(directory, file.path[-1], file.content, force)
                finally:
                    for fd in opened:
                        os.close(fd)
                written.append(os.path.join(out_dir, *file.path))
        finally:
            os.close(root)
    except OSError as exc:
        where = exc.filename or out_dir
        raise NexusError(f"cannot write the export into {out_dir} ({where}): {exc.strerror}") from None
    return written
