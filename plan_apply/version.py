"""What `nexus --version` prints, from plain constants: answering it needs neither click nor the
installed packages' metadata."""

from __future__ import annotations

from nexus_config._version import __version__
from nexus_config.models import CURRENT_VERSION

__all__ = ["version_line"]


def version_line() -> str:
    """The release and the configuration apiVersions it writes and reads."""
    return f"nexus {__version__} (config {CURRENT_VERSION}; reads nexus/v1beta1)"
