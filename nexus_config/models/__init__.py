"""Pydantic models of each apiVersion: where untrusted YAML becomes typed documents."""

import pydantic

from nexus_config.models.v1 import DocumentV1
from nexus_config.models.v1beta1 import DocumentV1beta1

__all__ = ["CURRENT_VERSION", "MODELS", "DocumentV1", "DocumentV1beta1"]

CURRENT_VERSION = "nexus/v1"
MODELS: dict[str, type[pydantic.BaseModel]] = {"nexus/v1": DocumentV1, "nexus/v1beta1": DocumentV1beta1}
