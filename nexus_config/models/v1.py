"""The `nexus/v1` document: the source of truth for `schemas/v1/` (generated, committed, drift-tested)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, StringConstraints, Tag

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
    "SECTION_DESCRIPTIONS",
    "Agreement",
    "AgreementRef",
    "AppliesTo",
    "Capacity",
    "CapacityBody",
    "Covers",
    "CoversLabels",
    "DocumentV1",
    "Metadata",
    "Service",
    "ServiceBody",
    "ServiceEntry",
    "ServiceTemplate",
    "Step",
    "StepBody",
    "TemplatedService",
]

_OMITTED = " Absent: not managed by this configuration (nothing in it is deleted); `[]`: none."
SECTION_DESCRIPTIONS = {
    "kind": "Always `Organization`.",
    "metadata": "Which organization this document describes; documents with the same slug merge.",
    "profile": "The organization's public profile: in exactly one document of the organization.",
    "staff": "Who administers the organization on the platform, by email." + _OMITTED,
    "steps": "What students, faculty or coordinators complete at application, onboarding and offboarding."
    + _OMITTED,
    "services": "The service areas students rotate in, with their capacity windows." + _OMITTED,
    "templates": "Service templates this organization's services, and its descendants', may use with "
    "`template: <key>`; not records themselves, so nothing on the platform changes with this list.",
    "schools": "The schools this site partners with." + _OMITTED,
    "agreements": "Affiliation agreements with those schools." + _OMITTED,
}
"""Hover text of the top-level keys, shared by every apiVersion."""

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
AgreementRef = Annotated[
    str,
    StringConstraints(pattern=r"^([a-z0-9][a-z0-9-]{1,62}/)?[a-z0-9][a-z0-9-]{0,62}$"),
    Field(
        description="An agreement of this organization by key, or a parent's agreement that covers it "
        "by its qualified key `parent-slug/key`."
    ),
]
LabelValue = Annotated[str, StringConstraints(max_length=63)]


class Metadata(Strict):
    """Which organization a document describes; documents with the same slug merge."""

    slug: Slug
    parent: Slug | None = Field(
        default=None, description="The parent organization, declared in the same tree."
    )
    labels: dict[LabelKey, LabelValue] | None = Field(
        default=None, description="For selecting organizations in bulk (`--selector key=value`)."
    )


class AppliesTo(Strict):
    """Each list empty or absent means all."""

    workflows: list[Workflow] | None = Field(
        default=None, description="Only rotations of these workflows (empty or absent: all)."
    )
    disciplines: list[Discipline] | None = Field(
        default=None, description="Only students of these disciplines (empty or absent: all)."
    )
    schools: list[Key] | None = Field(
        default=None, description="Only students of these schools, by school key (empty or absent: all)."
    )


class StepBody(Strict):
    """A step's fields except its stage (v1beta1 groups steps by stage instead)."""

    key: Key
    name: Name = Field(description="The step's name as students see it.")
    type: StepType = Field(description="A form to fill in, a file to upload, or a box to tick.")
    completed_by: CompletedBy = Field(default="student", description="Who completes the step.")
    description: Text | None = Field(default=None, description="What the step is for.")
    instructions: Text | None = Field(default=None, description="How to complete it.")
    required: bool = Field(default=True, description="Whether the step must be completed.")
    due_days: Annotated[int, Field(ge=0, le=3650)] | None = Field(
        default=None,
        description="Days before the rotation starts (application, onboarding) or after it ends "
        "(offboarding).",
    )
    expires_after_days: Annotated[int, Field(ge=1, le=36500)] | None = Field(
        default=None, description="Days a completion stays valid, e.g. 365 for a yearly training."
    )
    applies_to: AppliesTo | None = Field(
        default=None, description="Which rotations the step applies to (absent: all)."
    )
    all_services: bool = Field(
        default=False,
        description="The step applies to every service of this organization and, when declared by a "
        "parent, of every child organization.",
    )
    fields: list[FormField] | None = Field(default=None, description="Only, and required, for `type: form`.")
    previous_keys: PreviousKeys = None


class Step(StepBody):
    """Something students, faculty or coordinators complete at application, onboarding or offboarding."""

    stage: Stage = Field(description="When the step is completed.")


