"""Hostile and broken YAML is refused with a located error, before it can cost time or do harm (catalog §C).

The corpus is `tests/hostile/<case>.yaml`, each with `<case>.expect.json`: the line and column the first
matching error must point at, and a word of its message. Inputs too big to keep as files (10,000-deep
nesting, a 4 MiB file) are generated here, and so are paths that are not plain files.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import nexus_config.loader
from nexus_config import LoadResult, load_configuration
from nexus_config.discovery import MAX_FILE_BYTES
from nexus_config.yaml_reader import ALIAS_BUDGET, MAX_DEPTH, read_documents
from plan_apply.cli import cli

WriteTree = Callable[..., Path]

HOSTILE = Path(__file__).parent / "hostile"
CASES = sorted(p.name.removesuffix(".yaml") for p in HOSTILE.glob("*.yaml"))
LINE = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<severity>error|warning): (?P<message>.*)$"
)

HEAD = "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: hostile}\n"
PROFILE = "profile: {name: Hostile, type: clinic}\n"


def test_the_corpus_has_at_least_45_cases_each_with_an_expectation() -> None:
    assert len(CASES) >= 45
    expectations = sorted(p.name.removesuffix(".expect.json") for p in HOSTILE.glob("*.expect.json"))
    assert expectations == CASES


@pytest.mark.parametrize("case", CASES)
def test_hostile_file_is_refused_at_its_line_without_a_traceback(case: str) -> None:
    expect = json.loads((HOSTILE / f"{case}.expect.json").read_text(encoding="utf-8"))
    path = HOSTILE / f"{case}.yaml"
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    problems = [m for m in map(LINE.match, result.stderr.splitlines()) if m and m["severity"] == "error"]
    assert problems and all(m["file"] == str(path) for m in problems), result.stderr
    first = next((m for m in problems if expect["word"] in m["message"]), None)
    assert first is not None, f"no error says {expect['word']!r}:\n{result.stderr}"
    assert int(first["line"]) == expect["line"], first.group(0)
    if expect["column"] is not None:
        assert int(first["column"]) == expect["column"], first.group(0)
    noun = "error" if len(problems) == 1 else "errors"
    assert result.stderr.splitlines()[-1] == f"{len(problems)} {noun} in 1 file"


# --- refused before schema validation, whatever the size ------------------------------------------------


@pytest.fixture
def no_schema_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a document reaches schema validation (where an alias bomb would explode)."""

    def refuse(*_: Any) -> None:
        raise AssertionError("the document reached schema validation")

    monkeypatch.setattr(nexus_config.loader, "checked_document", refuse)


def _codes(result: LoadResult) -> list[str]:
    return [p.code for p in result.errors]


@pytest.mark.parametrize("case", ["alias-bomb-9x9", "alias-bomb-30x2", "alias-linear-fan-out"])
def test_an_alias_bomb_is_refused_before_schema_validation(no_schema_check: None, case: str) -> None:
    assert _codes(load_configuration([HOSTILE / f"{case}.yaml"])) == ["yaml.alias_budget"]


def test_a_10000_item_list_aliased_1000_times_is_refused_before_schema_validation(
    write_tree: WriteTree, no_schema_check: None
) -> None:
    text = HEAD + PROFILE + "big: &big [" + ", ".join(["x"] * 10_000) + "]\n"
    text += "".join(f"copy{i}: *big\n" for i in range(1_000))
    result = load_configuration([write_tree({"fan.yaml": text})])
    assert _codes(result) == ["yaml.alias_budget"]
    assert (result.errors[0].line, result.errors[0].column) == (6, 1)  # the second alias crosses the budget
    assert (
        result.errors[0].message
        == f"alias expansion exceeds {ALIAS_BUDGET} nodes; write the repeated content out"
    )


def test_a_file_with_three_anchors_and_five_aliases_loads(write_tree: WriteTree) -> None:
    text = (
        HEAD
        + PROFILE
        + (
            "services:\n"
            "  - {key: a, name: A, disciplines: &both [nursing, medicine], specialties: &spec [Trauma]}\n"
            "  - {key: b, name: B, disciplines: *both, specialties: *spec}\n"
            "  - {key: c, name: C, disciplines: *both, specialties: *spec, location: &tower Tower}\n"
            "  - {key: d, name: D, disciplines: *both, location: *tower}\n"
        )
    )
    result = load_configuration([write_tree({"ok.yaml": text})])
    assert result.ok, [p.as_text() for p in result.errors]
    services = result.state.organizations["hostile"].services or ()
    assert [s.disciplines for s in services] == [["nursing", "medicine"]] * 4
    assert [s.location for s in services] == [None, None, "Tower", "Tower"]


