"""Log records free of secrets while a generation runs.

The libraries a generation drives log what they do: httpx and httpcore (``httpx2``,
``httpcore2``) the URL of each request, with its userinfo; openai its requests and
options; vcrpy the requests it matches. With ``--log-level=INFO`` pytest shows and
junitxml keeps those records. While :func:`masking` is active (around every request and
cassette a run opens), every log record created, of any logger, has its message
redacted (:func:`~.secrets.redact`: known secrets in any encoding, URL userinfo,
credential query values), and so has the traceback it carries. The one choke point is the
log record factory, so a record is clean before any handler, filter or formatter sees it,
whichever logger (or child logger) made it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .secrets import redact

LIBRARIES = ("httpx", "httpcore", "httpx2", "httpcore2", "openai", "vcr", "pytest_synthdata")
"""Loggers (and their children) whose records are always redacted once masking was used."""

_lock = threading.Lock()
_active = 0
_installed: Callable[..., logging.LogRecord] | None = None


def _is_library(name: str) -> bool:
    return any(name == lib or name.startswith(lib + ".") for lib in LIBRARIES)


def clean(record: logging.LogRecord) -> logging.LogRecord:
    """``record`` with its message (and traceback, if any) redacted, when they show one."""
    try:
        message = record.getMessage()
    except Exception:  # a record whose arguments do not format: left to logging's report
        return record
    masked = redact(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        masked = redact(text)
        if masked != text:
            record.exc_text = masked
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def _install() -> None:
    """Wrap the current record factory once (it stays: it only redacts while active, or
    for the libraries' own loggers)."""
    global _installed
    previous = logging.getLogRecordFactory()
    if previous is _installed:
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _active or _is_library(record.name):
            return clean(record)
        return record

    _installed = factory
    logging.setLogRecordFactory(factory)


def install_masking() -> None:
    """Redact the records of the libraries' loggers from now on (a run is starting)."""
    with _lock:
        _install()


@contextmanager
def masking() -> Iterator[None]:
    """Redact every log record made while this is active (nestable, any thread)."""
    global _active
    with _lock:
        _install()
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
