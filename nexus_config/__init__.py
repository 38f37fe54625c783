"""nexus_config: the desired state. Files → documents → checked, merged organizations.

Never imports plan_apply: the desired state knows nothing of databases. Its exports are imported on
first use, so that `import nexus_config` costs nothing until a configuration is actually read.
"""

import importlib as _importlib
import typing as _typing

from nexus_config.models import CURRENT_VERSION

if _typing.TYPE_CHECKING:
    from nexus_config.desired import AttachedDocument, DesiredOrganization, DesiredState, Source
    from nexus_config.loader import LoadResult, load_configuration
    from nexus_config.problems import Problem, problems_to_json, problems_to_text

__all__ = [
    "CURRENT_VERSION",
    "AttachedDocument",
    "DesiredOrganization",
    "DesiredState",
    "LoadResult",
    "Problem",
    "Source",
    "load_configuration",
    "problems_to_json",
    "problems_to_text",
]

_HOMES = {
    "AttachedDocument": "nexus_config.desired",
    "DesiredOrganization": "nexus_config.desired",
    "DesiredState": "nexus_config.desired",
    "Source": "nexus_config.desired",
    "LoadResult": "nexus_config.loader",
    "load_configuration": "nexus_config.loader",
    "Problem": "nexus_config.problems",
    "problems_to_json": "nexus_config.problems",
    "problems_to_text": "nexus_config.problems",
}


def __getattr__(name: str) -> _typing.Any:
    """An export, imported from its home module the first time it is asked for."""
    if name == "__version__":  # the one version source (pyproject.toml reads it too)
        from nexus_config._version import __version__

        return __version__
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
