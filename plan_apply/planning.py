"""From a configuration tree and a database to a plan: selection, one consistent read, the diff.

The steps the CLI's `plan` and `apply` share: choose the organizations, read their actual state in one
read transaction, compute the plan (pure), and give plan-time problems their file positions.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from sqlalchemy.engine import Connection

from nexus_config import DesiredState
from nexus_config.locations import Locator
from nexus_config.suggest import did_you_mean
from plan_apply.actual import ActualState, AppliedConfiguration, read_actual_state
from plan_apply.diff import PlanOptions, make_plan
from plan_apply.errors import UsageProblem
from plan_apply.plan import OrgPlan, Plan, PlanProblem

__all__ = [
    "build_plan",
    "clean_organizations",
    "config_hash_of",
    "in_selection",
    "located_plan",
    "parse_selectors",
    "parse_shard",
    "root_of",
    "selected_organizations",
    "shard_of",
    "utc_now",
]

ENGINE_VERSION = "nexus-plan-1"
"""Bump when normalization or diff rules change: every organization is then compared again in full."""


def config_hash_of(files: Mapping[str, str]) -> str:
    """The identity of the configuration an organization was applied from (its and its parents' files)."""
    payload = json.dumps([ENGINE_VERSION, sorted(files.items())])
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


def clean_organizations(
    applied: Mapping[str, AppliedConfiguration], hashes: Mapping[str, str]
) -> dict[str, frozenset[str]]:
    """Organizations whose files and database rows are both unchanged since their last apply."""
    clean = {}
    for slug, config in applied.items():
        if (
            config.untouched
            and config.files
            and config.config_hash == config_hash_of(config.files)
            and all(hashes.get(path) == sha for path, sha in config.files.items())
        ):
            clean[slug] = frozenset(config.files)
    return clean


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


def parse_shard(shard: str | None) -> tuple[int, int] | None:
    """`--shard I/N` (1-based) → (I, N)."""
    if shard is None:
        return None
    index, sep, count = shard.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise UsageProblem(f"--shard takes I/N with 1 ≤ I ≤ N, such as 2/8, not {shard!r}")
    return int(index), int(count)


def shard_of(root: str, count: int) -> int:
    """The 1-based shard of a family of organizations: stable across runs, machines and Python versions."""
    return int.from_bytes(hashlib.sha256(root.encode()).digest()[:8], "big") % count + 1


def root_of(slug: str, parents: Mapping[str, str | None]) -> str:
    """The top of an organization's parent chain (a cycle stops the walk)."""
    seen = {slug}
    while (parent := parents.get(slug)) and parent not in seen:
        seen.add(parent)
        slug = parent
    return slug


def in_selection(
    slug: str,
    labels: Mapping[str, str],
    orgs: Sequence[str],
    wanted: Mapping[str, str],
    shard: tuple[int, int] | None,
    parents: Mapping[str, str | None],
) -> bool:
    """Whether --org, --selector (parsed: `wanted`) and --shard take this organization."""
    if orgs and slug not in orgs:
        return False
    if not all(labels.get(k) == v for k, v in wanted.items()):
        return False
    return shard is None or shard_of(root_of(slug, parents), shard[1]) == shard[0]


def selected_organizations(
    state: DesiredState,
    orgs: Sequence[str],
    selectors: Sequence[str],
    skipped: Mapping[str, AppliedConfiguration] | None = None,
    shard: tuple[int, int] | None = None,
) -> list[str]:
    """The organizations a command works on, parents first; an unknown slug is a usage error.

    `skipped` are unchanged organizations that were not loaded (their labels and parent as last
    applied). `shard` (I, N) keeps the families (a root organization and its descendants) whose root
    hashes to shard I: N jobs with I = 1..N cover a fleet exactly once, parents with their children.
    """
    skipped = skipped or {}
    every = {slug: dict(org.labels) for slug, org in state.organizations.items()}
    every.update({slug: dict(c.labels) for slug, c in sorted(skipped.items()) if slug not in every})
    parents = {slug: c.parent for slug, c in skipped.items()} | {
        slug: org.parent for slug, org in state.organizations.items()
    }
    unknown = [slug for slug in orgs if slug not in every]
    if unknown:
        hint = did_you_mean(unknown[0], every)
        raise UsageProblem(f'organization "{unknown[0]}" is not in the configuration{hint}')
    wanted = parse_selectors(selectors)
    chosen = [
        slug for slug, labels in every.items() if in_selection(slug, labels, orgs, wanted, shard, parents)
    ]
    if shard is not None:
        return chosen  # a shard may be empty: another job covers those organizations
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
    file_hashes: Mapping[str, str] | None = None,
) -> Plan:
    """Read the selected organizations' actual state in one read transaction and plan against it.

    Selected organizations that are not in `state` (unchanged, skipped by an incremental load) appear
    in the plan as skipped, with no changes.
    """
    planned = [slug for slug in selected if slug in state.organizations]
    with connection.begin():
        actual = read_actual_state(connection, planned, _school_keys(state, planned))
    plan = make_plan(state, actual, planned, created_at=created_at(), database=database, options=options)
    plan = _invitation_problems(plan, state, actual)
    if file_hashes is not None:
        plan = replace(
            plan,
            organizations=tuple(
                replace(org, config_files=_config_files(state, org.slug, file_hashes))
                for org in plan.organizations
            ),
        )
    skipped = tuple(OrgPlan(slug, "", skipped=True) for slug in selected if slug not in state.organizations)
    if skipped:
        plan = replace(plan, organizations=plan.organizations + skipped)
    documents = {
        slug: {d.sha256: _relative(d.path) for d in state.organizations[slug].documents.values()}
        for slug in planned
    }
    return replace(
        plan,
        organizations=tuple(
            _with_documents(org, documents[org.slug]) if org.slug in documents else org
            for org in plan.organizations
        ),
    )


def _config_files(state: DesiredState, slug: str, hashes: Mapping[str, str]) -> dict[str, str]:
    """The files an organization's records come from: its own and its ancestors' (inherited steps)."""
    return {path: hashes[path] for org in state.chain(slug) for path in org.files if path in hashes}


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
