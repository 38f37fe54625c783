"""Pydantic models of each apiVersion: where untrusted YAML becomes typed documents.

The version names are plain constants; the models (and pydantic) are imported on first use, so a command
that never reads a document (`nexus --version`) never pays for them.
"""

import typing as _typing

if _typing.TYPE_CHECKING:
    import pydantic

    from nexus_config.models.v1 import DocumentV1
    from nexus_config.models.v1beta1 import DocumentV1beta1

    MODELS: dict[str, type[pydantic.BaseModel]]

__all__ = ["CURRENT_VERSION", "MODELS", "DocumentV1", "DocumentV1beta1"]

CURRENT_VERSION = "nexus/v1"


def __getattr__(name: str) -> _typing.Any:
    if name not in ("MODELS", "DocumentV1", "DocumentV1beta1"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from nexus_config.models.v1 import DocumentV1
    from nexus_config.models.v1beta1 import DocumentV1beta1

    models = {"MODELS": {"nexus/v1": DocumentV1, "nexus/v1beta1": DocumentV1beta1}}
    globals().update(models, DocumentV1=DocumentV1, DocumentV1beta1=DocumentV1beta1)
    return globals()[name]
