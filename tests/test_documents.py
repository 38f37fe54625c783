"""Agreement documents: a PDF or DOCX of at most 20 MB inside the configuration tree, refused at the
`document:` line otherwise (catalog §E); never read outside the tree, never a hang on a FIFO."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from nexus_config import load_configuration
from nexus_config.attachments import MAX_DOCUMENT_BYTES

ORG = """\
apiVersion: nexus/v1
kind: Organization
metadata: {slug: lakeview}
profile: {name: Lakeview, type: hospital}
schools: [{key: state-u, name: State University, contact_email: placements@state.example.edu}]
services: [{key: er, name: Emergency, disciplines: [nursing]}]
agreements:
  - key: state
    school: state-u
    name: State nursing
    start_date: 2027-01-01
    services: [er]
    disciplines: [nursing]
    document: DOCUMENT
"""
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
LINE = 14


def _load(write_tree: Callable[..., Path], reference: str, files: dict[str, bytes] | None = None):  # type: ignore[no-untyped-def]
    tree = write_tree({"org/lakeview.yaml": ORG.replace("DOCUMENT", reference), **(files or {})})
    return tree, load_configuration([tree])


@pytest.mark.parametrize(
    ("reference", "fragment"),
    [
        ("../../../../etc/passwd.pdf", "'..' is not allowed"),
        ("/etc/passwd.pdf", "is absolute"),
        ("~/.ssh/id_rsa.pdf", "not '~/.ssh/id_rsa.pdf'"),
        ("'C:\\Windows\\win.pdf'", "is absolute"),
        ("file:///etc/passwd.pdf", "must be a path inside the configuration tree"),
        ("https://169.254.169.254/latest/meta-data.pdf", "must be a path inside the configuration tree"),
        ("a/../../x.pdf", "'..' is not allowed"),
        ("documents/signed", "must be a .pdf or .docx file"),
        ("documents/missing.pdf", "does not exist"),
    ],
)
def test_document_paths_that_leave_the_tree_or_do_not_exist_are_refused(
    write_tree: Callable[..., Path], reference: str, fragment: str
) -> None:
    _, result = _load(write_tree, reference)
    (problem,) = result.errors
    assert fragment in problem.message
    assert (problem.line, problem.pointer) == (LINE, "/agreements/0/document")


def test_a_document_inside_the_tree_is_hashed(write_tree: Callable[..., Path]) -> None:
    _, result = _load(write_tree, "documents/signed.PDF", {"org/documents/signed.PDF": PDF})
    assert result.ok, [p.as_text() for p in result.errors]
    document = result.state.organizations["lakeview"].documents["state"]
    assert (document.name, document.size, len(document.sha256)) == ("signed.PDF", len(PDF), 64)


def test_a_symlink_that_leaves_the_tree_is_refused_and_one_inside_is_followed(
    write_tree: Callable[..., Path], tmp_path: Path
) -> None:
    tree, _ = _load(write_tree, "documents/inside.pdf", {"org/documents/real.pdf": PDF})
    (tree / "org" / "documents" / "inside.pdf").symlink_to(tree / "org" / "documents" / "real.pdf")
    assert load_configuration([tree]).ok
    outside = tmp_path / "secret.pdf"
    outside.write_bytes(PDF)
    (tree / "org" / "documents" / "escape.pdf").symlink_to(outside)
    (tree / "org" / "lakeview.yaml").write_text(ORG.replace("DOCUMENT", "documents/escape.pdf"))
    (problem,) = load_configuration([tree]).errors
    assert "resolves outside the configuration tree" in problem.message


def test_a_folder_linked_to_the_root_is_refused(write_tree: Callable[..., Path]) -> None:
    tree, _ = _load(write_tree, "root/etc/hostname.pdf")
    (tree / "org" / "root").symlink_to("/")
    errors = load_configuration([tree]).errors
    assert errors and all("outside the configuration tree" in p.message for p in errors)


def test_exactly_20_mb_is_accepted_and_one_byte_more_refused(write_tree: Callable[..., Path]) -> None:
    tree, _ = _load(write_tree, "documents/big.pdf", {"org/documents/big.pdf": PDF})
    big = tree / "org" / "documents" / "big.pdf"
    with big.open("r+b") as stream:
        stream.truncate(MAX_DOCUMENT_BYTES)
    assert load_configuration([tree]).ok
    with big.open("r+b") as stream:
        stream.truncate(MAX_DOCUMENT_BYTES + 1)
    (problem,) = load_configuration([tree]).errors
    assert "20,000,001 bytes; the limit is 20,000,000" in problem.message


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("empty.pdf", b"", "is empty"),
        ("page.pdf", b"<html><body>not a pdf</body></html>", "is not a PDF"),
        ("letter.docx", b"just text", "is not a DOCX"),
    ],
)
def test_documents_must_be_what_they_say(
    write_tree: Callable[..., Path], name: str, content: bytes, fragment: str
) -> None:
    _, result = _load(write_tree, f"documents/{name}", {f"org/documents/{name}": content})
    (problem,) = result.errors
    assert fragment in problem.message


def test_a_fifo_or_folder_named_pdf_is_refused_without_hanging(write_tree: Callable[..., Path]) -> None:
    tree, _ = _load(write_tree, "documents/pipe.pdf", {"org/documents/keep": b""})
    os.mkfifo(tree / "org" / "documents" / "pipe.pdf")
    (problem,) = load_configuration([tree]).errors
    assert "is not a regular file" in problem.message
    (tree / "org" / "lakeview.yaml").write_text(ORG.replace("DOCUMENT", "documents"))
    assert load_configuration([tree]).errors


def test_odd_path_strings_are_located_errors(write_tree: Callable[..., Path]) -> None:
    _, result = _load(write_tree, '"documents/a\\0b.pdf"')
    (problem,) = result.errors
    assert "control character" in problem.message
