"""The semantic rules of FORMAT.md: references, pairings, subsets and dates across a merged tree.

Each rule is a small function over one organization (and the tree, for the parent chain); each
problem points at the referring field, in the file that declared it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from nexus_config.ancestry import lineage
from nexus_config.coverage import (
    covered_organizations,
    covers_descendant,
    descendants,
    linked_services,
    school_keys,
    split_reference,
)
from nexus_config.desired import DesiredOrganization, Source
from nexus_config.models.v1 import Agreement, Capacity, Service, Step
from nexus_config.problems import Problem
from nexus_config.suggest import did_you_mean

__all__ = ["RULES", "parent_problems", "rule_problems"]

Organizations = Mapping[str, DesiredOrganization]


def parent_problems(orgs: Organizations) -> list[Problem]:
    """Parents exist in the same tree and parent chains have no cycles (walked iteratively)."""
    problems = []
    acyclic: set[str] = set()
    for slug, org in orgs.items():
        if org.parent is None:
            continue
        source = org.sources["metadata"]
        if org.parent not in orgs:
            others = [other for other in orgs if other != slug]  # never "did you mean" itself
            hint = did_you_mean(org.parent, others) or (
                " (if it is declared elsewhere, pass the whole configuration tree and choose "
                "organizations with --org)"
            )
            problems.append(
                source.problem(
                    f'parent "{org.parent}" is not declared in this configuration tree{hint}',
                    "parent",
                    code="ref.parent",
                )
            )
            continue
        path = [slug]
        seen = {slug: 0}
        current: str | None = org.parent
        while current is not None and current in orgs and current not in acyclic:
            if current in seen:
                cycle = " → ".join([*path[seen[current] :], current])
                problems.append(
                    source.problem(f"parent chain has a cycle: {cycle}", "parent", code="ref.cycle")
                )
                break
            seen[current] = len(path)
            path.append(current)
            current = orgs[current].parent
        else:
            acyclic.update(path)  # a chain already walked is not walked again: linear for long chains
    return problems


def _src(org: DesiredOrganization, address: str) -> Source:
    return org.sources[address]


def _step_problems(org: DesiredOrganization, orgs: Organizations) -> Iterator[Problem]:
    known = school_keys(org, orgs)
    schools = known or set()
    for step in org.steps or ():
        source = _src(org, f"steps/{step.key}")
        if step.type == "form" and not step.fields:
            yield source.problem('a step of type "form" needs `fields`', "type", code="rule.fields")
        if step.type != "form" and step.fields is not None:
            yield source.problem(
                f'`fields` are only for steps of type "form" (this one is "{step.type}")',
                "fields",
                code="rule.fields",
                at_key=True,
            )
        seen: dict[str, int] = {}
        for i, form_field in enumerate(step.fields or ()):
            if form_field.key in seen:
                yield source.problem(
                    f'form field key "{form_field.key}" is declared twice in step "{step.key}"',
                    "fields",
                    i,
                    "key",
                    code="merge.duplicate",
                    related=(source.place("fields", seen[form_field.key], "key"),),
                )
            seen.setdefault(form_field.key, i)
            if form_field.type == "select" and not form_field.options:
                yield source.problem(
                    'a field of type "select" needs `options`', "fields", i, "type", code="rule.options"
                )
            if form_field.type != "select" and form_field.options is not None:
                yield source.problem(
                    f'`options` are only for fields of type "select" (this one is "{form_field.type}")',
                    "fields",
                    i,
                    "options",
                    code="rule.options",
                    at_key=True,
                )
        if step.applies_to is not None and known is not None:
            for i, school in enumerate(step.applies_to.schools or ()):
                if school not in schools:
                    yield source.problem(
                        f'unknown school "{school}" in applies_to{did_you_mean(school, schools)}',
                        "applies_to",
                        "schools",
                        i,
                        code="ref.school",
                    )


def _chain(org: DesiredOrganization, orgs: Organizations) -> list[DesiredOrganization]:
    """The organization and its ancestors in `orgs` (the one parent walk: `ancestry.lineage`)."""
    return [
        org,
        *(
            orgs[s]
            for s in lineage(org.slug, lambda s: orgs[s].parent if s in orgs else org.parent, orgs)[1:]
        ),
    ]


def _resolve_step(key: str, org: DesiredOrganization, orgs: Organizations) -> Step | None:
    for current in _chain(org, orgs):
        for step in current.steps or ():
            if step.key == key:
                return step
    return None


def _visible_step_keys(org: DesiredOrganization, orgs: Organizations) -> set[str]:
    return {s.key for current in _chain(org, orgs) for s in current.steps or ()}


def _service_problems(org: DesiredOrganization, orgs: Organizations) -> Iterator[Problem]:
    agreements = {a.key: a for a in org.agreements or ()}
    for service in org.services or ():
        source = _src(org, f"services/{service.key}")
        for i, key in enumerate(service.steps or ()):
            if _resolve_step(key, org, orgs) is None:
                where = "this organization or its parents" if org.parent else "this organization"
                if source.origin("steps") is not source:  # said at the template's line: name the user
                    where = f'"{org.slug}"' + (" or its parents" if org.parent else "")
                    where += f', whose services take it from template "{org.service_templates[service.key]}"'
                hint = did_you_mean(key, _visible_step_keys(org, orgs))
                yield source.problem(
                    f'step "{key}" is not declared in {where}{hint}', "steps", i, code="ref.step"
                )
        for window in service.capacity or ():
            yield from _capacity_problems(org, service, window, agreements, orgs)


def _ancestor_agreement(
    org: DesiredOrganization, orgs: Organizations, source: Source, reference: str
) -> tuple[Agreement | None, list[Problem]]:
    """The parent's agreement a qualified `agreement: parent-slug/key` names, if it covers `org`."""
    owner, key = split_reference(reference)
    chain = [o.slug for o in _chain(org, orgs)]
    if owner == org.slug:
        return None, [
            source.problem(
                f'agreement "{reference}" is this organization\'s own: name it by its key alone ("{key}")',
                "agreement",
                code="ref.agreement",
            )
        ]
    if owner not in chain:
        return None, [
            source.problem(
                f'agreement "{reference}": "{owner}" is not a parent of organization "{org.slug}"'
                f"{did_you_mean(str(owner), chain[1:])}",
                "agreement",
                code="ref.agreement",
            )
        ]
    declared = {a.key: a for a in orgs[str(owner)].agreements or ()}
    agreement = declared.get(key)
    if agreement is None:
        return None, [
            source.problem(
                f'agreement "{key}" is not declared in organization "{owner}"{did_you_mean(key, declared)}',
                "agreement",
                code="ref.agreement",
            )
        ]
    if not covers_descendant(agreement, org):
        return None, [
            source.problem(
                f'agreement "{reference}" does not cover organization "{org.slug}"; add it to the '
                "agreement's `covers`",
                "agreement",
                code="rule.coverage",
            )
        ]
    return agreement, []


