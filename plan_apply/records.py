"""Records: the one shape both sides take before they are compared, keyed by address.

The diff never sees pydantic documents or SQLAlchemy rows: desired organizations and database rows are
both turned into `Record`s (`sections.record`). What each section's records hold is its section
module's business (`plan_apply/sections/`); this module derives the tables everyone else reads.
"""

from __future__ import annotations

from collections.abc import Sequence

from nexus_config import DesiredOrganization, DesiredState
from plan_apply.sections import SECTIONS, Section, section_of
from plan_apply.sections.record import Record
from plan_apply.sections.steps import normalized_applies_to

__all__ = [
    "SECTION_OF",
    "TYPES",
    "Record",
    "address_of",
    "desired_records",
    "normalized_applies_to",
]

TYPES = tuple(section.type for section in SECTIONS)
"""Record types in foreign-key order: read forward to create and update, backward to delete."""

SECTION_OF = {section.type: section.section for section in SECTIONS}
"""The plan section of each record type (the organization's own record is its `metadata`)."""


def address_of(org: str, type_: str, key: str = "", parent_key: str | None = None) -> str:
    """The plan address of an item (CLI.md): `ORG/SECTION/KEY`, capacity under its service."""
    return section_of(type_).address(org, key, parent_key)


def desired_records(
    org: DesiredOrganization, state: DesiredState, sections: Sequence[Section] = SECTIONS
) -> tuple[list[Record], set[str]]:
    """The organization's records, and the scopes it manages (`staff`, `services/er/capacity`, ...).

    A scope that the configuration does not declare is not managed here: nothing in it is deleted.
    """
    records: list[Record] = []
    scopes: set[str] = set()
    for section in sections:
        found, managed = section.desired(section, org, state)
        records.extend(found)
        scopes |= managed
    return records, scopes
