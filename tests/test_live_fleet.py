"""A fleet applied beside itself and beside the platform (issue 13): parallel applies that store the same
document, concurrent shards, families whose parent fails, results printed as they commit, and a history
that says what the database received, no more."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from plan_apply.apply import OrgResult, apply_plan
from plan_apply.database.engine import engine_for

from .conftest import _truncate_postgres
from .support.actors import Nexus, rows, scalar, school_answers, write_lock_held
from .support.harness import finish, plan_folder, start_nexus
from .test_live_races import ORG

PDFS = [f"%PDF-1.7\n% shared document {n}\n%%EOF\n".encode() for n in range(3)]


def facility(n: int) -> str:
    """A facility whose agreement attaches one of three PDFs that every fourth facility shares."""
    return textwrap.dedent(
        f"""\
        apiVersion: nexus/v1
        kind: Organization
        metadata: {{slug: site-{n:02d}}}
        profile: {{name: Site {n}, type: clinic}}
        schools: [{{key: state-u, name: State University, contact_email: placements@state.example.edu}}]
        agreements:
          - {{key: state, school: state-u, name: State nursing, start_date: 2027-01-01, end_date: 2027-12-31,
             services: [er], disciplines: [nursing], submit: true, document: signed-{n % 3}.pdf}}
        services: [{{key: er, name: Emergency, disciplines: [nursing]}}]
        """
    )


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    (root / "sites").mkdir(parents=True)
    for n, pdf in enumerate(PDFS):
        (root / "sites" / f"signed-{n}.pdf").write_bytes(pdf)
    for n in range(12):
        (root / "sites" / f"site-{n:02d}.yaml").write_text(facility(n), encoding="utf-8")
    return root


@pytest.mark.postgres
def test_twenty_parallel_first_applies_of_facilities_sharing_documents_never_fail(
    postgres_upgraded: str, fleet: Path
) -> None:
    for _ in range(20):
        _truncate_postgres(postgres_upgraded)
        engine = engine_for(postgres_upgraded)
        try:
            result = apply_plan(engine, plan_folder(engine, fleet), jobs=6)
        finally:
            engine.dispose()
        assert [r for r in result.organizations if r.status != "applied"] == []
        assert scalar(postgres_upgraded, "SELECT count(*) FROM documents") == 3


@pytest.mark.postgres
@pytest.mark.slow
def test_concurrent_shards_of_one_fleet_never_fail(postgres_upgraded: str, fleet: Path) -> None:
    _truncate_postgres(postgres_upgraded)
    processes = [
        start_nexus(
            ["apply", str(fleet), "--shard", f"{i}/3", "--auto-approve", "--database-url", postgres_upgraded],
            {},
        )
        for i in range(1, 4)
    ]
    done = [finish(p) for p in processes]
    assert [d.returncode for d in done] == [0, 0, 0], [d.output for d in done]
    assert scalar(postgres_upgraded, "SELECT count(*) FROM organizations") == 12
    assert scalar(postgres_upgraded, "SELECT count(*) FROM documents") == 3


def test_each_result_is_reported_when_its_organization_commits(database_url: str, fleet: Path) -> None:
    """Sequentially (SQLite's only way) too: when an organization is reported, the next is not yet written."""
    engine = engine_for(database_url)
    seen: list[tuple[str, int]] = []

    def on_result(result: OrgResult) -> None:
        seen.append((result.slug, scalar(database_url, "SELECT count(*) FROM organizations")))

    try:
        apply_plan(engine, plan_folder(engine, fleet), on_result=on_result, jobs=1)
    finally:
        engine.dispose()
    assert seen == [(f"site-{n:02d}", n + 1) for n in range(12)]


FAMILY = """
apiVersion: nexus/v1
kind: Organization
metadata: {slug: SLUG, PARENT}
profile: {name: SLUG, type: hospital}
"""


def _member(slug: str, parent: str | None) -> str:
    text = FAMILY.replace("SLUG", slug).replace("PARENT", f"parent: {parent}" if parent else "")
    return textwrap.dedent(text.replace(", }", "}")).lstrip()


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str], database_url: str) -> Nexus:
    return Nexus(capsys, database_url)


def test_a_child_whose_parent_failed_is_not_applied_and_no_cycle_is_committed(
    nexus: Nexus, write_tree: Callable[..., Path]
) -> None:
    """A parent swap: when the new parent cannot be applied, the old parent is not made its child."""
    tree = write_tree({"a.yaml": _member("alpha", None), "b.yaml": _member("beta", "alpha")}, root="one")
    assert nexus("apply", str(tree), "--auto-approve") == 0, nexus.output
    swapped = write_tree({"a.yaml": _member("alpha", "beta"), "b.yaml": _member("beta", None)}, root="two")
    with write_lock_held(nexus.url, "beta"):
        assert nexus("apply", str(swapped), "--auto-approve", "--lock-timeout", "0.2") == 1
    assert "alpha: skipped: not applied: its parent beta was not applied" in nexus.output
    parents = rows(
        nexus.url,
        "SELECT o.slug, p.slug FROM organizations o LEFT JOIN organizations p ON p.id = o.parent_id ORDER BY o.slug",
    )
    assert parents == [("alpha", None), ("beta", "alpha")]


