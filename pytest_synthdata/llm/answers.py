"""Reading an endpoint's answer: a bounded body, bounded JSON, usage that can be added up.

* The body is read up to :func:`~pytest_synthdata.storage.bounded.body_cap` bytes, which
  follows from the request's ``max_tokens``; a longer body is a transient failure (like a
  proxy's HTML page), and the connection is dropped without reading the rest, so memory
  stays bounded.
* The body is read as JSON by :func:`pytest_synthdata.jsonread.loads` (nested too deep is
  invalid), and the completion is built from it without the SDK reading it again.
* Each choice must have a message whose ``content`` is text, null, or a list of content
  parts (what some gateways send): the ``"text"`` parts are joined into the content, so
  everything downstream reads a ``str`` or ``None`` (:func:`text_choices`).
* Usage values that are not non-negative integers (``"n/a"``, ``-1``, ``1e40``) are
  ignored and the usage of that answer is marked unknown (:func:`usage_of`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletion

from .. import jsonread
from ..errors import SynthAPIError, option
from ..storage.bounded import too_long
from ..storage.secrets import redact
from .modes import sent_schema

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
    if isinstance(data, dict) and "choices" in data:
        choices = text_choices(data["choices"])
        if not isinstance(choices, str):
            completion = ChatCompletion.construct(**{**data, "choices": choices})
            return completion, usage_of(data.get("usage"))
        reason = choices
    text = raw.content[:2000].decode("utf-8", "replace")
    shown = " ".join(redact(text).split())[:120]  # masked before it is cut
    raise SynthAPIError(
        f"{endpoint} answered HTTP {raw.status_code} with a body that is not a JSON "
        f"completion ({reason}): {shown!r}",
        status_code=raw.status_code,
        transient=True,
        headers=raw.headers,
    )


def text_choices(choices: object) -> list[Any] | str:
    """``choices`` with each message's ``content`` as text or ``None`` (the ``"text"``
    parts of a list of content parts joined) and the arguments of its first tool call (the
    ones the ``tools`` mode reads) text or ``None`` too; or, as a string, why they are not
    a list of messages."""
    if not isinstance(choices, list):
        return "its 'choices' are not a list of messages"
    found: list[Any] = []
    for number, choice in enumerate(choices, 1):
        if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
            return f"its choice {number} has no message"
        message = choice["message"]
        try:
            content = _content_text(message.get("content"))
        except ValueError as exc:
            return f"the content of its choice {number} is {exc}"
        wrong = _calls_problem(message.get("tool_calls"))
        if wrong is not None:
            return f"the tool calls of its choice {number} {wrong}"
        found.append({**choice, "message": {**message, "content": content}})
    return found


def _content_text(content: object) -> str | None:
    """A message's ``content`` as text: a string or ``None`` as it is, a list of content
    parts as its ``"text"`` parts joined (parts of other types, such as images, carry no
    text); a :class:`ValueError` saying what it is otherwise."""
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ValueError(f"{type(content).__name__}, not text or a list of text parts")
    texts: list[str] = []
    for part in content:
        if not isinstance(part, dict):
            raise ValueError(f"a list holding a {type(part).__name__}, not a content part")
        if part.get("type") != "text":
            continue
        text = part.get("text")
        if not isinstance(text, str):
            raise ValueError("a list holding a text part whose text is not a string")
        texts.append(text)
    return "".join(texts)


def _calls_problem(calls: object) -> str | None:
    """What is wrong with a message's ``tool_calls`` as the ``tools`` mode reads them (the
    first call's function arguments, as text); ``None``: nothing."""
    if calls is None or calls == []:
        return None
    if not isinstance(calls, list):
        return "are not a list"
    function = calls[0].get("function") if isinstance(calls[0], dict) else None
    if not isinstance(function, dict):
        return "do not start with a function call"
    arguments = function.get("arguments")
    if arguments is not None and not isinstance(arguments, str):
        return f"have arguments that are not text (a {type(arguments).__name__})"
    return None


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


#: the transport errors of a connection that was made and the request sent, then dropped
#: before a full answer: the server went away while answering (``ConnectError``: never reached)
DROPPED = (httpx2.RemoteProtocolError, httpx2.ReadError)

#: the schema keywords whose values a crash report shows (the others by name only)
_SHOWN_VALUES = ("pattern", "format")

_CRASH_HINT = (
    "a local server that crashes on a schema feature (llama-cpp-python 0.3 does on a "
    "`pattern` holding `\\.`) crashes in every structured mode, as each sends the schema "
    '(structured="json_object" too): drop that constraint from the model and check the value '
    "in a validator instead"
)


