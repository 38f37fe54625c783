"""Escaping of user text (from files, the environment and the database) for where it is shown.

Output is never a channel: no control character reaches a terminal or a CI log (a newline could start a
`::error` workflow command), and no markdown or HTML breaks out of a pull-request comment.
"""

from __future__ import annotations

import re

__all__ = ["code_span", "escape_markdown", "escape_prose", "escape_terminal", "fenced"]

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_MARKDOWN = re.compile(r"([\\`*_{}\[\]#!|~])")
_MENTION = re.compile(r"[\w.+-]*@[\w-]+(?:[\w./-]*[\w-])?")
"""An @-mention (`@team`, `@org/team`) or an e-mail address, without the punctuation around it."""
_QUOTED = re.compile(r"`([^`]+)`")
FENCE = "`" * 3


def escape_terminal(text: str) -> str:
    """One line with control characters (escape sequences, newlines, carriage returns, bidi overrides)
    shown as \\x.. codes."""
    return _CONTROL.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", text
    )


def code_span(text: str) -> str:
    """Inline code: nothing inside is interpreted, so only backticks, pipes and control characters matter."""
    return "`" + escape_terminal(text.replace("\n", " ")).replace("`", "'").replace("|", "\\|") + "`"


def _escape_plain(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", text)


def escape_markdown(text: str) -> str:
    """Text safe inside a markdown table cell or paragraph: no HTML, links or breakouts; a word with an
    `@` (a mention, an e-mail address) is shown as code, which GitHub never turns into a notification."""
    text = escape_terminal(text.replace("\n", " "))
    parts, last = [], 0
    for mention in _MENTION.finditer(text):
        parts.append(_escape_plain(text[last : mention.start()]))
        parts.append(code_span(mention.group()))
        last = mention.end()
    parts.append(_escape_plain(text[last:]))
    return "".join(parts)


def escape_prose(text: str) -> str:
    """Like `escape_markdown`, but a `quoted` part (a note's "set `slots: 8` to keep it") is shown as
    code: still nothing breaks out, whatever the quoted value holds."""
    parts = _QUOTED.split(text)
    return "".join(code_span(part) if i % 2 else escape_markdown(part) for i, part in enumerate(parts))


def fenced(line: str) -> str:
    """A line safe inside a fenced block: no control characters, and no fence to break out with."""
    return escape_terminal(line).replace(FENCE, "'''")
