"""Crash safety: the apply process killed (SIGKILL) before any one of its SQL statements or commits, in a
multi-organization apply, leaves every organization wholly before or wholly after, and a re-apply
converges (apply exits 0, then plan finds nothing to do)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from plan_apply.actual import read_actual_state
from plan_apply.database.engine import engine_for

SUPPORT = Path(__file__).parent / "support" / "killpoint"
SLUGS = ["east", "west"]

BEFORE = {
    slug: f"""
apiVersion: nexus/v1
kind: Organization
metadata: {{slug: {slug}}}
profile: {{name: {slug.title()} Clinic, type: clinic}}
staff: [{{email: lead@{slug}.example.org, name: Lead, role: admin}}, {{email: old@{slug}.example.org, role: viewer}}]
steps: [{{key: hipaa, stage: onboarding, name: HIPAA, type: upload}}, {{key: gone, stage: offboarding, name: Gone, type: checkbox}}]
schools: [{{key: state-u, name: State University, contact_email: placements@state.example.edu}}]
agreements:
  - {{key: state, school: state-u, name: State, start_date: 2027-01-01, services: [er, fm], disciplines: [nursing]}}
services:
  - key: er
    name: Emergency
    disciplines: [nursing, medicine]
    steps: [hipaa, gone]
    capacity:
      - {{key: spring, name: Spring, workflow: coordinator_scheduled, agreement: state, disciplines: [nursing],
          start_date: 2027-02-01, end_date: 2027-05-01, slots: 3}}
      - {{key: booked, name: Booked, workflow: student_requested, disciplines: [medicine],
          start_date: 2027-02-01, end_date: 2027-05-01, slots: 3}}
  - {{key: fm, name: Family Medicine, disciplines: [nursing]}}
"""
    for slug in SLUGS
}
AFTER = {
    slug: f"""
apiVersion: nexus/v1
kind: Organization
metadata: {{slug: {slug}, labels: {{wave: two}}}}
profile: {{name: {slug.title()} Community Clinic, type: clinic}}
staff: [{{email: lead@{slug}.example.org, name: Lead, role: coordinator}}, {{email: new@{slug}.example.org, role: admin}},
        {{email: ui@{slug}.example.org, role: viewer}}]
steps: [{{key: hipaa, stage: onboarding, name: HIPAA training, type: upload}}]
schools: [{{key: state-u, name: State University, contact_email: placements@state.example.edu}}]
agreements:
  - {{key: state, school: state-u, name: State, start_date: 2027-01-01, services: [emergency, fm], disciplines: [nursing],
     submit: true}}
services:
  - key: emergency
    previous_keys: [er]
    name: Emergency Medicine
    disciplines: [nursing, medicine]
    steps: [hipaa]
    capacity:
      - {{key: spring, name: Spring, workflow: coordinator_scheduled, agreement: state, disciplines: [nursing],
          start_date: 2027-02-01, end_date: 2027-05-01, slots: 5}}
      - {{key: summer, name: Summer, workflow: student_requested, disciplines: [medicine],
          start_date: 2027-06-01, end_date: 2027-08-01, slots: 2}}
  - {{key: fm, name: Family Medicine, disciplines: [nursing]}}
"""
    for slug in SLUGS
}


def _nexus(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from plan_apply.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def _states(url: str) -> dict[str, tuple[str, int]]:
    """Per organization: its content fingerprint and how many applies its log holds."""
    engine = engine_for(url)
    with engine.connect() as connection:
        actual = read_actual_state(connection, SLUGS)
        logged = dict(
            connection.execute(sa.text("SELECT org_slug, count(*) FROM apply_log GROUP BY org_slug")).all()
        )
    engine.dispose()
    return {slug: (actual.organizations[slug].fingerprint, logged.get(slug, 0)) for slug in SLUGS}


@pytest.mark.slow
def test_kill_at_every_statement_leaves_each_organization_before_or_after(
    tmp_path: Path, write_tree: Callable[..., Path]
) -> None:
    before_tree = write_tree({f"{s}.yaml": text for s, text in BEFORE.items()}, root="before")
    after_tree = write_tree({f"{s}.yaml": text for s, text in AFTER.items()}, root="after")
    base_db = tmp_path / "base.db"
    env = {**os.environ, "PYTHONPATH": f"{SUPPORT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    url = f"sqlite:///{base_db}"
    assert _nexus(["db", "upgrade", "--database-url", url], env).returncode == 0
    assert _nexus(["apply", str(before_tree), "--auto-approve", "--database-url", url], env).returncode == 0
    engine = engine_for(url)
    with engine.begin() as connection:  # live data and a hand-made row, so archive and adopt happen too
        connection.execute(
            sa.text(
                "INSERT INTO rotations (capacity_window_id, student, start_date, end_date) "
                "SELECT id, 'A Student', '2027-02-01', '2027-02-28' FROM capacity_windows WHERE key = 'booked'"
            )
        )
        for slug in SLUGS:
            connection.execute(
                sa.text("INSERT INTO people (email) VALUES (:e)"), {"e": f"ui@{slug}.example.org"}
            )
            connection.execute(
                sa.text(
                    "INSERT INTO staff (org_id, person_id, role, managed) SELECT o.id, p.id, 'viewer', false "
                    "FROM organizations o, people p WHERE o.slug = :s AND p.email = :e"
                ),
                {"s": slug, "e": f"ui@{slug}.example.org"},
            )
    engine.dispose()
    initial = _states(url)

    finished_db = tmp_path / "finished.db"
    shutil.copyfile(base_db, finished_db)
    count_file = tmp_path / "count"
    finished_url = f"sqlite:///{finished_db}"
    args = ["apply", str(after_tree), "--auto-approve", "--allow-mass-delete", "--full", "--database-url"]
    done = _nexus([*args, finished_url], {**env, "NEXUS_COUNT_TO": str(count_file)})
    assert done.returncode == 0, done.stderr
    final = _states(finished_url)
    statements = int(count_file.read_text())
    actions = done.stdout
    assert all(word in actions for word in ("~>", "x ", "<=", "+ ", "- ", "~ ")), actions

    def trial(k: int) -> list[tuple[int, str]]:
        db = tmp_path / f"kill-{k}.db"
        shutil.copyfile(base_db, db)
        kill_url = f"sqlite:///{db}"
        killed = _nexus([*args, kill_url], {**env, "NEXUS_KILL_AT": str(k)})
        assert killed.returncode == -signal.SIGKILL, (k, killed.returncode, killed.stderr[-500:])
        torn = [
            (k, slug)
            for slug, state in _states(kill_url).items()
            if state not in (initial[slug], final[slug])
        ]
        again = _nexus([*args, kill_url], env)
        assert again.returncode == 0, (k, again.stderr[-500:])
        converged = _states(kill_url)
        # Converged: the same content as an uninterrupted apply (the log holds one apply per organization
        # that the killed run committed, plus the re-apply's).
        assert {slug: fingerprint for slug, (fingerprint, _) in converged.items()} == {
            slug: fingerprint for slug, (fingerprint, _) in final.items()
        }, k
        db.unlink()
        return torn

    with ThreadPoolExecutor(max_workers=2) as pool:
        partial = [torn for result in pool.map(trial, range(1, statements + 1)) for torn in result]
    assert statements > 50
    assert partial == []
    print(f"kill points tried: {statements}, partial states: {len(partial)}")
