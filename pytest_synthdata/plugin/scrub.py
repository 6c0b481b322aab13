"""Reports free of secrets: every failure pytest shows or writes passes through here.

A traceback shows the source of each frame and, with ``-l``, its local variables: an
answer that echoed the API key, a ``base_url`` with userinfo written in a marker. Each
test and collection report is rewritten before the terminal, junitxml or an xdist
controller sees it: every string of its traceback (source lines, locals, the exception
message, captured output and logs) goes through
:func:`~pytest_synthdata.storage.secrets.redact`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from typing import Any

import pytest

from ..storage.secrets import redact


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