def _capacity_problems(
    org: DesiredOrganization,
    service: Service,
    window: Capacity,
    agreements: Mapping[str, Agreement],
    orgs: Organizations,
) -> Iterator[Problem]:
    source = _src(org, f"services/{service.key}/capacity/{window.key}")
    name = f'capacity window "{window.key}"'
    for i, discipline in enumerate(window.disciplines):
        if discipline not in service.disciplines:
            yield source.problem(
                f'discipline "{discipline}" is not one of service "{service.key}"\'s disciplines '
                f"({', '.join(service.disciplines)})",
                "disciplines",
                i,
                code="rule.disciplines",
            )
    if window.end_date < window.start_date:
        yield source.problem(
            f"end_date {window.end_date} is before start_date {window.start_date}",
            "end_date",
            code="rule.dates",
        )
    if window.workflow == "student_requested":
        if window.agreement is not None:
            yield source.problem(
                f"{name} is student_requested: it is open to every school and takes no `agreement`",
                "agreement",
                code="rule.workflow",
                at_key=True,
            )
        return
    if window.agreement is None:
        yield source.problem(
            f"{name} is coordinator_scheduled: it needs the `agreement` it is scheduled under",
            "workflow",
            code="rule.workflow",
        )
        return
    if "/" in window.agreement:
        agreement, problems = _ancestor_agreement(org, orgs, source, window.agreement)
        yield from problems
        if agreement is None:
            return
    else:
        agreement = agreements.get(window.agreement)
    if agreement is None:
        inherited = [
            f"{o.slug}/{a.key}"
            for o in _chain(org, orgs)[1:]
            for a in o.agreements or ()
            if a.key == window.agreement
        ]
        hint = (
            f' (did you mean "{inherited[0]}"?)' if inherited else did_you_mean(window.agreement, agreements)
        )
        yield source.problem(
            f'agreement "{window.agreement}" is not declared in organization "{org.slug}"{hint}',
            "agreement",
            code="ref.agreement",
        )
        return
    if service.key not in agreement.services:
        yield source.problem(
            f'agreement "{agreement.key}" does not cover service "{service.key}"; add it to the '
            "agreement's services",
            "agreement",
            code="rule.coverage",
        )
    for i, discipline in enumerate(window.disciplines):
        if discipline not in agreement.disciplines:
            yield source.problem(
                f'discipline "{discipline}" is not covered by agreement "{agreement.key}" '
                f"({', '.join(agreement.disciplines)})",
                "disciplines",
                i,
                code="rule.disciplines",
            )
    if window.start_date < agreement.start_date:
        yield source.problem(
            f'start_date {window.start_date} is before agreement "{agreement.key}" starts ({agreement.start_date})',
            "start_date",
            code="rule.dates",
        )
    if agreement.end_date is not None and window.end_date > agreement.end_date:
        yield source.problem(
            f'end_date {window.end_date} is after agreement "{agreement.key}" ends ({agreement.end_date})',
            "end_date",
            code="rule.dates",
        )


