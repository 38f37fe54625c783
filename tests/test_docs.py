"""The README and docs/: generated pages up to date, every link inside the repository and leading somewhere,
the site building under `mkdocs --strict`, and the README short enough for a newcomer.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted([ROOT / "README.md", *DOCS.rglob("*.md")])
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|````).*?^\1\s*$", re.S | re.M)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans are not links
    return LINK.findall(text)


def _anchors(page: Path) -> set[str]:
    """The ids mkdocs (Python-Markdown's toc) gives the headings of a page."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        words = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
        anchors.add(re.sub(r"[-\s]+", "-", words))
    return anchors


@pytest.mark.parametrize("page", ["docs/reference/fields.md", "docs/reference/cli.md"])
def test_the_committed_reference_page_is_the_generated_one(page: str) -> None:
    generator = _generator()
    text = getattr(generator, generator.PAGES[page])()
    assert (ROOT / page).read_text(encoding="utf-8") == text, (
        f"{page} is out of date: run `python docs/generate.py`"
    )


def test_the_generator_check_fails_on_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generator = _generator()
    monkeypatch.setattr(generator, "ROOT", tmp_path)
    assert generator.main(["--check"]) == 1
    assert generator.main([]) == 0
    assert generator.main(["--check"]) == 0


def test_the_field_reference_names_every_field_of_the_schema() -> None:
    from nexus_config.schemas import json_schema

    text = (DOCS / "reference" / "fields.md").read_text(encoding="utf-8")
    definitions = json_schema("nexus/v1")["definitions"]
    documented = {name for _, name, _ in _generator().SECTIONS if name}
    assert documented == set(definitions), "a definition has no section in docs/generate.py"
    for definition in definitions.values():
        for field, sub in definition["properties"].items():
            assert f"| `{field}` |" in text and sub["description"] in text


def test_the_command_reference_names_every_command_and_flag() -> None:
    import click

    from plan_apply.cli import cli

    text = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    stack: list[tuple[str, click.Command]] = [("nexus", cli)]
    while stack:
        name, command = stack.pop()
        assert f"## `{name}`" in text
        for param in command.params:
            for flag in param.opts if isinstance(param, click.Option) else ():
                assert flag in text, f"{name} {flag}"
        if isinstance(command, click.Group):
            stack += [(f"{name} {sub}", c) for sub, c in command.commands.items()]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_link_stays_inside_the_repository_and_leads_somewhere(page: Path) -> None:
    for link in _links(page):
        assert not re.match(r"[a-z][a-z0-9+.-]*:", link, re.I), f"{link} leaves the repository"
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.is_relative_to(ROOT), f"{link} leaves the repository"
        assert target.exists(), f"{link} leads nowhere"
        if page.is_relative_to(DOCS):
            assert target.is_relative_to(DOCS), f"{link}: the site holds docs/ only"
        if anchor and target.suffix == ".md":
            assert anchor in _anchors(target), f"{link}: no such heading"


def test_the_link_check_sees_a_link_out_of_the_repository(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("See [the spec](../shared/spec/FORMAT.md) and [x](https://example.org).\n")
    assert _links(page) == ["../shared/spec/FORMAT.md", "https://example.org"]


def test_the_docs_build_as_a_site_with_mkdocs_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="mkdocs is in the [docs] extra")
    pytest.importorskip("material", reason="mkdocs-material is in the [docs] extra")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(Path(sys.executable).parent)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "reference" / "fields" / "index.html").exists()


def test_the_readme_is_what_a_newcomer_needs() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.encode()) < 8_000
    commands = re.findall(r"^```sh\n(.+?)\n```", text, re.M)
    assert len(commands) == 2 and all(c.startswith("python3 -m venv .venv && ") for c in commands)
    assert commands[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "docs/guarantees.md" in text


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_the_docs_speak_of_the_project_not_of_its_issues(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"\b(issue|ticket|pull request) #?\d+", text, re.I)
    assert "FORMAT.md" not in text and "CLI.md" not in text


def test_the_guarantees_table_keeps_every_row() -> None:
    text = (DOCS / "guarantees.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "test" not in line[:20]]
    assert len(rows) >= 19
    assert "| deletes or orphans a rotation |" in text
