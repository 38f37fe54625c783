"""Views: one module per output format, each rendering what the commands show (a plan, configuration
problems, the apply history). The registry below is the one list of formats: `--format` choices come
from it, so adding a format is adding a view module and its line here.

Importing this package is cheap (the CLI does it at start-up); a view is imported when it is used.
"""

from plan_apply.views.registry import FORMATS, Format, Output, View, format_names, view

__all__ = ["FORMATS", "Format", "Output", "View", "format_names", "view"]