def _covers_problems(
    org: DesiredOrganization, agreement: Agreement, orgs: Organizations
) -> Iterator[Problem]:
    """Each slug `covers` lists is a descendant of the organization."""
    if not isinstance(agreement.covers, list):
        return
    source = _src(org, f"agreements/{agreement.key}")
    below = descendants(org.slug, orgs)
    for i, slug in enumerate(agreement.covers):
        if slug not in below:
            yield source.problem(
                f'organization "{slug}" is not a facility of "{org.slug}" (its `parent` chain does not lead '
                f"here){did_you_mean(slug, below)}",
                "covers",
                i,
                code="ref.covers",
            )


def _agreement_problems(org: DesiredOrganization, orgs: Organizations) -> Iterator[Problem]:
    known = school_keys(org, orgs)
    schools = known or set()
    for agreement in org.agreements or ():
        source = _src(org, f"agreements/{agreement.key}")
        if known is not None and agreement.school not in schools:
            where = "this organization or its parents" if org.parent else f'organization "{org.slug}"'
            yield source.problem(
                f'school "{agreement.school}" is not among the schools of {where}'
                f"{did_you_mean(agreement.school, schools)}",
                "school",
                code="ref.school",
            )
        elif known is None:
            yield source.problem(
                f'school "{agreement.school}" is not declared: add it under `schools`',
                "school",
                code="ref.school",
            )
        yield from _covers_problems(org, agreement, orgs)
        services = {key for _, key in linked_services(org.slug, agreement, orgs)}
        candidates = (
            {
                s.key
                for covered in covered_organizations(org.slug, agreement, orgs)
                for s in orgs[covered].services or ()
            }
            if agreement.covers is not None
            else {s.key for s in org.services or ()}
        )
        for i, key in enumerate(agreement.services):
            if key not in services:
                where = (
                    f'any organization agreement "{agreement.key}" covers'
                    if agreement.covers is not None
                    else f'organization "{org.slug}"'
                )
                yield source.problem(
                    f'service "{key}" is not declared in {where}{did_you_mean(key, candidates)}',
                    "services",
                    i,
                    code="ref.service",
                )
        if agreement.end_date is not None and agreement.end_date < agreement.start_date:
            yield source.problem(
                f"end_date {agreement.end_date} is before start_date {agreement.start_date}",
                "end_date",
                code="rule.dates",
            )


