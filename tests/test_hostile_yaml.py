"""Hostile and broken YAML: refused with a located error, quickly, never with a traceback (catalog §C).

Each case is the bytes of one file, the line where the error must point (None: anywhere, the file
itself) and a fragment of the message. `nexus validate` runs on each and must exit 1.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from nexus_config import load_configuration
from nexus_config.discovery import MAX_FILE_BYTES
from plan_apply.cli import cli

HEAD = "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: hostile}\n"
PROFILE = "profile: {name: Hostile, type: clinic}\n"


def _bomb(levels: int, width: int) -> str:
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return HEAD + PROFILE + "\n".join(lines) + "\n"


CASES: list[tuple[str, bytes | str, int | None, str]] = [
    ("alias-bomb-9x9", _bomb(9, 9), None, "alias expansion exceeds"),
    ("alias-bomb-30x2", _bomb(30, 2), None, "alias expansion exceeds"),
    (
        "alias-linear-fan-out",
        HEAD
        + PROFILE
        + "big: &big ["
        + ", ".join(["x"] * 10_000)
        + "]\n"
        + "".join(f"c{i}: *big\n" for i in range(1_000)),
        None,
        "alias expansion exceeds",
    ),
    (
        "flow-nesting-500",
        HEAD + PROFILE + "deep: " + "[" * 500 + "]" * 500 + "\n",
        5,
        "nesting deeper than 64",
    ),
    (
        "flow-nesting-100000",
        HEAD + PROFILE + "deep: " + "[" * 100_000 + "]" * 100_000 + "\n",
        5,
        "nesting deeper than 64",
    ),
    ("block-nesting-1100", HEAD + PROFILE + "deep:\n" + "- " * 1100 + "x\n", 6, "nesting deeper than 64"),
    (
        "duplicate-key",
        HEAD + "profile:\n  name: A\n  name: B\n  type: clinic\n",
        6,
        "duplicate key 'name' (first defined at line 5)",
    ),
    (
        "duplicate-key-quoted",
        HEAD + 'profile:\n  name: A\n  "name": B\n  type: clinic\n',
        6,
        "duplicate key 'name'",
    ),
    (
        "duplicate-key-nested",
        HEAD + PROFILE.replace("}", ", address: {city: A, city: B}}"),
        4,
        "duplicate key 'city'",
    ),
    (
        "merge-key",
        HEAD + "base: &base {name: A, type: clinic}\nprofile:\n  <<: *base\n",
        6,
        "merge keys (<<)",
    ),
    ("yaml-1.1-directive", "%YAML 1.1\n---\n" + HEAD + PROFILE, 1, "directives"),
    (
        "tag-directive",
        "%TAG !! tag:yaml.org,2002:python/object/apply:\n---\n" + HEAD + PROFILE,
        1,
        "directives",
    ),
    (
        "python-object-apply",
        HEAD + PROFILE + "x: !!python/object/apply:os.system ['echo pwned']\n",
        5,
        "explicit YAML tags",
    ),
    ("python-name", HEAD + PROFILE + "x: !!python/name:os.system\n", 5, "explicit YAML tags"),
    ("include-tag", HEAD + PROFILE + "x: !include /etc/passwd\n", 5, "(found !include)"),
    ("binary-tag", HEAD + PROFILE + "x: !!binary aGVsbG8=\n", 5, "(found !!binary)"),
    ("set-tag", HEAD + PROFILE + "x: !!set {a, b}\n", 5, "(found !!set)"),
    ("str-tag", HEAD + PROFILE + "x: !!str 12\n", 5, "(found !!str)"),
    (
        "norway-stays-a-string",
        HEAD + PROFILE.replace("}", ", address: {country: NO, postal_code: 02115}}"),
        4,
        'quote it: "02115"',
    ),
    (
        "submit-on-is-not-true",
        HEAD
        + PROFILE
        + "schools: [{key: s, name: S}]\nagreements:\n  - {key: a, school: s, name: A, start_date: 2027-01-01, services: [x], disciplines: [nursing], submit: on}\n",
        7,
        "must be true or false",
    ),
    (
        "required-off",
        HEAD + PROFILE + "steps: [{key: s, stage: onboarding, name: S, type: upload, required: off}]\n",
        5,
        "must be true or false",
    ),
    (
        "slots-underscore",
        HEAD
        + PROFILE
        + "services: [{key: s, name: S, disciplines: [nursing], capacity: [{key: w, name: W, workflow: student_requested, disciplines: [nursing], start_date: 2027-01-01, end_date: 2027-02-01, slots: 1_000}]}]\n",
        5,
        "must be a whole number",
    ),
    (
        "slots-exponent",
        HEAD
        + PROFILE
        + "services: [{key: s, name: S, disciplines: [nursing], capacity: [{key: w, name: W, workflow: student_requested, disciplines: [nursing], start_date: 2027-01-01, end_date: 2027-02-01, slots: 1e3}]}]\n",
        5,
        "must be a whole number",
    ),
    (
        "slots-infinity",
        HEAD
        + PROFILE
        + "services: [{key: s, name: S, disciplines: [nursing], capacity: [{key: w, name: W, workflow: student_requested, disciplines: [nursing], start_date: 2027-01-01, end_date: 2027-02-01, slots: .inf}]}]\n",
        5,
        "must be a whole number",
    ),
    (
        "slots-nan",
        HEAD
        + PROFILE
        + "services: [{key: s, name: S, disciplines: [nursing], capacity: [{key: w, name: W, workflow: student_requested, disciplines: [nursing], start_date: 2027-01-01, end_date: 2027-02-01, slots: .nan}]}]\n",
        5,
        "must be a whole number",
    ),
    (
        "date-february-30",
        HEAD
        + PROFILE
        + "schools: [{key: s, name: S}]\nagreements: [{key: a, school: s, name: A, start_date: 2027-02-30, services: [x], disciplines: [nursing]}]\n",
        6,
        "2027-02-30 is not a valid date",
    ),
    (
        "date-month-13",
        HEAD
        + PROFILE
        + "schools: [{key: s, name: S}]\nagreements: [{key: a, school: s, name: A, start_date: 2026-13-01, services: [x], disciplines: [nursing]}]\n",
        6,
        "not a valid date",
    ),
    (
        "date-not-padded",
        HEAD
        + PROFILE
        + "schools: [{key: s, name: S}]\nagreements: [{key: a, school: s, name: A, start_date: 2026-1-5, services: [x], disciplines: [nursing]}]\n",
        6,
        "a date written YYYY-MM-DD",
    ),
    (
        "date-with-time",
        HEAD
        + PROFILE
        + "schools: [{key: s, name: S}]\nagreements: [{key: a, school: s, name: A, start_date: 2026-01-01T10:00:00, services: [x], disciplines: [nursing]}]\n",
        6,
        "a date written YYYY-MM-DD",
    ),
    (
        "date-quoted-invalid",
        HEAD
        + PROFILE
        + "schools: [{key: s, name: S}]\nagreements: [{key: a, school: s, name: A, start_date: '2027-02-29', services: [x], disciplines: [nursing]}]\n",
        6,
        "not a valid date",
    ),
    (
        "key-null",
        HEAD + PROFILE.replace("}", "}\n") + "metadata2: {~: x}\n",
        6,
        "mapping keys must be strings",
    ),
    (
        "key-integer",
        HEAD.replace("{slug: hostile}", "{slug: hostile, labels: {1: x}}") + PROFILE,
        3,
        "mapping keys must be strings",
    ),
    (
        "key-boolean",
        HEAD.replace("{slug: hostile}", "{slug: hostile, labels: {true: x}}") + PROFILE,
        3,
        "mapping keys must be strings",
    ),
    ("key-complex", HEAD + PROFILE + "? [a, b]\n: v\n", 5, "mapping keys must be strings"),
    ("invalid-utf8", (HEAD + PROFILE).encode() + b"x: \xff\xfe\n", 5, "not valid UTF-8"),
    ("utf16-with-bom", "\ufeff".encode("utf-16-le") + (HEAD + PROFILE).encode("utf-16-le"), 1, "UTF-16"),
    ("nul-byte", HEAD + PROFILE + "x: a\x00b\n", 5, "is not allowed in YAML"),
    ("tab-indentation", HEAD + "profile:\n\tname: A\n", 5, "tab"),
    (
        "zero-width-space-in-key",
        HEAD + PROFILE + 'services: [{key: "e\u200br", name: S, disciplines: [nursing]}]\n',
        5,
        "is not a key",
    ),
    (
        "rtl-override-in-key",
        HEAD + PROFILE + 'services: [{key: "e\u202er", name: S, disciplines: [nursing]}]\n',
        5,
        "is not a key",
    ),
    ("top-level-list", "- a\n- b\n", 1, "a document must be a mapping"),
    ("scalar-document", "just text\n", 1, "a document must be a mapping"),
    (
        "missing-apiversion",
        "kind: Organization\nmetadata: {slug: x1}\n",
        1,
        'missing required field "apiVersion"',
    ),
    (
        "unknown-apiversion",
        "apiVersion: nexus/v9\nkind: Organization\nmetadata: {slug: x1}\n",
        1,
        "unknown apiVersion",
    ),
    (
        "integer-apiversion",
        "apiVersion: 1\nkind: Organization\nmetadata: {slug: x1}\n",
        1,
        "unknown apiVersion 1",
    ),
    (
        "kind-misspelt",
        HEAD.replace("Organization", "Organisation") + PROFILE,
        2,
        "is not one of: Organization",
    ),
    (
        "metadata-null",
        "apiVersion: nexus/v1\nkind: Organization\nmetadata: null\n",
        3,
        "must be a mapping (found null)",
    ),
    ("syntax-unclosed-flow", HEAD + "profile: {name: A, type: clinic\n", None, "YAML syntax"),
    ("syntax-unterminated-quote", HEAD + 'profile: {name: "A, type: clinic}\n', None, "YAML syntax"),
    ("syntax-stray-colon", HEAD + "profile:\n  name: A: B\n", 5, "YAML syntax"),
    (
        "shape-disciplines-string",
        HEAD + PROFILE + "services: [{key: s, name: S, disciplines: nursing}]\n",
        5,
        "must be a list",
    ),
    ("shape-services-mapping", HEAD + PROFILE + "services: {}\n", 5, "must be a list"),
    (
        "shape-label-number",
        HEAD.replace("{slug: hostile}", "{slug: hostile, labels: {region: 1}}") + PROFILE,
        3,
        "must be a string",
    ),
]


@pytest.mark.parametrize(("content", "line", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_yaml_is_refused_with_a_located_error(
    write_tree: Callable[..., Path], content: bytes | str, line: int | None, fragment: str
) -> None:
    tree = write_tree({"hostile.yaml": content.encode() if isinstance(content, str) else content})
    result = CliRunner().invoke(cli, ["validate", str(tree)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    matching = [ln for ln in result.stdout.splitlines() if fragment in ln]
    assert matching, result.stdout
    file, at, column = matching[0].split(": error:")[0].rsplit(":", 2)
    assert file.endswith("hostile.yaml") and int(column) >= 1
    if line is not None:
        assert int(at) == line, matching[0]


def test_a_file_with_three_anchors_and_five_aliases_still_loads(write_tree: Callable[..., Path]) -> None:
    text = (
        HEAD
        + PROFILE
        + (
            "services:\n"
            "  - {key: a, name: A, disciplines: &both [nursing, medicine], specialties: &spec [Trauma]}\n"
            "  - {key: b, name: B, disciplines: *both, specialties: *spec}\n"
            "  - {key: c, name: C, disciplines: *both, specialties: *spec, location: &loc Tower}\n"
            "  - {key: d, name: D, disciplines: *both, location: *loc}\n"
        )
    )
    assert load_configuration([write_tree({"ok.yaml": text})]).ok


def test_yaml_1_2_keeps_norway_and_sexagesimal_as_strings(write_tree: Callable[..., Path]) -> None:
    text = HEAD + "profile: {name: '1:20', type: clinic, address: {country: NO, postal_code: '0150'}}\n"
    result = load_configuration([write_tree({"no.yaml": text})])
    assert result.ok
    address = result.state.organizations["hostile"].profile.address  # type: ignore[union-attr]
    assert address is not None and address.country == "NO"


def test_utf8_bom_and_crlf_are_accepted(write_tree: Callable[..., Path]) -> None:
    data = b"\xef\xbb\xbf" + (HEAD + PROFILE).replace("\n", "\r\n").encode()
    assert load_configuration([write_tree({"bom.yaml": data})]).ok


def test_empty_and_comment_only_files_are_skipped(write_tree: Callable[..., Path]) -> None:
    tree = write_tree(
        {
            "org.yaml": HEAD + PROFILE,
            "empty.yaml": "",
            "comments.yaml": "# nothing yet\n",
            "dashes.yaml": "---\n---\n",
        }
    )
    result = load_configuration([tree])
    assert result.ok and list(result.state.organizations) == ["hostile"]


def test_a_file_over_the_size_limit_is_refused_before_parsing(write_tree: Callable[..., Path]) -> None:
    tree = write_tree({"big.yaml": HEAD + PROFILE + "description: '" + "x" * MAX_FILE_BYTES + "'\n"})
    result = load_configuration([tree])
    assert any("the limit is" in p.message for p in result.errors)


def test_fifos_directories_and_outside_symlinks_named_yaml_are_refused_without_hanging(
    write_tree: Callable[..., Path], tmp_path: Path
) -> None:
    tree = write_tree({"org.yaml": HEAD + PROFILE})
    os.mkfifo(tree / "pipe.yaml")
    (tree / "folder.yaml").mkdir()
    outside = tmp_path / "outside.yaml"
    outside.write_text(HEAD + PROFILE)
    (tree / "link.yaml").symlink_to(outside)
    (tree / "broken.yaml").symlink_to(tmp_path / "missing.yaml")
    result = load_configuration([tree])
    messages = {Path(p.file).name: p.message for p in result.errors}
    assert messages["pipe.yaml"] == "not a regular file"
    assert "outside the configuration tree" in messages["link.yaml"]
    assert "cannot read" in messages["broken.yaml"]
    assert stat.S_ISFIFO(os.stat(tree / "pipe.yaml").st_mode)


def test_hidden_files_and_editor_leftovers_are_not_read(write_tree: Callable[..., Path]) -> None:
    broken = "this: is: not: yaml\n"
    tree = write_tree(
        {
            "org.yaml": HEAD + PROFILE,
            ".git/x.yaml": broken,
            ".#org.yaml": broken,
            "org.yaml~": broken,
            "org.yaml.tmp": broken,
        }
    )
    assert load_configuration([tree]).ok


def test_ten_syntax_errors_in_ten_files_are_all_reported_in_order(write_tree: Callable[..., Path]) -> None:
    tree = write_tree({f"f{n}.yaml": HEAD + "profile: {name: A, type: clinic\n" for n in range(10)})
    result = CliRunner().invoke(cli, ["validate", str(tree)])
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 11 and lines[-1] == "10 errors in 10 files"
    assert [Path(line.split(":")[0]).name for line in lines[:-1]] == [f"f{n}.yaml" for n in range(10)]
