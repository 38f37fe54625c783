"""Agreement documents (catalog §E): a PDF or DOCX of at most 20 MB, relative to the YAML file that names
it and inside the configuration tree. Everything else is refused at the `document:` line, without
opening anything outside the tree and without hanging on a FIFO."""

from __future__ import annotations

import io
import os
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nexus_config import LoadResult, Problem, load_configuration
from nexus_config.attachments import MAX_DOCUMENT_BYTES

WriteTree = Callable[..., Path]

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
    document: REFERENCE
"""
LINE, COLUMN, POINTER = 14, 15, "/agreements/0/document"
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def _docx() -> bytes:
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
    return stream.getvalue()


def _write(write_tree: WriteTree, reference: str, files: dict[str, bytes] | None = None) -> Path:
    return write_tree({"org/lakeview.yaml": ORG.replace("REFERENCE", reference), **(files or {})})


def _load(tree: Path) -> LoadResult:
    """Load in a thread: a FIFO opened for reading would block forever, so a hang fails the test."""
    box: dict[str, LoadResult] = {}
    worker = threading.Thread(
        target=lambda: box.setdefault("result", load_configuration([tree])), daemon=True
    )
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "loading hung"
    return box["result"]


def _refusal(result: LoadResult) -> Problem:
    (problem,) = result.errors
    assert (problem.line, problem.column, problem.pointer, problem.code) == (
        LINE,
        COLUMN,
        POINTER,
        "document",
    )
    return problem


ESCAPES = [
    ("../../etc/passwd", "document path '../../etc/passwd' leaves its directory ('..' is not allowed)"),
    ("a/../../x.pdf", "document path 'a/../../x.pdf' leaves its directory ('..' is not allowed)"),
    ("../other-org/signed.pdf", "leaves its directory ('..' is not allowed)"),
    ("/etc/passwd", "document path '/etc/passwd' is absolute; make it relative to "),
    ("'C:\\Windows\\win.ini'", "document path 'C:\\Windows\\win.ini' is absolute"),
    ("'\\\\server\\share\\signed.pdf'", "is absolute"),
    ("~/.ssh/id_rsa", "document must be a path inside the configuration tree, not '~/.ssh/id_rsa'"),
    ("file:///etc/passwd", "document must be a path inside the configuration tree, not 'file:///etc/passwd'"),
    (
        "https://169.254.169.254/latest/meta-data.pdf",
        "document must be a path inside the configuration tree, not 'https://169.254.169.254/latest/meta-data.pdf'",
    ),
    ("..%2f..%2fetc/passwd.pdf", "does not exist"),
    ('"documents/a\\0b.pdf"', "document path contains a control character"),
    ('"documents/a\\nb.pdf"', "document path contains a control character"),
]


@pytest.mark.parametrize(("reference", "message"), ESCAPES, ids=[e[0] for e in ESCAPES])
def test_a_path_that_leaves_the_tree_is_refused_at_the_document_line(
    write_tree: WriteTree, reference: str, message: str
) -> None:
    assert message in _refusal(_load(_write(write_tree, reference))).message


def _opened_outside(tree: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Load the tree and return every path opened with os.open that lies outside it."""
    opened: list[str] = []
    real_open = os.open

    def recording_open(path: str | bytes | os.PathLike[str], *args: object, **kwargs: object) -> int:
        opened.append(os.fsdecode(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", recording_open)
    load_configuration([tree])
    monkeypatch.undo()
    root = str(tree.resolve())
    return [p for p in opened if os.path.commonpath([os.path.realpath(p), root]) != root]


@pytest.mark.parametrize(("reference", "message"), ESCAPES, ids=[e[0] for e in ESCAPES])
def test_a_refused_path_is_never_opened(
    write_tree: WriteTree, monkeypatch: pytest.MonkeyPatch, reference: str, message: str
) -> None:
    assert _opened_outside(_write(write_tree, reference), monkeypatch) == []


def test_a_symlink_out_of_the_tree_is_never_opened(
    write_tree: WriteTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "secret.pdf"
    outside.write_bytes(PDF)
    tree = _write(write_tree, "documents/signed.pdf", {"org/documents/.keep": b""})
    (tree / "org" / "documents" / "signed.pdf").symlink_to(outside)
    assert _opened_outside(tree, monkeypatch) == []


def test_the_open_audit_sees_documents_it_opens(
    write_tree: WriteTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit above can fail: the document inside the tree is opened and recorded (then allowed)."""
    tree = _write(write_tree, "documents/signed.pdf", {"org/documents/signed.pdf": PDF})
    inside = tree.resolve() / "org" / "documents" / "signed.pdf"
    opened: list[str] = []
    real_open = os.open

    def recording_open(path: Any, *a: Any, **k: Any) -> int:
        opened.append(os.fsdecode(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", recording_open)
    assert load_configuration([tree]).ok
    assert str(inside) in opened


def test_a_document_next_to_the_yaml_file_is_hashed(write_tree: WriteTree) -> None:
    tree = _write(write_tree, "documents/signed.pdf", {"org/documents/signed.pdf": PDF})
    result = _load(tree)
    assert result.ok, [p.as_text() for p in result.errors]
    document = result.state.organizations["lakeview"].documents["state"]
    assert (document.name, document.size, document.media_type) == ("signed.pdf", len(PDF), "application/pdf")
    assert document.path == str((tree / "org" / "documents" / "signed.pdf").resolve())
    assert len(document.sha256) == 64


def test_an_uppercase_pdf_extension_is_accepted(write_tree: WriteTree) -> None:
    result = _load(_write(write_tree, "documents/SIGNED.PDF", {"org/documents/SIGNED.PDF": PDF}))
    assert result.ok, [p.as_text() for p in result.errors]


def test_a_docx_that_is_a_zip_archive_is_accepted(write_tree: WriteTree) -> None:
    result = _load(_write(write_tree, "signed.docx", {"org/signed.docx": _docx()}))
    assert result.ok, [p.as_text() for p in result.errors]
    assert (
        result.state.organizations["lakeview"]
        .documents["state"]
        .media_type.endswith("wordprocessingml.document")
    )


def test_the_path_is_relative_to_the_yaml_file_not_the_tree(write_tree: WriteTree) -> None:
    tree = _write(write_tree, "signed.pdf", {"signed.pdf": PDF})  # at the root, not next to org/lakeview.yaml
    message = _refusal(_load(tree)).message
    assert message.startswith("document 'signed.pdf' does not exist (looked for ")
    assert message.endswith(f"{tree / 'org' / 'signed.pdf'})")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.pdf", b"", "document 'documents/empty.pdf' is empty"),
        ("page.pdf", b"<!doctype html><html>not a pdf</html>", "is not a PDF (it does not start with %PDF-)"),
        ("letter.docx", b"Dear school, ...", "is not a DOCX (it is not a ZIP archive)"),
        ("signed", PDF, "document 'documents/signed' must be a .pdf or .docx file"),
        ("signed.pdf.exe", PDF, "must be a .pdf or .docx file"),
        ("signed.doc", PDF, "must be a .pdf or .docx file"),
    ],
    ids=["empty", "html-named-pdf", "text-named-docx", "no-extension", "pdf-exe", "old-doc"],
)
def test_a_document_must_be_what_its_name_says(
    write_tree: WriteTree, name: str, content: bytes, message: str
) -> None:
    tree = _write(write_tree, f"documents/{name}", {f"org/documents/{name}": content})
    assert message in _refusal(_load(tree)).message


def test_exactly_20_mb_is_accepted(write_tree: WriteTree) -> None:
    tree = _write(write_tree, "documents/big.pdf", {"org/documents/big.pdf": PDF})
    os.truncate(tree / "org" / "documents" / "big.pdf", MAX_DOCUMENT_BYTES)  # sparse: fast and small
    result = _load(tree)
    assert result.ok, [p.as_text() for p in result.errors]
    assert result.state.organizations["lakeview"].documents["state"].size == 20_000_000


def test_one_byte_over_20_mb_is_refused(write_tree: WriteTree) -> None:
    tree = _write(write_tree, "documents/big.pdf", {"org/documents/big.pdf": PDF})
    os.truncate(tree / "org" / "documents" / "big.pdf", MAX_DOCUMENT_BYTES + 1)
    message = _refusal(_load(tree)).message
    assert message == "document 'documents/big.pdf' is 20,000,001 bytes; the limit is 20,000,000 (20 MB)"


def test_a_directory_named_pdf_is_refused(write_tree: WriteTree) -> None:
    tree = _write(write_tree, "documents/folder.pdf", {"org/documents/folder.pdf/inside.txt": b"x"})
    assert _refusal(_load(tree)).message == "document 'documents/folder.pdf' is not a regular file"


def test_a_fifo_named_pdf_is_refused_without_hanging(write_tree: WriteTree) -> None:
    tree = _write(write_tree, "documents/pipe.pdf", {"org/documents/.keep": b""})
    os.mkfifo(tree / "org" / "documents" / "pipe.pdf")
    assert _refusal(_load(tree)).message == "document 'documents/pipe.pdf' is not a regular file"


def test_a_missing_document_is_refused(write_tree: WriteTree) -> None:
    assert (
        "document 'documents/missing.pdf' does not exist"
        in _refusal(_load(_write(write_tree, "documents/missing.pdf"))).message
    )


# --- symlinks --------------------------------------------------------------------------------------------


def test_a_symlink_to_a_file_outside_the_tree_is_refused(write_tree: WriteTree, tmp_path: Path) -> None:
    outside = tmp_path / "secret.pdf"
    outside.write_bytes(PDF)
    tree = _write(write_tree, "documents/signed.pdf", {"org/documents/.keep": b""})
    (tree / "org" / "documents" / "signed.pdf").symlink_to(outside)
    assert (
        _refusal(_load(tree)).message
        == "document 'documents/signed.pdf' resolves outside the configuration tree"
    )


def test_a_symlink_to_etc_passwd_is_refused(write_tree: WriteTree) -> None:
    tree = _write(write_tree, "documents/passwd.pdf", {"org/documents/.keep": b""})
    (tree / "org" / "documents" / "passwd.pdf").symlink_to("/etc/passwd")
    assert "resolves outside the configuration tree" in _refusal(_load(tree)).message


def test_a_chain_of_symlinks_that_ends_outside_is_refused(write_tree: WriteTree, tmp_path: Path) -> None:
    outside = tmp_path / "secret.pdf"
    outside.write_bytes(PDF)
    tree = _write(write_tree, "documents/a.pdf", {"org/documents/.keep": b""})
    (tree / "org" / "documents" / "b.pdf").symlink_to(outside)
    (tree / "org" / "documents" / "a.pdf").symlink_to("b.pdf")
    assert "resolves outside the configuration tree" in _refusal(_load(tree)).message


def test_a_folder_symlinked_to_the_filesystem_root_is_refused(write_tree: WriteTree) -> None:
    tree = _write(write_tree, "root/etc/hostname.pdf")
    (tree / "org" / "root").symlink_to("/")
    errors = _load(tree).errors
    assert errors and all("outside the configuration tree" in p.message for p in errors)
    document = [p for p in errors if p.pointer == POINTER]
    assert [(p.line, p.column) for p in document] == [(LINE, COLUMN)]


def test_a_symlink_that_stays_inside_the_tree_is_followed(write_tree: WriteTree) -> None:
    tree = _write(write_tree, "documents/current.pdf", {"shared/signed-2027.pdf": PDF})
    (tree / "org" / "documents").mkdir()
    (tree / "org" / "documents" / "current.pdf").symlink_to(tree / "shared" / "signed-2027.pdf")
    result = _load(tree)
    assert result.ok, [p.as_text() for p in result.errors]
    assert result.state.organizations["lakeview"].documents["state"].path == str(
        (tree / "shared" / "signed-2027.pdf").resolve()
    )


def test_a_symlink_loop_is_refused_cleanly(write_tree: WriteTree) -> None:
    tree = _write(write_tree, "documents/a.pdf", {"org/documents/.keep": b""})
    (tree / "org" / "documents" / "a.pdf").symlink_to("b.pdf")
    (tree / "org" / "documents" / "b.pdf").symlink_to("a.pdf")
    assert (
        _refusal(_load(tree)).message
        == "document 'documents/a.pdf' cannot be read: Too many levels of symbolic links"
    )
