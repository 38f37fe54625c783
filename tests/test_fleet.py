"""Fleet scale behaviour: shards, parallel applies in a deterministic order, per-organization isolation,
and reads whose statement count does not grow with the fleet."""

from __future__ import annotations

import gc
import io
import json
import shutil
import sys
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from nexus_config import load_configuration
from nexus_config.headers import file_header
from nexus_config.heap import bulk_heap, settle
from plan_apply import apply, batching, planner, workers
from plan_apply.database.engine import engine_for
from plan_apply.planner import build_plan
from plan_apply.progress import planning_bar
from plan_apply.selection import selected_organizations
from plan_apply.workers import Workers

from .support.harness import fault_env, run_nexus
from .test_cli_plan_apply import Run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from fleet import write_fleet


def test_the_templated_fleet_is_the_flat_fleet_in_fewer_bytes(tmp_path: Path) -> None:
    templated = write_fleet(tmp_path / "templated", 12, seed=3, systems=1)
    flat = write_fleet(tmp_path / "flat", 12, seed=3, systems=1, flat=True, shared=True)
    loaded = [load_configuration([tmp_path / name]) for name in ("templated", "flat")]
    assert all(result.ok for result in loaded), [result.errors for result in loaded]
    by_slug = [result.state.organizations for result in loaded]
    assert {slug: org.services for slug, org in by_slug[0].items()} == {
        slug: org.services for slug, org in by_slug[1].items()
    }
    assert any(org.service_templates for org in by_slug[0].values())
    assert sum(p.stat().st_size for p in templated) < sum(p.stat().st_size for p in flat)


