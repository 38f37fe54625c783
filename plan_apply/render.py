"""Where the plan renderers used to live: the names stay importable from here. The renderers are the
views (`plan_apply.views.text`, `.markdown`, `.json`); escaping is `plan_apply.views.escape`."""

from __future__ import annotations

from plan_apply.views.color import color_enabled
from plan_apply.views.escape import code_span, escape_markdown, escape_terminal
from plan_apply.views.fields import SYMBOLS, summary_line
from plan_apply.views.json import render_json
from plan_apply.views.markdown import MARKDOWN_BUDGET, render_markdown, sentence
from plan_apply.views.text import render_text

__all__ = [
    "MARKDOWN_BUDGET",
    "SYMBOLS",
    "code_span",
    "color_enabled",
    "escape_markdown",
    "escape_terminal",
    "render_json",
    "render_markdown",
    "render_text",
    "sentence",
    "summary_line",
]
