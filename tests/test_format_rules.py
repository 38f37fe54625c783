"""Every rule of FORMAT.md, shown by the error it gives and where it points (file:line:column, pointer).

Each case is a small valid organization with one thing broken; the broken line is marked `# <-` and the
expected message fragment is given. The table is the specification of validation, read top to bottom.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from nexus_config import load_configuration

BASE = """\
apiVersion: nexus/v1
kind: Organization
metadata:
  slug: lakeview
profile:
  name: Lakeview Hospital
  type: hospital
steps:
  - key: hipaa
    stage: onboarding
    name: HIPAA
    type: upload
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
"""


def _case(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


# (id, configuration text with the offending line marked "# <-", message fragment, JSON pointer)
CASES = [
    (
        "coordinator-scheduled-needs-agreement",
        _case("        agreement: state\n", "").replace(
            "        workflow: coordinator_scheduled\n", "        workflow: coordinator_scheduled  # <-\n"
        ),
        "needs the `agreement`",
        "/services/0/capacity/0/workflow",
    ),
    (
        "student-requested-takes-no-agreement",
        _case(
            "        workflow: coordinator_scheduled\n        agreement: state\n",
            "        workflow: student_requested\n        agreement: state  # <-\n",
        ),
        "takes no `agreement`",
        "/services/0/capacity/0/agreement",
    ),
    (
        "agreement-must-exist",
        _case("        agreement: state\n", "        agreement: stat  # <-\n"),
        'agreement "stat" is not declared in organization "lakeview" (did you mean "state"?)',
        "/services/0/capacity/0/agreement",
    ),
    (
        "agreement-must-cover-the-service",
        _case("    services: [er]\n", "    services: [er]\n")
        .replace("  - key: er\n    name: Emergency\n", "  - key: er\n    name: Emergency\n")
        .replace(
            "services:\n  - key: er",
            "services:\n  - key: icu\n    name: ICU\n    disciplines: [nursing]\n  - key: er",
        )
        .replace("    services: [er]\n", "    services: [icu]\n")
        .replace("        agreement: state\n", "        agreement: state  # <-\n"),
        'agreement "state" does not cover service "er"',
        "/services/1/capacity/0/agreement",
    ),
    (
        "window-disciplines-within-service",
        _case(
            "        disciplines: [nursing]\n        start_date: 2027-02-01",
            "        disciplines: [nursing, pharmacy]  # <-\n        start_date: 2027-02-01",
        ),
        'discipline "pharmacy" is not one of service "er"\'s disciplines',
        "/services/0/capacity/0/disciplines/1",
    ),
    (
        "window-disciplines-within-agreement",
        _case(
            "        disciplines: [nursing]\n        start_date: 2027-02-01",
            "        disciplines: [medicine]  # <-\n        start_date: 2027-02-01",
        ),
        'discipline "medicine" is not covered by agreement "state"',
        "/services/0/capacity/0/disciplines/0",
    ),
    (
        "window-end-not-before-start",
        _case("        end_date: 2027-05-01\n", "        end_date: 2027-01-20  # <-\n"),
        "end_date 2027-01-20 is before start_date 2027-02-01",
        "/services/0/capacity/0/end_date",
    ),
    (
        "window-starts-inside-agreement",
        _case("        start_date: 2027-02-01\n", "        start_date: 2026-12-01  # <-\n"),
        'is before agreement "state" starts (2027-01-01)',
        "/services/0/capacity/0/start_date",
    ),
    (
        "window-ends-inside-agreement",
        _case("        end_date: 2027-05-01\n", "        end_date: 2028-05-01  # <-\n"),
        'is after agreement "state" ends (2027-12-31)',
        "/services/0/capacity/0/end_date",
    ),
    (
        "agreement-end-not-before-start",
        _case("    end_date: 2027-12-31\n", "    end_date: 2026-12-31  # <-\n"),
        "end_date 2026-12-31 is before start_date 2027-01-01",
        "/agreements/0/end_date",
    ),
    (
        "agreement-school-must-exist",
        _case("    school: state-u\n", "    school: state  # <-\n"),
        'school "state" is not among the schools of organization "lakeview" (did you mean "state-u"?)',
        "/agreements/0/school",
    ),
    (
        "agreement-services-must-exist",
        _case("    services: [er]\n", "    services: [er, err]  # <-\n"),
        'service "err" is not declared in organization "lakeview" (did you mean "er"?)',
        "/agreements/0/services/1",
    ),
    (
        "service-steps-must-resolve",
        _case("    steps: [hipaa]\n", "    steps: [hipa]  # <-\n"),
        'step "hipa" is not declared in this organization (did you mean "hipaa"?)',
        "/services/0/steps/0",
    ),
    (
        "form-needs-fields",
        _case("    type: upload\n", "    type: form  # <-\n"),
        'a step of type "form" needs `fields`',
        "/steps/0/type",
    ),
    (
        "fields-only-on-forms",
        _case(
            "    type: upload\n",
            "    type: upload\n    fields:  # <-\n      - {key: a, label: A, type: text}\n",
        ),
        '`fields` are only for steps of type "form"',
        "/steps/0/fields",
    ),
    (
        "select-needs-options",
        _case(
            "    type: upload\n",
            "    type: form\n    fields:\n      - {key: a, label: A, type: select}  # <-\n",
        ),
        'a field of type "select" needs `options`',
        "/steps/0/fields/0/type",
    ),
    (
        "options-only-on-select",
        _case(
            "    type: upload\n",
            "    type: form\n    fields:\n      - {key: a, label: A, type: text, options: [x]}  # <-\n",
        ),
        '`options` are only for fields of type "select"',
        "/steps/0/fields/0/options",
    ),
    (
        "form-field-keys-unique",
        _case(
            "    type: upload\n",
            "    type: form\n    fields:\n      - {key: a, label: A, type: text}\n      - {key: a, label: B, type: text}  # <-\n",
        ),
        'form field key "a" is declared twice in step "hipaa"',
        "/steps/0/fields/1/key",
    ),
    (
        "applies-to-schools-must-exist",
        _case("    type: upload\n", "    type: upload\n    applies_to:\n      schools: [state]  # <-\n"),
        'unknown school "state" in applies_to (did you mean "state-u"?)',
        "/steps/0/applies_to/schools/0",
    ),
    (
        "unknown-field-suggests",
        _case("    name: Emergency\n", "    nmae: Emergency  # <-\n    name: Emergency\n"),
        'unknown field "nmae" (did you mean "name"?)',
        "/services/0/nmae",
    ),
    (
        "enum-typo-suggests",
        _case("        workflow: coordinator_scheduled\n", "        workflow: coordinator_schedule  # <-\n"),
        '"coordinator_schedule" is not one of: coordinator_scheduled, student_requested (did you mean "coordinator_scheduled"?)',
        "/services/0/capacity/0/workflow",
    ),
    (
        "missing-required-field",
        _case("    name: State nursing\n", "").replace("  - key: state\n", "  - key: state  # <-\n"),
        'missing required field "name"',
        "/agreements/0/name",
    ),
    ("key-pattern", _case("  - key: er\n", "  - key: ER  # <-\n"), '"ER" is not a key', "/services/0/key"),
    (
        "slots-at-least-1",
        _case("        slots: 4\n", "        slots: 0  # <-\n"),
        "must be at least 1 (found 0)",
        "/services/0/capacity/0/slots",
    ),
    (
        "slots-at-most-1000",
        _case("        slots: 4\n", "        slots: 1001  # <-\n"),
        "must be at most 1000",
        "/services/0/capacity/0/slots",
    ),
    (
        "slots-whole-number",
        _case("        slots: 4\n", "        slots: 2.0  # <-\n"),
        "must be a whole number (found 2.0)",
        "/services/0/capacity/0/slots",
    ),
    (
        "max-group-size-at-most-50",
        _case("        slots: 4\n", "        slots: 4\n        max_group_size: 51  # <-\n"),
        "must be at most 50",
        "/services/0/capacity/0/max_group_size",
    ),
    (
        "reminder-days-at-most-365",
        _case("    end_date: 2027-12-31\n", "    end_date: 2027-12-31\n    reminder_days: 366  # <-\n"),
        "must be at most 365",
        "/agreements/0/reminder_days",
    ),
    (
        "due-days-not-negative",
        _case("    type: upload\n", "    type: upload\n    due_days: -1  # <-\n"),
        "must be at least 0",
        "/steps/0/due_days",
    ),
    (
        "expires-after-at-least-1",
        _case("    type: upload\n", "    type: upload\n    expires_after_days: 0  # <-\n"),
        "must be at least 1",
        "/steps/0/expires_after_days",
    ),
    (
        "name-at-most-200",
        _case("  name: Lakeview Hospital\n", f"  name: {'é' * 201}  # <-\n"),
        "is longer than 200 characters",
        "/profile/name",
    ),
    (
        "service-disciplines-not-empty",
        _case("    disciplines: [nursing, medicine]\n", "    disciplines: []  # <-\n"),
        "must not be empty",
        "/services/0/disciplines",
    ),
    (
        "invalid-calendar-date",
        _case("    start_date: 2027-01-01\n", "    start_date: 2027-02-30  # <-\n"),
        "2027-02-30 is not a valid date",
        "/agreements/0/start_date",
    ),
    (
        "postal-code-must-be-quoted",
        _case("  type: hospital\n", "  type: hospital\n  address:\n    postal_code: 02115  # <-\n"),
        'must be a string; quote it: "02115"',
        "/profile/address/postal_code",
    ),
    (
        "country-code",
        _case("  type: hospital\n", "  type: hospital\n  address:\n    country: XX  # <-\n"),
        "XX is not an ISO 3166-1 alpha-2 country code",
        "/profile/address/country",
    ),
    (
        "timezone",
        _case("  type: hospital\n", "  type: hospital\n  timezone: Mars/Olympus  # <-\n"),
        "is not an IANA time zone name",
        "/profile/timezone",
    ),
    (
        "website-https",
        _case("  type: hospital\n", "  type: hospital\n  website: http://lakeview.example.org  # <-\n"),
        "is not an https:// URL",
        "/profile/website",
    ),
    (
        "submit-is-a-boolean",
        _case(
            "    disciplines: [nursing]\nservices",
            "    disciplines: [nursing]\n    submit: on  # <-\nservices",
        ),
        'must be true or false (found "on", a string)',
        "/agreements/0/submit",
    ),
    (
        "previous-key-still-in-use",
        _case("  - key: er\n", "  - key: er\n    previous_keys: [icu]  # <-\n").replace(
            "services:\n  - key: er",
            "services:\n  - key: icu\n    name: ICU\n    disciplines: [nursing]\n  - key: er",
        ),
        'previous key "icu" is still the key of another item',
        "/services/1/previous_keys/0",
    ),
    (
        "null-section-refused",
        _case(
            "schools:\n  - key: state-u\n    name: State University\n    contact_email: placements@state.example.edu\n",
            "staff:  # <-\nschools:\n  - key: state-u\n    name: State University\n    contact_email: placements@state.example.edu\n",
        ),
        "staff is null",
        "/staff",
    ),
    (
        "api-version-as-a-list-is-an-unknown-version",
        _case("apiVersion: nexus/v1\n", "apiVersion: [nexus/v1]  # <-\n"),
        "unknown apiVersion",
        "/apiVersion",
    ),
    (
        "api-version-as-a-mapping-is-an-unknown-version",
        _case("apiVersion: nexus/v1\n", "apiVersion: {v: 1}  # <-\n"),
        "unknown apiVersion",
        "/apiVersion",
    ),
]


def _marked_line(text: str) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if "# <-" in line]
    assert len(lines) == 1, "mark exactly one line with # <-"
    return lines[0]


@pytest.mark.parametrize(("text", "fragment", "pointer"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_is_reported_at_the_offending_line(
    write_tree: Callable[..., Path], text: str, fragment: str, pointer: str
) -> None:
    tree = write_tree({"lakeview.yaml": text})
    result = load_configuration([tree])
    errors = [p for p in result.errors if fragment in p.message]
    assert errors, [p.as_text() for p in result.problems]
    problem = errors[0]
    assert problem.file.endswith("lakeview.yaml")
    assert problem.line == _marked_line(text), problem.as_text()
    assert problem.column >= 1
    assert problem.pointer == pointer


def test_the_base_organization_is_valid(write_tree: Callable[..., Path]) -> None:
    result = load_configuration([write_tree({"lakeview.yaml": BASE})])
    assert result.ok, [p.as_text() for p in result.problems]


SPLIT = {
    "profile.yaml": "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: lakeview, labels: {region: north}}\n"
    "profile: {name: Lakeview, type: hospital}\nsteps: [{key: hipaa, stage: onboarding, name: HIPAA, type: upload}]\n",
    "more.yaml": "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: lakeview}\n"
    "steps: [{key: hipaa, stage: onboarding, name: HIPAA 2, type: upload}]\n",
}


def test_a_key_declared_in_two_files_names_both_places(write_tree: Callable[..., Path]) -> None:
    result = load_configuration([write_tree(SPLIT)])
    (problem,) = [p for p in result.errors if "declared twice" in p.message]
    assert problem.file.endswith("profile.yaml") or problem.file.endswith("more.yaml")
    assert "also declared at" in problem.message
    other = "profile.yaml" if problem.file.endswith("more.yaml") else "more.yaml"
    assert other in problem.message


def test_profile_in_two_documents_is_an_error(write_tree: Callable[..., Path]) -> None:
    files = dict(
        SPLIT,
        **{
            "more.yaml": SPLIT["profile.yaml"].replace(
                "steps: [{key: hipaa", "staff: [{email: a@b.org, role: admin}]\n#"
            )
        },
    )
    result = load_configuration([write_tree(files)])
    assert any(
        'profile of organization "lakeview" is declared in more than one document' in p.message
        for p in result.errors
    )


def test_an_organization_without_profile_is_an_error(write_tree: Callable[..., Path]) -> None:
    result = load_configuration([write_tree({"more.yaml": SPLIT["more.yaml"]})])
    assert any('organization "lakeview" has no profile' in p.message for p in result.errors)


def test_labels_that_disagree_are_an_error(write_tree: Callable[..., Path]) -> None:
    files = dict(
        SPLIT,
        **{
            "more.yaml": SPLIT["more.yaml"]
            .replace("{slug: lakeview}", "{slug: lakeview, labels: {region: south}}")
            .replace("key: hipaa", "key: other")
        },
    )
    result = load_configuration([write_tree(files)])
    assert any("labels disagree" in p.message for p in result.errors)


def test_staff_are_the_same_person_whatever_the_case_of_their_email(write_tree: Callable[..., Path]) -> None:
    text = (
        BASE
        + "staff:\n  - {email: Ann@Lakeview.org, role: admin}\n  - {email: ann@lakeview.org, role: viewer}\n"
    )
    result = load_configuration([write_tree({"lakeview.yaml": text})])
    assert any('staff member "ann@lakeview.org" is declared twice' in p.message for p in result.errors)


def _org(slug: str, parent: str | None) -> str:
    parent_line = f", parent: {parent}" if parent else ""
    return f"apiVersion: nexus/v1\nkind: Organization\nmetadata: {{slug: {slug}{parent_line}}}\nprofile: {{name: {slug}, type: clinic}}\n"


def test_parent_must_be_declared_in_the_tree(write_tree: Callable[..., Path]) -> None:
    result = load_configuration([write_tree({"a.yaml": _org("alpha", "alpah-health")})])
    assert any(
        'parent "alpah-health" is not declared in this configuration tree' in p.message for p in result.errors
    )


def test_parent_chains_have_no_cycles(write_tree: Callable[..., Path]) -> None:
    result = load_configuration(
        [write_tree({"a.yaml": _org("alpha", "bravo"), "b.yaml": _org("bravo", "alpha")})]
    )
    assert any("parent chain has a cycle" in p.message for p in result.errors)


def test_an_organization_cannot_be_its_own_parent(write_tree: Callable[..., Path]) -> None:
    result = load_configuration([write_tree({"a.yaml": _org("alpha", "alpha")})])
    assert any("cycle: alpha → alpha" in p.message for p in result.errors)


def test_a_chain_of_1000_organizations_resolves_steps_without_recursion_errors(
    write_tree: Callable[..., Path],
) -> None:
    files = {
        "o0000.yaml": _org("o0000", None)
        + "steps: [{key: root-step, stage: onboarding, name: Root, type: upload}]\n"
    }
    for n in range(1, 1000):
        files[f"o{n:04d}.yaml"] = _org(f"o{n:04d}", f"o{n - 1:04d}")
    files["o0999.yaml"] += "services: [{key: er, name: ER, disciplines: [nursing], steps: [root-step]}]\n"
    result = load_configuration([write_tree(files)])
    assert result.ok, [p.as_text() for p in result.errors[:3]]


def test_steps_resolve_up_the_parent_chain(write_tree: Callable[..., Path]) -> None:
    parent = _org("system", None) + "steps: [{key: hipaa, stage: onboarding, name: HIPAA, type: upload}]\n"
    child = (
        _org("site", "system")
        + "services: [{key: er, name: ER, disciplines: [nursing], steps: [hipaa, hipa]}]\n"
    )
    result = load_configuration([write_tree({"p.yaml": parent, "c.yaml": child})])
    (problem,) = result.errors
    assert (
        'step "hipa" is not declared in this organization or its parents (did you mean "hipaa"?)'
        in problem.message
    )


def test_all_problems_come_sorted_with_a_count_and_as_json(write_tree: Callable[..., Path]) -> None:
    from click.testing import CliRunner

    from plan_apply.cli import cli

    tree = write_tree({f"{n}.yaml": CASES[n][1] for n in range(5)})
    text = CliRunner().invoke(cli, ["validate", str(tree)])
    assert text.exit_code == 1
    lines = text.stderr.strip().splitlines()
    assert lines[-1].endswith("errors in 5 files")
    locations = [tuple(line.split(":")[:3]) for line in lines[:-1]]
    assert locations == sorted(locations, key=lambda t: (t[0], int(t[1]), int(t[2])))
    out = CliRunner().invoke(cli, ["validate", str(tree), "--format", "json"])
    problems = json.loads(out.stdout)["problems"]
    assert {"file", "line", "column", "path", "message"} <= set(problems[0])


def test_v1beta1_problems_point_into_the_original_file(write_tree: Callable[..., Path]) -> None:
    text = textwrap.dedent(
        """\
        apiVersion: nexus/v1beta1
        kind: Organization
        metadata: {slug: beta}
        profile: {name: Beta, type: clinic}
        steps:
          onboarding:
            - {key: hipaa, name: HIPAA, type: upload}
        services:
          - {key: pt, name: PT, disciplines: [physical_therapy], steps: [hipa]}
        capacity:
          - {key: w1, service: pt, name: W, workflow_type: student_requested, disciplines: [nursing],
             start_date: 2027-01-01, end_date: 2027-02-01, slots: 3}
        """
    )
    result = load_configuration([write_tree({"beta.yaml": text})])
    by_message = {p.message.split(" (")[0]: p for p in result.errors}
    step = by_message['step "hipa" is not declared in this organization']
    assert (step.line, step.pointer) == (9, "/services/0/steps/0")
    discipline = next(p for p in result.errors if "discipline" in p.message)
    assert (discipline.line, discipline.pointer) == (11, "/capacity/0/disciplines/0")
    assert any(p.severity == "warning" and "deprecated" in p.message for p in result.problems)
