"""Every error pytest-synthdata raises, each with a message that says how to fix it.

::

    SynthError
    ├── SynthConfigError          bad input: a spec, an option, an examples file (also ValueError)
    │   └── UnsupportedModelError the pydantic model cannot be expressed as a strict JSON schema
    ├── SynthAPIError             the endpoint failed (after its retries, if transient)
    ├── SynthGenerationError      the retry budget was spent before n valid records were obtained
    └── SynthRecordingError       a cassette is missing, stale, corrupt or would leak a secret

    SynthDataWarning              a UserWarning: a mode or a parameter was adjusted automatically
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from .storage.secrets import found_in, redact
from .usage import Usage


class SynthError(Exception):
    """Base class of every pytest-synthdata error.

    Messages never show a secret of the run: every known key and credential is masked, in
    any encoding, and so are any URL's userinfo and credential query values, however short
    (see :func:`pytest_synthdata.storage.secrets.redact`)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))

    def __str__(self) -> str:
        return redact(super().__str__())


class SynthConfigError(SynthError, ValueError):
    """A spec, an option or an examples file is invalid. The message names it and the fix."""


class UnsupportedModelError(SynthConfigError):
    """The pydantic model has a field that strict structured outputs cannot express."""


class SynthAPIError(SynthError):
    """The LLM endpoint answered with an error, or not at all, after its retries.

    ``transient`` is true for a rate limit, a server error, a timeout, a lost connection or a
    body that is not JSON: those are tried again (``http_retries``) before this is raised,
    and a record dataset tops the batch up later instead of failing at once. ``timed_out``
    marks a try that ran past its deadline; ``headers`` are the answer's, when there was
    one; ``tries`` is how many tries were made. ``dropped`` marks a connection the server
    closed after it had accepted the request, before a full answer (it went away while
    answering, and may have crashed on the request), as opposed to one never made.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: Any = None,
        transient: bool = False,
        timed_out: bool = False,
        headers: Mapping[str, str] | None = None,
        tries: int = 1,
        dropped: bool = False,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.transient = transient
        self.timed_out = timed_out
        self.headers = dict(headers or {})
        self.tries = tries
        self.dropped = dropped


class SynthGenerationError(SynthError):
    """The retry budget ran out before enough valid records came back.

    Carries what was asked (``asked``), the last raw output (``last_output``), the
    validation errors of the last attempt (``errors``) and what the run cost (``usage``).
    """

    def __init__(
        self,
        message: str,
        *,
        asked: str,
        last_output: str | None,
        errors: list[str],
        usage: Usage,
    ) -> None:
        self.asked = redact(asked)
        self.last_output = None if last_output is None else redact(last_output)
        self.errors = [redact(error) for error in errors]
        self.usage = usage
        super().__init__(message)

    def __str__(self) -> str:
        parts = [self.args[0], f"asked: {self.asked}"]
        if self.errors:
            shown = self.errors[:10]
            more = f"\n  ... and {len(self.errors) - 10} more" if len(self.errors) > 10 else ""
            parts.append("last errors:\n  " + "\n  ".join(shown) + more)
        if self.last_output is not None:
            out = self.last_output
            if len(out) > 2000:
                out = out[:2000] + f"... [{len(self.last_output) - 2000} more characters]"
            parts.append(f"last raw output: {out}")
        parts.append(f"usage: {self.usage.summary()}")
        return redact("\n".join(parts))


class SynthRecordingError(SynthError):
    """A cassette is missing or stale in a mode that forbids recording, corrupt, or unsafe.

    ``corrupt`` is true for a cassette that is not what pytest-synthdata wrote (edited,
    truncated, empty): it is never re-recorded over.
    """

    def __init__(self, message: str, *, corrupt: bool = False) -> None:
        super().__init__(message)
        self.corrupt = corrupt


def refuse_secret(text: str, what: str) -> None:
    """Raise :class:`SynthRecordingError` if ``text``, about to be written or printed as
    ``what`` (a file's path, "the output"), holds a secret of this run in any encoding
    (an endpoint echoing its key): the write is refused, never masked (masked data would
    not be what the model answered)."""
    if found_in(text):
        raise SynthRecordingError(
            f"refusing to write {what}: it would contain a secret this run uses (an API key "
            "or another credential, as the endpoint echoed it). Make the endpoint stop "
            "echoing credentials (or use a key it does not repeat), then run again"
        )


class SynthDataWarning(UserWarning):
    """Something was adjusted automatically (a structured-output mode, a dropped parameter)."""


def _folder(file: str) -> str:
    return os.path.join(str(Path(file).resolve().parent), "")


_INTERNAL: tuple[str, ...] = (
    _folder(__file__),  # this package
    _folder(asyncio.__file__),  # the event loop that runs a dataset's requests
    _folder(concurrent.futures.__file__),
    str(Path(threading.__file__).resolve()),
)
"""Files a warning is never attributed to: where the caller's line is not."""
_HOSTS = ("_pytest", "pluggy")
"""pytest's own frames: a dataset made by a fixture (a marker's) has no caller's line."""


def warn(message: str) -> None:
    """Warn with :class:`SynthDataWarning`, attributed to the first line outside this
    package and the event loop that ran it: the caller's ``generate(...)`` line, as Python
    3.12's ``skip_file_prefixes`` would. When there is no such line (a marker's dataset,
    made by pytest through a fixture; a worker thread), the warning names the line of this
    package that raised it."""
    caller: FrameType | None = sys._getframe(1)  # the caller of warn(): stacklevel 2
    level = 2
    while caller is not None and _within(caller.f_code.co_filename, _INTERNAL):
        caller, level = caller.f_back, level + 1
    if caller is None or _within(caller.f_code.co_filename, _HOSTS):
        level = 2
    warnings.warn(SynthDataWarning(message), stacklevel=level)


def _within(filename: str, places: tuple[str, ...]) -> bool:
    """Whether ``filename`` is under one of ``places``: absolute folders and files, or
    folder names (``_HOSTS``)."""
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return False
    return str(path).startswith(places) or any(place in path.parts for place in places)


UNSUPPORTED_HINTS: tuple[str, ...] = (
    "response_format",
    "json_schema",
    "json_object",
    "tool",
    "function",
    "not supported",
    "unsupported",
    "unrecognized",
    "not implemented",
)
"""Words by which endpoints say a structured-output feature is not available to them."""


CONSTRAINT_HINTS: tuple[str, ...] = (
    "schema",
    "keyword",
    "not permitted",
    "not allowed",
    "not supported",
    "unsupported",
    "grammar",
)
"""Words of an error message that rejects a validation keyword of the schema (with the
keyword named too: see :func:`names_constraint`)."""


SURFACES = ("library", "command")
_surface = ["library"]


def set_surface(surface: str) -> None:
    """Say who drives this process: ``library`` (Python calls and the pytest plugin, the
    default) or ``command`` (``synthdata``, whose flags differ): advice in messages names
    settings as that caller sets them (:func:`option`)."""
    if surface not in SURFACES:
        raise ValueError(f"surface must be one of {SURFACES}, got {surface!r}")
    _surface[0] = surface


def surface() -> str:
    """Who drives this process (:func:`set_surface`)."""
    return _surface[0]


def option(name: str, value: object = None, *, otherwise: str | None = None) -> str:
    """Setting ``name`` (with ``value``) as the caller sets it: the command's flag
    (``--timeout``, ``--max-n 5001``) in the ``synthdata`` command, else ``otherwise``
    (default: the pytest flag, ``--synth-timeout``, which a library call's message names
    too)."""
    dashed = name.replace("_", "-")
    if _surface[0] == "command":
        return f"--{dashed}" + ("" if value is None else f" {value}")
    if otherwise is not None:
        return otherwise
    return f"--synth-{dashed}" + ("" if value is None else f"={value}")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'examples'?)`` for the choice closest to a mistyped ``word``, else ``""``.

    Appended to an "unknown keyword" message, right after the quoted word.
    """
    import difflib  # only when a message is being written

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def names_constraint(message: str, keywords: list[str]) -> bool:
    """Whether an error message rejects one of ``keywords`` (validation keywords the request's
    schema carries): it names one as a word and speaks of a schema, keyword or grammar, so
    "maximum context length exceeded" is not taken for a rejected ``maximum``."""
    lowered = message.lower()
    if not any(hint in lowered for hint in CONSTRAINT_HINTS):
        return False
    return any(
        re.search(rf"(?<![A-Za-z_]){keyword}(?![A-Za-z_])", message, re.IGNORECASE)
        for keyword in keywords
    )
