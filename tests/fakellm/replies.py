"""The replies that are not a chat completion: API errors and the faults sent instead.

:func:`error` is an OpenAI-style error reply; :func:`fault_reply` the 429/500/503 of an HTTP
fault and :func:`throttled` the 429 of a rate limit, each saying when to come back;
:func:`hostile_body` and :data:`HTML_PAGE` are the bodies of the ``huge``, ``deep_body`` and
``html`` faults, which no client should choke on. Each is a plain function of the switches
:class:`~fakellm.server.FakeLLM` passes in.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping

from .ratelimit import RateLimit, retry_headers
from .wire import Reply, error_body

__all__ = ["HTML_PAGE", "error", "fault_reply", "hostile_body", "once", "throttled"]

#: what a proxy in front of a model sends when the model is down
HTML_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>nginx</center></body></html>\n"
)


def error(
    status: int,
    message: str,
    type_: str,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """HTTP ``status`` with an OpenAI-style error body and ``headers``."""
    return Reply(status, error_body(message, type_, code), dict(headers or {}))


def once(reply: Reply) -> Generator[float | Reply, None, None]:
    """The steps of a request answered at once with ``reply``."""
    yield reply


def fault_reply(kind: str, retry_after_ms: float | None) -> Reply:
    """The reply of an HTTP fault (``"429"``, ``"503"``, else a 500), with ``retry-after-ms``
    when ``retry_after_ms`` is set."""
    headers: dict[str, str] = {}
    if retry_after_ms is not None:
        # The SDK ignores a zero delay and falls back to its own backoff (0.5 s and up),
        # so "retry at once" is announced as a microsecond.
        headers["retry-after-ms"] = str(retry_after_ms or 0.001)
    if kind == "429":
        headers["retry-after"] = "0"
        return error(
            429,
            "Rate limit reached for requests. Please try again later.",
            "rate_limit_error",
            code="rate_limit_exceeded",
            headers=headers,
        )
    if kind == "503":
        return error(
            503, "The server is overloaded or not ready yet.", "server_error", headers=headers
        )
    return error(
        500,
        "The server had an error while processing your request.",
        "server_error",
        headers=headers,
    )


def throttled(limit: RateLimit, wait: float, too_large: bool, limits: Mapping[str, str]) -> Reply:
    """HTTP 429 from the rate limit ``limit``, saying when to come back, as hosted APIs do
    (``too_large``: the request could never fit it)."""
    if too_large:
        message = (
            f"Request too large: tokens per {limit.window:g}s limit is "
            f"{limit.tokens}; lower max_tokens or the prompt."
        )
        return error(429, message, "tokens", code="rate_limit_exceeded", headers=limits)
    headers = {**limits, **retry_headers(wait, limit.headers)}
    return error(
        429,
        f"Rate limit reached. Please try again in {math.ceil(wait * 1000)}ms.",
        "requests",
        code="rate_limit_exceeded",
        headers=headers,
    )


def hostile_body(kind: str, huge_bytes: int, deep_levels: int) -> bytes:
    """The body of a ``huge`` answer (``huge_bytes`` long) or a ``deep_body`` one (its
    choices nested ``deep_levels`` deep)."""
    if kind == "deep_body":
        return b'{"choices": ' + b"[" * deep_levels + b"]" * deep_levels + b"}"
    head = b'{"id": "chatcmpl-huge", "object": "chat.completion", "choices": [{"index": 0, '
    head += b'"finish_reason": "stop", "message": {"role": "assistant", "content": "'
    tail = b'"}}]}'
    return head + b"x" * max(0, huge_bytes - len(head) - len(tail)) + tail