def _rename_problems(org: DesiredOrganization, orgs: Organizations) -> Iterator[Problem]:
    scopes: list[tuple[str, list[tuple[str, tuple[str, ...] | None]]]] = [
        ("steps", [(s.key, tuple(s.previous_keys) if s.previous_keys else None) for s in org.steps or ()]),
        (
            "services",
            [(s.key, tuple(s.previous_keys) if s.previous_keys else None) for s in org.services or ()],
        ),
        (
            "agreements",
            [(a.key, tuple(a.previous_keys) if a.previous_keys else None) for a in org.agreements or ()],
        ),
    ]
    for service in org.services or ():
        scopes.append(
            (
                f"services/{service.key}/capacity",
                [
                    (c.key, tuple(c.previous_keys) if c.previous_keys else None)
                    for c in service.capacity or ()
                ],
            )
        )
    for scope, items in scopes:
        current = {key for key, _ in items}
        claimed: dict[str, str] = {}
        for key, previous in items:
            source = _src(org, f"{scope}/{key}")
            for i, old in enumerate(previous or ()):
                if "/" in old:
                    yield from _moved_agreement_problems(org, orgs, source, i, old)
                elif old == key:
                    yield source.problem(
                        f'previous key "{old}" is this item\'s own key; list only keys it used to have',
                        "previous_keys",
                        i,
                        code="rule.rename",
                    )
                elif old in current:
                    yield source.problem(
                        f'previous key "{old}" is still the key of another item; a rename needs the old key gone',
                        "previous_keys",
                        i,
                        code="rule.rename",
                    )
                elif old in claimed:
                    yield source.problem(
                        f'previous key "{old}" is also claimed by "{claimed[old]}"',
                        "previous_keys",
                        i,
                        code="rule.rename",
                        related=(_src(org, f"{scope}/{claimed[old]}").place("previous_keys"),),
                    )
                claimed.setdefault(old, key)


def _moved_agreement_problems(
    org: DesiredOrganization, orgs: Organizations, source: Source, i: int, old: str
) -> Iterator[Problem]:
    """A qualified previous key names an agreement of a parent or a descendant that is declared no more."""
    owner, key = split_reference(old)
    family = [o.slug for o in _chain(org, orgs)[1:]] + descendants(org.slug, orgs)
    if owner not in family:
        yield source.problem(
            f'previous key "{old}": "{owner}" is neither a parent nor a facility of "{org.slug}"'
            f"{did_you_mean(str(owner), family)}",
            "previous_keys",
            i,
            code="rule.rename",
        )
    elif any(a.key == key for a in orgs[str(owner)].agreements or ()):
        yield source.problem(
            f'previous key "{old}" is still declared by "{owner}"; a move needs it gone there',
            "previous_keys",
            i,
            code="rule.rename",
        )


Rule = Callable[[DesiredOrganization, Organizations], Iterator[Problem]]
RULES: tuple[Rule, ...] = (_step_problems, _service_problems, _agreement_problems, _rename_problems)


def rule_problems(orgs: Organizations) -> list[Problem]:
    """Every semantic problem of every organization (parents first checked by `parent_problems`)."""
    problems = parent_problems(orgs)
    for org in orgs.values():
        for rule in RULES:
            problems.extend(rule(org, orgs))
    return problems
