"""The platform database: its tables (`tables`) and how nexus connects to it (`engine`).

This package's own namespace stays import-light (the CLI reads its defaults before any driver loads).
"""

__all__ = ["DEFAULT_LOCK_TIMEOUT"]

DEFAULT_LOCK_TIMEOUT = 60.0
"""Seconds an apply waits for another apply's lock unless told otherwise: the one default of `--lock-timeout`."""
