"""Reports free of secrets: every failure pytest shows or writes passes through here.

A traceback shows the source of each frame and, with ``-l``, its local variables: an
answer that echoed the API key, a ``base_url`` with userinfo written in a marker. Each
test and collection report is rewritten before the terminal, junitxml or an xdist
controller sees it: every string of its traceback (source lines, locals, the exception
message, captured output and logs) goes through
:func:`~pytest_synthdata.storage.secrets.redact`.

A local's ``repr`` is cut to a few hundred characters, which could cut a secret in two
and leave half of it unrecognisable; :func:`install` makes the locals and arguments of a
traceback masked before they are cut.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from typing import Any

import pytest

from ..storage.secrets import redact

_ORIGINAL = "_synthdata_original"


def install() -> None:
    """Make pytest mask the ``repr`` of a traceback's locals and arguments before cutting
    it (a no-op on a pytest whose internals differ)."""
    try:
        from _pytest._code import code
        from _pytest._io.saferepr import _ellipsize
    except ImportError:  # pragma: no cover - another pytest
        return
    current = getattr(code, "saferepr", None)
    if current is None or hasattr(current, _ORIGINAL):
        return
    original = current

    def saferepr(obj: object, maxsize: int | None = 240, use_ascii: bool = False) -> str:
        wide = None if maxsize is None else max(maxsize, 4096) * 4
        text = redact(original(obj, maxsize=wide, use_ascii=use_ascii))
        return text if maxsize is None or len(text) <= maxsize else _ellipsize(text, maxsize)

    setattr(saferepr, _ORIGINAL, original)
    setattr(code, "saferepr", saferepr)  # noqa: B010 (a name mypy does not see exported)


def scrubbed(value: Any, depth: int = 0) -> Any:
    """``value`` (a report's ``longrepr`` or a part of it) with every string redacted;
    pytest's representation objects are changed in place."""
    if depth > 20:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [scrubbed(item, depth + 1) for item in value]
    if isinstance(value, tuple):
        return tuple(scrubbed(item, depth + 1) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            inner = getattr(value, field.name, None)
            if inner is not None:
                object.__setattr__(value, field.name, scrubbed(inner, depth + 1))
    return value


def scrub(report: pytest.CollectReport | pytest.TestReport) -> None:
    """Redact the traceback and the captured sections of ``report``."""
    if report.longrepr is not None:
        report.longrepr = scrubbed(report.longrepr)
    report.sections = [(title, redact(text)) for title, text in report.sections]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    scrub(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    scrub(report)
    return report
