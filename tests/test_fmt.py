"""`nexus fmt`: canonical form keeping comments and key order; `--check`, `--diff`; safe writes.

Laws (hypothesis): fmt is idempotent and never changes what a file says.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nexus_config.rewrite import format_text
from nexus_config.yaml_reader import read_documents

from .conftest import EXAMPLES
from .strategies import organization
from .test_cli_plan_apply import Run


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(capsys, "")


def _fmt(text: str) -> str:
    result = format_text("x.yaml", textwrap.dedent(text).lstrip("\n"))
    assert result.after is not None, [p.as_text() for p in result.problems]
    return result.after


def _data(text: str) -> str:
    documents, problems = read_documents("x.yaml", text)
    assert not problems
    return json.dumps([d.data for d in documents])


# --- the canonical form ---------------------------------------------------------------------------------


def test_fmt_leaves_every_example_file_unchanged() -> None:
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        result = format_text(str(path), path.read_text(encoding="utf-8"))
        assert result.after is not None and not result.changed, path


def test_fmt_indents_mappings_by_two_and_sequences_under_their_key() -> None:
    assert (
        _fmt("""
        a:
            b: 1
        items:
        - x
        -   y
        maps:
        - key: one
          name: One
    """)
        == "a:\n  b: 1\nitems:\n  - x\n  - y\nmaps:\n  - key: one\n    name: One\n"
    )


def test_fmt_keeps_comments_key_order_and_quoting() -> None:
    text = """
        # yaml-language-server: $schema=../schemas/v1/nexus.schema.json
        zeta: 'single'   # why
        alpha: "double"
        # before mu
        mu: plain
    """
    assert _fmt(text) == (
        "# yaml-language-server: $schema=../schemas/v1/nexus.schema.json\n"
        "zeta: 'single'   # why\n"
        'alpha: "double"\n'
        "# before mu\n"
        "mu: plain\n"
    )


def test_fmt_keeps_scalars_spelled_as_written() -> None:
    text = "a: 0777\nb: 1_000\nc: NO\nd: 1:20\ne: 2026-1-2\nf: 2026-01-02\ng: 0o17\nh: 1.50\ni: +.5\n"
    assert _fmt(text) == text


def test_fmt_never_rewraps_long_lines() -> None:
    text = "description: " + " ".join(["word"] * 80) + "\nlist: [" + ", ".join(["item"] * 60) + "]\n"
    assert _fmt(text) == text


def test_fmt_joins_a_flow_collection_split_over_lines() -> None:
    assert _fmt("a: {key: x,\n   name: y}\n") == "a: {key: x, name: y}\n"


def test_fmt_removes_trailing_whitespace_and_collapses_blank_lines() -> None:
    assert _fmt("\n\na: 1   \n\n\n\nb: 2  # c   \n\n\n") == "a: 1\n\nb: 2  # c\n"


def test_fmt_keeps_whitespace_that_is_content_of_a_block_scalar() -> None:
    text = "a: |\n  trailing  \n\n\n  kept\nb: |+\n  keep\n\n"
    assert _fmt(text) == text


def test_fmt_ends_with_exactly_one_newline() -> None:
    assert _fmt("a: 1") == "a: 1\n"
    assert _fmt("a: 1\n\n\n") == "a: 1\n"


def test_fmt_separates_documents_with_a_bare_marker_and_drops_empty_ones() -> None:
    assert _fmt("a: 1\n--- \n---\n# only a comment\n---\nb: 2\n...\n") == (
        "a: 1\n---\n# only a comment\n---\nb: 2\n"
    )


def test_fmt_keeps_a_leading_marker_and_the_comments_before_it() -> None:
    assert _fmt("# modeline\n---\na: 1\n") == "# modeline\n---\na: 1\n"
    assert _fmt("a: 1\n") == "a: 1\n"


def test_fmt_keeps_a_byte_order_mark_and_crlf_line_endings() -> None:
    result = format_text("x.yaml", "\ufeffa:   1\r\nb:\r\n- x\r\n")
    assert result.after == "\ufeffa: 1\r\nb:\r\n  - x\r\n"


def test_fmt_writes_a_top_level_sequence_in_column_0_with_its_comments() -> None:
    text = "# hooks\n- id: one  # first\n  # about two\n  entry: x\n\n- id: two\n  args: [a]\n"
    assert _fmt(text) == text
    assert _fmt("  - id: one\n    entry: x\n") == "- id: one\n  entry: x\n"


def test_fmt_keeps_a_comment_only_file() -> None:
    assert _fmt("# nothing here yet   \n") == "# nothing here yet\n"


def test_fmt_refuses_a_file_with_yaml_errors_with_its_location() -> None:
    result = format_text("x.yaml", "a: 1\nb: [\n")
    assert result.after is None
    assert result.problems[0].line == 3
    result = format_text("x.yaml", "a: 1\na: 2\n")
    assert result.after is None
    assert result.problems[0].as_text().startswith("x.yaml:2:1: error: duplicate key")


# --- the laws --------------------------------------------------------------------------------------------

LAW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _styles(document: dict[str, Any]) -> st.SearchStrategy[str]:
    """The same data written the way people and tools write YAML."""
    return st.sampled_from(
        [
            json.dumps(document, ensure_ascii=False, indent=1),
            yaml.safe_dump(document, allow_unicode=True, sort_keys=False),
            yaml.safe_dump(document, allow_unicode=True, sort_keys=False, indent=4, width=40),
            yaml.safe_dump(document, allow_unicode=True, sort_keys=False, default_flow_style=True),
            yaml.safe_dump(document, allow_unicode=False, sort_keys=False, default_style='"'),
        ]
    )


@st.composite
def _messy(draw: st.DrawFn) -> str:
    """A generated organization in some style, with trailing blanks, blank lines and comments sprinkled."""
    text = draw(_styles(draw(organization(plain=True))))
    noise = draw(st.randoms(use_true_random=False))
    out = []
    for line in text.split("\n"):
        out.append(line + noise.choice(["", "", "", "  ", " \t"]))
        if noise.random() < 0.1:
            out.append(noise.choice(["", "# a comment", "  # an indented comment", "   "]))
    return ("\r\n" if noise.random() < 0.3 else "\n").join(out)


@LAW
@given(text=_messy())
def test_fmt_is_idempotent_and_never_changes_the_data(text: str) -> None:
    assume(not read_documents("x.yaml", text.replace("\r\n", "\n"))[1])  # noise may break the YAML
    first = format_text("x.yaml", text)
    assert first.after is not None, [p.as_text() for p in first.problems]
    assert _data(first.after.replace("\r\n", "\n")) == _data(text.replace("\r\n", "\n"))
    second = format_text("x.yaml", first.after)
    assert second.after == first.after


@LAW
@given(
    value=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
    | st.integers()
    | st.booleans()
    | st.none()
)
def test_fmt_keeps_any_scalar_it_is_given(value: Any) -> None:
    text = "value: " + json.dumps(value, ensure_ascii=False) + "\n"
    _, problems = read_documents("x.yaml", text)
    if problems:  # control characters: refused by the reader, and so by fmt
        assert format_text("x.yaml", text).after is None
        return
    first = format_text("x.yaml", text)
    assert first.after is not None
    assert _data(first.after) == _data(text)
    assert format_text("x.yaml", first.after).after == first.after


# --- the command ----------------------------------------------------------------------------------------

MESSY = "apiVersion: nexus/v1\nkind: Organization\nmetadata:\n    slug: lakeview   \nstaff:\n- {email: a@b.org, role: admin}\n"
TIDY = "apiVersion: nexus/v1\nkind: Organization\nmetadata:\n  slug: lakeview\nstaff:\n  - {email: a@b.org, role: admin}\n"


def test_fmt_rewrites_in_place_keeping_the_file_mode(nexus: Run, tmp_path: Path) -> None:
    target = tmp_path / "orgs" / "lakeview.yaml"
    target.parent.mkdir()
    target.write_text(MESSY)
    os.chmod(target, 0o640)
    assert nexus("fmt", str(tmp_path / "orgs"), database=False) == 0
    assert target.read_text() == TIDY
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in target.parent.iterdir()) == ["lakeview.yaml"]  # no temp file left
    assert "1 file reformatted" in nexus.err
    assert nexus("fmt", str(tmp_path / "orgs"), database=False) == 0
    assert "0 files reformatted, 1 left unchanged" in nexus.err


def test_fmt_check_writes_nothing_lists_the_files_and_exits_1(nexus: Run, tmp_path: Path) -> None:
    (tmp_path / "messy.yaml").write_text(MESSY)
    (tmp_path / "tidy.yaml").write_text(TIDY)
    assert nexus("fmt", "--check", str(tmp_path), database=False) == 1
    assert (tmp_path / "messy.yaml").read_text() == MESSY
    assert f"would rewrite {tmp_path / 'messy.yaml'}" in nexus.err
    assert "tidy.yaml" not in nexus.err.replace("already formatted", "")
    assert nexus.out == ""
    (tmp_path / "messy.yaml").write_text(TIDY)
    assert nexus("fmt", "--check", str(tmp_path), database=False) == 0


def test_fmt_diff_prints_a_unified_diff_and_writes_nothing(nexus: Run, tmp_path: Path) -> None:
    (tmp_path / "messy.yaml").write_text(MESSY)
    assert nexus("fmt", "--diff", str(tmp_path), database=False) == 1
    assert f"--- a/{tmp_path / 'messy.yaml'}" in nexus.out
    assert "-    slug: lakeview   \n+  slug: lakeview\n" in nexus.out
    assert (tmp_path / "messy.yaml").read_text() == MESSY


def test_fmt_reports_a_broken_file_located_and_formats_the_others(nexus: Run, tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("a: 1\na: 2\n  ")
    (tmp_path / "messy.yaml").write_text(MESSY)
    assert nexus("fmt", str(tmp_path), database=False) == 1
    assert f"{tmp_path / 'broken.yaml'}:2:1: error: duplicate key" in nexus.err
    assert (tmp_path / "broken.yaml").read_text() == "a: 1\na: 2\n  "
    assert (tmp_path / "messy.yaml").read_text() == TIDY


def test_fmt_only_touches_yaml_files(nexus: Run, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a:   1   \n")
    (tmp_path / "messy.yml").write_text(MESSY)
    assert nexus("fmt", str(tmp_path), database=False) == 0
    assert (tmp_path / "notes.txt").read_text() == "a:   1   \n"
    assert (tmp_path / "messy.yml").read_text() == TIDY


def test_fmt_refuses_to_write_through_a_symlink(nexus: Run, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "real").mkdir(parents=True)
    (tree / "real" / "messy.yaml").write_text(MESSY)
    (tree / "a-link.yaml").symlink_to(tree / "real" / "messy.yaml")
    (tree / "b-linked-dir").symlink_to(tree / "real", target_is_directory=True)
    for path in (tree / "a-link.yaml", tree / "b-linked-dir" / "messy.yaml", tree):
        assert nexus("fmt", str(path), database=False) == 1
        assert "symlink" in nexus.err and "never writes through one" in nexus.err
        assert (tree / "real" / "messy.yaml").read_text() == MESSY
        assert (tree / "a-link.yaml").is_symlink()
    assert nexus("fmt", str(tree / "real" / "messy.yaml"), database=False) == 0
    assert (tree / "real" / "messy.yaml").read_text() == TIDY


def test_validate_and_plan_never_import_ruamel() -> None:
    code = (
        "import sys\n"
        "from plan_apply.cli import main\n"
        f"try:\n    main(['validate', {str(EXAMPLES)!r}])\nexcept SystemExit:\n    pass\n"
        "assert not [m for m in sys.modules if m.startswith('ruamel')], 'ruamel imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
