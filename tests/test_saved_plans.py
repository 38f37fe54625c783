"""Saved plans (issue 14, and issue 12's "applied as reviewed, once, or not at all"): a plan applied before
says when and by whom, its documents are found under its configuration root from any working directory,
and a plan without its integrity, or naming a document outside its tree, is refused before anything is
written. The guards that apply runs again under the lock are tested pure."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from plan_apply.actual import ActualOrganization, fingerprint_of
from plan_apply.plan import Action, Change, OrgPlan
from plan_apply.records import Record
from plan_apply.rederive import refusals_under_lock

from .support.actors import Nexus, rows

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
ORG = textwrap.dedent(
    """\
    apiVersion: nexus/v1
    kind: Organization
    metadata: {slug: lakeview}
    profile: {name: Lakeview Hospital, type: hospital}
    schools: [{key: state-u, name: State University, contact_email: placements@state.example.edu}]
    agreements:
      - {key: state, school: state-u, name: State nursing, start_date: 2027-01-01, end_date: 2027-12-31,
         services: [er], disciplines: [nursing], submit: true, document: signed.pdf}
    services: [{key: er, name: Emergency, disciplines: [nursing]}]
    """
)


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str], database_url: str) -> Nexus:
    return Nexus(capsys, database_url)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "checkout" / "config"
    root.mkdir(parents=True)
    (root / "lakeview.yaml").write_text(ORG, encoding="utf-8")
    (root / "signed.pdf").write_bytes(PDF)
    return root


def _saved(nexus: Nexus, tree: Path, path: Path) -> dict[str, Any]:
    assert nexus("plan", str(tree), "--out", str(path)) == 0, nexus.output
    saved: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return saved


def test_a_saved_plan_applied_before_says_when_and_by_whom(nexus: Nexus, tree: Path, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    _saved(nexus, tree, path)
    assert nexus("apply", "--plan", str(path), env={"NEXUS_ACTOR": "release-bot"}) == 0, nexus.output
    assert nexus("apply", "--plan", str(path)) == 1
    assert "already applied at" in nexus.err and "by release-bot" in nexus.err, nexus.err
    assert "changed since" not in nexus.err
    assert rows(nexus.url, "SELECT count(*) FROM apply_log") == [(1,)]


def test_a_saved_plan_finds_its_documents_under_its_configuration_root_from_any_folder(
    nexus: Nexus, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree.parent)
    path = tmp_path / "plan.json"
    saved = _saved(nexus, Path("config"), path)
    (organization,) = saved["organizations"]
    assert organization["documents"] == {
        organization["changes"][-1]["after"]["document"]["sha256"]: "signed.pdf"
    }
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert nexus("apply", "--plan", str(path)) == 0, nexus.output
    assert rows(nexus.url, "SELECT name, size FROM documents") == [("signed.pdf", len(PDF))]


@pytest.mark.parametrize("how", ["deleted", "null"])
def test_a_saved_plan_without_its_integrity_is_refused(
    nexus: Nexus, tree: Path, tmp_path: Path, how: str
) -> None:
    path = tmp_path / "plan.json"
    saved = _saved(nexus, tree, path)
    if how == "deleted":
        del saved["integrity"]
    else:
        saved["integrity"] = None
    path.write_text(json.dumps(saved), encoding="utf-8")
    assert nexus("apply", "--plan", str(path)) == 1
    assert "integrity" in nexus.err, nexus.err
    assert rows(nexus.url, "SELECT count(*) FROM organizations") == [(0,)]


def test_a_saved_plan_naming_a_document_outside_its_root_is_refused(
    nexus: Nexus, tree: Path, tmp_path: Path
) -> None:
    import hashlib

    path = tmp_path / "plan.json"
    saved = _saved(nexus, tree, path)
    (organization,) = saved["organizations"]
    organization["documents"] = {sha: "../../secret.pdf" for sha in organization["documents"]}
    body = {k: v for k, v in saved.items() if k != "integrity"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    saved["integrity"] = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    path.write_text(json.dumps(saved), encoding="utf-8")
    assert nexus("apply", "--plan", str(path)) == 1
    assert "leaves its configuration root" in nexus.err, nexus.err
    assert rows(nexus.url, "SELECT count(*) FROM organizations") == [(0,)]


# --- the guards apply runs again under the lock, pure ----------------------------------------------------

WINDOW = "lakeview/services/er/capacity/spring"


def _window(**facts: Any) -> Record:
    return Record(
        WINDOW, "capacity", "lakeview", "spring", {"slots": 4}, parent="lakeview/services/er", **facts
    )


def _org(row: Record, change: Change) -> tuple[OrgPlan, ActualOrganization]:
    actual = ActualOrganization("lakeview", 1, {row.address: row}, fingerprint_of("lakeview", [row]))
    return OrgPlan("lakeview", actual.fingerprint, (change,)), actual


def _change(action: Action, after: dict[str, Any] | None = None) -> Change:
    return Change(WINDOW, "capacity", action, {}, after or {})


@pytest.mark.parametrize(
    ("row", "change", "refusal"),
    [
        (_window(protected=True), _change(Action.DELETE), "is protected"),
        (_window(managed=False), _change(Action.DELETE), "made outside nexus"),
        (_window(managed=False), _change(Action.UPDATE, {"slots": 6}), "made outside nexus"),
        (_window(rotations=2), _change(Action.DELETE), "cannot be deleted"),
        (_window(rotations=3), _change(Action.UPDATE, {"slots": 1}), "slots cannot go down to 1"),
        (_window(), _change(Action.CREATE, {"slots": 1}), "already exists"),
    ],
)
def test_a_change_no_plan_could_hold_is_refused_under_the_lock(
    row: Record, change: Change, refusal: str
) -> None:
    (found,) = refusals_under_lock(*_org(row, change))
    assert refusal in found


@pytest.mark.parametrize(
    ("row", "change"),
    [
        (_window(), _change(Action.UPDATE, {"slots": 6})),
        (_window(rotations=2), _change(Action.ARCHIVE)),
        (_window(managed=False), _change(Action.ADOPT, {"slots": 4})),
    ],
)
def test_a_change_a_plan_could_hold_passes_under_the_lock(row: Record, change: Change) -> None:
    assert refusals_under_lock(*_org(row, change)) == []