def _texts(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*.yaml"))}


def test_the_same_arguments_write_the_same_bytes(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_fleet(tmp_path / name, 8, seed=5, systems=2, changed_fraction=0.25, change_round=2)
    assert _texts(tmp_path / "a") == _texts(tmp_path / "b")


def test_every_health_system_shares_agreements_some_facility_windows_are_scheduled_under(
    tmp_path: Path,
) -> None:
    write_fleet(tmp_path / "fleet", 12, seed=3, systems=3)
    loaded = load_configuration([tmp_path / "fleet"])
    assert loaded.ok, [p.as_text() for p in loaded.problems][:5]
    orgs = loaded.state.organizations
    systems = [slug for slug, org in orgs.items() if org.parent is None]
    covers = {str(a.covers) for slug in systems for a in orgs[slug].agreements or () if a.covers is not None}
    assert len(systems) == 3 and "all" in covers and any("tier" in c or "beds" in c for c in covers)
    under_system = {
        window.agreement.split("/")[0]
        for org in orgs.values()
        for service in org.services or ()
        for window in service.capacity or ()
        if window.agreement and "/" in window.agreement
    }
    assert under_system == set(systems)
    texts = _texts(tmp_path / "fleet")
    headers = {path: file_header(text) for path, text in texts.items()}
    shared = {path.split("/")[0] for path, header in headers.items() if header is not None and header.shares}
    assert shared == set(systems)


def test_a_flat_fleet_writes_no_template_and_no_system_wide_agreement(tmp_path: Path) -> None:
    write_fleet(tmp_path / "fleet", 12, seed=3, systems=3, flat=True)
    texts = _texts(tmp_path / "fleet")
    assert load_configuration([tmp_path / "fleet"]).ok
    assert not any(
        "covers:" in text or "template:" in text or "templates:" in text for text in texts.values()
    )
    assert not any(
        "agreement: " in line and "/" in line for text in texts.values() for line in text.splitlines()
    )


def test_a_changed_round_of_a_sharing_fleet_plans_only_updates(nexus: Run, tmp_path: Path) -> None:
    folder = tmp_path / "fleet"
    write_fleet(folder, 6, seed=2, systems=2)
    assert nexus("apply", str(folder), "--auto-approve", "-q", "--no-progress") == 0, nexus.err
    write_fleet(folder, 6, seed=2, systems=2, changed_fraction=0.34, change_round=1)
    assert nexus("plan", str(folder), "--format", "json", "--detailed-exitcode") == 2, nexus.err
    changes = [c for o in json.loads(nexus.out)["organizations"] for c in o["changes"]]
    assert changes and {c["action"] for c in changes} == {"update"}


def test_a_changed_template_of_a_sharing_family_changes_exactly_its_users(nexus: Run, tmp_path: Path) -> None:
    folder = tmp_path / "fleet"
    write_fleet(folder, 8, seed=2, systems=2)
    orgs = load_configuration([folder]).state.organizations
    system = min(slug for slug, org in orgs.items() if org.parent is None)
    family = [org for org in orgs.values() if org.parent == system]
    uses = {
        service.key: {org.slug for org in family for s in org.services or () if s.key == service.key}
        for org in family
        for service in org.services or ()
    }
    key, users = next((k, u) for k, u in sorted(uses.items()) if 0 < len(u) < len(family))
    assert nexus("apply", str(folder), "--auto-approve", "-q", "--no-progress") == 0, nexus.err
    templates = folder / system / "templates.yaml"
    text = templates.read_text()
    marker = f"  - key: {key}\n    name: "
    assert text.count(marker) == 1
    templates.write_text(text.replace(marker, marker + "Renamed "))
    assert nexus("plan", str(folder), "--format", "json", "--detailed-exitcode") == 2, nexus.err
    changed = {o["slug"]: o["changes"] for o in json.loads(nexus.out)["organizations"] if o["changes"]}
    assert set(changed) == users  # an unchanged fleet's services take their name from the template
    assert {(c["action"], c["address"].split("/", 1)[1]) for cs in changed.values() for c in cs} == {
        ("update", f"services/{key}")
    }


@pytest.fixture(scope="module")
def fleet_20(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four families of five facilities: each shares its system's agreements, so is one batch of six."""
    out = tmp_path_factory.mktemp("fleet") / "fleet-20"
    write_fleet(out, 20, seed=7, systems=4)
    return out


@pytest.fixture(scope="module")
def fleet_200(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fleet") / "fleet-200"
    write_fleet(out, 200, seed=7)
    return out


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str], database_url: str) -> Run:
    return Run(capsys, database_url)


def _selects(url: str, folder: Path) -> int:
    loaded = load_configuration([folder])
    assert loaded.ok, loaded.errors[:3]
    engine = engine_for(url)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda c, cur, statement, *a: statements.append(statement))
    with engine.connect() as connection:
        build_plan(connection, loaded.state, list(loaded.state.organizations), database="db")
    engine.dispose()
    return len(statements)


def test_200_organizations_plan_with_the_same_statements_per_batch_as_20(
    database_url: str, fleet_20: Path, fleet_200: Path
) -> None:
    assert _selects(database_url, fleet_200) == _selects(database_url, fleet_20)


def test_shards_cover_the_fleet_exactly_once_with_families_together(fleet_200: Path) -> None:
    state = load_configuration([fleet_200]).state
    shards = [selected_organizations(state, [], [], shard=(i, 4)) for i in range(1, 5)]
    every = [slug for shard in shards for slug in shard]
    assert sorted(every) == sorted(state.organizations)
    assert all(shards)
    shard_of = {slug: i for i, shard in enumerate(shards) for slug in shard}
    for slug, org in state.organizations.items():
        if org.parent:
            assert shard_of[slug] == shard_of[org.parent]


def test_shard_flag_is_checked(nexus: Run, fleet_20: Path) -> None:
    assert nexus("plan", str(fleet_20), "--shard", "5/4") == 1
    assert "--shard" in nexus.err


def test_parallel_apply_reports_in_plan_order_and_converges(nexus: Run, fleet_20: Path) -> None:
    assert nexus("plan", str(fleet_20), "--format", "json") == 0
    order = [o["slug"] for o in json.loads(nexus.out)["organizations"]]
    assert nexus("apply", str(fleet_20), "--auto-approve", "--jobs", "4", "--no-progress", "-q") == 0
    assert nexus("apply", str(fleet_20), "--auto-approve", "--jobs", "4", "--no-progress", "--full") == 0
    assert nexus("plan", str(fleet_20), "--full", "--detailed-exitcode") == 0
    engine = sa.create_engine(nexus.url)
    with engine.connect() as connection:
        logged = connection.execute(sa.text("SELECT count(DISTINCT org_slug) FROM apply_log")).scalar()
    engine.dispose()
    assert logged == len(order)


ORG = "apiVersion: nexus/v1\nkind: Organization\nmetadata: {{slug: {slug}{parent}}}\nprofile: {{name: {slug}, type: clinic}}\n"


def _org(slug: str, parent: str = "") -> str:
    return ORG.format(slug=slug, parent=f", parent: {parent}" if parent else "")


@pytest.mark.parametrize("flags", [(), ("--keep-going",)], ids=["by-default", "keep-going"])
def test_one_failing_organization_never_stops_the_others(
    nexus: Run, write_tree: Callable[..., Path], flags: tuple[str, ...]
) -> None:
    tree = write_tree(
        {
            "a.yaml": _org("alpha"),
            "p.yaml": _org("papa"),
            "c.yaml": _org("child", "papa"),
            "z.yaml": _org("zulu"),
        }
    )
    # The child is applied without its parent, which is not in the database yet: that organization fails.
    assert (
        nexus(
            "apply", str(tree), "--org", "child", "--org", "alpha", "--org", "zulu", "--auto-approve", *flags
        )
        == 1
    )
    assert "child" in nexus.err and "apply it first" in nexus.err
    engine = sa.create_engine(nexus.url)
    with engine.connect() as connection:
        slugs = set(connection.execute(sa.text("SELECT slug FROM organizations")).scalars())
    engine.dispose()
    assert slugs == {"alpha", "zulu"}


def test_fail_fast_stops_at_the_first_failure(nexus: Run, write_tree: Callable[..., Path]) -> None:
    tree = write_tree(
        {
            "p.yaml": _org("papa"),
            "c.yaml": _org("child", "papa"),
            "z.yaml": _org("zulu"),
            "k.yaml": _org("kid", "zulu"),
        }
    )
    assert nexus("apply", str(tree), "--org", "zulu", "--auto-approve") == 0
    # child (fails: its parent is not applied) comes before kid in plan order; --fail-fast stops there.
    assert nexus("apply", str(tree), "--org", "child", "--org", "kid", "--auto-approve", "--fail-fast") == 1
    assert "not attempted" in nexus.err
    engine = sa.create_engine(nexus.url)
    with engine.connect() as connection:
        slugs = set(connection.execute(sa.text("SELECT slug FROM organizations")).scalars())
    engine.dispose()
    assert slugs == {"zulu"}


def test_a_bulk_apply_hands_the_collector_back_as_it_found_it(
    nexus: Run, fleet_20: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plan and apply pause the cyclic GC and freeze what each batch leaves (nexus_config.heap); after
    the command it runs again, and nothing stays frozen out of its reach."""
    monkeypatch.setattr(batching, "BATCH_ORGANIZATIONS", 5)
    monkeypatch.setattr(apply, "SETTLE_EVERY", 5)
    settled: list[int] = []

    def counted() -> None:
        settled.append(1)
        settle()

    monkeypatch.setattr(planner, "settle", counted)
    monkeypatch.setattr(workers, "settle", counted)
    monkeypatch.setattr(apply, "settle", counted)
    assert gc.isenabled()
    assert nexus("apply", str(fleet_20), "--auto-approve", "--no-progress") == 0, nexus.err
    assert nexus("plan", str(fleet_20), "--full") == 0, nexus.err
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    assert len(settled) >= 8  # between batches of the plans and of the apply


def test_settling_a_bulk_run_collects_the_cycles_a_batch_left() -> None:
    class Node:
        peer: object = None

    with bulk_heap():
        a, b = Node(), Node()
        a.peer, b.peer = b, a
        gone = weakref.ref(a)
        del a, b
        assert gone() is not None  # a cycle: reference counting alone never frees it
        settle()
        assert gone() is None
        survivor = Node()
        settle()
        assert gc.get_freeze_count() > 0  # what survived a batch is no longer rescanned
    assert gc.get_freeze_count() == 0 and survivor.peer is None


def test_what_a_bulk_run_made_is_handed_back_in_the_oldest_generation() -> None:
    # Re-enabling the collector starts a young pass: it must not walk every object the paused run made.
    class Node:
        pass

    with bulk_heap():
        made = Node()
        settle()
        young = Node()
    assert gc.is_tracked(made) and gc.get_freeze_count() == 0
    oldest = {id(o) for o in gc.get_objects(generation=2) if isinstance(o, Node)}
    assert oldest == {id(made), id(young)}


def test_settle_outside_a_bulk_run_leaves_the_collector_alone() -> None:
    settle()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def _organizations(plan_json: str) -> list[dict[str, object]]:
    return list(json.loads(plan_json)["organizations"])


def test_planning_in_worker_processes_gives_the_plan_of_one_process(
    nexus: Run, fleet_20: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batching, "BATCH_ORGANIZATIONS", 5)  # several batches, so workers take part
    planned_by_workers = []
    mapped = Workers.map

    def spied(self: Workers, *args: Any) -> Any:
        planned_by_workers.append(self.jobs)
        return mapped(self, *args)

    monkeypatch.setattr(Workers, "map", spied)
    assert nexus("plan", str(fleet_20), "--format", "json", "--jobs", "1") == 0, nexus.err
    alone = _organizations(nexus.out)
    assert planned_by_workers == []
    assert nexus("plan", str(fleet_20), "--format", "json", "--jobs", "3") == 0, nexus.err
    assert _organizations(nexus.out) == alone
    assert planned_by_workers == [3]
    assert nexus("apply", str(fleet_20), "--auto-approve", "--no-progress", "--jobs", "3") == 0, nexus.err
    assert nexus("plan", str(fleet_20), "--full", "--detailed-exitcode", "--jobs", "3") == 0, nexus.out
    assert planned_by_workers == [3, 3, 3]
    # Nothing to load (every organization unchanged since the apply): no processes are started for it.
    assert nexus("plan", str(fleet_20), "--detailed-exitcode", "--jobs", "3") == 0, nexus.out
    assert "unchanged since the last apply" in nexus.out
    assert planned_by_workers == [3, 3, 3]


def test_problems_found_by_worker_processes_are_reported_as_by_one(
    nexus: Run, fleet_20: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batching, "BATCH_ORGANIZATIONS", 5)
    broken = tmp_path / "fleet"
    shutil.copytree(fleet_20, broken)
    victims = sorted(broken.rglob("*.yaml"))
    for victim in (victims[3], victims[-3]):  # two batches, far apart
        victim.write_text(victim.read_text().replace("slots:", "slotz:", 1))
    assert nexus("plan", str(broken), "--jobs", "1") == 1
    alone = nexus.err
    assert "slotz" in alone and alone.count("error:") >= 2
    assert nexus("plan", str(broken), "--jobs", "3") == 1
    assert nexus.err == alone


def test_planning_reports_progress_batch_by_batch(
    database_url: str, fleet_20: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batching, "BATCH_ORGANIZATIONS", 5)
    heard: list[tuple[int, int]] = []
    engine = engine_for(database_url)
    with engine.connect() as connection:
        result = planner.plan_tree(
            [fleet_20], connection, database="db", on_progress=lambda done, total: heard.append((done, total))
        )
    engine.dispose()
    assert result.plan is not None
    total = len(result.plan.organizations)
    assert len(heard) >= 4 and heard[-1] == (total, total)
    assert [done for done, _ in heard] == sorted(done for done, _ in heard)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_planning_bar_is_drawn_on_a_terminal_only() -> None:
    assert planning_bar(io.StringIO()) is None
    assert planning_bar(_Terminal(), enabled=False) is None
    terminal = _Terminal()
    bar = planning_bar(terminal)
    assert bar is not None
    bar.advance(3, 10)
    bar.advance(10, 10)
    bar.close()
    assert "planning" in terminal.getvalue()


def test_a_planning_worker_killed_mid_batch_fails_the_run_cleanly(
    database_url: str, write_tree: Callable[..., Path]
) -> None:
    """Enough organizations for two batches, so planning runs in worker processes; one is SIGKILLed at its
    second statement. The run says so in one line and writes nothing; without the fault it applies."""
    count = batching.BATCH_ORGANIZATIONS + 30
    tree = write_tree({f"org-{n:03}.yaml": _org(f"org-{n:03}") for n in range(count)})
    args = [str(tree), "--database-url", database_url, "--jobs", "2", "--no-progress"]
    for command in (["plan"], ["apply", "--auto-approve"]):
        killed = run_nexus([*command, *args], fault_env(kill_in_worker=2))
        assert killed.returncode == 1, killed.output[-600:]
        assert "worker process checking the configuration ended abruptly" in killed.stderr
        assert "Traceback" not in killed.output
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM organizations")).scalar() == 0
    engine.dispose()
    applied = run_nexus(["apply", "--auto-approve", *args])
    assert applied.returncode == 0, applied.output[-600:]
    assert f"{count} applied" in applied.stderr
