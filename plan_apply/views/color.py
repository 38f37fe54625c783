"""Whether to colour, and the painter a text view colours with (click styles; none when off)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["COLOR_CHOICES", "Paint", "color_enabled", "painter"]

COLOR_CHOICES = ("auto", "always", "never")
Paint = Callable[[str, str], str]
_STYLES: dict[str, dict[str, Any]] = {"bold": {"bold": True}, "dim": {"dim": True}}


def color_enabled(stream: Any, choice: str) -> bool:
    """--color beats NO_COLOR beats FORCE_COLOR beats "is it a terminal" (and TERM=dumb)."""
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


def painter(enabled: bool) -> Paint:
    """`paint(text, colour)`: a colour name, or "bold"/"dim"; the identity when colour is off."""
    if not enabled:
        return lambda text, color: text
    import click

    return lambda text, color: click.style(text, **_STYLES.get(color, {"fg": color}))
