"""Every promise holds on every path (issue 12): renames and adoptions pass the same guards as updates,
nothing nexus does not own changes as a side effect, an incremental plan equals a full plan, a saved plan
is applied as reviewed and once, the mass-delete guard counts the whole plan, and output is never a
channel. One named regression per case a hostile but realistic user found; each runs on SQLite and
PostgreSQL through the command line, with the platform's own writes made in plain SQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from plan_apply.database.engine import engine_for

from .support.actors import Nexus, book, execute, rows, scalar, school_answers, write_lock_held
from .support.harness import fault_env, run_nexus

ORG = """
apiVersion: nexus/v1
kind: Organization
metadata: {slug: lakeview}
profile: {name: Lakeview Hospital, type: hospital}
schools: [{key: state-u, name: State University, contact_email: placements@state.example.edu}]
steps: [{key: hipaa, stage: onboarding, name: HIPAA, type: upload}]
staff: [{email: ann@example.org, name: Ann Lee, role: admin}]
agreements:
  - {key: AGREEMENT, school: state-u, name: State nursing, start_date: 2027-01-01, end_date: END,
     services: [er], disciplines: [nursing], submit: true}
services:
  - key: er
    name: Emergency
    disciplines: [nursing]
    steps: [hipaa]
    capacity:
      - {key: WINDOW, name: Spring, workflow: coordinator_scheduled, agreement: AGREEMENT_REF,
         disciplines: [nursing], start_date: 2027-02-01, end_date: 2027-05-01, slots: SLOTS}
"""
OTHER = """
apiVersion: nexus/v1
kind: Organization
metadata: {slug: hillcrest}
profile: {name: Hillcrest Clinic, type: clinic}
staff: [{email: ann@example.org, name: NAME, role: viewer}]
services: [{key: fm, name: Family Medicine, disciplines: [medicine]}]
"""
# An agreement and a service made by hand in the platform's web UI, the school having accepted it.
UI_AGREEMENT = """
INSERT INTO agreements (org_id, key, school_key, name, start_date, end_date, disciplines, status, protected,
                        managed)
SELECT id, 'ui-deal', 'state-u', 'Made in the UI', '2027-01-01', '2027-12-31', '["nursing"]', 'active', false,
       false FROM organizations WHERE slug = 'lakeview'
"""
UI_SERVICE = """
INSERT INTO services (org_id, key, name, disciplines, protected, managed)
SELECT id, 'radiology', 'Radiology', '["nursing"]', false, false FROM organizations WHERE slug = 'lakeview'
"""


def org(
    window: str = "spring",
    slots: int = 4,
    agreement: str = "state",
    end: str = "2027-12-31",
    agreement_ref: str | None = None,
) -> str:
    """The organization's file with its one window and one agreement as given."""
    text = textwrap.dedent(ORG).lstrip()
    for name, value in (
        ("AGREEMENT_REF", agreement_ref or agreement.split(",")[0]),
        ("AGREEMENT", agreement),
        ("WINDOW", window),
        ("SLOTS", str(slots)),
        ("END", end),
    ):
        text = text.replace(name, value)
    return text