def carried(request: dict[str, Any], mode: str | None, keywords: list[str]) -> str:
    """What ``request`` carried, as a crash report names it: the model, the structured mode,
    the validation keywords its schema sent (``pattern`` and ``format`` with their values)
    and ``max_tokens``. Secrets are masked."""
    parts = [f"model {request.get('model')!r}"]
    if mode is not None:
        parts.append(f"structured={mode!r}")
    shown: dict[str, list[str]] = {key: [] for key in _SHOWN_VALUES}
    _collect(sent_schema(request), shown)
    sent = [
        ", ".join(f"{key} `{value}`" for value in shown[key]) if shown.get(key) else key
        for key in keywords
    ]
    if sent:
        parts.append("schema keywords " + ", ".join(sent))
    parts.append(f"max_tokens {request.get('max_tokens')}")
    return redact(", ".join(parts))


def _collect(node: Any, shown: dict[str, list[str]]) -> None:
    """The string values of the :data:`_SHOWN_VALUES` keywords anywhere in a schema, once."""
    if isinstance(node, list):
        for item in node:
            _collect(item, shown)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in shown and isinstance(value, str):
                if value not in shown[key]:
                    shown[key].append(value)
            elif key != "properties" or not isinstance(value, dict):
                _collect(value, shown)
            else:  # property names are names, not keywords
                for sub in value.values():
                    _collect(sub, shown)


def connection_error(endpoint: str, cause: BaseException) -> SynthAPIError:
    """A try whose connection failed: dropped after the request was sent, before a full
    answer (:data:`DROPPED`: the server went away while answering), or never made."""
    if isinstance(cause, DROPPED):
        return SynthAPIError(
            f"{endpoint} closed the connection without a full answer "
            f"({cause or type(cause).__name__})",
            transient=True,
            dropped=True,
        )
    return SynthAPIError(f"could not reach {endpoint} ({cause})", transient=True)


def after_tries(
    exc: SynthAPIError,
    tries: int,
    dropped_at: int | None = None,
    request: str = "",
    earlier: str | None = None,
) -> SynthAPIError:
    """The failure that ends a request: what happened, after how many tries, and what to do.

    ``dropped_at``: the first try whose connection the server dropped after it had accepted
    the request (it went away while answering); ``request``: what the request carried
    (:func:`carried`), shown when it did; ``earlier``: what an earlier request to the same
    endpoint carried when the server went away while answering it, shown when this one then
    could not reach it."""
    if not exc.transient:
        return exc
    what = str(exc)
    if exc.timed_out:
        advice = (
            f"raise the timeout ({option('timeout')}) if the model needs longer, or lower "
            "the batch size"
        )
    elif dropped_at is not None:
        what = _dropped(exc, tries, dropped_at, request)
        advice = f"the server may have crashed on this request; {_CRASH_HINT}"
    elif earlier is not None and exc.status_code is None and "could not reach" in what:
        what = (
            "the server went away while answering a request that carried "
            f"{earlier}, and may have crashed on it; then this request {what}"
        )
        advice = _CRASH_HINT
    elif exc.status_code == 429:
        advice = (
            f"rate limited: lower concurrency ({option('concurrency')}) or raise "
            f"{option('http_retries', otherwise='http_retries')}"
        )
    elif exc.status_code is None and "could not reach" in what:
        advice = f"check OPENAI_BASE_URL / {option('base_url')}, or replay from a cassette"
    else:
        advice = "the endpoint keeps failing; try again later or check the server"
    return SynthAPIError(
        f"{what} (after {tries} tr{'y' if tries == 1 else 'ies'}); {advice}",
        status_code=exc.status_code,
        body=exc.body,
        transient=True,
        timed_out=exc.timed_out,
        headers=exc.headers,
        tries=tries,
        dropped=True if dropped_at is not None else exc.dropped,
    )


def _dropped(exc: SynthAPIError, tries: int, dropped_at: int, request: str) -> str:
    """``exc``'s message, led by the drop: when it happened and what the request carried."""
    when = "" if tries == 1 else f" (try {dropped_at} of {tries})"
    head = f"the server went away while answering this request{when}"
    if not exc.dropped:  # a later try: the server is gone, or answered something else
        head += f", and then: {exc}"
    else:
        head = f"{exc}: {head}"
    return head + (f"; the request carried {request}" if request else "")
