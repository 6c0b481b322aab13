"""A MkDocs hook: the docstrings cross-reference in Sphinx's style (``:func:`generate```,
``:class:`~pkg.mod.Name```), which mkdocstrings shows as written. Show the name alone, as
code, as Sphinx does (``~`` keeps only the last part of a dotted name)."""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|exc|obj):<code>(~?)([^<]*)</code>")


def _name(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target.lstrip('.')}</code>"


def on_page_content(html: str, **_: Any) -> str:
    return ROLE.sub(_name, html)
