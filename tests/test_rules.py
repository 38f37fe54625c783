"""Every rule of FORMAT.md about one document, shown by the exact words of its error and the place it points at.

A case is the valid organization `BASE` with one edit. The edit marks where the problem must point with
«guillemets» (removed before the file is written): the test checks file, line and column there, the JSON
pointer, and a substring of the message. Read top to bottom, the tables are the validation spec.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from nexus_config import LoadResult, Problem, load_configuration
from plan_apply.cli import cli

WriteTree = Callable[..., Path]

BASE = """\
apiVersion: nexus/v1
kind: Organization
metadata:
  slug: lakeview
  labels: {region: north}
profile:
  name: Lakeview Hospital
  type: hospital
  website: https://lakeview.example.org
  email: info@lakeview.example.org
  timezone: America/Chicago
  address:
    city: Springfield
    postal_code: "02115"
    country: US
staff:
  - email: ann@lakeview.example.org
    role: admin
steps:
  - key: hipaa
    stage: onboarding
    name: HIPAA training
    type: form
    fields:
      - key: signed
        label: Signed
        type: select
        options: [yes-i-did]
    applies_to:
      schools: [state-u]
schools:
  - key: state-u
    name: State University
    contact_email: placements@state.example.edu
agreements:
  - key: state
    school: state-u
    name: State nursing
    start_date: 2027-01-01
    end_date: 2027-12-31
    services: [er]
    disciplines: [nursing]
services:
  - key: er
    name: Emergency
    disciplines: [nursing, medicine]
    steps: [hipaa]
    capacity:
      - key: spring
        name: Spring
        workflow: coordinator_scheduled
        agreement: state
        disciplines: [nursing]
        start_date: 2027-02-01
        end_date: 2027-05-01
        slots: 4
      - key: open
        name: Open
        workflow: student_requested
        disciplines: [medicine]
        start_date: 2027-02-01
        end_date: 2027-05-01
        slots: 2
