"""The sections of an organization document, described once: YAML key, item model, identity, nesting.

Merging, the desired state and (in `plan_apply.sections`) records, tables and export all read this
table; adding a section is a model, one entry here and a section module on the database side.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = [
    "AGREEMENTS",
    "CAPACITY",
    "DOCUMENT_SECTIONS",
    "PROFILE",
    "SCHOOLS",
    "SERVICES",
    "STAFF",
    "STEPS",
    "TEMPLATES",
    "DocumentSection",
    "model_defaults",
]


@dataclass(frozen=True, slots=True)
class DocumentSection:
    """One section as a document declares it.

    `key` is the YAML key (and the `DesiredOrganization` attribute); `identity` the field that names an
    item (compared case-insensitively when `folded`); `noun` how messages name that identity; `parent`
    the section an item is nested in (capacity windows live in their service).
    """

    key: str
    model_name: str
    """Where the item model is, `module:Class` (imported on first use: pydantic and the models are heavy)."""
    noun: str
    identity: str = "key"
    folded: bool = False
    many: bool = True
    parent: str | None = None

    @property
    def model(self) -> type[BaseModel]:
        """The pydantic model of an item of this section."""
        module, _, name = self.model_name.partition(":")
        model: type[BaseModel] = getattr(importlib.import_module(module), name)
        return model

    def identity_of(self, item: Any) -> str:
        """An item's identity inside its organization (`Alice@X.org` is `alice@x.org` for staff)."""
        value = str(getattr(item, self.identity))
        return value.lower() if self.folded else value


def model_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The defaults a model declares for its optional fields: what a document may leave out."""
    return {
        name: info.get_default(call_default_factory=True)
        for name, info in model.model_fields.items()
        if not info.is_required()
    }


PROFILE = DocumentSection("profile", "nexus_config.models.common:Profile", "profile", identity="", many=False)
STAFF = DocumentSection(
    "staff", "nexus_config.models.common:Staff", "staff member", identity="email", folded=True
)
STEPS = DocumentSection("steps", "nexus_config.models.v1:Step", "step key")
SERVICES = DocumentSection("services", "nexus_config.models.v1:Service", "service key")
CAPACITY = DocumentSection(
    "capacity", "nexus_config.models.v1:Capacity", "capacity window key", parent="services"
)
SCHOOLS = DocumentSection("schools", "nexus_config.models.common:School", "school key")
AGREEMENTS = DocumentSection("agreements", "nexus_config.models.v1:Agreement", "agreement key")

TEMPLATES = DocumentSection("templates", "nexus_config.models.v1:ServiceTemplate", "service template key")
"""Not a section of the platform: service templates are expanded into services when a tree is loaded."""

DOCUMENT_SECTIONS = (PROFILE, STAFF, STEPS, SERVICES, SCHOOLS, AGREEMENTS)
"""The top-level sections in FORMAT.md's key order (capacity is nested in services)."""
