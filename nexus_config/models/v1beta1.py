"""The `nexus/v1beta1` preview document: steps grouped by stage, capacity top-level, `workflow_type`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from nexus_config.models.common import NOT_NULL, Key, Profile, School, Staff, Strict, Workflow
from nexus_config.models.v1 import Agreement, CapacityBody, Metadata, ServiceBody, StepBody

__all__ = ["CapacityV1beta1", "DocumentV1beta1", "StepsByStage"]


class StepsByStage(Strict):
    application: list[StepBody] | None = None
    onboarding: list[StepBody] | None = None
    offboarding: list[StepBody] | None = None


class CapacityV1beta1(CapacityBody):
    service: Key = Field(description="The service this window belongs to.")
    workflow_type: Workflow


class DocumentV1beta1(Strict):
    """One YAML document of apiVersion `nexus/v1beta1` (deprecated: `nexus migrate` rewrites it)."""

    apiVersion: Literal["nexus/v1beta1"]
    kind: Literal["Organization"]
    metadata: Metadata
    profile: Annotated[Profile | None, NOT_NULL] = None
    staff: Annotated[list[Staff] | None, NOT_NULL] = None
    steps: Annotated[StepsByStage | None, NOT_NULL] = None
    services: Annotated[list[ServiceBody] | None, NOT_NULL] = None
    capacity: Annotated[list[CapacityV1beta1] | None, NOT_NULL] = None
    schools: Annotated[list[School] | None, NOT_NULL] = None
    agreements: Annotated[list[Agreement] | None, NOT_NULL] = None
