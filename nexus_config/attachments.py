"""Agreement documents: the signed PDF/DOCX files a configuration points at, checked and hashed.

A document path is relative to the YAML file naming it and must stay inside the configuration tree,
also through symlinks. The file is opened once, without following a final symlink, checked with fstat
on that descriptor and hashed as a stream: the hash in the plan is the hash of the bytes uploaded.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path, PurePosixPath

from nexus_config.desired import AttachedDocument, Source
from nexus_config.problems import Problem

__all__ = ["MAX_DOCUMENT_BYTES", "attached_document", "read_document_bytes"]

MAX_DOCUMENT_BYTES = 20_000_000
"""20 MB as FORMAT.md says, in SI megabytes (20,000,000 bytes)."""

_MEDIA_TYPES = {
    ".pdf": ("application/pdf", b"%PDF-", "a PDF (it does not start with %PDF-)"),
    ".docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        b"PK\x03\x04",
        "a DOCX (it is not a ZIP archive)",
    ),
}
_CHUNK = 1 << 20


def _quoted(reference: str) -> str:
    """The path as written, in quotes (a Windows path keeps single backslashes; invisible characters
    are escaped so the message shows what is there)."""
    shown = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in reference)
    return f"'{shown}'"


def _refusal(source: Source, message: str) -> tuple[None, list[Problem]]:
    return None, [source.problem(message, "document", code="document")]


def _inside(path: Path, root: Path) -> bool:
    try:
        return os.path.commonpath([path, root]) == str(root)
    except ValueError:
        return False


def attached_document(
    reference: str, yaml_file: str, root: str, source: Source
) -> tuple[AttachedDocument | None, list[Problem]]:
    """The checked, hashed document a `document:` field names, or why it is refused."""
    if "\x00" in reference or "\n" in reference or "\r" in reference:
        return _refusal(source, "document path contains a control character")
    if "://" in reference or reference.startswith("~"):
        return _refusal(
            source, f"document must be a path inside the configuration tree, not {_quoted(reference)}"
        )
    pure = PurePosixPath(reference.replace("\\", "/"))
    if pure.is_absolute() or (len(reference) > 1 and reference[1] == ":"):
        return _refusal(
            source, f"document path {_quoted(reference)} is absolute; make it relative to {yaml_file}"
        )
    if ".." in pure.parts:
        return _refusal(
            source, f"document path {_quoted(reference)} leaves its directory ('..' is not allowed)"
        )
    suffix = pure.suffix.lower()
    if suffix not in _MEDIA_TYPES:
        return _refusal(source, f"document {_quoted(reference)} must be a .pdf or .docx file")
    real_root = Path(os.path.realpath(root))
    candidate = Path(os.path.dirname(os.path.abspath(yaml_file))) / pure
    real = Path(os.path.realpath(candidate))
    if not _inside(real, real_root):
        return _refusal(source, f"document {_quoted(reference)} resolves outside the configuration tree")
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return _refusal(source, f"document {_quoted(reference)} does not exist (looked for {candidate})")
    except OSError as exc:
        return _refusal(source, f"document {_quoted(reference)} cannot be read: {exc.strerror}")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return _refusal(source, f"document {_quoted(reference)} is not a regular file")
        if info.st_size == 0:
            return _refusal(source, f"document {_quoted(reference)} is empty")
        if info.st_size > MAX_DOCUMENT_BYTES:
            return _refusal(
                source,
                f"document {_quoted(reference)} is {info.st_size:,} bytes; the limit is {MAX_DOCUMENT_BYTES:,} (20 MB)",
            )
        media_type, magic, what = _MEDIA_TYPES[suffix]
        digest = hashlib.sha256()
        head = b""
        with os.fdopen(fd, "rb", closefd=False) as stream:
            while chunk := stream.read(_CHUNK):
                if not head:
                    head = chunk[: len(magic)]
                digest.update(chunk)
        if head != magic:
            return _refusal(source, f"document {_quoted(reference)} is not {what}")
        return AttachedDocument(str(real), pure.name, info.st_size, digest.hexdigest(), media_type), []
    finally:
        os.close(fd)


def read_document_bytes(document: AttachedDocument) -> bytes:
    """The document's bytes, opened with validate's checks (no final symlink, never blocking on a FIFO
    or a device, a regular file within the size limit) and refused (ValueError) if they no longer hash
    to what the plan saw."""
    try:
        fd = os.open(document.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ValueError(f"document {document.path} cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"document {document.path} is not a regular file")
        if info.st_size > MAX_DOCUMENT_BYTES:
            raise ValueError(f"document {document.path} is larger than {MAX_DOCUMENT_BYTES:,} bytes (20 MB)")
        data = stream.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES or hashlib.sha256(data).hexdigest() != document.sha256:
        raise ValueError(f"document {document.path} changed since it was checked")
    return data
