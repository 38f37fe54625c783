"""Every actor against one database, as a hypothesis state machine (issue 12): configuration edits (change,
rename, add, remove, empty a section, split and merge files), the web UI (an unmanaged row, an edit of a
managed row), students booking, the school answering, a replaced document, failed applies, and saved
plans made, reused and tampered with. After every step the promises hold: no booked rotation is lost,
slots never fall below bookings, unmanaged rows are untouched, a closed agreement is unchanged, an
incremental plan equals a full plan, and apply then plan is empty.

CI runs a bounded budget per backend; `-m slow` selects a longer run (skipped unless asked for by marker).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from plan_apply.cli import main

from .conftest import _truncate_postgres
from .support.actors import book, execute, rows, school_answers, write_lock_held

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
UI_SERVICE = (
    "INSERT INTO services (org_id, key, name, disciplines, protected, managed) "
    "SELECT id, 'radiology', 'Radiology', '[\"nursing\"]', false, false FROM organizations WHERE slug = 'lakeview'"
)
UNMANAGED = "SELECT key, name, disciplines, archived_at FROM services WHERE managed = false ORDER BY key"


def _nexus(*args: str) -> tuple[int, str]:
    """`nexus` in-process (the real exit code), its standard output and error together."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        else:  # pragma: no cover - main always exits
            code = 0
    text = out.getvalue() + err.getvalue()
    assert "Traceback" not in text, text
    return code, out.getvalue()