@pytest.fixture
def nexus(capsys: pytest.CaptureFixture[str], database_url: str) -> Nexus:
    return Nexus(capsys, database_url)


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write the configuration tree (the same folder each time: an edit, as a commit would make it)."""
    root = tmp_path / "config"

    def make(files: dict[str, str | bytes]) -> Path:
        if root.exists():
            for old in sorted(root.rglob("*"), reverse=True):
                old.unlink() if not old.is_dir() else old.rmdir()
        for name, content in files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(textwrap.dedent(content).lstrip(), encoding="utf-8")
        return root

    return make


def _plan_json(nexus: Nexus, tree: Path, *extra: str) -> dict[str, Any]:
    assert nexus("plan", str(tree), "--format", "json", "--full", *extra) in (0, 1), nexus.output
    plan: dict[str, Any] = json.loads(nexus.out)
    return plan


def _changes(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["address"]: c for o in plan["organizations"] for c in o["changes"]}


def _problems(plan: dict[str, Any]) -> list[str]:
    return [p["message"] for o in plan["organizations"] for p in o.get("problems", [])]


def _agreement(url: str, key: str) -> tuple[Any, ...]:
    (row,) = rows(url, "SELECT status, end_date, name FROM agreements WHERE key = :k", {"k": key})
    return row


# --- every change passes every guard ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "window",
    [
        "spring",
        "spring-b, previous_keys: [spring]",
    ],
    ids=["update", "rename"],
)
def test_slots_never_go_below_the_booked_rotations_also_on_a_rename(
    nexus: Nexus, write: Callable[..., Path], window: str
) -> None:
    assert nexus("apply", str(write({"lakeview.yaml": org()})), "--auto-approve") == 0
    book(nexus.url, "spring", ["s1", "s2", "s3", "s4"])
    tree = write({"lakeview.yaml": org(window=window, slots=2)})
    assert nexus("apply", str(tree), "--auto-approve") == 1
    assert "has 4 rotation(s) booked; slots cannot go down to 2" in nexus.output
    assert scalar(nexus.url, "SELECT slots FROM capacity_windows") == 4


@pytest.mark.parametrize(
    "agreement",
    [
        "state",
        "state-2, previous_keys: [state]",
    ],
    ids=["update", "rename"],
)
def test_changing_the_terms_of_an_active_agreement_says_it_resubmits_also_on_a_rename(
    nexus: Nexus, write: Callable[..., Path], agreement: str
) -> None:
    assert nexus("apply", str(write({"lakeview.yaml": org()})), "--auto-approve") == 0
    school_answers(nexus.url, "state", "active")
    key = agreement.split(",")[0]
    plan = _plan_json(nexus, write({"lakeview.yaml": org(agreement=agreement, end="2028-06-30")}))
    change = _changes(plan)[f"lakeview/agreements/{key}"]
    assert change["risk"] == "review"
    assert any("re-submits the agreement" in note for note in change["notes"])


def test_a_closed_agreement_keeps_its_terms_when_renamed(nexus: Nexus, write: Callable[..., Path]) -> None:
    assert nexus("apply", str(write({"lakeview.yaml": org()})), "--auto-approve") == 0
    school_answers(nexus.url, "state", "closed")
    before = _agreement(nexus.url, "state")
    tree = write({"lakeview.yaml": org(agreement="state-2, previous_keys: [state]", end="2028-06-30")})
    nexus("apply", str(tree), "--auto-approve")
    keys = [k for (k,) in rows(nexus.url, "SELECT key FROM agreements")]
    assert len(keys) == 1
    assert _agreement(nexus.url, keys[0])[:2] == before[:2]


def test_a_renamed_agreement_with_a_school_proposal_shows_it_and_leaves_it_alone(
    nexus: Nexus, write: Callable[..., Path]
) -> None:
    assert nexus("apply", str(write({"lakeview.yaml": org()})), "--auto-approve") == 0
    school_answers(nexus.url, "state", "changes_proposed", '{"end_date": "2027-08-31"}')
    tree = write({"lakeview.yaml": org(agreement="state-2, previous_keys: [state]", end="2028-06-30")})
    assert nexus("plan", str(tree)) == 0
    assert "the school proposed changes" in nexus.out
    assert nexus("apply", str(tree), "--auto-approve") == 0, nexus.output
    ((status, proposed),) = rows(nexus.url, "SELECT status, proposed FROM agreements")
    proposed = json.loads(proposed) if isinstance(proposed, str) else proposed  # SQLite: JSON as text
    assert (status, proposed) == ("changes_proposed", {"end_date": "2027-08-31"})


def test_adopting_an_active_agreement_with_other_terms_says_it_resubmits(
    nexus: Nexus, write: Callable[..., Path]
) -> None:
    assert nexus("apply", str(write({"lakeview.yaml": org()})), "--auto-approve") == 0
    execute(nexus.url, UI_AGREEMENT)
    text = org() + textwrap.dedent(
        """\
        ---
        apiVersion: nexus/v1
        kind: Organization
        metadata: {slug: lakeview}
        agreements:
          - {key: ui-deal, school: state-u, name: Made in the UI, start_date: 2027-01-01, end_date: 2028-12-31,
             services: [er], disciplines: [nursing], submit: true}
        """
    )
    plan = _plan_json(nexus, write({"lakeview.yaml": text}))
    change = _changes(plan)["lakeview/agreements/ui-deal"]
    assert change["action"] == "adopt"
    assert change["risk"] == "review"
    assert any("re-submits the agreement" in note for note in change["notes"])


def test_previous_keys_naming_an_unmanaged_row_is_an_adoption(
    nexus: Nexus, write: Callable[..., Path]
) -> None:
    assert nexus("apply", str(write({"lakeview.yaml": org()})), "--auto-approve") == 0
    execute(nexus.url, UI_SERVICE)
    text = org().replace(
        "services:\n",
        "services:\n  - {key: imaging, previous_keys: [radiology], name: Imaging, disciplines: [nursing]}\n",
    )
    plan = _plan_json(nexus, write({"lakeview.yaml": text}))
    change = _changes(plan)["lakeview/services/imaging"]
    assert change["action"] == "adopt" or any("adopt" in note for note in change["notes"]), change


# --- nothing the configuration does not own changes as a side effect ----------------------------------------


def test_removing_a_service_never_changes_an_unmanaged_accepted_agreement(
    nexus: Nexus, write: Callable[..., Path]
) -> None:
    two = org().replace(
        "services:\n", "services:\n  - {key: icu, name: Intensive care, disciplines: [nursing]}\n"
    )
    assert nexus("apply", str(write({"lakeview.yaml": two})), "--auto-approve") == 0
    execute(nexus.url, UI_AGREEMENT)
    execute(
        nexus.url,
        "INSERT INTO agreement_services (agreement_id, service_id) SELECT a.id, s.id FROM agreements a, services s "
        "WHERE a.key = 'ui-deal'",
    )
    linked = "SELECT s.key FROM agreement_services x JOIN services s ON s.id = x.service_id JOIN agreements a ON a.id = x.agreement_id WHERE a.key = 'ui-deal' ORDER BY s.key"
    assert rows(nexus.url, linked) == [("er",), ("icu",)]
    nexus("apply", str(write({"lakeview.yaml": org()})), "--auto-approve")
    assert rows(nexus.url, linked) == [("er",), ("icu",)]
    assert _agreement(nexus.url, "ui-deal")[0] == "active"


def test_removing_a_step_never_unlinks_it_from_an_unmanaged_service(
    nexus: Nexus, write: Callable[..., Path]
) -> None:
    assert nexus("apply", str(write({"lakeview.yaml": org()})), "--auto-approve") == 0
    execute(nexus.url, UI_SERVICE)
    execute(
        nexus.url,
        "INSERT INTO service_steps (service_id, step_id) SELECT s.id, t.id FROM services s, steps t "
        "WHERE s.key = 'radiology' AND t.key = 'hipaa'",
    )
    text = org().replace("steps: [{key: hipaa, stage: onboarding, name: HIPAA, type: upload}]", "steps: []")
    nexus("apply", str(write({"lakeview.yaml": text.replace("    steps: [hipaa]\n", "")})), "--auto-approve")
    assert rows(
        nexus.url,
        "SELECT count(*) FROM service_steps ss JOIN services s ON s.id = ss.service_id "
        "WHERE s.key = 'radiology'",
    ) == [(1,)]


@pytest.mark.parametrize(
    "delete", ["DELETE FROM steps WHERE key = 'hipaa'", "DELETE FROM services WHERE key = 'er'"]
)
def test_the_database_never_cascades_a_delete_into_a_link_it_may_not_own(
    nexus: Nexus, write: Callable[..., Path], delete: str
) -> None:
    """The last line behind the plan: a step a service links, or a service an agreement covers, is not
    deleted from under the link (whoever owns the linking row)."""
    assert nexus("apply", str(write({"lakeview.yaml": org()})), "--auto-approve") == 0
    execute(nexus.url, "DELETE FROM capacity_windows")
    engine = engine_for(nexus.url)  # with foreign keys enforced, as on the platform
    try:
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(sa.text(delete))
    finally:
        engine.dispose()


def test_emptying_every_section_at_once_is_applied_and_then_plans_nothing(
    nexus: Nexus, write: Callable[..., Path]
) -> None:
    """The submitted agreement is archived, so the service it covers is archived, so that service lets go
    of its step, which is deleted: nexus's own rows, decided in one plan."""
    assert nexus("apply", str(write({"lakeview.yaml": org()})), "--auto-approve") == 0
    empty = ORG.split("schools:")[0] + "schools: []\nsteps: []\nstaff: []\nagreements: []\nservices: []\n"
    tree = write({"lakeview.yaml": empty})
    assert nexus("apply", str(tree), "--auto-approve", "--allow-mass-delete") == 0, nexus.output
    assert nexus("plan", str(tree), "--full", "--detailed-exitcode") == 0, nexus.out
    assert rows(nexus.url, "SELECT count(*) FROM steps") == [(0,)]


