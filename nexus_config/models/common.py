"""Field types shared by every apiVersion: the vocabulary of FORMAT.md in one place.

Strict pydantic: YAML's types are final (a number is never coerced into a string, nor `2.0` into 2),
so a value that loses meaning on the way in (`postal_code: 02115`) is an error, not a silent change.
"""

from __future__ import annotations

import datetime
import functools
import zoneinfo
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "DISCIPLINES",
    "NOT_NULL",
    "Address",
    "CompletedBy",
    "Date",
    "Discipline",
    "Email",
    "FieldType",
    "FormField",
    "Key",
    "LabelKey",
    "Name",
    "OrgType",
    "Profile",
    "Role",
    "School",
    "Slug",
    "Staff",
    "Stage",
    "StepType",
    "Strict",
    "Text",
    "Visibility",
    "Workflow",
]


class Strict(BaseModel):
    """Base of every document model: unknown fields are errors, types are never coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


def _not_null(schema: dict[str, Any]) -> None:
    """Leave `null` (and `default: null`) out of a section's JSON Schema."""
    options = [option for option in schema.pop("anyOf", []) if option != {"type": "null"}]
    if len(options) == 1:
        schema.update(options[0])
    schema.pop("default", None)


NOT_NULL = Field(json_schema_extra=_not_null)
"""On sections: `section: null` parses (so the loader can explain why it is refused: write `[]` or leave
the key out), but the JSON Schema leaves null out, so editors flag it as the loader does."""

Key = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$"),
    Field(description="Stable identity inside the organization: lowercase letters, digits, hyphens."),
]
Slug = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$"),
    Field(description="An organization's stable identity on the platform."),
]
LabelKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=20_000)]


def _real_date(value: str) -> str:
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a valid date") from None
    return value


@functools.cache
def _countries() -> frozenset[str]:
    import iso3166  # imported only when an address names a country

    return frozenset(c.alpha2 for c in iso3166.countries)


def _country(value: str) -> str:
    if value not in _countries():
        raise ValueError(f"{value} is not an ISO 3166-1 alpha-2 country code")
    return value


@functools.cache
def _timezone_exists(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _timezone(value: str) -> str:
    if not _timezone_exists(value):
        raise ValueError(f"{value} is not an IANA time zone name (e.g. America/Chicago)")
    return value


Date = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"),
    AfterValidator(_real_date),
    Field(description="A calendar date, YYYY-MM-DD.", json_schema_extra={"format": "date"}),
]
Email = Annotated[
    str,
    StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254),
    Field(json_schema_extra={"format": "email"}),
]

Discipline = Literal[
    "medicine",
    "nursing",
    "nurse_practitioner",
    "physician_assistant",
    "pharmacy",
    "physical_therapy",
    "occupational_therapy",
    "respiratory_therapy",
    "radiologic_technology",
    "social_work",
    "dietetics",
    "other",
]
DISCIPLINES: tuple[str, ...] = Discipline.__args__  # type: ignore[attr-defined]
OrgType = Literal["health_system", "hospital", "clinic", "other"]
Stage = Literal["application", "onboarding", "offboarding"]
StepType = Literal["form", "upload", "checkbox"]
CompletedBy = Literal["student", "faculty", "school_coordinator", "site_coordinator"]
FieldType = Literal["text", "textarea", "date", "number", "select", "checkbox"]
Workflow = Literal["coordinator_scheduled", "student_requested"]
Visibility = Literal["draft", "published"]
Role = Literal["admin", "coordinator", "viewer"]


class Address(Strict):
    """A postal address; `country` is an ISO 3166-1 alpha-2 code such as `US`."""

    line1: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="Street address, first line."
    )
    line2: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="Street address, second line (suite, floor, building)."
    )
    city: Annotated[str, StringConstraints(max_length=100)] | None = Field(default=None, description="City.")
    state: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        default=None, description="State, province or region."
    )
    postal_code: Annotated[str, StringConstraints(max_length=20)] | None = Field(
        default=None, description="Quote it: `'02115'` (a number would lose its leading zero)."
    )
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$"), AfterValidator(_country)] | None = (
        Field(default=None, description="ISO 3166-1 alpha-2, e.g. `US`; quote `'NO'` for Norway in editors.")
    )


class Profile(Strict):
    """The organization's public profile: a selling point to students."""

    name: Name = Field(description="The organization's name as students see it.")
    type: OrgType = Field(description="What kind of organization this is.")
    description: Text | None = Field(default=None, description="Markdown allowed.")
    website: (
        Annotated[str, StringConstraints(pattern=r"^https://[^\s/?#]+\.[^\s]*$", max_length=2000)] | None
    ) = Field(default=None, description="An https:// URL.", json_schema_extra={"format": "uri"})
    email: Email | None = Field(default=None, description="The organization's public contact address.")
    phone: Annotated[str, StringConstraints(min_length=1, max_length=50)] | None = Field(
        default=None, description="The organization's public phone number, as written."
    )
    address: Address | None = Field(default=None, description="The organization's postal address.")
    timezone: (
        Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_timezone)] | None
    ) = Field(default=None, description="IANA time zone name, e.g. `America/Chicago`.")


class Staff(Strict):
    """A person who administers the organization; identity is the email (case-insensitive)."""

    email: Email = Field(description="The person's identity (case-insensitive): one entry per person.")
    name: Name | None = Field(default=None, description="The person's name, used when inviting them.")
    title: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="Job title at this organization."
    )
    role: Role = Field(description="What the person may do on the platform for this organization.")


class FormField(Strict):
    """One field of a `type: form` step."""

    key: Key
    label: Name = Field(description="What the form shows beside the field.")
    type: FieldType = Field(description="The kind of input.")
    required: bool = Field(default=False, description="Whether the field must be filled in.")
    options: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = Field(
        default=None, description="Only, and required, for `type: select`."
    )


class School(Strict):
    """A school this site partners with; `key` is the school's platform slug."""

    key: Key
    name: Name = Field(description="The school's name.")
    contact_email: Email | None = Field(
        default=None,
        description="Required while the school is not on the platform: the invitation goes there.",
    )