class Platform(RuleBasedStateMachine):
    """One organization's configuration and database, played by every actor in turn."""

    new_database: Callable[[], str]
    folder: Path

    def __init__(self) -> None:
        super().__init__()
        self.url = type(self).new_database()
        self.tree = type(self).folder / "config"
        shutil.rmtree(self.tree, ignore_errors=True)
        self.slots = 4
        self.window = "spring"
        self.previous: list[str] = []
        self.end = "2027-12-31"
        self.icu = False
        self.split = False
        self.staff_empty = False
        self.document = PDF
        self.booked = 0
        self.ui = False
        self.closed: list[tuple[Any, ...]] | None = None
        self.saved: Path | None = None
        self._write()
        code, _ = self.run("apply", "--auto-approve")
        assert code == 0

    # --- the configuration ----------------------------------------------------------------------------

    def _write(self) -> None:
        if self.tree.exists():
            shutil.rmtree(self.tree)
        self.tree.mkdir(parents=True)
        window = self.window + (f", previous_keys: [{', '.join(self.previous)}]" if self.previous else "")
        icu = "  - {key: icu, name: Intensive care, disciplines: [nursing]}\n" if self.icu else ""
        staff = (
            "staff: []"
            if self.staff_empty
            else "staff: [{email: ann@example.org, name: Ann Lee, role: admin}]"
        )
        main_text = textwrap.dedent(
            f"""\
            apiVersion: nexus/v1
            kind: Organization
            metadata: {{slug: lakeview}}
            profile: {{name: Lakeview Hospital, type: hospital}}
            schools: [{{key: state-u, name: State University, contact_email: placements@state.example.edu}}]
            agreements:
              - {{key: state, school: state-u, name: State nursing, start_date: 2027-01-01, end_date: {self.end},
                 services: [er], disciplines: [nursing], submit: true, document: signed.pdf}}
            services:
              - key: er
                name: Emergency
                disciplines: [nursing]
                capacity:
                  - {{key: {window}, name: Spring, workflow: coordinator_scheduled, agreement: state,
                     disciplines: [nursing], start_date: 2027-02-01, end_date: 2027-05-01, slots: {self.slots}}}
            """
        )
        main_text += icu
        header = "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: lakeview}\n"
        if self.split:
            (self.tree / "staff.yaml").write_text(header + staff + "\n", encoding="utf-8")
        else:
            main_text += staff + "\n"
        (self.tree / "lakeview.yaml").write_text(main_text, encoding="utf-8")
        (self.tree / "signed.pdf").write_bytes(self.document)

    def run(self, *args: str) -> tuple[int, str]:
        paths = [] if "--plan" in args else [str(self.tree)]
        return _nexus(args[0], *paths, *args[1:], "--database-url", self.url)

    @rule(slots=st.integers(1, 6))
    def change_slots(self, slots: int) -> None:
        self.slots = slots
        self._write()

    @rule(key=st.sampled_from(["spring", "spring-b", "block-2"]))
    def rename_window(self, key: str) -> None:
        if key != self.window:
            self.previous = sorted({*self.previous, self.window} - {key})
            self.window = key
            self._write()

    @rule(end=st.sampled_from(["2027-12-31", "2028-06-30"]))
    def change_agreement_terms(self, end: str) -> None:
        self.end = end
        self._write()

    @rule()
    def add_or_remove_a_service(self) -> None:
        self.icu = not self.icu
        self._write()

    @rule()
    def split_or_merge_files(self) -> None:
        self.split = not self.split
        self._write()

    @rule()
    def empty_or_fill_the_staff_section(self) -> None:
        self.staff_empty = not self.staff_empty
        self._write()

    @rule()
    def replace_the_signed_document(self) -> None:
        self.document = self.document + b"%\n"
        self._write()

    # --- nexus -------------------------------------------------------------------------------------------

    @rule()
    def apply(self) -> None:
        code, _ = self.run("apply", "--auto-approve")
        if code == 0:
            self._plan_after_apply_is_empty()

    @rule()
    def apply_fails_on_a_held_lock(self) -> None:
        with write_lock_held(self.url, "lakeview"):
            self.run("apply", "--auto-approve", "--lock-timeout", "0.05")

    @rule()
    def save_a_plan(self) -> None:
        self.saved = type(self).folder / "saved.json"
        self.run("plan", "--out", str(self.saved))

    @precondition(lambda self: self.saved is not None and self.saved.exists())
    @rule(tamper=st.booleans())
    def apply_the_saved_plan(self, tamper: bool) -> None:
        assert self.saved is not None
        if tamper:
            plan = json.loads(self.saved.read_text())
            plan.pop("integrity", None)
            for organization in plan["organizations"]:
                for change in organization["changes"]:
                    if "slots" in change["after"]:
                        change["after"]["slots"] = 0
            self.saved.write_text(json.dumps(plan))
        self.run("apply", "--plan", str(self.saved))

    # --- the platform --------------------------------------------------------------------------------

    @rule()
    def a_student_books(self) -> None:
        free = rows(
            self.url,
            "SELECT c.key FROM capacity_windows c WHERE c.archived_at IS NULL AND c.slots > "
            "(SELECT count(*) FROM rotations r WHERE r.capacity_window_id = c.id) ORDER BY c.key",
        )
        if free:
            book(self.url, free[0][0], [f"student {self.booked}"])
            self.booked += 1

    @precondition(lambda self: not self.ui)
    @rule()
    def the_web_ui_adds_a_service(self) -> None:
        execute(self.url, UI_SERVICE)
        self.ui = True
        self.unmanaged = rows(self.url, UNMANAGED)

    @rule()
    def the_web_ui_edits_a_managed_window(self) -> None:
        execute(self.url, "UPDATE capacity_windows SET name = 'Renamed in the UI' WHERE managed = true")

    @precondition(lambda self: self.closed is None)
    @rule(answer=st.sampled_from(["active", "closed", "changes_proposed"]))
    def the_school_answers(self, answer: str) -> None:
        (status,) = rows(self.url, "SELECT status FROM agreements WHERE key = 'state'")[0]
        if status not in ("pending_school",):
            return
        school_answers(
            self.url, "state", answer, '{"end_date": "2027-08-31"}' if answer == "changes_proposed" else None
        )
        if answer == "closed":
            self.closed = self._agreement()

    # --- the promises --------------------------------------------------------------------------------

    def _agreement(self) -> list[tuple[Any, ...]]:
        return rows(self.url, "SELECT key, name, start_date, end_date, status, disciplines FROM agreements")

    def _changes(self, *extra: str) -> list[tuple[str, str, str]]:
        code, out = self.run("plan", "--format", "json", *extra)
        if code == 1 and not out.strip().startswith("{"):
            return [("<refused>", "", "")]
        plan = json.loads(out)
        changes = [
            (c["address"], c["action"], json.dumps(c["after"], sort_keys=True))
            for o in plan["organizations"]
            for c in o["changes"]
        ]
        problems = [
            ("<problem>", p["message"], "") for o in plan["organizations"] for p in o.get("problems", [])
        ]
        return sorted(changes + problems)

    def _plan_after_apply_is_empty(self) -> None:
        left = [
            c
            for c in self._changes("--full")
            if not (c[0].endswith("/agreements/state") and self._status() in ("changes_proposed", "closed"))
        ]
        assert left == [], f"apply then plan is not empty: {left}"

    def _status(self) -> str:
        return str(rows(self.url, "SELECT status FROM agreements WHERE key = 'state'")[0][0])

    @invariant()
    def no_booked_rotation_is_lost(self) -> None:
        assert rows(
            self.url,
            "SELECT count(*) FROM rotations r JOIN capacity_windows c ON c.id = r.capacity_window_id",
        ) == [(self.booked,)]

    @invariant()
    def slots_never_fall_below_bookings(self) -> None:
        short = rows(
            self.url,
            "SELECT c.key, c.slots, count(r.id) FROM capacity_windows c JOIN rotations r "
            "ON r.capacity_window_id = c.id GROUP BY c.key, c.slots HAVING count(r.id) > c.slots",
        )
        assert short == [], f"slots below bookings: {short}"

    @invariant()
    def unmanaged_rows_are_untouched(self) -> None:
        if self.ui:
            assert rows(self.url, UNMANAGED) == self.unmanaged

    @invariant()
    def a_closed_agreement_is_unchanged(self) -> None:
        if self.closed is not None:
            assert self._agreement() == self.closed

    @invariant()
    def an_incremental_plan_equals_a_full_plan(self) -> None:
        assert self._changes() == self._changes("--full")


CI = settings(
    max_examples=4,
    stateful_step_count=8,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: its budget is the failure's report
    suppress_health_check=list(HealthCheck),
)
LONG = settings(CI, max_examples=60, stateful_step_count=25)


def _machine(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> type[Platform]:
    """The machine bound to a fresh database per example, of the backend `database_url` is on."""
    template = (
        Path(database_url.removeprefix("sqlite:///")).read_bytes()
        if database_url.startswith("sqlite")
        else b""
    )
    counter = iter(range(10**6))

    def new_database() -> str:
        if not database_url.startswith("sqlite"):
            _truncate_postgres(database_url)
            return database_url
        path = tmp_path / f"example-{next(counter)}.db"
        path.write_bytes(template)
        return f"sqlite:///{path}"

    return type("PlatformOn", (Platform,), {"new_database": staticmethod(new_database), "folder": tmp_path})


def test_every_actor_keeps_every_promise(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> None:
    run_state_machine_as_test(_machine(request, database_url, tmp_path), settings=CI)


@pytest.mark.slow
def test_every_actor_keeps_every_promise_longer(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> None:
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the long state-machine run is selected with -m slow")
    run_state_machine_as_test(_machine(request, database_url, tmp_path), settings=LONG)