PARENT = """
apiVersion: nexus/v1
kind: Organization
metadata: {slug: valley-health}
profile: {name: Valley Health, type: health_system}
steps: STEPS
"""
CHILD = """
apiVersion: nexus/v1
kind: Organization
metadata: {slug: valley-east, parent: valley-health}
profile: {name: Valley East, type: hospital}
services: [{key: er, name: Emergency, disciplines: [medicine], steps: [hipaa]}]
"""


def test_removing_a_step_never_unlinks_it_from_another_organizations_service_outside_org(
    nexus: Nexus, write: Callable[..., Path]
) -> None:
    step = "[{key: hipaa, stage: onboarding, name: HIPAA, type: upload}]"
    tree = write({"health.yaml": PARENT.replace("STEPS", step), "east.yaml": CHILD})
    assert nexus("apply", str(tree), "--auto-approve") == 0
    write({"health.yaml": PARENT.replace("STEPS", "[]"), "east.yaml": CHILD})
    nexus("apply", str(tree / "health.yaml"), "--org", "valley-health", "--auto-approve")
    assert rows(nexus.url, "SELECT count(*) FROM service_steps") == [(1,)]


def test_removing_a_school_that_an_unmanaged_agreement_names_is_seen_by_the_plan(
    nexus: Nexus, write: Callable[..., Path]
) -> None:
    assert nexus("apply", str(write({"lakeview.yaml": org()})), "--auto-approve") == 0
    execute(nexus.url, UI_AGREEMENT)
    text = textwrap.dedent(
        """\
        apiVersion: nexus/v1
        kind: Organization
        metadata: {slug: lakeview}
        profile: {name: Lakeview Hospital, type: hospital}
        schools: []
        agreements: []
        """
    )
    code = nexus("apply", str(write({"lakeview.yaml": text})), "--auto-approve", "--allow-mass-delete")
    kept = rows(nexus.url, "SELECT count(*) FROM partnerships WHERE school_key = 'state-u'") == [(1,)]
    assert kept or (code == 1 and "ui-deal" in nexus.output), nexus.output


