"""FORMAT.md's rules across documents, files and organizations, shown by the exact words of each error.

The same identity declared twice points at the second place and names the first; documents of one
organization merge (whatever their apiVersion); parents are declared in the tree and chains have no cycles.
Built like `test_rules`: «guillemets» mark where a problem must point.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from .test_rules import WriteTree, edit, load, marked, the_problem

# --- across documents and files ---------------------------------------------------------------------------

HEAD = "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: lakeview}\n"
PROFILE = "profile: {name: Lakeview, type: hospital}\n"
SCHOOL = "{key: state-u, name: State University, contact_email: placements@state.example.edu}"


@dataclass(frozen=True)
class Twice:
    """The same identity declared in a.yaml (its key marked «») and again in b.yaml (its value marked):
    the problem points at the second, and names the first."""

    id: str
    first: str
    second: str
    message: str
    pointer: str


DUPLICATES = [
    Twice(
        "steps",
        "steps:\n  - {«key»: hipaa, stage: onboarding, name: HIPAA, type: upload}\n",
        "steps:\n  - {key: other, stage: onboarding, name: Other, type: upload}\n  - {key: «hipaa», stage: offboarding, name: HIPAA 2, type: checkbox}\n",
        'step key "hipaa" is declared twice in organization "lakeview"',
        "/steps/1/key",
    ),
    Twice(
        "services",
        "services:\n  - {«key»: er, name: ER, disciplines: [nursing]}\n",
        "services:\n  - {key: «er», name: Emergency, disciplines: [medicine]}\n",
        'service key "er" is declared twice in organization "lakeview"',
        "/services/0/key",
    ),
    Twice(
        "schools",
        f"schools:\n  - {SCHOOL.replace('key', '«key»', 1)}\n",
        f"schools:\n  - {SCHOOL.replace('state-u', '«state-u»', 1)}\n",
        'school key "state-u" is declared twice in organization "lakeview"',
        "/schools/0/key",
    ),
    Twice(
        "agreements",
        f"schools: [{SCHOOL}]\nservices: [{{key: er, name: ER, disciplines: [nursing]}}]\n"
        "agreements:\n  - {«key»: state, school: state-u, name: A, start_date: 2027-01-01, services: [er], disciplines: [nursing]}\n",
        "agreements:\n  - {key: «state», school: state-u, name: B, start_date: 2028-01-01, services: [er], disciplines: [nursing]}\n",
        'agreement key "state" is declared twice in organization "lakeview"',
        "/agreements/0/key",
    ),
    Twice(
        "staff-emails-ignoring-case",
        "staff:\n  - {«email»: ann@lakeview.org, role: admin}\n",
        "staff:\n  - {email: «Ann@LakeView.org», role: viewer}\n",
        'staff member "Ann@LakeView.org" is declared twice in organization "lakeview"',
        "/staff/0/email",
    ),
]


@pytest.mark.parametrize("twice", DUPLICATES, ids=[d.id for d in DUPLICATES])
def test_a_key_declared_in_two_files_names_both_places(write_tree: WriteTree, twice: Twice) -> None:
    first, first_line, first_column = marked(HEAD + PROFILE + twice.first)
    second, line, column = marked(HEAD + twice.second)
    tree, result = load(write_tree, {"a.yaml": first, "b.yaml": second})
    problem = the_problem(result, twice.message)
    assert (problem.file, problem.line, problem.column, problem.pointer) == (
        str(tree / "b.yaml"),
        line,
        column,
        twice.pointer,
    )
    assert problem.message.endswith(f"(also declared at {tree / 'a.yaml'}:{first_line}:{first_column})")


def test_a_capacity_window_key_declared_twice_in_one_service_names_both_places(write_tree: WriteTree) -> None:
    text, line, column = marked(edit(("      - key: open\n", "      - key: «spring»\n")))
    tree, result = load(write_tree, {"lakeview.yaml": text})
    problem = the_problem(result, 'capacity window key "spring" is declared twice in service "er"')
    assert (problem.line, problem.column, problem.pointer) == (line, column, "/services/0/capacity/1/key")
    first_line = text.splitlines().index("      - key: spring") + 1
    assert problem.message.endswith(f"(also declared at {tree / 'lakeview.yaml'}:{first_line}:9)")


def test_capacity_window_keys_are_unique_within_their_service_only(write_tree: WriteTree) -> None:
    window = "{key: spring, name: S, workflow: student_requested, disciplines: [nursing], start_date: 2027-01-01, end_date: 2027-02-01, slots: 1}"
    text = (
        HEAD
        + PROFILE
        + f"services:\n  - {{key: er, name: ER, disciplines: [nursing], capacity: [{window}]}}\n  - {{key: icu, name: ICU, disciplines: [nursing], capacity: [{window}]}}\n"
    )
    _, result = load(write_tree, {"lakeview.yaml": text})
    assert result.ok, [p.as_text() for p in result.errors]


def test_a_form_field_key_declared_twice_names_both_places(write_tree: WriteTree) -> None:
    text, line, column = marked(
        edit(
            (
                "        options: [yes-i-did]\n",
                "        options: [yes-i-did]\n      - key: «signed»\n        label: Again\n        type: text\n",
            )
        )
    )
    tree, result = load(write_tree, {"lakeview.yaml": text})
    problem = the_problem(result, 'form field key "signed" is declared twice in step "hipaa"')
    assert (problem.line, problem.column, problem.pointer) == (line, column, "/steps/0/fields/1/key")
    first_line = text.splitlines().index("      - key: signed") + 1
    assert problem.message.endswith(f"(also declared at {tree / 'lakeview.yaml'}:{first_line}:9)")


def test_a_v1beta1_capacity_window_declared_in_two_files_names_both_places(write_tree: WriteTree) -> None:
    beta = HEAD.replace("nexus/v1", "nexus/v1beta1")
    window = "{key: w, service: er, name: W, workflow_type: student_requested, disciplines: [nursing], start_date: 2027-01-01, end_date: 2027-02-01, slots: 1}"
    first, first_line, first_column = marked(
        beta
        + PROFILE
        + f"services: [{{key: er, name: ER, disciplines: [nursing]}}]\ncapacity:\n  - {window.replace('key', '«key»')}\n"
    )
    second, line, column = marked(beta + f"capacity:\n  - {window.replace('key: w', 'key: «w»')}\n")
    tree, result = load(write_tree, {"a.yaml": first, "b.yaml": second})
    problem = the_problem(result, 'capacity window key "w" is declared twice in service "er"')
    assert (problem.file, problem.line, problem.column, problem.pointer) == (
        str(tree / "b.yaml"),
        line,
        column,
        "/capacity/0/key",
    )
    assert problem.message.endswith(f"(also declared at {tree / 'a.yaml'}:{first_line}:{first_column})")


def test_profile_in_two_documents_names_both(write_tree: WriteTree) -> None:
    second, line, column = marked(HEAD + "staff: []\n«profile»: {name: Lakeview, type: hospital}\n")
    tree, result = load(write_tree, {"a.yaml": HEAD + PROFILE, "b.yaml": second})
    problem = the_problem(result, 'profile of organization "lakeview" is declared in more than one document')
    assert (problem.file, problem.line, problem.column, problem.pointer) == (
        str(tree / "b.yaml"),
        line,
        column,
        "/profile",
    )
    assert problem.message.endswith(f"(also declared at {tree / 'a.yaml'}:4:1)")


def test_an_organization_without_a_profile_is_an_error_at_its_slug(write_tree: WriteTree) -> None:
    first, line, column = marked(HEAD.replace("slug: lakeview", "slug: «lakeview»") + "staff: []\n")
    tree, result = load(write_tree, {"a.yaml": first, "b.yaml": HEAD + "steps: []\n"})
    problem = the_problem(
        result, 'organization "lakeview" has no profile: exactly one of its documents must declare `profile`'
    )
    assert (problem.file, problem.line, problem.column, problem.pointer) == (
        str(tree / "a.yaml"),
        line,
        column,
        "/metadata/slug",
    )


def test_an_organization_split_over_three_files_merges(write_tree: WriteTree) -> None:
    _, result = load(
        write_tree,
        {
            "a.yaml": HEAD + PROFILE,
            "b.yaml": HEAD + "steps: [{key: hipaa, stage: onboarding, name: HIPAA, type: upload}]\n",
            "c.yaml": HEAD + "services: [{key: er, name: ER, disciplines: [nursing], steps: [hipaa]}]\n",
        },
    )
    assert result.ok, [p.as_text() for p in result.errors]
    org = result.state.organizations["lakeview"]
    assert (len(org.steps or ()), len(org.services or ()), len(org.files)) == (1, 1, 3)


def _org(slug: str, parent: str | None = None, extra: str = "", labels: str = "") -> str:
    fields = (
        [f"slug: {slug}"]
        + ([f"parent: {parent}"] if parent else [])
        + ([f"labels: {labels}"] if labels else [])
    )
    return f"apiVersion: nexus/v1\nkind: Organization\nmetadata: {{{', '.join(fields)}}}\nprofile: {{name: {slug}, type: clinic}}\n{extra}"


def test_parent_given_differently_in_two_documents_names_both(write_tree: WriteTree) -> None:
    first, first_line, first_column = marked(_org("lakeview", "system-a").replace("parent:", "«parent»:"))
    second, line, column = marked(
        "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: lakeview, parent: «system-b»}\nstaff: []\n"
    )
    files = {"a.yaml": first, "b.yaml": second, "c.yaml": _org("system-a") + "---\n" + _org("system-b")}
    tree, result = load(write_tree, files)
    problem = the_problem(result, 'parent "system-b" disagrees with "system-a" for organization "lakeview"')
    assert (problem.file, problem.line, problem.column, problem.pointer) == (
        str(tree / "b.yaml"),
        line,
        column,
        "/metadata/parent",
    )
    assert problem.message.endswith(f"(also declared at {tree / 'a.yaml'}:{first_line}:{first_column})")


def test_an_explicit_null_parent_disagrees_with_a_parent(write_tree: WriteTree) -> None:
    files = {
        "a.yaml": _org("lakeview").replace("{slug: lakeview}", "{slug: lakeview, parent: null}"),
        "b.yaml": "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: lakeview, parent: system}\nstaff: []\n",
        "c.yaml": _org("system"),
    }
    _, result = load(write_tree, files)
    the_problem(result, 'parent "system" disagrees with null (no parent) for organization "lakeview"')


def test_labels_given_differently_in_two_documents_name_both(write_tree: WriteTree) -> None:
    first, first_line, first_column = marked(
        _org("lakeview", labels="{region: north}").replace("labels:", "«labels»:")
    )
    second, line, column = marked(
        "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: lakeview, labels: «{region: south}»}\nstaff: []\n"
    )
    tree, result = load(write_tree, {"a.yaml": first, "b.yaml": second})
    problem = the_problem(result, 'labels disagree with another document of organization "lakeview"')
    assert (problem.file, problem.line, problem.column, problem.pointer) == (
        str(tree / "b.yaml"),
        line,
        column,
        "/metadata/labels",
    )
    assert problem.message.endswith(f"(also declared at {tree / 'a.yaml'}:{first_line}:{first_column})")


def test_parent_and_labels_given_once_apply_to_every_document(write_tree: WriteTree) -> None:
    files = {
        "a.yaml": _org("lakeview", "system", labels="{region: north}"),
        "b.yaml": "apiVersion: nexus/v1\nkind: Organization\nmetadata: {slug: lakeview}\nstaff: []\n",
        "c.yaml": _org("system"),
    }
    _, result = load(write_tree, files)
    assert result.ok, [p.as_text() for p in result.errors]
    org = result.state.organizations["lakeview"]
    assert (org.parent, dict(org.labels)) == ("system", {"region": "north"})


# --- parent chains ----------------------------------------------------------------------------------------


def test_a_parent_must_be_declared_in_the_tree(write_tree: WriteTree) -> None:
    text, line, column = marked(_org("lakeview", "mercy-helth").replace("mercy-helth", "«mercy-helth»"))
    tree, result = load(write_tree, {"a.yaml": text, "b.yaml": _org("mercy-health")})
    problem = the_problem(
        result,
        'parent "mercy-helth" is not declared in this configuration tree (did you mean "mercy-health"?)',
    )
    assert (problem.file, problem.line, problem.column, problem.pointer) == (
        str(tree / "a.yaml"),
        line,
        column,
        "/metadata/parent",
    )


def test_a_parent_missing_from_a_partial_tree_suggests_the_whole_tree_not_the_child_itself(
    write_tree: WriteTree,
) -> None:
    _, result = load(write_tree, {"child.yaml": _org("northstar-st-olaf", "northstar-health")})
    problem = the_problem(result, 'parent "northstar-health" is not declared')
    assert "northstar-st-olaf" not in problem.message
    assert problem.message.endswith(
        "(if it is declared elsewhere, pass the whole configuration tree and choose organizations with --org)"
    )


def test_an_organization_cannot_be_its_own_parent(write_tree: WriteTree) -> None:
    text, line, column = marked(
        _org("lakeview", "lakeview").replace("parent: lakeview", "parent: «lakeview»")
    )
    _, result = load(write_tree, {"a.yaml": text})
    problem = the_problem(result, "parent chain has a cycle: lakeview → lakeview")
    assert (problem.line, problem.column, problem.pointer) == (line, column, "/metadata/parent")


def test_a_parent_cycle_is_reported_at_each_member(write_tree: WriteTree) -> None:
    _, result = load(write_tree, {"a.yaml": _org("alpha", "bravo"), "b.yaml": _org("bravo", "alpha")})
    column = _org("alpha", "bravo").index("bravo") - _org("alpha", "bravo").index("metadata") + 1
    assert [(Path(p.file).name, p.line, p.column, p.message) for p in result.errors] == [
        ("a.yaml", 3, column, "parent chain has a cycle: alpha → bravo → alpha"),
        ("b.yaml", 3, column, "parent chain has a cycle: bravo → alpha → bravo"),
    ]


def test_a_chain_of_1000_organizations_loads_and_resolves_steps_from_the_root(write_tree: WriteTree) -> None:
    documents = [
        _org("o0000", extra="steps: [{key: root-step, stage: onboarding, name: Root, type: upload}]\n")
    ]
    documents += [_org(f"o{n:04d}", f"o{n - 1:04d}") for n in range(1, 1000)]
    documents[-1] += "services: [{key: er, name: ER, disciplines: [nursing], steps: [root-step]}]\n"
    _, result = load(write_tree, {"fleet.yaml": "---\n".join(documents)})
    assert result.ok, [p.as_text() for p in result.errors[:3]]
    order = list(result.state.organizations)
    assert order[0] == "o0000" and order[-1] == "o0999" and len(order) == 1000


def test_a_cycle_at_the_end_of_a_1000_organization_chain_is_found(write_tree: WriteTree) -> None:
    documents = [_org("o0000", "o0999")] + [_org(f"o{n:04d}", f"o{n - 1:04d}") for n in range(1, 1000)]
    _, result = load(write_tree, {"fleet.yaml": "---\n".join(documents)})
    assert len(result.errors) == 1000
    assert all(p.message.startswith("parent chain has a cycle: ") for p in result.errors)


def test_service_steps_resolve_up_the_parent_chain(write_tree: WriteTree) -> None:
    files = {
        "system.yaml": _org(
            "system", extra="steps: [{key: hipaa, stage: onboarding, name: HIPAA, type: upload}]\n"
        ),
        "region.yaml": _org("region", "system"),
        "site.yaml": _org(
            "site",
            "region",
            extra="services: [{key: er, name: ER, disciplines: [nursing], steps: [hipaa]}]\n",
        ),
    }
    _, result = load(write_tree, files)
    assert result.ok, [p.as_text() for p in result.errors]


def test_a_service_step_missing_from_the_chain_suggests_the_parents_step(write_tree: WriteTree) -> None:
    site, line, column = marked(
        _org(
            "site",
            "system",
            extra="services:\n  - {key: er, name: ER, disciplines: [nursing], steps: [«hipa»]}\n",
        )
    )
    files = {
        "system.yaml": _org(
            "system", extra="steps: [{key: hipaa, stage: onboarding, name: HIPAA, type: upload}]\n"
        ),
        "site.yaml": site,
    }
    tree, result = load(write_tree, files)
    problem = the_problem(
        result, 'step "hipa" is not declared in this organization or its parents (did you mean "hipaa"?)'
    )
    assert (problem.file, problem.line, problem.column, problem.pointer) == (
        str(tree / "site.yaml"),
        line,
        column,
        "/services/0/steps/0",
    )


def test_a_childs_step_is_not_visible_to_its_parent(write_tree: WriteTree) -> None:
    files = {
        "system.yaml": _org(
            "system", extra="services: [{key: er, name: ER, disciplines: [nursing], steps: [local]}]\n"
        ),
        "site.yaml": _org(
            "site", "system", extra="steps: [{key: local, stage: onboarding, name: Local, type: upload}]\n"
        ),
    }
    _, result = load(write_tree, files)
    the_problem(result, 'step "local" is not declared in this organization')


def test_v1_and_v1beta1_documents_of_one_organization_merge(write_tree: WriteTree) -> None:
    window = (
        "{key: w1, service: er, name: W, workflow_type: student_requested, disciplines: [nursing],"
        " start_date: 2027-01-01, end_date: 2027-02-01, slots: 3}"
    )
    files = {
        "a.yaml": HEAD + PROFILE + "services: [{key: er, name: ER, disciplines: [nursing]}]\n",
        "b.yaml": HEAD.replace("nexus/v1", "nexus/v1beta1") + f"capacity:\n  - {window}\n",
    }
    _, result = load(write_tree, files)
    assert result.ok, [p.as_text() for p in result.errors]
    org = result.state.organizations["lakeview"]
    assert [w.key for w in org.capacity("er")] == ["w1"] and org.capacity("er")[
        0
    ].workflow == "student_requested"
    assert org.capacity_managed == frozenset({"er"})


def test_staff_are_the_same_person_whatever_the_case_of_their_email(write_tree: WriteTree) -> None:
    text = edit(
        (
            "staff:\n  - email: ann@lakeview.example.org\n    role: admin\n",
            "staff:\n  - {email: Ann@Lakeview.org, role: admin}\n  - {email: ann@lakeview.org, role: viewer}\n",
        )
    )
    _, result = load(write_tree, {"lakeview.yaml": text})
    assert any('staff member "ann@lakeview.org" is declared twice' in p.message for p in result.errors)
