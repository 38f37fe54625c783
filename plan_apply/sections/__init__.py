"""Every section of an organization, one module each, in the order the foreign keys impose.

Read forward to create and update, backward to delete: `records.TYPES`, the bulk reads, the writers'
registry and export all come from `SECTIONS`. Where does a section live? In `sections/<its name>.py`.
"""

from plan_apply.sections.agreements import AGREEMENTS
from plan_apply.sections.capacity import CAPACITY
from plan_apply.sections.organization import ORGANIZATION
from plan_apply.sections.profile import PROFILE
from plan_apply.sections.record import Record
from plan_apply.sections.schools import SCHOOLS
from plan_apply.sections.section import Section
from plan_apply.sections.services import SERVICES
from plan_apply.sections.staff import STAFF
from plan_apply.sections.steps import STEPS

__all__ = [
    "AGREEMENTS",
    "CAPACITY",
    "ORGANIZATION",
    "PROFILE",
    "SCHOOLS",
    "SECTIONS",
    "SERVICES",
    "STAFF",
    "STEPS",
    "Record",
    "Section",
    "section_of",
]

SECTIONS: tuple[Section, ...] = (ORGANIZATION, PROFILE, SCHOOLS, STEPS, SERVICES, AGREEMENTS, CAPACITY, STAFF)
"""In foreign-key order: a row's section comes after every section it points at."""

_BY_TYPE = {section.type: section for section in SECTIONS}


def section_of(type_: str) -> Section:
    """The section of a record type."""
    return _BY_TYPE[type_]