def test_removing_a_draft_agreement_a_window_still_uses_is_refused_by_the_plan_not_the_database(
    nexus: Nexus, write: Callable[..., Path]
) -> None:
    draft = org().replace("submit: true", "submit: false")
    assert nexus("apply", str(write({"lakeview.yaml": draft})), "--auto-approve") == 0
    text = draft.split("agreements:")[0] + "agreements: []\nservices:\n"
    text += "  - {key: er, name: Emergency, disciplines: [nursing], steps: [hipaa]}\n"
    tree = write({"lakeview.yaml": text})
    planned = nexus("plan", str(tree))
    applied = nexus("apply", str(tree), "--auto-approve")
    assert (planned, applied) in ((1, 1), (0, 0)), nexus.output


def test_two_organizations_naming_one_person_differently_converge(
    nexus: Nexus, write: Callable[..., Path]
) -> None:
    tree = write({"lakeview.yaml": org(), "hillcrest.yaml": OTHER.replace("NAME", "Ann Lee-Park")})
    assert nexus("apply", str(tree), "--auto-approve") == 0
    assert nexus("plan", str(tree), "--full", "--detailed-exitcode") == 0, nexus.out


# --- an incremental plan equals a full plan --------------------------------------------------------------


def test_drift_in_one_organization_of_a_multi_document_file_is_reported(
    nexus: Nexus, write: Callable[..., Path]
) -> None:
    both = org() + "---\n" + textwrap.dedent(OTHER.replace("NAME", "Ann Lee")).lstrip()
    tree = write({"all.yaml": both})
    assert nexus("apply", str(tree), "--auto-approve") == 0
    execute(nexus.url, "UPDATE profiles SET name = 'Hillcrest (edited)' WHERE name = 'Hillcrest Clinic'")
    assert nexus("plan", str(tree), "--fail-on-drift") == 1
    assert "hillcrest/profile" in nexus.out
    assert nexus("plan", str(tree), "--org", "hillcrest", "--detailed-exitcode") == 2, nexus.output


