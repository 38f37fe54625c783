"""The section registry: one description per section, and everything else derived from it.

A new section is a model, a section module and a migration: the last test adds `preceptors` in a
registry of its own (the model, the `Section`, and the table the migration would create) and shows its
desired records written by the generic writers and read back by its own bulk read, unchanged.
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from nexus_config import DesiredOrganization, DesiredState, load_configuration
from nexus_config.models.common import Key, Name, Strict
from nexus_config.models.v1 import Step
from nexus_config.sections import DOCUMENT_SECTIONS, DocumentSection
from plan_apply.actual import ActualOrganization
from plan_apply.apply import ApplyOptions, apply_plan
from plan_apply.database import tables as t
from plan_apply.database.engine import engine_for
from plan_apply.database.reads import read_actual_state
from plan_apply.database.writes import WRITERS, WriteContext, registry
from plan_apply.guards import changed_fields
from plan_apply.plan import Action, Change
from plan_apply.planner import build_plan
from plan_apply.records import SECTION_OF, TYPES, desired_records
from plan_apply.sections import SECTIONS, STEPS, Section
from plan_apply.sections.section import Column, DesiredRecords, ReadBatch, ownership


def test_record_types_are_the_registry_in_its_order() -> None:
    assert tuple(section.type for section in SECTIONS) == TYPES
    assert list(SECTION_OF) == list(TYPES)
    assert {type_ for type_, _ in WRITERS} == set(TYPES)


def test_every_table_points_only_at_tables_of_its_own_or_earlier_sections() -> None:
    position = {section.table: number for number, section in enumerate(SECTIONS)}
    for number, section in enumerate(SECTIONS):
        for key in t.metadata.tables[section.table].foreign_keys:
            referred = key.column.table.name
            assert position.get(referred, -1) <= number, f"{section.table} points at later {referred}"


def test_every_document_section_has_its_section_module() -> None:
    described = {section.document.key for section in SECTIONS if section.document is not None}
    assert described == {d.key for d in DOCUMENT_SECTIONS} | {"capacity"}


def test_export_leaves_out_the_defaults_the_model_declares() -> None:
    assert STEPS.export_defaults["completed_by"] == Step.model_fields["completed_by"].default
    assert STEPS.export_defaults["required"] is Step.model_fields["required"].default


# --- a section added in a registry of its own -------------------------------------------------------------


class Preceptor(Strict):
    """The model: a clinician who supervises students."""

    key: Key
    name: Name
    specialty: Name | None = None
    accepts_students: bool = True


def _preceptor_fields(preceptor: Preceptor) -> dict[str, Any]:
    return {"name": preceptor.name, "specialty": preceptor.specialty, "accepts": preceptor.accepts_students}


def _desired(section: Section, org: DesiredOrganization, state: DesiredState) -> DesiredRecords:
    return section.listed(org, _preceptor_fields)


def _read(batch: ReadBatch) -> None:
    table = t.metadata.tables["preceptors"]
    for row in batch.connection.execute(sa.select(table).where(table.c.org_id.in_(batch.ids))):
        fields = {"name": row.name, "specialty": row.specialty, "accepts": bool(row.accepts_students)}
        slug = batch.by_id[row.org_id]
        batch.add(PRECEPTORS.record(slug, row.key, fields, extra={"id": row.id}, **ownership(row)))


PRECEPTORS = Section(  # the section module
    type="preceptor",
    section="preceptors",
    document=DocumentSection("preceptors", f"{__name__}:Preceptor", "preceptor key"),
    desired=_desired,
    read=_read,
    table="preceptors",
    columns={
        "name": Column("name"),
        "specialty": Column("specialty"),
        "accepts": Column("accepts_students", bool),
    },
)
REGISTRY = (*SECTIONS, PRECEPTORS)


def _preceptors_table(metadata: sa.MetaData) -> sa.Table:
    """The migration: the table, with the ownership columns every configurable table has."""
    return sa.Table(
        "preceptors",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("specialty", sa.String(200)),
        sa.Column("accepts_students", sa.Boolean, nullable=False),
        sa.Column("managed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("applied", sa.JSON),
        sa.UniqueConstraint("org_id", "key"),
    )


@pytest.fixture
def engine(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    path = tmp_path / "platform.db"
    shutil.copyfile(sqlite_template, path)
    metadata = sa.MetaData()
    for table in t.metadata.tables.values():
        table.to_metadata(metadata)
    preceptors = _preceptors_table(metadata)
    monkeypatch.setattr(t, "metadata", metadata)
    engine = engine_for(f"sqlite:///{path}")
    with engine.begin() as connection:
        preceptors.create(connection)
    yield engine
    engine.dispose()


ORG = """
apiVersion: nexus/v1
kind: Organization
metadata: {slug: lakeview}
profile: {name: Lakeview Clinic, type: clinic}
"""


def _read_org(engine: sa.Engine) -> ActualOrganization:
    with engine.connect() as connection:
        return read_actual_state(connection, ["lakeview"], sections=REGISTRY).organizations["lakeview"]


def _write(engine: sa.Engine, actual: ActualOrganization, changes: list[Change]) -> None:
    ids = {address: int(r.extra["id"]) for address, r in actual.records.items() if "id" in r.extra}
    writers = registry(REGISTRY)
    with engine.begin() as connection:
        now = datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC)
        ctx = WriteContext(connection, actual.slug, actual.id, dict(actual.records), ids, {}, now)
        writers[(changes[0].type, changes[0].action)](ctx, changes)


def test_a_section_of_its_own_registry_is_written_and_read_back_unchanged(
    engine: sa.Engine, write_tree: Callable[..., Path]
) -> None:
    loaded = load_configuration([write_tree({"org.yaml": ORG})])
    with engine.connect() as connection:
        plan = build_plan(connection, loaded.state, ["lakeview"], database="db")
    assert apply_plan(engine, plan, ApplyOptions(actor="test")).ok
    org = loaded.state.organizations["lakeview"]
    people = (Preceptor(key="dr-lee", name="Dr Lee"), Preceptor(key="dr-ng", name="Dr Ng", specialty="ER"))
    org = replace(org, sections={**org.sections, "preceptors": people})
    records, scopes = desired_records(org, loaded.state, REGISTRY)
    wanted = {r.address: r for r in records if r.type == "preceptor"}

    before = _read_org(engine)
    missing = [a for a in wanted if a not in before.records]
    _write(
        engine, before, [Change(a, "preceptor", Action.CREATE, {}, dict(wanted[a].fields)) for a in missing]
    )
    after = _read_org(engine)

    assert "preceptors" in scopes
    assert sorted(missing) == ["lakeview/preceptors/dr-lee", "lakeview/preceptors/dr-ng"]
    assert {a: changed_fields(r, after.records[a]) for a, r in wanted.items()} == {a: [] for a in wanted}


def test_a_section_of_its_own_registry_deletes_with_the_generic_writer(
    engine: sa.Engine, write_tree: Callable[..., Path]
) -> None:
    loaded = load_configuration([write_tree({"org.yaml": ORG})])
    with engine.connect() as connection:
        plan = build_plan(connection, loaded.state, ["lakeview"], database="db")
    assert apply_plan(engine, plan, ApplyOptions(actor="test")).ok
    fields = _preceptor_fields(Preceptor(key="dr-lee", name="Dr Lee"))
    address = PRECEPTORS.address("lakeview", "dr-lee")
    _write(engine, _read_org(engine), [Change(address, "preceptor", Action.CREATE, {}, fields)])

    _write(engine, _read_org(engine), [Change(address, "preceptor", Action.DELETE, fields, {})])

    assert address not in _read_org(engine).records
