"""The release of nexus: the one place it is written (pyproject.toml reads it from here at build time).

A literal in a module of its own, so that `nexus --version` reads it without scanning the installed
packages' metadata (importlib.metadata costs as much as the rest of that command).
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