def test_a_replaced_signed_document_is_planned(nexus: Nexus, write: Callable[..., Path]) -> None:
    text = org().replace("submit: true}", "submit: true, document: signed.pdf}")
    pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    assert nexus("apply", str(write({"lakeview.yaml": text, "signed.pdf": pdf})), "--auto-approve") == 0
    tree = write({"lakeview.yaml": text, "signed.pdf": pdf.replace(b"1.7", b"2.0")})
    assert nexus("plan", str(tree), "--detailed-exitcode") == 2, nexus.out
    assert "lakeview/agreements/state" in nexus.out


def test_the_deprecation_warning_stays_when_the_organization_is_skipped(
    nexus: Nexus, write: Callable[..., Path]
) -> None:
    old = "apiVersion: nexus/v1beta1\nkind: Organization\nmetadata: {slug: oldtown}\nprofile: {name: Old Town, type: clinic}\n"
    tree = write({"oldtown.yaml": old})
    assert nexus("apply", str(tree), "--auto-approve") == 0
    assert "nexus/v1beta1 is deprecated" in nexus.output
    assert nexus("plan", str(tree)) == 0
    assert "nexus/v1beta1 is deprecated" in nexus.output


def test_an_organization_whose_apply_failed_is_compared_again(
    nexus: Nexus, write: Callable[..., Path], tmp_path: Path
) -> None:
    assert nexus("apply", str(write({"lakeview.yaml": org()})), "--auto-approve") == 0
    tree = write({"lakeview.yaml": org(slots=6)})
    with write_lock_held(nexus.url, "lakeview"):
        assert nexus("apply", str(tree), "--auto-approve", "--lock-timeout", "0.2") == 1
    assert nexus("plan", str(tree), "--detailed-exitcode") == 2
    assert "lakeview/services/er/capacity/spring" in nexus.out


# --- a saved plan is applied as reviewed, once, or not at all -------------------------------------------


def _saved(nexus: Nexus, tree: Path, path: Path) -> dict[str, Any]:
    assert nexus("plan", str(tree), "--out", str(path)) == 0, nexus.output
    saved: dict[str, Any] = json.loads(path.read_text())
    return saved


