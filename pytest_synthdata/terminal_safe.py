"""Text from a model, made safe to print on a terminal.

A value an LLM wrote can hold control characters and escape sequences (ANSI colours, a
cursor move, OSC 52, which sets the clipboard) that a terminal would act on. Everything
that prints such values (``--synth-show``, the live progress line, the plugin's summary,
the ``synthdata`` command's output and errors) passes them through :func:`escape_controls`
first: the characters are shown as Python escapes (``\\x1b``), never interpreted.
"""

from __future__ import annotations

import re

__all__ = ["escape_controls"]

_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""C0 controls (ESC included), DEL, C1 controls (CSI and OSC among them), line and
paragraph separators, and the bidirectional overrides that reorder what is shown."""


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\t":
        return "\\t"
    if char == "\r":
        return "\\r"
    if char == "\n":
        return "\\n"
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_controls(text: str, *, keep: str = "") -> str:
    """``text`` with every control character written as an escape (``\\x1b``, ``\\n``);
    ordinary text, non-ASCII letters included, is kept as it is.

    ``keep`` names the controls a layout needs and that stay as they are, e.g.
    ``keep="\\n"`` for a message of several lines (``"\\n\\t"`` to keep tabs too). The
    result never starts an escape sequence, whatever ``text`` held.
    """
    if keep:
        return _CONTROLS.sub(lambda m: m.group() if m.group() in keep else _escaped(m), text)
    return _CONTROLS.sub(_escaped, text)
