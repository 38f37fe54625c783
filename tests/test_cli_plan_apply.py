"""`nexus plan` and `nexus apply` through the command line, as CI pipelines use them (CLI.md)."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from plan_apply.cli import main

from .conftest import EXAMPLES

ORG = """
apiVersion: nexus/v1
kind: Organization
metadata: {slug: lakeview, labels: {region: north}}
profile: {name: Lakeview Hospital, type: hospital}
schools: [{key: state-u, name: State University, contact_email: placements@state.example.edu}]
agreements:
  - {key: state, school: state-u, name: State nursing, start_date: 2027-01-01, services: [er], disciplines: [nursing],
     submit: true}
services:
  - key: er
    name: Emergency
    disciplines: [nursing, medicine]
    capacity:
      - {key: spring, name: Spring, workflow: coordinator_scheduled, agreement: state, disciplines: [nursing],
         start_date: 2027-02-01, end_date: 2027-05-01, slots: 4}
      - {key: open, name: Open, workflow: student_requested, disciplines: [medicine],
         start_date: 2027-02-01, end_date: 2027-05-01, slots: 3, PROTECT}
"""
OTHER = """
apiVersion: nexus/v1
kind: Organization
metadata: {slug: hillcrest, labels: {region: south}}
profile: {name: Hillcrest Clinic, type: clinic}
services: [{key: fm, name: Family Medicine, disciplines: [medicine]}]
"""


class Run:
    """Runs `nexus` in-process through `main` (so exit codes are the real ones) and keeps the output."""

    def __init__(self, capsys: pytest.CaptureFixture[str], url: str | None) -> None:
        """With `url` None, the command lines name their database themselves."""
        self.capsys = capsys
        self.url = url or ""
        self.out = ""
        self.err = ""

    @property
    def output(self) -> str:
        return self.out + self.err

    def __call__(self, *args: str, database: bool = True) -> int:
        argv = [*args, "--database-url", self.url] if database and self.url else list(args)
        try:
            main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
        else:  # pragma: no cover - main always exits
            code = 0
        captured = self.capsys.readouterr()
        self.out, self.err = captured.out, captured.err
        assert "Traceback" not in self.out + self.err
        if os.environ.get("NEXUS_TEST_ECHO"):
            print(argv, code, self.out[-800:], self.err[-800:], file=sys.__stderr__)
        return code


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str], database_url: str) -> Run:
    return Run(capsys, database_url)


@pytest.fixture
def config(write_tree: Callable[..., Path]) -> Callable[..., Path]:
    def make(protect: str = "", other: bool = True, org: str = ORG) -> Path:
        files = {"lakeview.yaml": org.replace(", PROTECT", protect)}
        if other:
            files["hillcrest.yaml"] = OTHER
        return write_tree(files)

    return make


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        rows = [tuple(r) for r in connection.execute(sa.text(sql))]
    engine.dispose()
    return rows


def test_plan_detailed_exitcode_is_2_with_changes_and_0_without(
    nexus: Run, config: Callable[..., Path]
) -> None:
    tree = config()
    assert nexus("plan", str(tree), "--detailed-exitcode") == 2
    assert nexus("apply", str(tree), "--auto-approve") == 0
    assert nexus("plan", str(tree), "--detailed-exitcode") == 0
    assert "No changes" in nexus.out


def test_plan_writes_nothing_to_the_database(nexus: Run, config: Callable[..., Path]) -> None:
    assert nexus("plan", str(config())) == 0
    assert _rows(nexus.url, "SELECT count(*) FROM organizations") == [(0,)]


def test_apply_without_a_terminal_needs_auto_approve(nexus: Run, config: Callable[..., Path]) -> None:
    assert nexus("apply", str(config())) == 1
    assert "--auto-approve" in nexus.err
    assert _rows(nexus.url, "SELECT count(*) FROM organizations") == [(0,)]


def test_plan_json_has_the_shape_of_the_contract(nexus: Run, config: Callable[..., Path]) -> None:
    assert nexus("plan", str(config()), "--format", "json") == 0
    plan = json.loads(nexus.out)
    assert plan["format_version"] == 1
    assert set(plan) >= {"format_version", "created_at", "database", "organizations", "summary"}
    assert plan["created_at"].endswith("Z")
    assert set(plan["summary"]) == {"create", "update", "delete", "archive", "adopt", "rename"}
    org = plan["organizations"][0]
    assert set(org) >= {"slug", "state_fingerprint", "changes", "unmanaged"}
    assert org["state_fingerprint"].startswith("sha256:")
    change = org["changes"][0]
    assert set(change) >= {"address", "type", "action", "before", "after", "notes", "cause", "risk"}
    addresses = [c["address"] for o in plan["organizations"] for c in o["changes"]]
    assert "lakeview/services/er/capacity/spring" in addresses
    assert "lakeview/profile" in addresses


def test_saved_plan_applies_exactly_once(nexus: Run, config: Callable[..., Path], tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    assert nexus("plan", str(config()), "--out", str(saved)) == 0
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
    assert nexus("apply", "--plan", str(saved)) == 0
    assert nexus("apply", "--plan", str(saved)) == 1
    assert "already applied at" in nexus.err and "a plan applies once" in nexus.err
    assert _rows(nexus.url, "SELECT count(*) FROM apply_log") == [(2,)]


def test_saved_plan_is_refused_when_the_database_changed(
    nexus: Run, config: Callable[..., Path], tmp_path: Path
) -> None:
    tree = config()
    saved = tmp_path / "plan.json"
    assert nexus("plan", str(tree), "--out", str(saved)) == 0
    assert nexus("apply", str(tree), "--org", "hillcrest", "--auto-approve") == 0
    assert nexus("apply", "--plan", str(saved)) == 1
    assert "nothing was applied" in nexus.err
    assert _rows(nexus.url, "SELECT slug FROM organizations") == [("hillcrest",)]


def test_saved_plan_with_selection_flags_is_a_usage_error(
    nexus: Run, config: Callable[..., Path], tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    assert nexus("plan", str(config()), "--out", str(saved)) == 0
    assert nexus("apply", "--plan", str(saved), "--org", "lakeview") == 1


def test_saved_plan_applies_through_another_spelling_of_the_same_database(
    nexus: Run, config: Callable[..., Path], tmp_path: Path
) -> None:
    if not nexus.url.startswith("postgresql"):
        pytest.skip("postgresql:// and postgresql+psycopg:// are two spellings of one PostgreSQL driver")
    saved = tmp_path / "plan.json"
    plain = nexus.url.replace("postgresql+psycopg://", "postgresql://")
    psycopg = plain.replace("postgresql://", "postgresql+psycopg://")
    assert nexus("plan", str(config()), "--out", str(saved), "--database-url", plain, database=False) == 0
    assert nexus("apply", "--plan", str(saved), "--database-url", psycopg, database=False) == 0, nexus.err


def test_saved_plan_for_another_database_is_refused(
    nexus: Run, config: Callable[..., Path], tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    assert nexus("plan", str(config()), "--out", str(saved)) == 0
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert nexus("db", "upgrade", "--database-url", other, database=False) == 0
    assert nexus("apply", "--plan", str(saved), "--database-url", other, database=False) == 1
    assert "was made for database" in nexus.err


def test_an_unexpected_error_never_prints_a_database_password(
    nexus: Run, config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql://nexus:s3cret-Pass@127.0.0.1:1/none"

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"could not use {url} (s3cret-Pass)")

    monkeypatch.setattr("plan_apply.cli._make_plan", broken)
    assert nexus("plan", str(config()), "--database-url", url, database=False) == 1
    assert "internal error: RuntimeError" in nexus.err
    assert "s3cret" not in nexus.err


def test_tampered_saved_plan_is_refused(nexus: Run, config: Callable[..., Path], tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    assert nexus("plan", str(config()), "--out", str(saved)) == 0
    saved.write_text(saved.read_text().replace('"slots": 4', '"slots": 400'))
    assert nexus("apply", "--plan", str(saved)) == 1
    assert "modified" in nexus.err
    assert _rows(nexus.url, "SELECT count(*) FROM organizations") == [(0,)]


def test_org_flag_scopes_the_plan_and_unknown_org_suggests(nexus: Run, config: Callable[..., Path]) -> None:
    tree = config()
    assert nexus("plan", str(tree), "--org", "hillcrest", "--format", "json") == 0
    assert [o["slug"] for o in json.loads(nexus.out)["organizations"]] == ["hillcrest"]
    assert nexus("plan", str(tree), "--org", "hilcrest") == 1
    assert 'did you mean "hillcrest"' in nexus.err


def test_selector_chooses_organizations_by_label(nexus: Run, config: Callable[..., Path]) -> None:
    assert nexus("plan", str(config()), "--selector", "region=south", "--format", "json") == 0
    assert [o["slug"] for o in json.loads(nexus.out)["organizations"]] == ["hillcrest"]
    assert nexus("plan", str(config()), "--selector", "region=%") == 1


def test_deletes_never_reach_organizations_outside_the_selection(
    nexus: Run, config: Callable[..., Path], write_tree: Callable[..., Path]
) -> None:
    assert nexus("apply", str(config()), "--auto-approve") == 0
    emptied = write_tree(
        {
            "lakeview.yaml": ORG.replace(", PROTECT", ""),
            "hillcrest.yaml": OTHER.replace(
                "services: [{key: fm, name: Family Medicine, disciplines: [medicine]}]", "services: []"
            ),
        },
        root="emptied",
    )
    assert nexus("apply", str(emptied), "--org", "lakeview", "--auto-approve") == 0
    assert _rows(nexus.url, "SELECT key FROM services WHERE key = 'fm'") == [("fm",)]


def test_fail_on_drift_exits_1_when_the_database_was_edited_outside_nexus(
    nexus: Run, config: Callable[..., Path]
) -> None:
    tree = config()
    assert nexus("apply", str(tree), "--auto-approve") == 0
    assert nexus("plan", str(tree), "--fail-on-drift") == 0
    engine = sa.create_engine(nexus.url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE capacity_windows SET slots = 9 WHERE key = 'spring'"))
    engine.dispose()
    assert nexus("plan", str(tree), "--fail-on-drift", "--format", "json") == 1
    changes = [c for o in json.loads(nexus.out)["organizations"] for c in o["changes"]]
    assert [(c["address"], c["cause"]) for c in changes] == [
        ("lakeview/services/er/capacity/spring", "drift")
    ]


def test_protected_item_is_refused_until_released(
    nexus: Run, config: Callable[..., Path], write_tree: Callable[..., Path]
) -> None:
    assert nexus("apply", str(config(protect=", protect: true")), "--auto-approve") == 0
    without = ORG.replace(
        """      - {key: open, name: Open, workflow: student_requested, disciplines: [medicine],
         start_date: 2027-02-01, end_date: 2027-05-01, slots: 3, PROTECT}