def _tampered(saved: dict[str, Any], how: str) -> dict[str, Any]:
    """The saved plan edited by hand to delete the protected window and one made in the web UI."""
    plan = json.loads(json.dumps(saved))
    (organization,) = plan["organizations"]
    for key in ("spring", "summer-ui"):
        organization["changes"].append(
            {
                "address": f"lakeview/services/er/capacity/{key}",
                "type": "capacity",
                "action": "delete",
                "before": {},
                "after": {},
                "cause": "config",
                "risk": "destructive",
                "notes": [],
                "title": key,
            }
        )
    plan["summary"]["delete"] = 2
    if how == "deleted":
        plan.pop("integrity")
    elif how == "null":
        plan["integrity"] = None
    else:
        import hashlib

        body = {k: v for k, v in plan.items() if k != "integrity"}
        canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        plan["integrity"] = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    return dict(plan)


@pytest.mark.parametrize("how", ["deleted", "null", "recomputed"])
def test_a_hand_edited_saved_plan_never_deletes_a_protected_or_unmanaged_window(
    nexus: Nexus, write: Callable[..., Path], tmp_path: Path, how: str
) -> None:
    protected = org().replace("slots: 4}", "slots: 4, protect: true}")
    assert nexus("apply", str(write({"lakeview.yaml": protected})), "--auto-approve") == 0
    execute(
        nexus.url,
        "INSERT INTO capacity_windows (service_id, key, name, workflow, disciplines, start_date, end_date, slots, "
        "max_group_size, allow_specific_dates, visibility, protected, managed) SELECT id, 'summer-ui', 'Summer', "
        "'student_requested', '[\"nursing\"]', '2027-06-01', '2027-08-31', 2, 1, false, 'published', false, false "
        "FROM services WHERE key = 'er'",
    )
    path = tmp_path / "plan.json"
    saved = _saved(nexus, write({"lakeview.yaml": protected.replace("Lakeview Hospital", "Lakeview")}), path)
    path.write_text(json.dumps(_tampered(saved, how)))
    nexus("apply", "--plan", str(path))
    assert rows(nexus.url, "SELECT key FROM capacity_windows ORDER BY key") == [("spring",), ("summer-ui",)]


def test_a_saved_plan_applies_once_even_after_a_revert(
    nexus: Nexus, write: Callable[..., Path], tmp_path: Path
) -> None:
    a = write({"lakeview.yaml": org()})
    assert nexus("apply", str(a), "--auto-approve") == 0
    path = tmp_path / "b.json"
    _saved(nexus, write({"lakeview.yaml": org(slots=6)}), path)
    assert nexus("apply", "--plan", str(path)) == 0
    assert nexus("apply", str(write({"lakeview.yaml": org()})), "--auto-approve") == 0
    assert nexus("apply", "--plan", str(path)) == 1
    assert scalar(nexus.url, "SELECT slots FROM capacity_windows") == 4


