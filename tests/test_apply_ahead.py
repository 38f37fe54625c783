"""An apply computes each organization's rows and log entry while the organization before it commits:
never beside a transaction's statements, and written exactly as if computed inside the transaction."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from plan_apply import apply as apply_module
from plan_apply.apply import ApplyOptions, apply_plan
from plan_apply.database import tables as t
from plan_apply.plan import OrgPlan
from plan_apply.prepared import Prepared
from plan_apply.prepared import prepared as real_prepared

from .support.harness import plan_folder

ORG = """
apiVersion: nexus/v1
kind: Organization
metadata: {{slug: site-{n}}}
profile: {{name: Site {n}, type: clinic}}
steps: [{{key: hipaa, stage: onboarding, name: HIPAA, type: upload}}]
services:
  - key: er
    name: Emergency
    disciplines: [nursing]
    steps: [hipaa]
    capacity:
      - {{key: open, name: Open, workflow: student_requested, disciplines: [nursing],
          start_date: 2027-02-01, end_date: 2027-05-01, slots: 3}}
"""


def _sites(write_tree: Callable[..., Path], count: int) -> Path:
    return write_tree({f"site-{n}.yaml": ORG.format(n=n) for n in range(count)})


def test_each_organization_is_prepared_while_the_one_before_it_commits(
    engine: sa.Engine, write_tree: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = plan_folder(engine, _sites(write_tree, 3))
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def note(kind: str, what: str) -> None:
        with lock:
            events.append((kind, what))

    real_start = apply_module._Ahead.start

    def prepared(org: OrgPlan, dialect: Any) -> Prepared:
        note("prepare", f"{org.slug} on {threading.current_thread().name.split('_')[0]}")
        done = real_prepared(org, dialect)
        note("prepared", org.slug)
        return done

    def start(self: Any, org: OrgPlan | None) -> None:
        if org is not None:
            note("submit", org.slug)
        real_start(self, org)

    monkeypatch.setattr("plan_apply.apply.prepared", prepared)
    monkeypatch.setattr(apply_module._Ahead, "start", start)
    event.listen(
        engine, "before_cursor_execute", lambda c, cur, text, *a: note("sql", text.split()[0].upper())
    )
    event.listen(engine, "commit", lambda c: note("commit", ""))
    assert apply_plan(engine, plan, ApplyOptions(actor="test"), jobs=1).ok

    slugs = [org.slug for org in plan.organizations]
    assert ("prepare", f"{slugs[0]} on MainThread") in events  # nothing commits before the first one
    for org in slugs[1:]:
        submitted = events.index(("submit", org))
        # Handed to another thread once the organization before it wrote its last row, just before it
        # commits (these events are the apply thread's own, in its order) ...
        assert events[submitted - 1] == ("sql", "INSERT")
        assert next(e for e in events[submitted + 1 :] if e[0] in ("sql", "commit")) == ("commit", "")
        assert ("prepare", f"{org} on nexus-prepare") in events
        # ... and done before its own transaction ran anything.
        done = events.index(("prepared", org))
        assert [e for e in events[submitted:done] if e[0] == "sql"] == []


def test_the_apply_log_keeps_the_changes_as_planned(
    engine: sa.Engine, write_tree: Callable[..., Path]
) -> None:
    plan = plan_folder(engine, _sites(write_tree, 2))
    assert apply_plan(engine, plan, ApplyOptions(actor="test"), jobs=1).ok
    log = t.apply_log
    with engine.connect() as connection:
        logged = {
            row.org_slug: (row.summary, row.changes)
            for row in connection.execute(sa.select(log.c.org_slug, log.c.summary, log.c.changes))
        }
    for org in plan.organizations:
        assert logged[org.slug] == ({"create": len(org.changes)}, [c.to_json() for c in org.changes])


def test_what_a_family_thread_did_not_expect_is_raised_not_waited_for(
    engine: sa.Engine, write_tree: Callable[..., Path]
) -> None:
    plan = plan_folder(engine, _sites(write_tree, 2))
    outcome: list[BaseException | None] = []

    def broken_listener(result: Any) -> None:
        raise RuntimeError("the listener broke")

    def run() -> None:
        try:
            apply_plan(engine, plan, ApplyOptions(actor="test"), on_result=broken_listener, jobs=2)
            outcome.append(None)
        except RuntimeError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=120)  # a bound on a hang, not a wait for an event: it returns at once when fixed
    assert not worker.is_alive(), "apply_plan waited forever for an organization whose thread had died"
    assert len(outcome) == 1 and isinstance(outcome[0], RuntimeError)