""",
        "",
    )
    removed = write_tree({"lakeview.yaml": without}, root="removed")
    assert nexus("apply", str(removed), "--auto-approve") == 1
    assert "protect: false" in nexus.out
    assert nexus("apply", str(config(protect=", protect: false")), "--auto-approve") == 0
    assert nexus("apply", str(removed), "--auto-approve") == 0
    assert _rows(nexus.url, "SELECT key FROM capacity_windows ORDER BY key") == [("spring",)]


def test_mass_delete_needs_allow_mass_delete(
    nexus: Run, config: Callable[..., Path], write_tree: Callable[..., Path]
) -> None:
    assert nexus("apply", str(config()), "--auto-approve") == 0
    emptied = write_tree(
        {"lakeview.yaml": ORG.split("schools:")[0] + "schools: []\nagreements: []\nservices: []\n"},
        root="empty",
    )
    assert nexus("plan", str(emptied), "--detailed-exitcode") == 1
    assert "--allow-mass-delete" in nexus.out
    assert nexus("apply", str(emptied), "--auto-approve") == 1
    assert nexus("apply", str(emptied), "--auto-approve", "--allow-mass-delete") == 0


def test_counter_propose_overwrites_a_schools_proposal(
    nexus: Run, config: Callable[..., Path], write_tree: Callable[..., Path]
) -> None:
    assert nexus("apply", str(config()), "--auto-approve") == 0
    engine = sa.create_engine(nexus.url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE agreements SET status = 'changes_proposed', proposed = :p WHERE key = 'state'"),
            {"p": json.dumps({"start_date": "2027-03-01"})},
        )
    engine.dispose()
    edited = write_tree(
        {"lakeview.yaml": ORG.replace(", PROTECT", "").replace("name: State nursing", "name: State")},
        root="edited",
    )
    assert nexus("apply", str(edited), "--auto-approve") == 0
    assert "left alone" in nexus.err
    assert _rows(nexus.url, "SELECT name, status FROM agreements") == [("State nursing", "changes_proposed")]
    assert nexus("apply", str(edited), "--auto-approve", "--counter-propose") == 0
    assert _rows(nexus.url, "SELECT name, status FROM agreements") == [("State", "pending_school")]


def test_usage_errors_exit_1_not_2(nexus: Run, config: Callable[..., Path]) -> None:
    assert nexus("plan", str(config()), "--fromat", "json") == 1
    assert "--format" in nexus.err


def test_unreachable_database_is_one_line_without_password(nexus: Run, config: Callable[..., Path]) -> None:
    url = "postgresql://nexus:canary-s3cret@127.0.0.1:1/nowhere?password=canary-s3cret"
    assert nexus("plan", str(config()), "--database-url", url, database=False) == 1
    assert "canary-s3cret" not in nexus.out + nexus.err
    assert "cannot use database" in nexus.err


def test_database_without_schema_is_refused_naming_db_upgrade(
    nexus: Run, config: Callable[..., Path], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'blank.db'}"
    assert nexus("plan", str(config()), "--database-url", url, database=False) == 1
    assert "nexus db upgrade" in nexus.err
    assert nexus("db", "upgrade", "--database-url", url, database=False) == 0
    assert nexus("plan", str(config()), "--database-url", url, database=False) == 0


def test_history_lists_applies_with_commit_and_actor(
    nexus: Run, config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_SHA", "0123456789abcdef")
    monkeypatch.setenv("NEXUS_ACTOR", "ci-bot")
    assert nexus("apply", str(config()), "--auto-approve") == 0
    assert nexus("history", "--format", "json") == 0
    entries = json.loads(nexus.out)["applies"]
    assert {e["organization"] for e in entries} == {"lakeview", "hillcrest"}
    assert {e["commit"] for e in entries} == {"0123456789abcdef"}
    assert {e["actor"] for e in entries} == {"ci-bot"}
    assert nexus("history", "--org", "hillcrest") == 0
    assert "hillcrest" in nexus.out and "lakeview" not in nexus.out


def test_examples_first_command_of_the_readme_works(nexus: Run) -> None:
    assert nexus("apply", str(EXAMPLES), "--auto-approve") == 0
    assert nexus("plan", str(EXAMPLES), "--detailed-exitcode") == 0


def test_history_filters_by_date(nexus: Run, config: Callable[..., Path]) -> None:
    assert nexus("apply", str(config()), "--auto-approve") == 0
    assert nexus("history", "--since", "2000-01-01", "--format", "json") == 0
    assert len(json.loads(nexus.out)["applies"]) == 2
    assert nexus("history", "--until", "2000-01-01", "--format", "json") == 0
    assert json.loads(nexus.out)["applies"] == []
    assert nexus("history", "--since", "yesterday") == 1
    assert "YYYY-MM-DD" in nexus.err


def test_history_table_on_a_terminal_names_who_and_what(nexus: Run, config: Callable[..., Path]) -> None:
    assert nexus("apply", str(config()), "--auto-approve") == 0
    assert nexus("history") == 0
    header = nexus.out.splitlines()[0]
    assert header.split() == ["WHEN", "(UTC)", "ORGANIZATION", "WHO", "COMMIT", "CHANGES"]
    assert "create" in nexus.out
