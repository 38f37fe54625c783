"""The `nexus/v1beta1` preview document: steps grouped by stage, capacity top-level, `workflow_type`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from nexus_config.models.common import NOT_NULL, Key, Profile, School, Staff, Strict, Workflow
from nexus_config.models.v1 import (
    SECTION_DESCRIPTIONS,
    Agreement,
    CapacityBody,
    Metadata,
    ServiceBody,
    StepBody,
)

__all__ = ["CapacityV1beta1", "DocumentV1beta1", "StepsByStage"]


class StepsByStage(Strict):
    """v1beta1's steps: one list per stage (v1 gives each step a `stage` instead)."""

    application: list[StepBody] | None = Field(default=None, description="Steps completed to apply.")
    onboarding: list[StepBody] | None = Field(
        default=None, description="Steps completed before the rotation starts."
    )
    offboarding: list[StepBody] | None = Field(
        default=None, description="Steps completed after the rotation ends."
    )


class CapacityV1beta1(CapacityBody):
    """A v1beta1 capacity window: top-level, naming its service, with `workflow_type`."""

    service: Key = Field(description="The service this window belongs to.")
    workflow_type: Workflow = Field(
        description="v1's `workflow`: coordinator_scheduled or student_requested."
    )


class DocumentV1beta1(Strict):
    """One YAML document of apiVersion `nexus/v1beta1` (deprecated: `nexus migrate` rewrites it)."""

    apiVersion: Literal["nexus/v1beta1"] = Field(
        description="The deprecated preview format `nexus/v1beta1` (`nexus migrate` rewrites it as v1)."
    )
    kind: Literal["Organization"] = Field(description=SECTION_DESCRIPTIONS["kind"])
    metadata: Metadata = Field(description=SECTION_DESCRIPTIONS["metadata"])
    profile: Annotated[Profile | None, NOT_NULL] = Field(
        default=None, description=SECTION_DESCRIPTIONS["profile"]
    )
    staff: Annotated[list[Staff] | None, NOT_NULL] = Field(
        default=None, description=SECTION_DESCRIPTIONS["staff"]
    )
    steps: Annotated[StepsByStage | None, NOT_NULL] = Field(
        default=None, description="Steps grouped by stage."
    )
    services: Annotated[list[ServiceBody] | None, NOT_NULL] = Field(
        default=None, description="The service areas students rotate in."
    )
    capacity: Annotated[list[CapacityV1beta1] | None, NOT_NULL] = Field(
        default=None, description="Capacity windows, each naming its service."
    )
    schools: Annotated[list[School] | None, NOT_NULL] = Field(
        default=None, description=SECTION_DESCRIPTIONS["schools"]
    )
    agreements: Annotated[list[Agreement] | None, NOT_NULL] = Field(
        default=None, description=SECTION_DESCRIPTIONS["agreements"]
    )
