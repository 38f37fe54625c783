"""From a configuration tree and a database to a plan: selection, one consistent read, the diff.

The steps the CLI's `plan` and `apply` share: choose the organizations, read their actual state in one
read transaction, compute the plan (pure), and give plan-time problems their file positions.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from sqlalchemy.engine import Connection

from nexus_config import DesiredState
from nexus_config.locations import Locator
from nexus_config.suggest import did_you_mean
from plan_apply.actual import ActualState, read_actual_state
from plan_apply.diff import PlanOptions, make_plan
from plan_apply.errors import UsageProblem
from plan_apply.plan import OrgPlan, Plan, PlanProblem

__all__ = ["build_plan", "located_plan", "parse_selectors", "selected_organizations", "utc_now"]


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_selectors(selectors: Sequence[str]) -> dict[str, str]:
    """`--selector key=value[,key=value]` → a mapping; every pair must match (AND)."""
    wanted: dict[str, str] = {}
    for selector in selectors:
        for pair in selector.split(","):
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise UsageProblem(f"--selector takes key=value pairs, not {pair!r}")
            wanted[key.strip()] = value.strip()
    return wanted


def selected_organizations(state: DesiredState, orgs: Sequence[str], selectors: Sequence[str]) -> list[str]:
    """The organizations a command works on, parents first; an unknown slug is a usage error."""
    unknown = [slug for slug in orgs if slug not in state.organizations]
    if unknown:
        hint = did_you_mean(unknown[0], state.organizations)
        raise UsageProblem(f'organization "{unknown[0]}" is not in the configuration{hint}')
    labels = parse_selectors(selectors)
    chosen = [
        slug
        for slug, org in state.organizations.items()
        if (not orgs or slug in orgs) and all(org.labels.get(k) == v for k, v in labels.items())
    ]
    if not chosen:
        raise UsageProblem("no organization matches the given --org/--selector")
    return chosen


def _school_keys(state: DesiredState, slugs: Sequence[str]) -> set[str]:
    return {s.key for slug in slugs for s in state.organizations[slug].schools or ()}


def _invitation_problems(plan: Plan, state: DesiredState, actual: ActualState) -> Plan:
    """A school that is not on the platform needs a `contact_email` to be invited (FORMAT.md)."""
    organizations = []
    for org in plan.organizations:
        desired = state.organizations[org.slug]
        extra: list[PlanProblem] = []
        for change in org.changes:
            if change.type != "school" or change.action.value != "create":
                continue
            key = change.address.rsplit("/", 1)[1]
            if key not in actual.platform_schools and not change.after.get("contact_email"):
                source = desired.sources.get(f"schools/{key}")
                message = (
                    f'school "{key}" is not on the platform yet: give it a contact_email so it can be invited'
                )
                problem = source.problem(message) if source else None
                extra.append(
                    PlanProblem(
                        message,
                        problem.file if problem else "",
                        address=change.address,
                        pointer=problem.pointer if problem else "",
                        document=problem.document if problem else 0,
                    )
                )
        organizations.append(replace(org, problems=org.problems + tuple(extra)) if extra else org)
    return replace(plan, organizations=tuple(organizations))


def build_plan(
    connection: Connection,
    state: DesiredState,
    selected: Sequence[str],
    *,
    database: str,
    options: PlanOptions | None = None,
    created_at: Callable[[], str] = utc_now,
) -> Plan:
    """Read the selected organizations' actual state in one read transaction and plan against it."""
    with connection.begin():
        actual = read_actual_state(connection, selected, _school_keys(state, selected))
    plan = make_plan(state, actual, selected, created_at=created_at(), database=database, options=options)
    plan = _invitation_problems(plan, state, actual)
    documents = {
        slug: {d.sha256: _relative(d.path) for d in state.organizations[slug].documents.values()}
        for slug in selected
    }
    return replace(
        plan,
        organizations=tuple(_with_documents(org, documents[org.slug]) for org in plan.organizations),
    )


def _relative(path: str) -> str:
    """Document paths in a saved plan are relative to where nexus runs (the checkout), when inside it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _with_documents(org: OrgPlan, documents: Mapping[str, str]) -> OrgPlan:
    needed = {
        c.after["document"]["sha256"]
        for c in org.changes
        if isinstance(c.after.get("document"), dict) and c.after["document"].get("sha256") in documents
    }
    return replace(org, documents={sha: documents[sha] for sha in sorted(needed)}) if needed else org


def located_plan(plan: Plan, locator: Locator) -> Plan:
    """Plan problems with their line and column (read from the configuration files)."""
    organizations = []
    for org in plan.organizations:
        if not org.problems:
            organizations.append(org)
            continue
        problems = []
        for problem in org.problems:
            if problem.file and not problem.line:
                line, column = locator.position(problem.file, problem.document, problem.pointer)
                problem = replace(problem, line=line, column=column)
            problems.append(problem)
        organizations.append(replace(org, problems=tuple(problems)))
    return replace(plan, organizations=tuple(organizations))
