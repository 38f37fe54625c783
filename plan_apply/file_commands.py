"""Commands that read or write configuration files: fmt, migrate, export, completion."""

from __future__ import annotations

import click

__all__ = ["COMMANDS"]

COMMANDS: list[click.Command] = []
