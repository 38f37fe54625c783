"""The `nexus/v1beta1` preview document: steps grouped by stage, capacity top-level, `workflow_type`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nexus_config.models.common import Key, Profile, School, Staff, Strict, Workflow
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
    profile: Profile | None = None
    staff: list[Staff] | None = None
    steps: StepsByStage | None = None
    services: list[ServiceBody] | None = None
    capacity: list[CapacityV1beta1] | None = None
    schools: list[School] | None = None
    agreements: list[Agreement] | None = None
