"""Bodies read up to a cap: an endpoint cannot make this process hold more than that.

A chat completion's body follows from the request's ``max_tokens``: :func:`body_cap` bytes
at most. The connection pools that reach the network (the cassette transport's, and the
client's own: :func:`bound_client`) are wrapped so that the body of an answer, an error's
too, stops being read past the cap of its request, before vcrpy, the cache or the SDK
holds it: reading on raises :class:`BodyTooLong`, a transient
:class:`~pytest_synthdata.errors.SynthAPIError` (tried again, like an HTML error page).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Any

from ..errors import SynthAPIError

BASE_CAP = 1 << 20
"""Bytes any answer may take besides its tokens (ids, usage, a server's extra fields)."""
BYTES_PER_TOKEN = 128
"""Bytes an output token may take in the body at most: a long token, JSON-escaped."""
DEFAULT_TOKENS = 4096
"""The ``max_tokens`` assumed for a request that does not say."""

_CAP: ContextVar[int | None] = ContextVar("synthdata_body_cap", default=None)


class BodyTooLong(SynthAPIError):
    """An answer's body ran past the cap of its request."""


def body_cap(max_tokens: object) -> int:
    """The most bytes the body of an answer to a request for ``max_tokens`` may have."""
    ok = isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0
    return BASE_CAP + BYTES_PER_TOKEN * (max_tokens if ok else DEFAULT_TOKENS)  # type: ignore[operator]


def cap_of_request(body: bytes) -> int:
    """:func:`body_cap` for a request body (JSON with ``max_tokens``, or anything else)."""
    try:
        request = json.loads(body) if body else None
    except (ValueError, RecursionError):
        request = None
    return body_cap(request.get("max_tokens") if isinstance(request, dict) else None)


def too_long(endpoint: str, cap: int, status: int | None, headers: Any = None) -> BodyTooLong:
    """The failure of a body longer than ``cap``."""
    return BodyTooLong(
        f"{endpoint} answered HTTP {status} with a body longer than {cap} bytes, far more "
        "than the request's max_tokens allows; the rest was not read",
        status_code=status,
        transient=True,
        headers=dict(headers or {}),
    )


def expecting(cap: int) -> Any:
    """Set the cap of the request about to be sent (in this context); returns the token
    to reset it with."""
    return _CAP.set(cap)


def done(token: Any) -> None:
    _CAP.reset(token)


class _Capped:
    """A response stream that raises past ``cap`` bytes (and closes what it wraps)."""

    def __init__(self, stream: Any, cap: int, endpoint: str, status: int) -> None:
        self.stream, self.cap, self.endpoint, self.status = stream, cap, endpoint, status

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self.stream:
            size += len(chunk)
            if size > self.cap:
                self.close()
                raise too_long(self.endpoint, self.cap, self.status)
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self.stream:
            size += len(chunk)
            if size > self.cap:
                await self.aclose()
                raise too_long(self.endpoint, self.cap, self.status)
            yield chunk

    def close(self) -> None:
        if hasattr(self.stream, "close"):
            self.stream.close()

    async def aclose(self) -> None:
        if hasattr(self.stream, "aclose"):
            await self.stream.aclose()


class _BoundedPool:
    """A connection pool whose responses' bodies stop at the cap set by :func:`expecting`."""

    def __init__(self, pool: Any) -> None:
        self._inner = pool

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __enter__(self) -> Any:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)

    async def __aenter__(self) -> Any:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)

    def _wrap(self, request: Any, response: Any) -> Any:
        cap = _CAP.get()
        if cap is not None:
            url = request.url
            endpoint = f"{url.scheme.decode()}://{url.host.decode()}:{url.port}"
            response.stream = _Capped(response.stream, cap, endpoint, response.status)
        return response

    def handle_request(self, request: Any) -> Any:
        return self._wrap(request, self._inner.handle_request(request))

    async def handle_async_request(self, request: Any) -> Any:
        return self._wrap(request, await self._inner.handle_async_request(request))


def bound_pool(transport: Any) -> Any:
    """``transport`` (an httpx2 HTTP transport) with its pool bounded; returns it."""
    pool = getattr(transport, "_pool", None)
    if pool is not None and not isinstance(pool, _BoundedPool):
        transport._pool = _BoundedPool(pool)
    return transport


def bound_client(http_client: Any) -> None:
    """Bound the pools of an httpx2 client (its transport and its proxy mounts): bodies
    stop at the cap set by :func:`expecting`, and only while one is set, so the client
    behaves as before for any other use."""
    bound_pool(getattr(http_client, "_transport", None))
    for transport in (getattr(http_client, "_mounts", None) or {}).values():
        bound_pool(transport)
