"""The exceptions of nexus: each knows its exit code and a message fit for a user.

    NexusError (exit 1)
    ├── UsageProblem        bad flags or arguments the parser could not catch
    ├── ConfigurationInvalid the configuration has problems (they are printed first)
    ├── DatabaseError       unreachable, wrong URL, bad credentials, locked, read-only
    │   └── SchemaOutOfDate the database schema is missing or behind: run `nexus db upgrade`
    ├── PlanRefused         the plan breaks a safety rule (protected item, rotations, mass delete)
    ├── StalePlan           the database changed since the saved plan was made
    └── ApplyFailed         one or more organizations failed to apply (the others are reported)

The CLI is the only place that catches them; a traceback appears only with --debug.
"""

from __future__ import annotations

__all__ = [
    "ApplyFailed",
    "ConfigurationInvalid",
    "DatabaseError",
    "NexusError",
    "PlanRefused",
    "SchemaOutOfDate",
    "StalePlan",
    "UsageProblem",
]


class NexusError(Exception):
    """An expected failure: printed as one message, exit code `exit_code`."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageProblem(NexusError):
    pass


class ConfigurationInvalid(NexusError):
    pass


class DatabaseError(NexusError):
    pass


class SchemaOutOfDate(DatabaseError):
    pass


class PlanRefused(NexusError):
    pass


class StalePlan(NexusError):
    pass


class ApplyFailed(NexusError):
    pass