AGREED = ORG.replace("slug: harbor", "slug: lakeview").replace(
    "{name: Harbor Clinic, type: clinic}", "{name: Lakeview Hospital, type: hospital}"
)
"""The race tests' organization with one school agreement, as Lakeview Hospital."""


def _agreed(end: str = "2027-12-31", slots: int = 4) -> str:
    return textwrap.dedent(AGREED).lstrip().replace("END", end).replace("SLOTS", str(slots))


def _proposed(nexus: Nexus, write_tree: Callable[..., Path]) -> None:
    assert nexus("apply", str(write_tree({"l.yaml": _agreed()}, root="v1")), "--auto-approve") == 0
    school_answers(nexus.url, "state", "changes_proposed", '{"end_date": "2027-08-31"}')


def test_an_organization_whose_only_change_was_left_alone_says_so_and_logs_nothing_written(
    nexus: Nexus, write_tree: Callable[..., Path]
) -> None:
    _proposed(nexus, write_tree)
    tree = write_tree({"l.yaml": _agreed(end="2028-06-30")}, root="v2")
    assert nexus("apply", str(tree), "--auto-approve") == 0, nexus.output
    assert "lakeview: left alone" in nexus.output
    assert "applied (0 changes)" not in nexus.output
    assert nexus("history", "--format", "json") == 0
    latest = json.loads(nexus.out)["applies"][0]
    assert latest["summary"] == {"left alone": 1}
    assert [c.get("left_alone") for c in latest["changes"]] == [True]


def test_history_equals_what_the_database_received(nexus: Nexus, write_tree: Callable[..., Path]) -> None:
    """Every change the log says was written is in the rows; every change it says was left alone is not."""
    _proposed(nexus, write_tree)
    tree = write_tree({"l.yaml": _agreed(end="2028-06-30", slots=6)}, root="v2")
    assert nexus("apply", str(tree), "--auto-approve") == 0, nexus.output
    assert nexus("history", "--format", "json") == 0
    latest: dict[str, Any] = json.loads(nexus.out)["applies"][0]
    written = [c for c in latest["changes"] if not c.get("left_alone")]
    left = [c for c in latest["changes"] if c.get("left_alone")]
    assert latest["summary"] == {"update": len(written), "left alone": len(left)}
    columns = {"capacity": ("capacity_windows", "slots"), "agreement": ("agreements", "end_date")}
    for change, expected in [(c, "after") for c in written] + [(c, "before") for c in left]:
        table, column = columns[change["type"]]
        (value,) = [
            v
            for (v,) in rows(
                nexus.url,
                f"SELECT {column} FROM {table} WHERE key = :k",
                {"k": change["address"].rsplit("/", 1)[1]},
            )
        ]
        assert str(value) == str(change[expected][column]), (change, value)
    assert {c["type"] for c in written} == {"capacity"} and {c["type"] for c in left} == {"agreement"}


def test_a_change_left_alone_for_the_school_is_shown_held_and_not_pending(
    nexus: Nexus, write_tree: Callable[..., Path]
) -> None:
    _proposed(nexus, write_tree)
    tree = write_tree({"l.yaml": _agreed(end="2028-06-30")}, root="v2")
    assert nexus("plan", str(tree), "--detailed-exitcode") == 0, nexus.output
    assert "[held: apply leaves it alone]" in nexus.out
    assert nexus("plan", str(tree), "--fail-on-held") == 1
    assert nexus("plan", str(tree), "--format", "json") == 0
    (change,) = [c for o in json.loads(nexus.out)["organizations"] for c in o["changes"]]
    assert change["pending"] is False
    assert (
        nexus(
            "plan",
            str(write_tree({"l.yaml": _agreed(end="2028-06-30", slots=5)}, root="v3")),
            "--detailed-exitcode",
        )
        == 2
    )


def test_a_write_that_touches_fewer_rows_than_planned_names_the_item(
    database_url: str, write_tree: Callable[..., Path]
) -> None:
    from plan_apply.database.writes import WRITERS, ChangedMeanwhile, WriteContext
    from plan_apply.plan import Action, Change

    engine = engine_for(database_url)
    try:
        apply_plan(engine, plan_folder(engine, write_tree({"l.yaml": _agreed()})))
        address = "lakeview/services/er/capacity/spring"
        change = Change(address, "capacity", Action.UPDATE, {"slots": 4}, {"slots": 5})
        with engine.connect() as connection, connection.begin():
            ctx = WriteContext(connection, "lakeview", 1, {}, {address: 999}, {}, sa.func.now())  # type: ignore[arg-type]
            with pytest.raises(
                ChangedMeanwhile, match=f"{address} was changed or removed meanwhile: plan again"
            ):
                WRITERS[("capacity", Action.UPDATE)](ctx, [change])
    finally:
        engine.dispose()
