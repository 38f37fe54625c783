"""`nexus render`: the effective configuration (templates expanded) as v1 YAML, and where each value was
written; the law: planning the rendered files gives the plan of the original ones."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from nexus_config import load_configuration
from nexus_config.yaml_reader import read_documents
from plan_apply.cli import main
from plan_apply.database.engine import engine_for
from plan_apply.effective import effective_texts
from plan_apply.plan import Plan

from .strategies import templated_family
from .support.harness import plan_folder

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "orgs"

SYSTEM = """\
apiVersion: nexus/v1
kind: Organization
metadata: {slug: valley-health}
profile: {name: Valley Health, type: health_system}
templates:
  - key: family-medicine
    name: Family Medicine
    disciplines: [medicine, nursing]
"""
CLINIC = """\
apiVersion: nexus/v1
kind: Organization
metadata: {slug: valley-east, parent: valley-health}
profile: {name: Valley East, type: clinic}
services:
  - key: fm
    template: family-medicine
    location: Building B
"""


Render = Callable[..., tuple[int, str, str]]


@pytest.fixture
def render(capsys: pytest.CaptureFixture[str]) -> Render:
    """`nexus render ARGS` through `main` (the real exit codes): (code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        try:
            main(["render", *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_render_prints_services_expanded_and_no_templates(
    write_tree: Callable[..., Path], render: Render
) -> None:
    tree = write_tree({"system.yaml": SYSTEM, "east.yaml": CLINIC})
    code, out, _ = render(str(tree), "--org", "valley-east")
    assert code == 0
    assert out.endswith(
        "services:\n  - key: fm\n    name: Family Medicine\n    location: Building B\n"
        "    disciplines: [medicine, nursing]\n"
    )
    assert "template" not in out


def test_render_origin_names_the_templates_line_or_the_services(
    write_tree: Callable[..., Path], render: Render
) -> None:
    tree = write_tree({"system.yaml": SYSTEM, "east.yaml": CLINIC})
    code, out, _ = render(str(tree), "--org", "valley-east", "--origin")
    assert code == 0
    lines = out.splitlines()
    name = next(line for line in lines if "name: Family Medicine" in line)
    location = next(line for line in lines if "location:" in line)
    assert name.endswith(f"# from {tree}/system.yaml:7 (template valley-health/family-medicine)")
    assert location.endswith(f"# from {tree}/east.yaml:8")


def test_render_of_every_organization_is_one_document_each(
    write_tree: Callable[..., Path], render: Render
) -> None:
    tree = write_tree({"system.yaml": SYSTEM, "east.yaml": CLINIC})
    code, out, _ = render(str(tree))
    assert code == 0
    assert out.count("apiVersion: nexus/v1") == 2 and "\n---\n" in out


def test_render_of_an_unknown_organization_suggests_one(
    write_tree: Callable[..., Path], render: Render
) -> None:
    tree = write_tree({"system.yaml": SYSTEM, "east.yaml": CLINIC})
    code, _, err = render(str(tree), "--org", "valley-eats")
    assert code == 1
    assert 'organization "valley-eats" is not in' in err and 'did you mean "valley-east"?' in err


def test_render_of_an_invalid_tree_reports_its_problems(
    write_tree: Callable[..., Path], render: Render
) -> None:
    tree = write_tree({"system.yaml": SYSTEM, "east.yaml": CLINIC.replace("family-medicine", "fam")})
    code, out, err = render(str(tree))
    assert (code, out) == (1, "")
    assert 'east.yaml:7:15: error: template "fam" is not declared' in err


def test_render_origin_of_a_file_whose_path_has_a_line_break_is_still_one_comment(
    write_tree: Callable[..., Path], render: Render
) -> None:
    tree = write_tree({"system.yaml": SYSTEM, "a\nservices: []\n#/east.yaml": CLINIC})
    code, out, _ = render(str(tree), "--org", "valley-east", "--origin")
    assert code == 0
    assert "# from " + str(tree) + "/a\\x0aservices: []\\x0a#/east.yaml:8" in out
    (commented,), _ = read_documents("rendered.yaml", out)
    (plain,), _ = read_documents("plain.yaml", render(str(tree), "--org", "valley-east")[1])
    assert commented.data == plain.data


# --- the law --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    return sqlite_template


def _changes(plan: Plan) -> list[tuple[Any, ...]]:
    return [
        (c.address, c.action, json.dumps(c.before, sort_keys=True), json.dumps(c.after, sort_keys=True))
        for org in plan.organizations
        for c in org.changes
    ]


def _planned(database: Path, folder: Path) -> list[tuple[Any, ...]]:
    engine = engine_for(f"sqlite:///{database}")
    try:
        return _changes(plan_folder(engine, folder))
    finally:
        engine.dispose()


def _rendered(source: Path, target: Path) -> Path:
    """Each organization rendered into its own file, beside the files it came from (documents named by
    agreements are relative to them)."""
    shutil.copytree(source, target)
    loaded = load_configuration([target])
    assert loaded.ok, loaded.errors
    homes = {slug: Path(org.files[0]).parent for slug, org in loaded.state.organizations.items()}
    texts = {slug: effective_texts({slug: org}) for slug, org in loaded.state.organizations.items()}
    for path in target.rglob("*.y*ml"):
        path.unlink()
    for slug, text in texts.items():
        (homes[slug] / f"{slug}.rendered.yaml").write_text(text, encoding="utf-8")
    return target


def _fresh(database: Path, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.db"
    shutil.copyfile(database, path)
    return path


def test_render_then_plan_is_the_plan_of_the_examples(tmp_path: Path, upgraded: Path) -> None:
    database = _fresh(upgraded, tmp_path, "examples")
    rendered = _rendered(EXAMPLES, tmp_path / "rendered")
    assert _planned(database, rendered) == _planned(database, EXAMPLES)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(orgs=templated_family())
def test_render_then_plan_is_the_plan_of_the_original(
    tmp_path_factory: pytest.TempPathFactory, upgraded: Path, orgs: list[dict[str, Any]]
) -> None:
    tmp_path = tmp_path_factory.mktemp("law")
    original = tmp_path / "original"
    for org in orgs:
        folder = original / org["metadata"]["slug"]
        folder.mkdir(parents=True)
        # JSON is YAML 1.2: the generated document is written exactly.
        (folder / "org.yaml").write_text(json.dumps(org, ensure_ascii=False, indent=1), encoding="utf-8")
    database = _fresh(upgraded, tmp_path, "law")
    assert _planned(database, _rendered(original, tmp_path / "rendered")) == _planned(database, original)