class CapacityBody(Strict):
    """A capacity window's fields, except how it names its workflow (renamed between versions)."""

    key: Key = Field(description="Stable identity, unique within its service.")
    name: Name = Field(description="The window's name as coordinators and students see it.")
    agreement: AgreementRef | None = Field(
        default=None,
        description="The agreement the window is scheduled under, by key, or a parent's by "
        "`parent-slug/key`: required for coordinator_scheduled, forbidden for student_requested; it must "
        "cover this service.",
    )
    disciplines: list[Discipline] = Field(description="Each one of the service's disciplines.")
    start_date: Date = Field(description="First day of the window (YYYY-MM-DD).")
    end_date: Date = Field(description="Last day of the window (YYYY-MM-DD), not before start_date.")
    slots: Annotated[int, Field(ge=1, le=1000)] = Field(
        description="How many rotations (a student, or a group) fit; never below those already booked."
    )
    max_group_size: Annotated[int, Field(ge=1, le=50)] = Field(
        default=1, description="Students per rotation."
    )
    allow_specific_dates: bool = Field(
        default=False, description="Students may ask for dates inside the window."
    )
    visibility: Visibility = Field(default="published", description="A draft window is not offered yet.")
    description: Text | None = Field(default=None, description="Shown with the window.")
    protect: Protect = None
    previous_keys: PreviousKeys = None


class Capacity(CapacityBody):
    """A capacity window: how many students, when, which disciplines, and by which workflow."""

    workflow: Workflow = Field(
        description="coordinator_scheduled (one school, under an agreement) or student_requested (open "
        "to students of any school)."
    )


class ServiceBody(Strict):
    """A service area students rotate in, without its capacity windows (v1beta1 lists them apart)."""

    key: Key
    name: Name = Field(description="The service's name, e.g. Emergency Medicine.")
    description: Text | None = Field(default=None, description="What students do there.")
    location: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="Where it is (building, campus)."
    )
    department: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="The department it belongs to."
    )
    disciplines: Annotated[list[Discipline], Field(min_length=1)] = Field(
        description="Disciplines of the students it hosts (at least one)."
    )
    specialties: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = Field(
        default=None, description="Free-text specialties, e.g. Pediatric Emergency."
    )
    steps: list[Key] | None = Field(
        default=None, description="Step keys, resolved in this organization, then up its parent chain."
    )
    protect: Protect = None
    previous_keys: PreviousKeys = None


class Service(ServiceBody):
    """A service area students rotate in (such as Emergency Medicine), with its capacity windows."""

    capacity: Annotated[list[Capacity] | None, NOT_NULL] = Field(
        default=None,
        description="The service's capacity windows: `[]` manages none (every managed window goes), "
        "absent leaves them unmanaged.",
    )


TemplateRef = Annotated[
    str,
    StringConstraints(pattern=r"^([a-z0-9][a-z0-9-]{1,62}/)?[a-z0-9][a-z0-9-]{0,62}$"),
    Field(
        description="A service template's key, looked up in this organization then up its parent chain; "
        "or `<org-slug>/<key>` for the template of that organization (itself or an ancestor)."
    ),
]


class ServiceTemplate(Strict):
    """Service fields written once (often at a health system) and reused by many services with
    `template: <key>`; a service's own fields override them. Templates do not nest."""

    key: Key = Field(description="The template's key, unique within its organization.")
    name: Name | None = Field(default=None, description="The service's name, e.g. Family Medicine.")
    description: Text | None = Field(default=None, description="What students do there.")
    location: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="Where it is (building, campus)."
    )
    department: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="The department it belongs to."
    )
    disciplines: Annotated[list[Discipline], Field(min_length=1)] | None = Field(
        default=None, description="Disciplines of the students it hosts (at least one)."
    )
    specialties: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = Field(
        default=None, description="Free-text specialties, e.g. Sports Medicine."
    )
    steps: list[Key] | None = Field(
        default=None,
        description="Step keys, resolved from the organization of the service that uses the template.",
    )


class TemplatedService(ServiceTemplate):
    """A service built from a template: its own fields (any of a service's) override the template's."""

    template: TemplateRef
    capacity: Annotated[list[Capacity] | None, NOT_NULL] = Field(
        default=None,
        description="The service's capacity windows (never taken from a template): `[]` manages none, "
        "absent leaves them unmanaged.",
    )
    protect: Protect = None
    previous_keys: PreviousKeys = None