def test_a_saved_plan_whose_document_became_a_fifo_is_refused_not_hung(
    database_url: str, write: Callable[..., Path], tmp_path: Path
) -> None:
    text = org().replace("submit: true}", "submit: true, document: signed.pdf}")
    tree = write({"lakeview.yaml": text, "signed.pdf": b"%PDF-1.7\n%%EOF\n"})
    path = tmp_path / "plan.json"
    env = fault_env()
    assert run_nexus(["db", "upgrade", "--database-url", database_url], env).returncode == 0
    planned = run_nexus(["plan", str(tree), "--out", str(path), "--database-url", database_url], env)
    assert planned.returncode == 0, planned.output
    (tree / "signed.pdf").unlink()
    os.mkfifo(tree / "signed.pdf")
    try:
        done = run_nexus(["apply", "--plan", str(path), "--database-url", database_url], env, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("apply hung reading a FIFO")
    assert done.returncode == 1 and "signed.pdf" in done.output


# --- the mass-delete guard counts the plan ----------------------------------------------------------------


def test_more_than_ten_removals_across_organizations_need_allow_mass_delete(
    nexus: Nexus, write: Callable[..., Path]
) -> None:
    def fleet(services: int) -> dict[str, str]:
        listed = ", ".join(f"{{key: s{i}, name: S{i}, disciplines: [nursing]}}" for i in range(services))
        return {
            f"org{n}.yaml": f"apiVersion: nexus/v1\nkind: Organization\nmetadata: {{slug: org{n}}}\n"
            f"profile: {{name: Org {n}, type: clinic}}\nservices: [{listed}]\n"
            for n in range(11)
        }

    assert nexus("apply", str(write(fleet(6))), "--auto-approve") == 0
    assert nexus("apply", str(write(fleet(5))), "--auto-approve") == 1
    assert "--allow-mass-delete" in nexus.output
    assert scalar(nexus.url, "SELECT count(*) FROM services") == 66


# --- output is never a channel ------------------------------------------------------------------------------

INJECTED = "x\n::error file=ci.yml::pwned\x1b[2J"


def _clean(output: str) -> None:
    assert "\x1b" not in output
    assert not [line for line in output.splitlines() if line.startswith("::")], output


@pytest.mark.parametrize(
    "fmt",
    ["text", "json"],
)
def test_a_file_name_never_writes_a_workflow_command_or_an_escape(
    nexus: Nexus, write: Callable[..., Path], fmt: str
) -> None:
    tree = write({f"{INJECTED}.yaml": "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: x1}\n"})
    assert nexus("validate", str(tree), "--format", fmt, database=False) == 1
    _clean(nexus.output)
    assert nexus("plan", str(tree), "--format", fmt) == 1
    _clean(nexus.output)


@pytest.mark.parametrize(
    "fmt",
    [
        "text",
        "json",
    ],
)
def test_the_actor_never_writes_a_workflow_command_or_an_escape_in_history(
    nexus: Nexus, write: Callable[..., Path], fmt: str
) -> None:
    tree = write({"lakeview.yaml": org()})
    assert nexus("apply", str(tree), "--auto-approve", env={"NEXUS_ACTOR": INJECTED}) == 0
    assert nexus("history", "--format", fmt) == 0
    _clean(nexus.output)


@pytest.mark.parametrize("edit", ["role", "name", "new staff row"])
def test_staff_changes_never_touch_the_persons_own_fields(
    nexus: Nexus, write: Callable[..., Path], edit: str
) -> None:
    """A person's phone, bio and photo are the person's (set in the platform): no staff write clears them."""
    assert nexus("apply", str(write({"lakeview.yaml": org()})), "--auto-approve") == 0
    execute(
        nexus.url,
        "UPDATE people SET phone = '+1 555 0100', bio = 'Charge nurse', photo_url = 'https://x.example/a.png'",
    )
    text = {
        "role": org().replace("role: admin", "role: coordinator"),
        "name": org().replace("name: Ann Lee,", "name: Ann B. Lee,"),
        "new staff row": org(),
    }[edit]
    files = {"lakeview.yaml": text}
    if edit == "new staff row":
        files["hillcrest.yaml"] = OTHER.replace("NAME", "Ann Lee")
    assert nexus("apply", str(write(files)), "--auto-approve") == 0, nexus.output
    assert rows(nexus.url, "SELECT phone, bio, photo_url FROM people") == [
        ("+1 555 0100", "Charge nurse", "https://x.example/a.png")
    ]


def test_more_than_ten_removals_in_one_organization_need_allow_mass_delete(
    nexus: Nexus, write: Callable[..., Path]
) -> None:
    """Eleven of 48 items is under a quarter: only the "more than 10" half of the guard refuses it."""

    def services(count: int) -> dict[str, str]:
        listed = ", ".join(f"{{key: s{i}, name: S{i}, disciplines: [nursing]}}" for i in range(count))
        return {
            "big.yaml": "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: big}\n"
            f"profile: {{name: Big, type: clinic}}\nservices: [{listed}]\n"
        }

    assert nexus("apply", str(write(services(48))), "--auto-approve") == 0
    assert nexus("apply", str(write(services(37))), "--auto-approve") == 1
    assert "--allow-mass-delete" in nexus.output
    assert scalar(nexus.url, "SELECT count(*) FROM services") == 48