def _aliased(copies: int) -> str:
    """A 99-item list and `copies` aliases of it: each alias adds 100 nodes (the list and its items)."""
    text = HEAD + PROFILE + "big: &big [" + ", ".join(["x"] * 99) + "]\n"
    return text + "".join(f"copy{i}: *big\n" for i in range(copies))


def test_aliases_adding_exactly_the_budget_are_read(write_tree: WriteTree) -> None:
    result = load_configuration([write_tree({"many.yaml": _aliased(ALIAS_BUDGET // 100)})])
    assert set(_codes(result)) == {"schema.unknown_field"}  # read, then checked: `big` is no field


def test_one_alias_more_than_the_budget_is_refused(write_tree: WriteTree) -> None:
    result = load_configuration([write_tree({"many.yaml": _aliased(ALIAS_BUDGET // 100 + 1)})])
    assert _codes(result) == ["yaml.alias_budget"]


@pytest.mark.parametrize(
    ("opening", "closing", "depth"),
    [("[", "]", 10_000), ("[", "]", 100_000), ("{a: ", "}", 10_000)],
    ids=["flow-sequences-10000", "flow-sequences-100000", "flow-mappings-10000"],
)
def test_deep_flow_nesting_is_refused_at_its_line(
    write_tree: WriteTree, no_schema_check: None, opening: str, closing: str, depth: int
) -> None:
    text = HEAD + PROFILE + "deep: " + opening * depth + closing * depth + "\n"
    result = load_configuration([write_tree({"deep.yaml": text})])
    (problem,) = result.errors
    assert (problem.code, problem.line, problem.message) == (
        "yaml.depth",
        5,
        f"nesting deeper than {MAX_DEPTH} levels",
    )


def test_nesting_of_64_levels_is_read(write_tree: WriteTree) -> None:
    depth = MAX_DEPTH - 2  # the document's mapping and `deep:` take two levels
    text = HEAD + PROFILE + "deep: " + "[" * depth + "]" * depth + "\n"
    assert _codes(load_configuration([write_tree({"deep.yaml": text})])) == ["schema.unknown_field"]


def test_a_file_over_4_mib_is_refused_by_its_size_before_it_is_read(
    write_tree: WriteTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = write_tree({"big.yaml": HEAD + PROFILE})
    os.truncate(tree / "big.yaml", MAX_FILE_BYTES + 1)  # sparse: instant, and no disk used
    monkeypatch.setattr(nexus_config.loader, "read_documents", pytest.fail)
    (problem,) = load_configuration([tree]).errors
    assert (problem.file, problem.line, problem.column) == (str(tree / "big.yaml"), 1, 1)
    assert problem.message == (
        f"file is {MAX_FILE_BYTES + 1:,} bytes; the limit is {MAX_FILE_BYTES:,} (split the organization over several files)"
    )


def test_a_file_of_exactly_4_mib_is_read(write_tree: WriteTree) -> None:
    text = HEAD + PROFILE
    padding = MAX_FILE_BYTES - len(text) - 3
    tree = write_tree({"big.yaml": text + "#" + " " * padding + "\n\n"})
    assert os.path.getsize(tree / "big.yaml") == MAX_FILE_BYTES
    result = load_configuration([tree])
    assert result.ok and result.files == 1, [p.as_text() for p in result.errors]


# --- YAML 1.2 values that must still load, as written -----------------------------------------------------


def _profile(write_tree: WriteTree, text: str | bytes) -> Any:
    result = load_configuration([write_tree({"org.yaml": text})])
    assert result.ok, [p.as_text() for p in result.errors]
    return result.state.organizations["hostile"].profile


def test_norway_stays_the_string_no(write_tree: WriteTree) -> None:
    profile = _profile(write_tree, HEAD + "profile: {name: A, type: clinic, address: {country: NO}}\n")
    assert profile.address.country == "NO"


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "Yes", "y", "1:20", "0777e", "~x"])
def test_yaml_1_1_words_stay_strings(write_tree: WriteTree, word: str) -> None:
    assert _profile(write_tree, HEAD + f"profile: {{name: {word}, type: clinic}}\n").name == word


@pytest.mark.parametrize("date", ["2028-02-29", "2000-02-29", "0001-01-01", "9999-12-31"])
def test_real_calendar_dates_load_as_strings(write_tree: WriteTree, date: str) -> None:
    text = (
        HEAD
        + PROFILE
        + (
            "schools: [{key: s, name: S, contact_email: s@s.example.edu}]\n"
            "services: [{key: er, name: ER, disciplines: [nursing]}]\n"
            f"agreements: [{{key: a, school: s, name: A, services: [er], disciplines: [nursing], start_date: {date}}}]\n"
        )
    )
    result = load_configuration([write_tree({"org.yaml": text})])
    assert result.ok, [p.as_text() for p in result.errors]
    (agreement,) = result.state.organizations["hostile"].agreements or ()
    assert agreement.start_date == date


def test_a_utf8_bom_and_crlf_line_endings_are_accepted(write_tree: WriteTree) -> None:
    data = (
        b"\xef\xbb\xbf"
        + (HEAD + "profile:\n  name: Caf\u00e9\n  type: clinic\n").replace("\n", "\r\n").encode()
    )
    assert _profile(write_tree, data).name == "Caf\u00e9"


def test_a_problem_in_a_crlf_file_is_located_on_its_line(write_tree: WriteTree) -> None:
    data = (HEAD + "profile:\n  name: A\n  type: clinc\n").replace("\n", "\r\n").encode()
    (problem,) = load_configuration([write_tree({"org.yaml": data})]).errors
    assert (problem.line, problem.column, problem.pointer) == (6, 9, "/profile/type")


@pytest.mark.parametrize(
    "content",
    ["", "# nothing here yet\n# (comments only)\n", "---\n", "---\n---\n...\n", "\n\n   \n"],
    ids=["empty", "comments-only", "dashes-only", "empty-documents", "blank-lines"],
)
def test_an_empty_or_comment_only_file_is_skipped_without_error(write_tree: WriteTree, content: str) -> None:
    result = load_configuration([write_tree({"org.yaml": HEAD + PROFILE, "empty.yaml": content})])
    assert result.ok and not result.problems, [p.as_text() for p in result.problems]
    assert list(result.state.organizations) == ["hostile"] and result.files == 2


def test_an_empty_document_between_two_is_skipped(write_tree: WriteTree) -> None:
    other = HEAD.replace("hostile", "other") + PROFILE
    result = load_configuration([write_tree({"org.yaml": HEAD + PROFILE + "---\n---\n" + other})])
    assert result.ok and sorted(result.state.organizations) == ["hostile", "other"]


# --- paths that are not plain files -----------------------------------------------------------------------


def _load_within(paths: list[Path], seconds: float = 20.0) -> LoadResult:
    """Load in a thread and fail (instead of hanging the suite) if it does not finish."""
    box: dict[str, LoadResult] = {}
    worker = threading.Thread(target=lambda: box.setdefault("result", load_configuration(paths)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "loading hung"
    return box["result"]


def _messages(result: LoadResult) -> dict[str, str]:
    return {Path(p.file).name: p.message for p in result.errors}


def test_a_directory_named_like_a_yaml_file_is_walked(write_tree: WriteTree) -> None:
    tree = write_tree({"site.yaml/org.yaml": HEAD + PROFILE})
    result = load_configuration([tree])
    assert result.ok and list(result.state.organizations) == ["hostile"]


def test_a_fifo_named_yaml_is_refused_without_being_opened(write_tree: WriteTree) -> None:
    tree = write_tree({"org.yaml": HEAD + PROFILE})
    os.mkfifo(tree / "pipe.yaml")
    assert _messages(_load_within([tree])) == {"pipe.yaml": "not a regular file"}


def test_a_fifo_given_as_the_path_is_refused_without_being_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    assert _messages(_load_within([tmp_path / "pipe.yaml"])) == {"pipe.yaml": "not a regular file"}


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root reads a chmod 000 file anyway: permissions do not bind root"
)
def test_an_unreadable_file_is_a_located_error(write_tree: WriteTree) -> None:
    tree = write_tree(
        {"org.yaml": HEAD + PROFILE, "locked.yaml": HEAD.replace("hostile", "locked") + PROFILE}
    )
    (tree / "locked.yaml").chmod(0)
    assert _messages(load_configuration([tree])) == {"locked.yaml": "cannot read: Permission denied"}


def test_a_file_that_cannot_be_read_is_a_located_error(
    write_tree: WriteTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same as chmod 000, also where the tests run as root: reading the file is refused."""
    tree = write_tree(
        {"org.yaml": HEAD + PROFILE, "locked.yaml": HEAD.replace("hostile", "locked") + PROFILE}
    )
    opened = builtins.open

    def refuse_locked(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | Path) and os.path.basename(file) == "locked.yaml":
            raise PermissionError(13, "Permission denied", str(file))
        return opened(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refuse_locked)
    result = load_configuration([tree])
    (problem,) = result.errors
    assert (Path(problem.file).name, problem.message) == ("locked.yaml", "cannot read: Permission denied")
    assert list(result.state.organizations) == ["hostile"]


def test_a_broken_symlink_is_a_located_error(write_tree: WriteTree, tmp_path: Path) -> None:
    tree = write_tree({"org.yaml": HEAD + PROFILE})
    (tree / "gone.yaml").symlink_to(tmp_path / "missing.yaml")
    assert _messages(load_configuration([tree])) == {"gone.yaml": "cannot read: No such file or directory"}


def test_a_symlink_loop_is_a_located_error(write_tree: WriteTree) -> None:
    tree = write_tree({"org.yaml": HEAD + PROFILE})
    (tree / "a.yaml").symlink_to(tree / "b.yaml")
    (tree / "b.yaml").symlink_to(tree / "a.yaml")
    assert _messages(_load_within([tree])) == {
        "a.yaml": "cannot read: Too many levels of symbolic links",
        "b.yaml": "cannot read: Too many levels of symbolic links",
    }


def test_a_symlink_to_a_file_outside_the_tree_is_refused(write_tree: WriteTree, tmp_path: Path) -> None:
    tree = write_tree({"org.yaml": HEAD + PROFILE})
    outside = tmp_path / "outside.yaml"
    outside.write_text(HEAD.replace("hostile", "outside") + PROFILE)
    (tree / "link.yaml").symlink_to(outside)
    result = load_configuration([tree])
    assert _messages(result) == {"link.yaml": "symlink points outside the configuration tree"}
    assert list(result.state.organizations) == ["hostile"]


def test_a_folder_symlinked_outside_the_tree_is_refused(write_tree: WriteTree, tmp_path: Path) -> None:
    tree = write_tree({"org.yaml": HEAD + PROFILE})
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.yaml").write_text(HEAD.replace("hostile", "elsewhere") + PROFILE)
    (tree / "linked").symlink_to(tmp_path / "elsewhere")
    assert _messages(load_configuration([tree])) == {
        "linked": "symlink points outside the configuration tree"
    }


def test_a_symlink_inside_the_tree_is_read_once(write_tree: WriteTree) -> None:
    tree = write_tree({"org.yaml": HEAD + PROFILE})
    (tree / "alias.yaml").symlink_to("org.yaml")
    (tree / "loop").symlink_to(".")
    result = _load_within([tree])
    assert result.ok and result.files == 1, [p.as_text() for p in result.problems]


@pytest.mark.parametrize(
    "name",
    [
        ".git/config.yaml",
        ".#org.yaml",
        "org.yaml~",
        "org.yaml.tmp",
        "org.yaml.swp",
        "org.yaml.bak",
        ".hidden.yaml",
        "node_modules/x.yaml",
        "notes.txt",
    ],
)
def test_hidden_files_and_editor_leftovers_are_not_read(write_tree: WriteTree, name: str) -> None:
    result = load_configuration([write_tree({"org.yaml": HEAD + PROFILE, name: "this: is: [not yaml\n"})])
    assert result.ok and result.files == 1, [p.as_text() for p in result.problems]


def test_a_yml_file_is_read(write_tree: WriteTree) -> None:
    result = load_configuration([write_tree({"org.yml": HEAD + PROFILE})])
    assert result.ok and list(result.state.organizations) == ["hostile"]


# --- every problem, in one run, in order ---------------------------------------------------------------------

SYNTAX_ERRORS = {
    "f00.yaml": (HEAD + "profile: {name: A, type: clinic\n", 5, "did not find expected ',' or '}'"),
    "f01.yaml": (HEAD + "profile:\n  name: A\n type: clinic\n", 6, "did not find expected key"),
    "f02.yaml": (HEAD + "profile:\n  type: clinic\n  name: 'A", 6, "found unexpected end of stream"),
    "f03.yaml": (HEAD + "profile:\n  name: A: B\n", 5, "mapping values are not allowed in this context"),
    "f04.yaml": (HEAD + "profile:\n\tname: A\n", 5, "a tab cannot indent YAML"),
    "f05.yaml": (HEAD + "profile: [a, b\n", 5, "did not find expected ',' or ']'"),
    "f06.yaml": (HEAD + 'profile: "unterminated\n', 5, "found unexpected end of stream"),
    "f07.yaml": (HEAD + "profile: *missing\n", 4, "found undefined alias"),
    "f08.yaml": (HEAD + "- item\n", 4, "did not find expected key"),
    "f09.yaml": (HEAD + "profile: }\n", 4, "did not find expected node content"),
}


def test_ten_files_with_one_syntax_error_each_are_all_reported_in_one_run_in_order(
    write_tree: WriteTree,
) -> None:
    tree = write_tree({name: text for name, (text, _, _) in SYNTAX_ERRORS.items()})
    runs = [CliRunner().invoke(cli, ["validate", str(tree)]) for _ in range(2)]
    assert runs[0].exit_code == 1 and runs[0].stderr == runs[1].stderr  # stable
    lines = runs[0].stderr.splitlines()
    assert lines[-1] == "10 errors in 10 files"
    found = [LINE.match(line) for line in lines[:-1]]
    assert all(found), lines
    assert [(Path(m["file"]).name, int(m["line"])) for m in found if m] == [
        (name, line) for name, (_, line, _) in SYNTAX_ERRORS.items()
    ]
    for m, (_, _, word) in zip(found, SYNTAX_ERRORS.values(), strict=True):
        assert m is not None and word in m["message"] and int(m["column"]) >= 1


def test_problems_of_many_kinds_come_sorted_by_file_line_and_column_with_a_count(
    write_tree: WriteTree,
) -> None:
    tree = write_tree(
        {
            "b.yaml": HEAD + "profile: {name: A, type: clinc, website: http://x.example}\n",
            "a.yaml": HEAD.replace("hostile", "other")
            + "profile: {name: B, type: clinic, tpye: x}\nservics: []\n",
            "c.yaml": HEAD.replace("hostile", "third")
            + PROFILE
            + "steps: ~\nstaff: [{email: a@b.example, role: admin}]\n"
            "schools: [{key: s, name: S}]\nagreements: [{key: a, school: t, name: A, start_date: 2027-01-01, "
            "services: [x], disciplines: [nursing]}]\n",
        }
    )
    result = CliRunner().invoke(cli, ["validate", str(tree)])
    lines = result.stderr.splitlines()
    assert lines[-1] == "7 errors in 3 files"
    found = [LINE.match(line) for line in lines[:-1]]
    keys = [(m["file"], int(m["line"]), int(m["column"])) for m in found if m]
    assert len(keys) == 7 and keys == sorted(keys)


def test_json_problems_carry_file_line_column_and_an_escaped_pointer(write_tree: WriteTree) -> None:
    tree = write_tree({"org.yaml": HEAD + 'profile:\n  name: A\n  type: clinic\n  "a/b~c": 1\n  "~0": 2\n'})
    result = CliRunner().invoke(cli, ["validate", str(tree), "--format", "json"])
    assert result.exit_code == 1
    problems = json.loads(result.stdout)
    assert [{k: p[k] for k in ("file", "line", "column", "path", "message")} for p in problems] == [
        {
            "file": str(tree / "org.yaml"),
            "line": 7,
            "column": 3,
            "path": "/profile/a~1b~0c",
            "message": 'unknown field "a/b~c"',
        },
        {
            "file": str(tree / "org.yaml"),
            "line": 8,
            "column": 3,
            "path": "/profile/~00",
            "message": 'unknown field "~0"',
        },
    ]


def test_json_output_of_a_valid_tree_lists_no_problems(write_tree: WriteTree) -> None:
    result = CliRunner().invoke(
        cli, ["validate", str(write_tree({"org.yaml": HEAD + PROFILE})), "--format", "json"]
    )
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_reading_every_corpus_file_directly_gives_problems_not_exceptions() -> None:
    for case in CASES:
        data = (HOSTILE / f"{case}.yaml").read_bytes()
        text = data.decode("utf-8", errors="replace")
        _, problems = read_documents(case, text)
        assert all(p.line >= 1 and p.column >= 1 for p in problems), case