def _service_kind(value: Any) -> str:
    """Which model a service is checked against: with `template:` its fields may come from it."""
    if isinstance(value, dict):
        return "templated" if "template" in value else "service"
    return "templated" if isinstance(value, TemplatedService) else "service"


ServiceEntry = Annotated[
    Annotated[Service, Tag("service")] | Annotated[TemplatedService, Tag("templated")],
    Discriminator(_service_kind),
]
"""A service as a document writes it: complete, or naming a template (expanded when the tree is loaded)."""


class CoversLabels(Strict):
    """The child organizations whose labels include all of these."""

    labels: Annotated[dict[LabelKey, LabelValue], Field(min_length=1)] = Field(
        description="Every one of these labels, with these values."
    )


Covers = Literal["all"] | list[Slug] | CoversLabels


class Agreement(Strict):
    """An affiliation agreement with one school: the site submits it, the school accepts it."""

    key: Key
    school: Key = Field(description="The school (by key, declared under `schools`).")
    name: Name = Field(description="The agreement's name.")
    description: Text | None = Field(default=None, description="What the agreement covers.")
    start_date: Date = Field(description="First day it is in force (YYYY-MM-DD).")
    end_date: Date | None = Field(
        default=None, description="Last day it is in force (YYYY-MM-DD); absent: open-ended."
    )
    reminder_days: Annotated[int, Field(ge=1, le=365)] | None = Field(
        default=None, description="Remind this many days before end_date."
    )
    covers: Covers | None = Field(
        default=None,
        description="A system-wide agreement: the descendant organizations (facilities) it covers "
        "besides this one, `all`, a list of slugs, or `{labels: {key: value}}`; their windows name it "
        "`this-slug/key`.",
    )
    services: Annotated[list[Key], Field(min_length=1)] = Field(
        description="The services it covers, by key (at least one); with `covers`, the service with that "
        "key in every covered organization that has one."
    )
    disciplines: Annotated[list[Discipline], Field(min_length=1)] = Field(
        description="The disciplines it covers (at least one)."
    )
    document: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = Field(
        default=None,
        description="The signed agreement (PDF or DOCX, at most 20 MB), relative to this file.",
    )
    submit: bool = Field(
        default=False, description="`false` keeps it a draft; `true` submits it to the school for approval."
    )
    protect: Protect = None
    previous_keys: list[AgreementRef] | None = Field(
        default=None,
        description="Former keys of this agreement: turns a key change into an in-place rename. "
        "`slug/key` names a facility's agreement a system agreement replaces (or the system's a facility "
        "takes back): the row moves, with the school's answer and the windows under it.",
    )


class DocumentV1(Strict):
    """One YAML document of apiVersion `nexus/v1`: some or all sections of one organization."""

    apiVersion: Literal["nexus/v1"] = Field(description="The format of this document: `nexus/v1`.")
    kind: Literal["Organization"] = Field(description=SECTION_DESCRIPTIONS["kind"])
    metadata: Metadata = Field(description=SECTION_DESCRIPTIONS["metadata"])
    profile: Annotated[Profile | None, NOT_NULL] = Field(
        default=None, description=SECTION_DESCRIPTIONS["profile"]
    )
    staff: Annotated[list[Staff] | None, NOT_NULL] = Field(
        default=None, description=SECTION_DESCRIPTIONS["staff"]
    )
    steps: Annotated[list[Step] | None, NOT_NULL] = Field(
        default=None, description=SECTION_DESCRIPTIONS["steps"]
    )
    templates: Annotated[list[ServiceTemplate] | None, NOT_NULL] = Field(
        default=None, description=SECTION_DESCRIPTIONS["templates"]
    )
    services: Annotated[list[ServiceEntry] | None, NOT_NULL] = Field(
        default=None, description=SECTION_DESCRIPTIONS["services"]
    )
    schools: Annotated[list[School] | None, NOT_NULL] = Field(
        default=None, description=SECTION_DESCRIPTIONS["schools"]
    )
    agreements: Annotated[list[Agreement] | None, NOT_NULL] = Field(
        default=None, description=SECTION_DESCRIPTIONS["agreements"]
    )
