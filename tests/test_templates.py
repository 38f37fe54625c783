"""Service templates: a service naming a template is the template's fields overridden by its own, expanded
at load time; every problem points at the line that is wrong, the template's or the service's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from nexus_config import LoadResult, load_configuration
from nexus_config.templates import merged_fields

WriteTree = Callable[..., Path]

SYSTEM = """\
apiVersion: nexus/v1
kind: Organization
metadata: {slug: valley-health}
profile: {name: Valley Health, type: health_system}
steps:
  - {key: hipaa, stage: onboarding, name: HIPAA, type: upload}
templates:
  - key: family-medicine
    name: Family Medicine
    description: Outpatient primary care.
    location: Main clinic
    disciplines: [medicine, nursing]
    specialties: [Sports Medicine, Geriatrics]
    steps: [hipaa]
"""


def _facility(services: str, slug: str = "valley-east", parent: str = "valley-health") -> str:
    return (
        "apiVersion: nexus/v1\nkind: Organization\n"
        f"metadata: {{slug: {slug}, parent: {parent}}}\n"
        f"profile: {{name: {slug}, type: clinic}}\n"
        f"services:\n{services}"
    )


def _load(write_tree: WriteTree, files: dict[str, str]) -> LoadResult:
    return load_configuration([write_tree(files)])


def _service(result: LoadResult, slug: str = "valley-east", key: str = "fm") -> dict[str, Any]:
    assert result.ok, result.errors
    services = result.state.organizations[slug].services or ()
    service = next(s for s in services if s.key == key)
    return {name: getattr(service, name) for name in service.model_fields_set}


def _errors(result: LoadResult) -> list[tuple[str, int, str]]:
    return [(Path(p.file).name, p.line, p.message) for p in result.errors]


def test_a_service_takes_every_field_it_does_not_write_from_its_template(write_tree: WriteTree) -> None:
    result = _load(
        write_tree, {"s.yaml": SYSTEM, "e.yaml": _facility("  - {key: fm, template: family-medicine}\n")}
    )
    assert _service(result) == {
        "key": "fm",
        "name": "Family Medicine",
        "description": "Outpatient primary care.",
        "location": "Main clinic",
        "disciplines": ["medicine", "nursing"],
        "specialties": ["Sports Medicine", "Geriatrics"],
        "steps": ["hipaa"],
        "capacity": None,  # not managed: a template never holds capacity windows
    }


def test_a_scalar_the_service_writes_replaces_the_templates(write_tree: WriteTree) -> None:
    facility = _facility("  - {key: fm, template: family-medicine, location: Building B}\n")
    assert _service(_load(write_tree, {"s.yaml": SYSTEM, "e.yaml": facility}))["location"] == "Building B"


def test_a_list_the_service_writes_replaces_the_templates_whole(write_tree: WriteTree) -> None:
    facility = _facility("  - {key: fm, template: family-medicine, specialties: [Obstetrics]}\n")
    assert _service(_load(write_tree, {"s.yaml": SYSTEM, "e.yaml": facility}))["specialties"] == [
        "Obstetrics"
    ]


def test_a_null_the_service_writes_clears_the_templates_value(write_tree: WriteTree) -> None:
    facility = _facility("  - {key: fm, template: family-medicine, location: null}\n")
    assert _service(_load(write_tree, {"s.yaml": SYSTEM, "e.yaml": facility}))["location"] is None


def test_mappings_merge_key_by_key_recursively() -> None:
    template = {"name": "A", "address": {"city": "X", "geo": {"lat": 1, "lon": 2}}, "tags": [1, 2]}
    own = {"address": {"geo": {"lat": 5}}, "tags": [3]}
    assert merged_fields(template, own) == {
        "name": "A",
        "address": {"city": "X", "geo": {"lat": 5, "lon": 2}},
        "tags": [3],
    }


def test_capacity_windows_stay_the_services_own(write_tree: WriteTree) -> None:
    window = (
        "    capacity:\n      - {key: fall, name: Fall, workflow: student_requested, disciplines: [medicine],"
        " start_date: 2026-09-01, end_date: 2026-12-01, slots: 2}\n"
    )
    facility = _facility("  - key: fm\n    template: family-medicine\n" + window)
    result = _load(write_tree, {"s.yaml": SYSTEM, "e.yaml": facility})
    assert [w.key for w in _service(result)["capacity"]] == ["fall"]
    assert result.state.organizations["valley-east"].capacity_managed == frozenset({"fm"})


def test_a_template_is_found_up_the_parent_chain_nearest_first(write_tree: WriteTree) -> None:
    region = _facility("  []\n", slug="valley-north", parent="valley-health").replace(
        "services:\n  []\n",
        "templates:\n  - {key: family-medicine, name: North FM, disciplines: [nursing]}\n",
    )
    clinic = _facility(
        "  - {key: fm, template: family-medicine}\n", slug="north-clinic", parent="valley-north"
    )
    result = _load(write_tree, {"s.yaml": SYSTEM, "n.yaml": region, "c.yaml": clinic})
    service = _service(result, "north-clinic")
    assert (service["name"], "location" in service) == ("North FM", False)  # templates do not stack
    assert result.state.organizations["north-clinic"].service_templates == {
        "fm": "valley-north/family-medicine"
    }


def test_a_qualified_template_names_the_ancestor_that_declares_it(write_tree: WriteTree) -> None:
    region = _facility("  []\n", slug="valley-north", parent="valley-health").replace(
        "services:\n  []\n",
        "templates:\n  - {key: family-medicine, name: North FM, disciplines: [nursing]}\n",
    )
    clinic = _facility(
        "  - {key: fm, template: valley-health/family-medicine}\n", slug="north-clinic", parent="valley-north"
    )
    result = _load(write_tree, {"s.yaml": SYSTEM, "n.yaml": region, "c.yaml": clinic})
    assert _service(result, "north-clinic")["name"] == "Family Medicine"


def test_an_unknown_template_is_refused_at_its_line_with_a_suggestion(write_tree: WriteTree) -> None:
    facility = _facility("  - key: fm\n    template: family-medicin\n")
    result = _load(write_tree, {"s.yaml": SYSTEM, "e.yaml": facility})
    assert _errors(result) == [
        (
            "e.yaml",
            7,
            'template "family-medicin" is not declared in this organization or its parents '
            '(did you mean "family-medicine"?)',
        )
    ]


def test_a_qualified_template_outside_the_parent_chain_is_refused(write_tree: WriteTree) -> None:
    other = _facility("  []\n", slug="hill-health", parent="valley-health")
    facility = _facility("  - key: fm\n    template: hill-health/family-medicine\n")
    result = _load(write_tree, {"s.yaml": SYSTEM, "h.yaml": other, "e.yaml": facility})
    assert [(f, line) for f, line, _ in _errors(result)] == [("e.yaml", 7)]
    assert 'organization "hill-health" is not "valley-east" or one of its parents' in result.errors[0].message


def test_a_template_cannot_use_another_template(write_tree: WriteTree) -> None:
    nested = SYSTEM + "  - key: rural-fm\n    template: family-medicine\n"
    result = _load(write_tree, {"s.yaml": nested})
    assert _errors(result) == [
        (
            "s.yaml",
            16,
            "a template cannot use another template (templates do not nest): write its fields here, "
            "or use the other template from the services",
        )
    ]


def test_a_wrong_value_from_the_template_is_reported_at_the_templates_line(write_tree: WriteTree) -> None:
    system = SYSTEM.replace("steps: [hipaa]", "steps: [hipaa, badge]")
    facility = _facility(
        "  - {key: fm, template: family-medicine}\n  - {key: fm2, template: family-medicine}\n"
    )
    result = _load(write_tree, {"s.yaml": system, "e.yaml": facility})
    assert _errors(result) == [
        (
            "s.yaml",
            14,
            'step "badge" is not declared in "valley-east" or its parents, whose services take it from '
            'template "valley-health/family-medicine"',
        )
    ]  # once, though two services use it


def test_a_step_a_template_lists_is_reported_for_each_organization_that_lacks_it(
    write_tree: WriteTree,
) -> None:
    system = SYSTEM.replace("steps: [hipaa]", "steps: [hipaa, badge]")
    knows = _facility("  - {key: fm, template: family-medicine}\n", slug="valley-west").replace(
        "services:", "steps: [{key: badge, stage: onboarding, name: Badge, type: upload}]\nservices:"
    )
    lacks = _facility("  - {key: fm, template: family-medicine}\n")
    result = _load(write_tree, {"s.yaml": system, "w.yaml": knows, "e.yaml": lacks})
    assert [message for _, _, message in _errors(result)] == [
        'step "badge" is not declared in "valley-east" or its parents, whose services take it from '
        'template "valley-health/family-medicine"'
    ]


def test_a_wrong_value_the_service_overrides_is_reported_at_the_services_line(write_tree: WriteTree) -> None:
    facility = _facility("  - key: fm\n    template: family-medicine\n    steps: [badge]\n")
    result = _load(write_tree, {"s.yaml": SYSTEM, "e.yaml": facility})
    assert [(f, line) for f, line, _ in _errors(result)] == [("e.yaml", 8)]


def test_a_service_that_neither_it_nor_its_template_names_is_refused(write_tree: WriteTree) -> None:
    system = SYSTEM + "  - {key: bare, disciplines: [nursing]}\n"
    facility = _facility("  - key: fm\n    template: bare\n")
    result = _load(write_tree, {"s.yaml": system, "e.yaml": facility})
    assert _errors(result) == [
        ("e.yaml", 7, 'service "fm" has no name: write it here or in template "valley-health/bare"')
    ]


def test_a_template_key_declared_twice_is_refused(write_tree: WriteTree) -> None:
    system = SYSTEM + "  - {key: family-medicine, name: Again}\n"
    result = _load(write_tree, {"s.yaml": system})
    assert [(f, line) for f, line, _ in _errors(result)] == [("s.yaml", 15)]
    assert "declared twice" in result.errors[0].message


def test_templates_null_is_refused(write_tree: WriteTree) -> None:
    system = SYSTEM.split("templates:")[0] + "templates: null\n"
    result = _load(write_tree, {"s.yaml": system})
    assert [p.code for p in result.errors] == ["merge.null_section"]


def test_a_templated_service_loads_as_the_same_service_written_out(write_tree: WriteTree) -> None:
    templated = _load(
        write_tree, {"s.yaml": SYSTEM, "e.yaml": _facility("  - {key: fm, template: family-medicine}\n")}
    )
    written = SYSTEM.split("templates:")[0]
    flat = _facility(
        "  - key: fm\n    name: Family Medicine\n    description: Outpatient primary care.\n"
        "    location: Main clinic\n    disciplines: [medicine, nursing]\n"
        "    specialties: [Sports Medicine, Geriatrics]\n    steps: [hipaa]\n"
    )
    plain = load_configuration([write_tree({"s.yaml": written, "e.yaml": flat}, root="flat")])
    assert (
        templated.state.organizations["valley-east"].services
        == plain.state.organizations["valley-east"].services
    )


def test_a_null_clearing_a_value_every_service_needs_says_so_at_its_line(write_tree: WriteTree) -> None:
    facility = _facility("  - key: fm\n    template: family-medicine\n    name: null\n")
    result = _load(write_tree, {"s.yaml": SYSTEM, "e.yaml": facility})
    assert _errors(result) == [
        (
            "e.yaml",
            8,
            'service "fm" has no name: null clears the value of template "valley-health/family-medicine",'
            " and every service needs one",
        )
    ]
