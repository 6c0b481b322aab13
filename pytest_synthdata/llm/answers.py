"""Reading an endpoint's answer: a bounded body, bounded JSON, usage that can be added up.

* The body is read up to :func:`~pytest_synthdata.storage.bounded.body_cap` bytes, which
  follows from the request's ``max_tokens``; a longer body is a transient failure (like a
  proxy's HTML page), and the connection is dropped without reading the rest, so memory
  stays bounded.
* The body is read as JSON by :func:`pytest_synthdata.jsonread.loads` (nested too deep is
  invalid), and the completion is built from it without the SDK reading it again.
* Usage values that are not non-negative integers (``"n/a"``, ``-1``, ``1e40``) are
  ignored and the usage of that answer is marked unknown (:func:`usage_of`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from .. import jsonread
from ..errors import SynthAPIError
from ..storage.bounded import too_long
from ..storage.secrets import redact

MAX_USAGE = 2**53
"""Larger token counts are not counts (JSON's safe integers end here)."""


@dataclass
class RawAnswer:
    """An answer's status, headers and body, read within the cap. Its ``repr`` never shows
    the body (it may echo a credential)."""

    status_code: int
    headers: dict[str, str]
    content: bytes = field(repr=False)


def read_capped(chunks: Iterator[bytes], cap: int, raw: RawAnswer, endpoint: str) -> RawAnswer:
    """``raw`` with the body made of ``chunks``; :class:`SynthAPIError` past ``cap``."""
    parts, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > cap:
            raise too_long(endpoint, cap, raw.status_code, raw.headers)
        parts.append(chunk)
    raw.content = b"".join(parts)
    return raw


async def aread_capped(
    chunks: AsyncIterator[bytes], cap: int, raw: RawAnswer, endpoint: str
) -> RawAnswer:
    """:func:`read_capped` for an asynchronous stream."""
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > cap:
            raise too_long(endpoint, cap, raw.status_code, raw.headers)
        parts.append(chunk)
    raw.content = b"".join(parts)
    return raw


def parsed(raw: RawAnswer, endpoint: str) -> tuple[ChatCompletion, tuple[int, int, bool]]:
    """The completion of a raw answer; an HTTP 200 whose body is not a JSON completion (a
    proxy's HTML error page, a cut-off body, JSON nested too deep) is a transient failure.
    With it, its usage as :func:`usage_of` reads it from the body as sent."""
    reason = "no 'choices'"
    data: Any = None
    try:
        data = jsonread.loads(raw.content)
    except ValueError as exc:
        reason = str(exc)
    except UnicodeDecodeError:
        reason = "it is not UTF-8 text"
    if isinstance(data, dict) and _well_formed(data.get("choices")):
        return ChatCompletion.construct(**data), usage_of(data.get("usage"))
    if isinstance(data, dict) and "choices" in data:
        reason = "its 'choices' are not a list of messages"
    text = raw.content[:2000].decode("utf-8", "replace")
    shown = " ".join(redact(text).split())[:120]  # masked before it is cut
    raise SynthAPIError(
        f"{endpoint} answered HTTP {raw.status_code} with a body that is not a JSON "
        f"completion ({reason}): {shown!r}",
        status_code=raw.status_code,
        transient=True,
        headers=raw.headers,
    )


def _well_formed(choices: object) -> bool:
    if not isinstance(choices, list):
        return False
    return all(
        isinstance(choice, dict) and isinstance(choice.get("message", {}), dict)
        for choice in choices
    )


def token_count(value: object) -> int | None:
    """``value`` as a token count, or ``None`` if it is not a non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_USAGE:
        return None
    return value


def usage_of(usage: object) -> tuple[int, int, bool]:
    """Prompt and completion tokens of an answer's ``usage`` object (as the body has it),
    and whether they are known: a value that is not a non-negative integer (``"n/a"``,
    ``-1``, ``1e40``, ``true``) makes both 0 and the usage unknown (never added up as it
    came). An answer without usage counts 0, as before."""
    if usage is None:
        return 0, 0, True
    if not isinstance(usage, dict):
        return 0, 0, False
    prompt = token_count(usage.get("prompt_tokens", 0))
    completion = token_count(usage.get("completion_tokens", 0))
    if prompt is None or completion is None:
        return 0, 0, False
    return prompt, completion, True


def error_message(exc: openai.APIStatusError) -> str:
    """The message of an error answer, as the endpoint wrote it."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(exc.message or "")


def after_tries(exc: SynthAPIError, tries: int) -> SynthAPIError:
    """The failure that ends a request: what happened, after how many tries, and what to do."""
    if not exc.transient:
        return exc
    if exc.timed_out:
        advice = (
            "raise the timeout (--synth-timeout) if the model needs longer, or lower the batch size"
        )
    elif exc.status_code == 429:
        advice = "rate limited: lower concurrency (--synth-concurrency) or raise http_retries"
    elif exc.status_code is None and "could not reach" in str(exc):
        advice = "check OPENAI_BASE_URL / --synth-base-url, or replay from a cassette"
    else:
        advice = "the endpoint keeps failing; try again later or check the server"
    return SynthAPIError(
        f"{exc} (after {tries} tr{'y' if tries == 1 else 'ies'}); {advice}",
        status_code=exc.status_code,
        body=exc.body,
        transient=True,
        timed_out=exc.timed_out,
        headers=exc.headers,
        tries=tries,
    )
