"""nexus_config: the desired state. Files → documents → checked, merged organizations.

Never imports plan_apply: the desired state knows nothing of databases.
"""

from nexus_config.desired import AttachedDocument, DesiredOrganization, DesiredState, Source
from nexus_config.loader import LoadResult, load_configuration
from nexus_config.models import CURRENT_VERSION
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


def __getattr__(name: str) -> str:
    """`__version__`, from the installed package's metadata (the one version source), when asked."""
    if name == "__version__":
        from importlib.metadata import version

        return version("nexus-config")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
