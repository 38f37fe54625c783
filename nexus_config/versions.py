"""Upgrade older apiVersions to the current one: pure functions that also map pointers back.

v1beta1 differs from v1 in three ways (FORMAT.md): steps grouped by stage, capacity windows as a
top-level list naming their service, and `workflow_type` for `workflow`. Problems found after the
upgrade are reported against the original file through the returned `PointerMap`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from nexus_config.desired import PointerMap
from nexus_config.models.common import Stage
from nexus_config.models.v1 import Capacity, DocumentV1, Service, Step
from nexus_config.models.v1beta1 import CapacityV1beta1, DocumentV1beta1, StepsByStage
from nexus_config.problems import join_pointer

__all__ = ["LooseCapacity", "Upgraded", "downgrade", "upgrade"]

STAGES: tuple[Stage, ...] = ("application", "onboarding", "offboarding")


@dataclass(frozen=True, slots=True)
class LooseCapacity:
    """A v1beta1 capacity window whose service is declared in another document of the organization."""

    service: str
    capacity: Capacity
    pointer: str  # in the v1beta1 document


@dataclass(frozen=True, slots=True)
class Upgraded:
    """A document in v1 terms, plus what v1 cannot say inside one document."""

    document: DocumentV1
    pointers: PointerMap
    version: str
    loose_capacity: tuple[LooseCapacity, ...] = ()
    declares_capacity: bool = False  # v1beta1 only: the document has a top-level `capacity:` key
    null_capacity: bool = False  # v1beta1 only: it says `capacity: null` (refused like any null section)


def _fields(model: BaseModel, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A model's explicitly set fields as they were given (so defaults stay defaults)."""
    return {name: getattr(model, name) for name in model.model_fields_set if name not in drop}


def _capacity_v1(window: CapacityV1beta1) -> Capacity:
    values = _fields(window, drop=("service", "workflow_type"))
    return Capacity.model_construct(
        _fields_set=set(values) | {"workflow"}, workflow=window.workflow_type, **values
    )


def upgrade(document: BaseModel) -> Upgraded:
    """The v1 form of a document of any supported apiVersion."""
    if isinstance(document, DocumentV1):
        return Upgraded(document, PointerMap(), "nexus/v1")
    assert isinstance(document, DocumentV1beta1), type(document)
    prefixes: list[tuple[str, str]] = []
    steps: list[Step] | None = None
    if document.steps is not None:
        steps = []
        for stage in STAGES:
            for j, body in enumerate(getattr(document.steps, stage) or ()):
                values = _fields(body)
                prefixes.append((join_pointer("steps", len(steps)), join_pointer("steps", stage, j)))
                prefixes.append((join_pointer("steps", len(steps), "stage"), join_pointer("steps", stage)))
                steps.append(Step.model_construct(_fields_set=set(values) | {"stage"}, stage=stage, **values))

    windows: dict[str, list[tuple[int, Capacity]]] = {}
    for k, window in enumerate(document.capacity or ()):
        windows.setdefault(window.service, []).append((k, _capacity_v1(window)))
    services: list[Service] | None = None
    if document.services is not None:
        services = []
        for s, body in enumerate(document.services):
            values = _fields(body)
            nested = windows.pop(body.key, [])
            capacity: list[Capacity] | None = None
            if document.capacity is not None:
                capacity = []
                for c, (k, nested_window) in enumerate(nested):
                    capacity.append(nested_window)
                    at = join_pointer("services", s, "capacity", c)
                    prefixes.append((at, join_pointer("capacity", k)))
                    prefixes.append((at + "/workflow", join_pointer("capacity", k, "workflow_type")))
                prefixes.append((join_pointer("services", s, "capacity"), "/capacity"))
                values["capacity"] = capacity
            services.append(Service.model_construct(_fields_set=set(values), **values))
    loose = tuple(
        LooseCapacity(service, loose_window, join_pointer("capacity", k))
        for service, items in windows.items()
        for k, loose_window in items
    )
    values = _fields(document, drop=("apiVersion", "steps", "services", "capacity"))
    for name, section in (("steps", steps), ("services", services)):
        if section is not None or name in document.model_fields_set:  # keep an explicit null: refused later
            values[name] = section
    upgraded = DocumentV1.model_construct(
        _fields_set=set(values) | {"apiVersion"}, apiVersion="nexus/v1", **values
    )
    return Upgraded(
        upgraded,
        PointerMap(tuple(prefixes)),
        "nexus/v1beta1",
        loose,
        declares_capacity=document.capacity is not None,
        null_capacity="capacity" in document.model_fields_set and document.capacity is None,
    )


def downgrade(document: DocumentV1) -> DocumentV1beta1:
    """The v1beta1 form of a v1 document: the inverse of `upgrade`, used to prove it loses nothing."""
    values = _fields(document, drop=("apiVersion", "steps", "services"))
    if document.steps is not None:
        grouped: dict[str, list[Any]] = {}
        for step in document.steps:
            grouped.setdefault(step.stage, []).append(_fields(step, drop=("stage",)))
        values["steps"] = StepsByStage.model_validate(grouped)
    if document.services is not None:
        capacity: list[CapacityV1beta1] = []
        bodies = []
        for service in document.services:
            bodies.append(_fields(service, drop=("capacity",)))
            for window in service.capacity or ():
                fields = _fields(window, drop=("workflow",))
                capacity.append(
                    CapacityV1beta1.model_validate(
                        {**fields, "service": service.key, "workflow_type": window.workflow}
                    )
                )
        values["services"] = bodies
        if any(service.capacity is not None for service in document.services):
            values["capacity"] = capacity
    return DocumentV1beta1.model_validate({"apiVersion": "nexus/v1beta1", **values})