"""


def edit(*changes: tuple[str, str], base: str = BASE) -> str:
    """BASE with each `(old, new)` applied; `old` must occur exactly once (the tables stay honest)."""
    text = base
    for old, new in changes:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return text


def marked(text: str) -> tuple[str, int, int]:
    """The text without its «» marks, and the 1-based line and column of the «."""
    assert text.count("«") == 1 and text.count("»") == 1, "mark exactly one place with «...»"
    before = text[: text.index("«")]
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return text.replace("«", "").replace("»", ""), line, column


def load(write_tree: WriteTree, files: dict[str, str]) -> tuple[Path, LoadResult]:
    tree = write_tree(files)
    return tree, load_configuration([tree])


def the_problem(result: LoadResult, fragment: str) -> Problem:
    found = [p for p in result.errors if fragment in p.message]
    assert found, "\n".join(p.as_text() for p in result.problems) or "no problems"
    return found[0]


@dataclass(frozen=True)
class Case:
    """One broken organization: its text (with the «» mark), a message substring and the pointer."""

    id: str
    text: str
    message: str
    pointer: str
    errors: int = 1
    """How many errors the input has in all (a missing field beside a misspelt one, say)."""


def check(write_tree: WriteTree, case: Case) -> None:
    text, line, column = marked(case.text)
    tree, result = load(write_tree, {"lakeview.yaml": text})
    problem = the_problem(result, case.message)
    assert (problem.file, problem.line, problem.column) == (str(tree / "lakeview.yaml"), line, column), (
        problem.as_text()
    )
    assert problem.pointer == case.pointer
    assert problem.as_text().startswith(f"{tree / 'lakeview.yaml'}:{line}:{column}: error: ")
    assert len(result.errors) == case.errors, [p.as_text() for p in result.errors]


def cases(*items: Case) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("case", items, ids=[c.id for c in items])


def test_the_base_organization_is_valid(write_tree: WriteTree) -> None:
    _, result = load(write_tree, {"lakeview.yaml": BASE})
    assert result.ok and not result.problems, [p.as_text() for p in result.problems]
    assert list(result.state.organizations) == ["lakeview"]


# --- references and pairings inside one organization ---------------------------------------------------

REFERENCES = cases(
    Case(
        "coordinator-scheduled-window-needs-an-agreement",
        edit(
            ("        agreement: state\n", ""),
            ("workflow: coordinator_scheduled", "workflow: «coordinator_scheduled»"),
        ),
        'capacity window "spring" is coordinator_scheduled: it needs the `agreement` it is scheduled under',
        "/services/0/capacity/0/workflow",
    ),
    Case(
        "student-requested-window-takes-no-agreement",
        edit(("workflow: student_requested\n", "workflow: student_requested\n        «agreement»: state\n")),
        'capacity window "open" is student_requested: it is open to every school and takes no `agreement`',
        "/services/0/capacity/1/agreement",
    ),
    Case(
        "window-agreement-must-be-declared",
        edit(("agreement: state\n", "agreement: «stat»\n")),
        'agreement "stat" is not declared in organization "lakeview" (did you mean "state"?)',
        "/services/0/capacity/0/agreement",
    ),
    Case(
        "window-agreement-must-cover-its-service",
        edit(
            ("    services: [er]\n", "    services: [icu]\n"),
            (
                "services:\n  - key: er\n",
                "services:\n  - {key: icu, name: ICU, disciplines: [nursing]}\n  - key: er\n",
            ),
            ("agreement: state\n", "agreement: «state»\n"),
        ),
        'agreement "state" does not cover service "er"; add it to the agreement\'s services',
        "/services/1/capacity/0/agreement",
    ),
    Case(
        "window-disciplines-are-the-services",
        edit(
            (
                "disciplines: [nursing]\n        start_date",
                "disciplines: [nursing, «pharmacy»]\n        start_date",
            )
        ),
        'discipline "pharmacy" is not one of service "er"\'s disciplines (nursing, medicine)',
        "/services/0/capacity/0/disciplines/1",
        errors=2,
    ),
    Case(
        "window-disciplines-are-the-agreements",
        edit(("disciplines: [nursing]\n        start_date", "disciplines: [«medicine»]\n        start_date")),
        'discipline "medicine" is not covered by agreement "state" (nursing)',
        "/services/0/capacity/0/disciplines/0",
    ),
    Case(
        "step-applies-to-schools-must-be-declared",
        edit(("      schools: [state-u]\n", "      schools: [«state»]\n")),
        'unknown school "state" in applies_to (did you mean "state-u"?)',
        "/steps/0/applies_to/schools/0",
    ),
    Case(
        "agreement-school-must-be-declared",
        edit(("school: state-u\n", "school: «state»\n")),
        'school "state" is not among the schools of organization "lakeview" (did you mean "state-u"?)',
        "/agreements/0/school",
    ),
    Case(
        "agreement-school-needs-a-schools-section",
        edit(
            (
                "schools:\n  - key: state-u\n    name: State University\n    contact_email: placements@state.example.edu\n",
                "",
            ),
            ("      schools: [state-u]\n", "      disciplines: [nursing]\n"),
            ("school: state-u\n", "school: «state-u»\n"),
        ),
        'school "state-u" is not declared: add it under `schools`',
        "/agreements/0/school",
    ),
    Case(
        "agreement-services-must-be-declared",
        edit(("    services: [er]\n", "    services: [er, «err»]\n")),
        'service "err" is not declared in organization "lakeview" (did you mean "er"?)',
        "/agreements/0/services/1",
    ),
    Case(
        "service-steps-must-be-declared",
        edit(("    steps: [hipaa]\n", "    steps: [«hipa»]\n")),
        'step "hipa" is not declared in this organization (did you mean "hipaa"?)',
        "/services/0/steps/0",
    ),
)


@REFERENCES
def test_references_and_pairings(write_tree: WriteTree, case: Case) -> None:
    check(write_tree, case)


# --- dates ---------------------------------------------------------------------------------------------

DATES = cases(
    Case(
        "window-end-date-not-before-start-date",
        edit(
            (
                "        end_date: 2027-05-01\n        slots: 4",
                "        end_date: «2027-01-20»\n        slots: 4",
            )
        ),
        "end_date 2027-01-20 is before start_date 2027-02-01",
        "/services/0/capacity/0/end_date",
    ),
    Case(
        "agreement-end-date-not-before-start-date",
        edit(("    end_date: 2027-12-31\n", "    end_date: «2026-12-31»\n")),
        "end_date 2026-12-31 is before start_date 2027-01-01",
        "/agreements/0/end_date",
        errors=2,
    ),
    Case(
        "window-starts-inside-its-agreement",
        edit(
            (
                "        start_date: 2027-02-01\n        end_date: 2027-05-01\n        slots: 4",
                "        start_date: «2026-12-01»\n        end_date: 2027-05-01\n        slots: 4",
            )
        ),
        'start_date 2026-12-01 is before agreement "state" starts (2027-01-01)',
        "/services/0/capacity/0/start_date",
    ),
    Case(
        "window-ends-inside-its-agreement",
        edit(
            (
                "        end_date: 2027-05-01\n        slots: 4",
                "        end_date: «2028-01-01»\n        slots: 4",
            )
        ),
        'end_date 2028-01-01 is after agreement "state" ends (2027-12-31)',
        "/services/0/capacity/0/end_date",
    ),
    Case(
        "date-is-a-real-calendar-date",
        edit(("    start_date: 2027-01-01\n", "    start_date: «2027-02-30»\n")),
        "2027-02-30 is not a valid date",
        "/agreements/0/start_date",
    ),
    Case(
        "date-is-written-yyyy-mm-dd",
        edit(("    start_date: 2027-01-01\n", "    start_date: «2027-1-1»\n")),
        '"2027-1-1" is not a date written YYYY-MM-DD',
        "/agreements/0/start_date",
    ),
)


@DATES
def test_date_rules(write_tree: WriteTree, case: Case) -> None:
    check(write_tree, case)


def test_a_window_on_an_open_ended_agreement_may_end_any_time(write_tree: WriteTree) -> None:
    text = edit(
        ("    end_date: 2027-12-31\n", ""),
        ("        end_date: 2027-05-01\n        slots: 4", "        end_date: 2031-05-01\n        slots: 4"),
    )
    _, result = load(write_tree, {"lakeview.yaml": text})
    assert result.ok, [p.as_text() for p in result.errors]


def test_a_window_exactly_on_its_agreements_dates_is_valid(write_tree: WriteTree) -> None:
    text = edit(
        (
            "        start_date: 2027-02-01\n        end_date: 2027-05-01\n        slots: 4",
            "        start_date: 2027-01-01\n        end_date: 2027-12-31\n        slots: 4",
        ),
    )
    _, result = load(write_tree, {"lakeview.yaml": text})
    assert result.ok, [p.as_text() for p in result.errors]


# --- steps: forms and their fields ---------------------------------------------------------------------

FIELDS_BLOCK = "    fields:\n      - key: signed\n        label: Signed\n        type: select\n        options: [yes-i-did]\n"

FORMS = cases(
    Case(
        "form-step-needs-fields",
        edit((FIELDS_BLOCK, ""), ("    type: form\n", "    type: «form»\n")),
        'a step of type "form" needs `fields`',
        "/steps/0/type",
    ),
    Case(
        "form-step-needs-at-least-one-field",
        edit((FIELDS_BLOCK, "    fields: []\n"), ("    type: form\n", "    type: «form»\n")),
        'a step of type "form" needs `fields`',
        "/steps/0/type",
    ),
    Case(
        "fields-only-on-form-steps",
        edit(("    type: form\n", "    type: upload\n"), ("    fields:\n", "    «fields»:\n")),
        '`fields` are only for steps of type "form" (this one is "upload")',
        "/steps/0/fields",
    ),
    Case(
        "select-field-needs-options",
        edit(("        options: [yes-i-did]\n", ""), ("        type: select\n", "        type: «select»\n")),
        'a field of type "select" needs `options`',
        "/steps/0/fields/0/type",
    ),
    Case(
        "select-field-needs-at-least-one-option",
        edit(
            ("        options: [yes-i-did]\n", "        options: []\n"),
            ("        type: select\n", "        type: «select»\n"),
        ),
        'a field of type "select" needs `options`',
        "/steps/0/fields/0/type",
    ),
    Case(
        "options-only-on-select-fields",
        edit(
            ("        type: select\n", "        type: text\n"),
            ("        options: [yes-i-did]\n", "        «options»: [yes-i-did]\n"),
        ),
        '`options` are only for fields of type "select" (this one is "text")',
        "/steps/0/fields/0/options",
    ),
)


@FORMS
def test_form_rules(write_tree: WriteTree, case: Case) -> None:
    check(write_tree, case)


# --- previous_keys and null sections ---------------------------------------------------------------------

RENAMES_AND_NULLS = cases(
    Case(
        "previous-key-must-not-be-a-current-key",
        edit(("      - key: spring\n", "      - key: spring\n        previous_keys: [«open»]\n")),
        'previous key "open" is still the key of another item; a rename needs the old key gone',
        "/services/0/capacity/0/previous_keys/0",
    ),
    Case(
        "previous-key-must-not-be-the-items-own-key",
        edit(("  - key: er\n", "  - key: er\n    previous_keys: [«er»]\n")),
        'previous key "er" is this item\'s own key',
        "/services/0/previous_keys/0",
    ),
    Case(
        "previous-key-claimed-by-one-item-only",
        edit(
            ("      - key: spring\n", "      - key: spring\n        previous_keys: [winter]\n"),
            ("      - key: open\n", "      - key: open\n        previous_keys: [«winter»]\n"),
        ),
        'previous key "winter" is also claimed by "spring"',
        "/services/0/capacity/1/previous_keys/0",
    ),
    Case(
        "null-staff-section-is-refused",
        edit(("staff:\n  - email: ann@lakeview.example.org\n    role: admin\n", "staff: «~»\n")),
        "staff is null: write `staff: []` to manage none, or remove the key to leave the section unmanaged",
        "/staff",
    ),
    Case(
        "null-steps-section-is-refused",
        edit(
            (FIELDS_BLOCK, ""), ("    type: form\n", "    type: upload\n"), ("    steps: [hipaa]\n", "")
        ).replace(
            "steps:\n  - key: hipaa\n    stage: onboarding\n    name: HIPAA training\n    type: upload\n    applies_to:\n      schools: [state-u]\n",
            "steps: «null»\n",
        ),
        "steps is null: write `steps: []`",
        "/steps",
    ),
    Case(
        "null-capacity-of-a-service-is-refused",
        edit(
            ("        agreement: state\n", ""),
        ).split("    capacity:\n")[0]
        + "    capacity: «~»\n",
        "capacity is null: write `capacity: []`",
        "/services/0/capacity",
    ),
    Case(
        "null-profile-is-refused",
        edit(
            (
                "profile:\n  name: Lakeview Hospital\n  type: hospital\n  website: https://lakeview.example.org\n"
                "  email: info@lakeview.example.org\n  timezone: America/Chicago\n  address:\n    city: Springfield\n"
                '    postal_code: "02115"\n    country: US\n',
                "profile: «null»\n",
            )
        ),
        "profile is null: write its fields (name, type, ...) or remove the key",
        "/profile",
        errors=2,
    ),
)


@RENAMES_AND_NULLS
def test_rename_and_null_section_rules(write_tree: WriteTree, case: Case) -> None:
    check(write_tree, case)


# --- unknown fields, at every level -----------------------------------------------------------------------

UNKNOWN_FIELDS = cases(
    Case(
        "top-level",
        edit(("services:\n", "«servics»:\n")),
        'unknown field "servics" (did you mean "services"?)',
        "/servics",
    ),
    Case(
        "metadata",
        edit(("  labels: {region: north}\n", "  «lables»: {region: north}\n")),
        'unknown field "lables" (did you mean "labels"?)',
        "/metadata/lables",
    ),
    Case(
        "profile",
        edit(("  type: hospital\n", "  «tpye»: hospital\n")),
        'unknown field "tpye" (did you mean "type"?)',
        "/profile/tpye",
        errors=2,
    ),
    Case(
        "profile-address",
        edit(('    postal_code: "02115"\n', '    «postcode»: "02115"\n')),
        'unknown field "postcode" (did you mean "postal_code"?)',
        "/profile/address/postcode",
    ),
    Case(
        "staff",
        edit(("    role: admin\n", "    «rol»: admin\n")),
        'unknown field "rol" (did you mean "role"?)',
        "/staff/0/rol",
        errors=2,
    ),
    Case(
        "steps",
        edit(("    stage: onboarding\n", "    «stge»: onboarding\n")),
        'unknown field "stge" (did you mean "stage"?)',
        "/steps/0/stge",
        errors=2,
    ),
    Case(
        "step-fields",
        edit(("        label: Signed\n", "        «lable»: Signed\n")),
        'unknown field "lable" (did you mean "label"?)',
        "/steps/0/fields/0/lable",
        errors=2,
    ),
    Case(
        "step-applies-to",
        edit(("      schools: [state-u]\n", "      «school»: [state-u]\n")),
        'unknown field "school" (did you mean "schools"?)',
        "/steps/0/applies_to/school",
    ),
    Case(
        "services",
        edit(("    disciplines: [nursing, medicine]\n", "    «disciplnes»: [nursing, medicine]\n")),
        'unknown field "disciplnes" (did you mean "disciplines"?)',
        "/services/0/disciplnes",
        errors=2,
    ),
    Case(
        "capacity",
        edit(("        slots: 4\n", "        «slot»: 4\n")),
        'unknown field "slot" (did you mean "slots"?)',
        "/services/0/capacity/0/slot",
        errors=2,
    ),
    Case(
        "capacity-v1beta1-name-in-v1",
        edit(("        workflow: student_requested\n", "        «workflow_type»: student_requested\n")),
        'unknown field "workflow_type" (did you mean "workflow"?)',
        "/services/0/capacity/1/workflow_type",
        errors=2,
    ),
    Case(
        "schools",
        edit(("    contact_email: placements", "    «contact_mail»: placements")),
        'unknown field "contact_mail" (did you mean "contact_email"?)',
        "/schools/0/contact_mail",
    ),
    Case(
        "agreements",
        edit(("    end_date: 2027-12-31\n", "    end_date: 2027-12-31\n    «reminder_day»: 30\n")),
        'unknown field "reminder_day" (did you mean "reminder_days"?)',
        "/agreements/0/reminder_day",
    ),
    Case(
        "no-suggestion-when-nothing-is-close",
        edit(("    end_date: 2027-12-31\n", "    end_date: 2027-12-31\n    «colour»: blue\n")),
        'unknown field "colour"',
        "/agreements/0/colour",
    ),
)


@UNKNOWN_FIELDS
def test_unknown_fields_are_errors_with_a_suggestion(write_tree: WriteTree, case: Case) -> None:
    check(write_tree, case)


def test_an_unknown_field_far_from_every_name_gets_no_suggestion(write_tree: WriteTree) -> None:
    _, result = load(
        write_tree,
        {
            "lakeview.yaml": edit(
                ("    end_date: 2027-12-31\n", "    end_date: 2027-12-31\n    colour: blue\n")
            )
        },
    )
    assert the_problem(result, 'unknown field "colour"').message == 'unknown field "colour"'


# --- enums ---------------------------------------------------------------------------------------------

ENUMS = cases(
    Case(
        "profile-type",
        edit(("  type: hospital\n", "  type: «hopsital»\n")),
        'profile.type: "hopsital" is not one of: health_system, hospital, clinic, other (did you mean "hospital"?)',
        "/profile/type",
    ),
    Case(
        "step-stage",
        edit(("    stage: onboarding\n", "    stage: «onbording»\n")),
        '"onbording" is not one of: application, onboarding, offboarding (did you mean "onboarding"?)',
        "/steps/0/stage",
    ),
    Case(
        "step-type",
        edit(("    type: form\n", "    type: «fomr»\n")),
        '"fomr" is not one of: form, upload, checkbox (did you mean "form"?)',
        "/steps/0/type",
    ),
    Case(
        "step-completed-by",
        edit(("    stage: onboarding\n", "    stage: onboarding\n    completed_by: «studnet»\n")),
        '"studnet" is not one of: student, faculty, school_coordinator, site_coordinator (did you mean "student"?)',
        "/steps/0/completed_by",
    ),
    Case(
        "field-type",
        edit(("        type: select\n", "        type: «selct»\n")),
        '"selct" is not one of: text, textarea, date, number, select, checkbox (did you mean "select"?)',
        "/steps/0/fields/0/type",
    ),
    Case(
        "applies-to-workflow",
        edit(
            ("      schools: [state-u]\n", "      schools: [state-u]\n      workflows: [«student_request»]\n")
        ),
        '"student_request" is not one of: coordinator_scheduled, student_requested (did you mean "student_requested"?)',
        "/steps/0/applies_to/workflows/0",
    ),
    Case(
        "service-discipline",
        edit(("    disciplines: [nursing, medicine]\n", "    disciplines: [«nursng», medicine]\n")),
        '"nursng" is not one of: medicine, nursing, nurse_practitioner',
        "/services/0/disciplines/0",
    ),
    Case(
        "capacity-workflow",
        edit(("workflow: coordinator_scheduled", "workflow: «coordinator_schedule»")),
        'services[0].capacity[0].workflow: "coordinator_schedule" is not one of: coordinator_scheduled, student_requested (did you mean "coordinator_scheduled"?)',
        "/services/0/capacity/0/workflow",
    ),
    Case(
        "capacity-visibility",
        edit(("        slots: 2\n", "        slots: 2\n        visibility: «publshed»\n")),
        '"publshed" is not one of: draft, published (did you mean "published"?)',
        "/services/0/capacity/1/visibility",
    ),
    Case(
        "staff-role",
        edit(("    role: admin\n", "    role: «admn»\n")),
        '"admn" is not one of: admin, coordinator, viewer (did you mean "admin"?)',
        "/staff/0/role",
    ),
    Case(
        "kind",
        edit(("kind: Organization\n", "kind: «Organisation»\n")),
        '"Organisation" is not one of: Organization (did you mean "Organization"?)',
        "/kind",
    ),
)


@ENUMS
def test_enum_typos_are_errors_with_a_suggestion(write_tree: WriteTree, case: Case) -> None:
    check(write_tree, case)


# --- keys, slugs, labels --------------------------------------------------------------------------------

KEY_63 = "k" * 63
SLUG_63 = "s" * 63

PATTERNS = cases(
    Case(
        "key-of-64-characters",
        edit(("  - key: er\n", f"  - key: «{'k' * 64}»\n")),
        "is not a key: lowercase letters, digits and hyphens, at most 63 characters",
        "/services/0/key",
    ),
    Case(
        "key-with-leading-hyphen",
        edit(("  - key: er\n", '  - key: «"-er"»\n')),
        '"-er" is not a key',
        "/services/0/key",
    ),
    Case(
        "key-with-uppercase",
        edit(("  - key: er\n", "  - key: «ER»\n")),
        '"ER" is not a key',
        "/services/0/key",
    ),
    Case(
        "key-with-cyrillic-e",
        edit(("  - key: er\n", "  - key: «\u0435r»\n")),
        '"\u0435r" is not a key: lowercase letters, digits and hyphens, at most 63 characters (it contains U+0435 CYRILLIC SMALL LETTER IE)',
        "/services/0/key",
    ),
    Case(
        "key-with-zero-width-space-is-shown-escaped",
        edit(("  - key: er\n", '  - key: «"e\u200br"»\n')),
        '"e\\u200br" is not a key: lowercase letters, digits and hyphens, at most 63 characters (it contains U+200B ZERO WIDTH SPACE)',
        "/services/0/key",
    ),
    Case("key-empty", edit(("  - key: er\n", '  - key: «""»\n')), '"" is not a key', "/services/0/key"),
    Case(
        "slug-of-64-characters",
        edit(("  slug: lakeview\n", f"  slug: «{'s' * 64}»\n")),
        "is not a slug: lowercase letters, digits and hyphens, 2 to 63 characters",
        "/metadata/slug",
    ),
    Case(
        "slug-of-1-character",
        edit(("  slug: lakeview\n", "  slug: «l»\n")),
        '"l" is not a slug: lowercase letters, digits and hyphens, 2 to 63 characters',
        "/metadata/slug",
    ),
    Case(
        "slug-with-leading-hyphen",
        edit(("  slug: lakeview\n", '  slug: «"-lakeview"»\n')),
        '"-lakeview" is not a slug',
        "/metadata/slug",
    ),
    Case(
        "slug-with-uppercase",
        edit(("  slug: lakeview\n", "  slug: «Lakeview»\n")),
        '"Lakeview" is not a slug',
        "/metadata/slug",
    ),
    Case(
        "slug-with-cyrillic-e",
        edit(("  slug: lakeview\n", "  slug: «lak\u0435view»\n")),
        "(it contains U+0435 CYRILLIC SMALL LETTER IE)",
        "/metadata/slug",
    ),
    Case(
        "label-name",
        edit(("  labels: {region: north}\n", "  labels: {«Region»: north}\n")),
        'label name "Region" is not a label name',
        "/metadata/labels/Region",
    ),
    Case(
        "label-value-is-a-string",
        edit(("  labels: {region: north}\n", "  labels: {region: «1»}\n")),
        'must be a string; quote it: "1"',
        "/metadata/labels/region",
    ),
)


@PATTERNS
def test_key_slug_and_label_patterns(write_tree: WriteTree, case: Case) -> None:
    check(write_tree, case)


@pytest.mark.parametrize(
    "text",
    [
        edit(
            ("  - key: er\n", f"  - key: {KEY_63}\n"), ("    services: [er]\n", f"    services: [{KEY_63}]\n")
        ),
        edit(("      - key: open\n", "      - key: o\n")),
        edit(("      - key: open\n", "      - key: 0pen-\n")),
        edit(("  slug: lakeview\n", f"  slug: {SLUG_63}\n")),
        edit(("  slug: lakeview\n", "  slug: l1\n")),
    ],
    ids=[
        "key-of-63-characters",
        "key-of-1-character",
        "key-starting-with-a-digit",
        "slug-of-63-characters",
        "slug-of-2-characters",
    ],
)
def test_keys_and_slugs_at_the_allowed_boundary_are_valid(write_tree: WriteTree, text: str) -> None:
    _, result = load(write_tree, {"lakeview.yaml": text})
    assert result.ok, [p.as_text() for p in result.errors]


# --- numbers, names and formats ---------------------------------------------------------------------------

ACCENTED = "e\u0301"  # two code points: a letter and a combining acute accent
SLOTS = "        slots: 4\n"
GROUP = "        slots: 2\n"
REMINDER = "    end_date: 2027-12-31\n"
DUE = "    stage: onboarding\n"

BOUNDS = cases(
    Case(
        "slots-0",
        edit((SLOTS, "        slots: «0»\n")),
        "must be at least 1 (found 0)",
        "/services/0/capacity/0/slots",
    ),
    Case(
        "slots-1001",
        edit((SLOTS, "        slots: «1001»\n")),
        "must be at most 1000 (found 1001)",
        "/services/0/capacity/0/slots",
    ),
    Case(
        "slots-2.0",
        edit((SLOTS, "        slots: «2.0»\n")),
        "must be a whole number (found 2.0)",
        "/services/0/capacity/0/slots",
    ),
    Case(
        "slots-as-text",
        edit((SLOTS, '        slots: «"4"»\n')),
        'must be a whole number (found "4")',
        "/services/0/capacity/0/slots",
    ),
    Case(
        "max-group-size-0",
        edit((GROUP, GROUP + "        max_group_size: «0»\n")),
        "must be at least 1 (found 0)",
        "/services/0/capacity/1/max_group_size",
    ),
    Case(
        "max-group-size-51",
        edit((GROUP, GROUP + "        max_group_size: «51»\n")),
        "must be at most 50 (found 51)",
        "/services/0/capacity/1/max_group_size",
    ),
    Case(
        "reminder-days-0",
        edit((REMINDER, REMINDER + "    reminder_days: «0»\n")),
        "must be at least 1 (found 0)",
        "/agreements/0/reminder_days",
    ),
    Case(
        "reminder-days-366",
        edit((REMINDER, REMINDER + "    reminder_days: «366»\n")),
        "must be at most 365 (found 366)",
        "/agreements/0/reminder_days",
    ),
    Case(
        "due-days-minus-1",
        edit((DUE, DUE + "    due_days: «-1»\n")),
        "must be at least 0 (found -1)",
        "/steps/0/due_days",
    ),
    Case(
        "expires-after-days-0",
        edit((DUE, DUE + "    expires_after_days: «0»\n")),
        "must be at least 1 (found 0)",
        "/steps/0/expires_after_days",
    ),
    Case(
        "name-of-201-code-points",
        edit(("  name: Lakeview Hospital\n", f"  name: «{'é' * 201}»\n")),
        "is longer than 200 characters",
        "/profile/name",
    ),
    Case(
        "name-of-201-code-points-with-combining-marks",
        edit(("  name: Lakeview Hospital\n", f"  name: «{ACCENTED * 100}x»\n")),
        "is longer than 200 characters",
        "/profile/name",
    ),
    Case(
        "name-empty",
        edit(("  name: Lakeview Hospital\n", '  name: «""»\n')),
        "must not be empty",
        "/profile/name",
    ),
    Case(
        "service-disciplines-empty",
        edit(("    disciplines: [nursing, medicine]\n", "    disciplines: «[]»\n")),
        "must not be empty",
        "/services/0/disciplines",
    ),
    Case(
        "agreement-services-empty",
        edit(("    services: [er]\n", "    services: «[]»\n")),
        "must not be empty",
        "/agreements/0/services",
    ),
    Case(
        "missing-required-field",
        edit(("    name: State nursing\n", ""), ("  - key: state\n", "  - «key»: state\n")),
        'missing required field "name"',
        "/agreements/0/name",
    ),
)


@BOUNDS
def test_numeric_and_length_bounds(write_tree: WriteTree, case: Case) -> None:
    check(write_tree, case)


@pytest.mark.parametrize(
    "text",
    [
        edit((SLOTS, "        slots: 1\n")),
        edit((SLOTS, "        slots: 1000\n")),
        edit((GROUP, GROUP + "        max_group_size: 1\n")),
        edit((GROUP, GROUP + "        max_group_size: 50\n")),
        edit((REMINDER, REMINDER + "    reminder_days: 1\n")),
        edit((REMINDER, REMINDER + "    reminder_days: 365\n")),
        edit((DUE, DUE + "    due_days: 0\n")),
        edit((DUE, DUE + "    expires_after_days: 1\n")),
        edit(("  name: Lakeview Hospital\n", f"  name: {'é' * 200}\n")),
        edit(("  name: Lakeview Hospital\n", f"  name: {'🏥' * 200}\n")),
        edit(("  name: Lakeview Hospital\n", f"  name: {ACCENTED * 100}\n")),
    ],
    ids=[
        "slots-1",
        "slots-1000",
        "max-group-size-1",
        "max-group-size-50",
        "reminder-days-1",
        "reminder-days-365",
        "due-days-0",
        "expires-after-days-1",
        "name-of-200-code-points",
        "name-of-200-emoji",
        "name-of-100-letters-with-combining-marks",
    ],
)
def test_values_at_the_allowed_bound_are_valid(write_tree: WriteTree, text: str) -> None:
    _, result = load(write_tree, {"lakeview.yaml": text})
    assert result.ok, [p.as_text() for p in result.errors]


@pytest.mark.parametrize("code", ["NO", "GB", "CI", "SS", "AX", "VA"])
def test_every_iso_3166_country_code_is_a_country(write_tree: WriteTree, code: str) -> None:
    _, result = load(write_tree, {"lakeview.yaml": edit(("    country: US\n", f"    country: '{code}'\n"))})
    assert result.ok, [p.as_text() for p in result.errors]


FORMATS = cases(
    Case(
        "country-unknown",
        edit(("    country: US\n", "    country: «XX»\n")),
        "XX is not an ISO 3166-1 alpha-2 country code",
        "/profile/address/country",
    ),
    Case(
        "country-lowercase",
        edit(("    country: US\n", "    country: «us»\n")),
        '"us" is not a two-letter ISO 3166-1 country code such as US',
        "/profile/address/country",
    ),
    Case(
        "timezone-unknown",
        edit(("  timezone: America/Chicago\n", "  timezone: «Mars/Olympus»\n")),
        "Mars/Olympus is not an IANA time zone name (e.g. America/Chicago)",
        "/profile/timezone",
    ),
    Case(
        "website-http",
        edit(("  website: https://lakeview.example.org\n", "  website: «http://lakeview.example.org»\n")),
        '"http://lakeview.example.org" is not an https:// URL',
        "/profile/website",
    ),
    Case(
        "website-without-host",
        edit(("  website: https://lakeview.example.org\n", "  website: «https://»\n")),
        '"https://" is not an https:// URL',
        "/profile/website",
    ),
    Case(
        "profile-email",
        edit(("  email: info@lakeview.example.org\n", "  email: «info-at-lakeview»\n")),
        '"info-at-lakeview" is not an email address',
        "/profile/email",
    ),
    Case(
        "staff-email",
        edit(("  - email: ann@lakeview.example.org\n", '  - email: «"ann @lakeview.example.org"»\n')),
        '"ann @lakeview.example.org" is not an email address',
        "/staff/0/email",
    ),
    Case(
        "school-contact-email",
        edit(
            ("    contact_email: placements@state.example.edu\n", "    contact_email: «placements@state»\n")
        ),
        '"placements@state" is not an email address',
        "/schools/0/contact_email",
    ),
    Case(
        "postal-code-leading-zero",
        edit(('    postal_code: "02115"\n', "    postal_code: «02115»\n")),
        'must be a string; quote it: "02115"',
        "/profile/address/postal_code",
    ),
    Case(
        "submit-on",
        edit(
            (
                "    disciplines: [nursing]\nservices:",
                "    disciplines: [nursing]\n    submit: «on»\nservices:",
            )
        ),
        'must be true or false (found "on", a string)',
        "/agreements/0/submit",
    ),
)


@FORMATS
def test_formats_of_fields(write_tree: WriteTree, case: Case) -> None:
    check(write_tree, case)


def test_norway_is_a_country_not_a_boolean(write_tree: WriteTree) -> None:
    _, result = load(write_tree, {"lakeview.yaml": edit(("    country: US\n", "    country: NO\n"))})
    assert result.ok, [p.as_text() for p in result.errors]
    profile = result.state.organizations["lakeview"].profile
    assert profile is not None and profile.address is not None and profile.address.country == "NO"


# --- v1beta1 --------------------------------------------------------------------------------------------

BETA = textwrap.dedent(
    """\
    apiVersion: nexus/v1beta1
    kind: Organization
    metadata: {slug: beta}
    profile: {name: Beta, type: clinic}
    steps:
      onboarding:
        - {key: hipaa, name: HIPAA, type: upload}
    services:
      - {key: pt, name: PT, disciplines: [physical_therapy], steps: [hipaa]}
    capacity:
      - {key: w1, service: pt, name: W, workflow_type: student_requested, disciplines: [physical_therapy],
         start_date: 2027-01-01, end_date: 2027-02-01, slots: 3}
    """
)

BETA_CASES = cases(
    Case(
        "capacity-names-an-unknown-service",
        edit(("service: pt,", "service: «ptt»,"), base=BETA),
        'capacity window "w1" names service "ptt", which organization "beta" does not declare (did you mean "pt"?)',
        "/capacity/0/service",
    ),
    Case(
        "capacity-discipline-points-into-the-top-level-list",
        edit(("disciplines: [physical_therapy],\n", "disciplines: [«nursing»],\n"), base=BETA),
        'discipline "nursing" is not one of service "pt"\'s disciplines (physical_therapy)',
        "/capacity/0/disciplines/0",
    ),
    Case(
        "v1-workflow-name-is-unknown-in-v1beta1",
        edit(("workflow_type: student_requested", "«workflow»: student_requested"), base=BETA),
        'unknown field "workflow" (did you mean "workflow_type"?)',
        "/capacity/0/workflow",
        errors=2,
    ),
    Case(
        "v1-stage-field-is-unknown-in-v1beta1",
        edit(
            (
                "{key: hipaa, name: HIPAA, type: upload}",
                "{key: hipaa, «stage»: onboarding, name: HIPAA, type: upload}",
            ),
            base=BETA,
        ),
        'unknown field "stage"',
        "/steps/onboarding/0/stage",
    ),
    Case(
        "stage-typo-suggests",
        edit(("  onboarding:\n", "  «onbaording»:\n"), base=BETA),
        'unknown field "onbaording" (did you mean "onboarding"?)',
        "/steps/onbaording",
    ),
    Case(
        "service-step-points-into-the-original",
        edit(("steps: [hipaa]}", "steps: [«hipa»]}"), base=BETA),
        'step "hipa" is not declared in this organization (did you mean "hipaa"?)',
        "/services/0/steps/0",
    ),
    Case(
        "null-capacity-is-refused",
        BETA.split("capacity:\n")[0] + "capacity: «~»\n",
        "capacity is null: write `capacity: []`",
        "/capacity",
    ),
    Case(
        "null-steps-is-refused-with-the-mapping-form",
        edit(
            ("steps:\n  onboarding:\n    - {key: hipaa, name: HIPAA, type: upload}\n", "steps: «~»\n"),
            ("steps: [hipaa]}", "steps: []}"),
            base=BETA,
        ),
        "steps is null: write `steps: {}` to manage none",
        "/steps",
    ),
)


@BETA_CASES
def test_v1beta1_rules_point_into_the_original_file(write_tree: WriteTree, case: Case) -> None:
    check(write_tree, case)


def test_the_v1beta1_base_is_valid_with_a_deprecation_warning(write_tree: WriteTree) -> None:
    tree, result = load(write_tree, {"lakeview.yaml": BETA})
    assert result.ok, [p.as_text() for p in result.errors]
    (warning,) = result.warnings
    assert (warning.line, warning.column, warning.pointer) == (1, 13, "/apiVersion")
    assert (
        f"apiVersion nexus/v1beta1 is deprecated; run `nexus migrate {tree / 'lakeview.yaml'}`"
        in warning.message
    )


# --- the document's header ----------------------------------------------------------------------------------

HEADERS = cases(
    Case(
        "api-version-as-a-list-is-an-unknown-version",
        edit(("apiVersion: nexus/v1\n", "apiVersion: «[nexus/v1]»\n")),
        "unknown apiVersion a list: this nexus reads nexus/v1, nexus/v1beta1",
        "/apiVersion",
    ),
    Case(
        "api-version-as-a-mapping-is-an-unknown-version",
        edit(("apiVersion: nexus/v1\n", "apiVersion: «{v: 1}»\n")),
        "unknown apiVersion",
        "/apiVersion",
    ),
)


@HEADERS
def test_header_rules(write_tree: WriteTree, case: Case) -> None:
    check(write_tree, case)


# --- all problems together ------------------------------------------------------------------------------


def test_all_problems_come_sorted_with_a_count_and_as_json(write_tree: WriteTree) -> None:
    first_five: tuple[Case, ...] = REFERENCES.args[1][:5]
    tree = write_tree({f"{n}.yaml": marked(case.text)[0] for n, case in enumerate(first_five)})
    text = CliRunner().invoke(cli, ["validate", str(tree)])
    assert text.exit_code == 1
    lines = text.stderr.strip().splitlines()
    assert lines[-1].endswith("errors in 5 files")
    locations = [tuple(line.split(":")[:3]) for line in lines[:-1]]
    assert locations == sorted(locations, key=lambda t: (t[0], int(t[1]), int(t[2])))
    out = CliRunner().invoke(cli, ["validate", str(tree), "--format", "json"])
    problems = json.loads(out.stdout)
    assert {"file", "line", "column", "path", "message"} <= set(problems[0])
