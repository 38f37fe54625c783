"""The `nexus/v1` document: the source of truth for `schemas/v1/` (generated, committed, drift-tested)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from nexus_config.models.common import (
    NOT_NULL,
    CompletedBy,
    Date,
    Discipline,
    FormField,
    Key,
    LabelKey,
    Name,
    Profile,
    School,
    Slug,
    Staff,
    Stage,
    StepType,
    Strict,
    Text,
    Visibility,
    Workflow,
)

__all__ = [
    "Agreement",
    "AppliesTo",
    "Capacity",
    "CapacityBody",
    "DocumentV1",
    "Metadata",
    "Service",
    "ServiceBody",
    "Step",
    "StepBody",
]

PreviousKeys = Annotated[
    list[Key] | None,
    Field(default=None, description="Former keys of this item: turns a key change into an in-place rename."),
]
Protect = Annotated[
    bool | None,
    Field(
        default=None,
        description="The database remembers it: no plan may delete or archive the item until a "
        "configuration with `protect: false` has been applied.",
    ),
]


class Metadata(Strict):
    slug: Slug
    parent: Slug | None = Field(
        default=None, description="The parent organization, declared in the same tree."
    )
    labels: dict[LabelKey, Annotated[str, StringConstraints(max_length=63)]] | None = Field(
        default=None, description="For selecting organizations in bulk (`--selector key=value`)."
    )


class AppliesTo(Strict):
    """Each list empty or absent means all."""

    workflows: list[Workflow] | None = None
    disciplines: list[Discipline] | None = None
    schools: list[Key] | None = None


class StepBody(Strict):
    """A step's fields except its stage (v1beta1 groups steps by stage instead)."""

    key: Key
    name: Name
    type: StepType
    completed_by: CompletedBy = "student"
    description: Text | None = None
    instructions: Text | None = None
    required: bool = True
    due_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    expires_after_days: Annotated[int, Field(ge=1, le=36500)] | None = None
    applies_to: AppliesTo | None = None
    all_services: bool = False
    fields: list[FormField] | None = Field(default=None, description="Only, and required, for `type: form`.")
    previous_keys: PreviousKeys = None


class Step(StepBody):
    stage: Stage


class CapacityBody(Strict):
    """A capacity window's fields, except how it names its workflow (renamed between versions)."""

    key: Key
    name: Name
    agreement: Key | None = Field(
        default=None, description="Required for coordinator_scheduled, forbidden for student_requested."
    )
    disciplines: list[Discipline]
    start_date: Date
    end_date: Date
    slots: Annotated[int, Field(ge=1, le=1000)]
    max_group_size: Annotated[int, Field(ge=1, le=50)] = 1
    allow_specific_dates: bool = False
    visibility: Visibility = "published"
    description: Text | None = None
    protect: Protect = None
    previous_keys: PreviousKeys = None


class Capacity(CapacityBody):
    workflow: Workflow


class ServiceBody(Strict):
    key: Key
    name: Name
    description: Text | None = None
    location: Annotated[str, StringConstraints(max_length=200)] | None = None
    department: Annotated[str, StringConstraints(max_length=200)] | None = None
    disciplines: Annotated[list[Discipline], Field(min_length=1)]
    specialties: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = None
    steps: list[Key] | None = Field(
        default=None, description="Step keys, resolved in this organization, then up its parent chain."
    )
    protect: Protect = None
    previous_keys: PreviousKeys = None


class Service(ServiceBody):
    capacity: Annotated[list[Capacity] | None, NOT_NULL] = None


class Agreement(Strict):
    key: Key
    school: Key
    name: Name
    description: Text | None = None
    start_date: Date
    end_date: Date | None = None
    reminder_days: Annotated[int, Field(ge=1, le=365)] | None = None
    services: Annotated[list[Key], Field(min_length=1)]
    disciplines: Annotated[list[Discipline], Field(min_length=1)]
    document: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = Field(
        default=None,
        description="The signed agreement (PDF or DOCX, at most 20 MB), relative to this file.",
    )
    submit: bool = False
    protect: Protect = None
    previous_keys: PreviousKeys = None


class DocumentV1(Strict):
    """One YAML document of apiVersion `nexus/v1`: some or all sections of one organization."""

    apiVersion: Literal["nexus/v1"]
    kind: Literal["Organization"]
    metadata: Metadata
    profile: Annotated[Profile | None, NOT_NULL] = None
    staff: Annotated[list[Staff] | None, NOT_NULL] = None
    steps: Annotated[list[Step] | None, NOT_NULL] = None
    services: Annotated[list[Service] | None, NOT_NULL] = None
    schools: Annotated[list[School] | None, NOT_NULL] = None
    agreements: Annotated[list[Agreement] | None, NOT_NULL] = None
