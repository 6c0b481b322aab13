"""The httpx2 transports that put the response cache in front of vcrpy and the network.

Order for each request: a cassette that holds it replays it (answered here, without vcrpy's
connection-level stub or a connection pool); a cassette that may not record
fails with a precise error; otherwise a cache hit answers (and is appended to a recording
cassette, so deleting the cache never loses a recording); otherwise the request goes out,
and a recording cassette records its answer (vcrpy patches nothing: a patch would answer
every call of the process). Responses are cached only once the engine has validated them
(see :func:`confirm`). One async and one sync flavour, sharing every decision.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import filelock
import httpx2
from vcr.request import Request as VcrRequest

from .bounded import bound_pool, cap_of_request, done, expecting
from .cache import ResponseCache, request_key
from .cassettes import exchange_id, kept
from .credentials import missing_key_error, needs_key, sends_missing_key
from .exchange import CURRENT, Exchange
from .secrets import REGISTRY

_CLAIM_POLL = 0.05
"""Seconds between tries to lock a request key another process holds."""


DEFERRAL: ContextVar[Callable[[str, str, bytes], None] | None] = ContextVar(
    "synthdata_deferral", default=None
)
"""Called with (method, url, body) for a request that neither the cassette nor the cache
answers, before it would go out: it may raise to answer the request another way (a batch)."""


@dataclass
class Counters:
    """Where responses came from; ``failed`` counts the transient failures (429, 5xx ...)
    that were retried and never recorded."""

    replayed: int = 0
    recorded: int = 0
    cached: int = 0
    network: int = 0
    failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def bump(self, name: str, count: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + count)


@dataclass
class _Plan:
    source: str
    exchange: Exchange | None
    answer: httpx2.Response | None = None
    claim: tuple[str, VcrRequest | None] | None = None
    """Set when the request must go out and a cache is shared: its key (and the cassette's
    request), to lock before going to the network."""
    ident: str | None = None
    """The recorded exchange this request is, or becomes once recorded."""
    recorded_as: VcrRequest | None = None
    """The request as the cassette records it, when its answer is to be recorded."""


class _Router:
    """Where each request is answered from (cassette, cache or network): the decisions both
    transports share."""

    def __init__(
        self,
        *,
        cache: ResponseCache | None,
        cassette: Any | None,
        counters: Counters,
        on_missing: Callable[[VcrRequest], Exception],
        touched: list[str] | None = None,
    ) -> None:
        self.cache = cache
        self.cassette = cassette
        self.counters = counters
        self.on_missing = on_missing
        self.touched = touched
        """Where the exchanges of the cassette that answered are noted (by
        :func:`~.cassettes.exchange_id`): replayed, appended from the cache, recorded."""

    def _touch(self, ident: str | None) -> None:
        if ident is not None and self.touched is not None:
            self.touched.append(ident)

    def plan(self, request: httpx2.Request, body: bytes) -> _Plan:
        REGISTRY.add_headers(request.headers.items())
        REGISTRY.add_url(str(request.url))
        key = request_key(request.method, str(request.url), body)
        exchange = CURRENT.get()
        if exchange is not None:
            exchange.key = key
        source = "network"
        vcr_request: VcrRequest | None = None
        ident: str | None = None
        if self.cassette is not None:
            vcr_request = VcrRequest(request.method, str(request.url), body, dict(request.headers))
            stored = self.cassette.filter_request(vcr_request)  # a filtered copy, as stored
            ident = exchange_id(stored.method, stored.uri, stored.body)
            if self.cassette.can_play_response_for(vcr_request):
                self._touch(ident)
                return self._replay(request, vcr_request, exchange)
            if self.cassette.write_protected:
                raise self.on_missing(vcr_request)
            source = "recorded"
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is None:
            if DEFERRAL.get() is None:  # a deferral hook may keep it from going out
                _check_key(request)
            claim = (key, vcr_request) if self.cache is not None and exchange else None
            return _Plan(source, exchange, claim=claim, ident=ident, recorded_as=vcr_request)
        return self._cached(request, hit, vcr_request, exchange, ident)

    def claim(self, request: httpx2.Request, plan: _Plan) -> _Plan | None:
        """Try to lock the request's key for this process. ``None``: another process holds
        it (try again shortly); otherwise the plan, answered from the cache if the other
        process has meanwhile cached it."""
        assert plan.claim is not None and self.cache is not None and plan.exchange is not None
        key, vcr_request = plan.claim
        lock = self.cache.lock(key)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            return None
        hit = self.cache.get(key)
        if hit is not None:
            lock.release()
            return self._cached(request, hit, vcr_request, plan.exchange, plan.ident)
        plan.exchange.claim = lock
        return _Plan(plan.source, plan.exchange, ident=plan.ident, recorded_as=vcr_request)

    def _cached(
        self,
        request: httpx2.Request,
        hit: dict[str, Any],
        vcr_request: VcrRequest | None,
        exchange: Exchange | None,
        ident: str | None,
    ) -> _Plan:
        """Answer from the cache (and append the answer to a recording cassette)."""
        content = hit["body"].encode()
        if self.cassette is not None and vcr_request is not None:
            self.cassette.append(
                vcr_request,
                {
                    "status": {"code": hit["status"], "message": "OK"},
                    "headers": {"content-type": [hit["content_type"]]},
                    "body": {"string": content},
                },
            )
            self._touch(ident)
        self.counters.bump("cached")
        if exchange is not None:
            exchange.source = "cached"
        answer = httpx2.Response(
            hit["status"],
            headers={"content-type": hit["content_type"]},
            content=content,
            request=request,
        )
        return _Plan("cached", exchange, answer)

    def _replay(
        self, request: httpx2.Request, vcr_request: VcrRequest, exchange: Exchange | None
    ) -> _Plan:
        """Answer from the cassette directly: no connection pool (or TLS set-up) is needed."""
        assert self.cassette is not None
        recorded = self.cassette.play_response(vcr_request)
        headers = [
            (name, value) for name, values in recorded["headers"].items() for value in values
        ]
        content = recorded["body"]["string"]
        if isinstance(content, str):
            content = content.encode()
        answer = httpx2.Response(
            recorded["status"]["code"], headers=headers, content=content, request=request
        )
        plan = _Plan("replayed", exchange, answer)
        self.note(plan, answer, content)
        return plan

    def note(self, plan: _Plan, response: httpx2.Response, content: bytes | None) -> None:
        if plan.recorded_as is not None and self.cassette is not None:
            self.cassette.append(plan.recorded_as, _as_recorded(response, content))
        failed = plan.source in ("recorded", "network") and not kept(
            response.status_code, content or b""
        )
        self.counters.bump("failed" if failed else plan.source)
        if plan.source == "recorded" and not failed:
            self._touch(plan.ident)
        exchange = plan.exchange
        if exchange is None:
            return
        exchange.source = plan.source
        exchange.status = response.status_code
        if content is not None and response.status_code == 200:
            exchange.content_type = response.headers.get("content-type", "application/json")
            exchange.body = content.decode("utf-8", "replace")
        else:
            exchange.release()  # nothing to cache: others may try the request themselves


class StorageTransport(httpx2.AsyncBaseTransport):
    """For ``openai.AsyncOpenAI`` clients."""

    def __init__(self, **kwargs: Any) -> None:
        self.inner: httpx2.AsyncHTTPTransport | None = None  # created for the first real call
        self.router = _Router(**kwargs)
        self.cache = self.router.cache

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        plan = self.router.plan(request, await request.aread())
        _defer(request, plan)
        while plan.claim is not None:
            claimed = self.router.claim(request, plan)
            if claimed is None:
                await asyncio.sleep(_CLAIM_POLL)
            else:
                plan = claimed
        if plan.answer is not None:
            return plan.answer
        if self.inner is None:
            self.inner = bound_pool(httpx2.AsyncHTTPTransport())
        token = expecting(cap_of_request(request.content))  # bodies end at the cap
        try:
            response = await self.inner.handle_async_request(request)
            content = await response.aread()
        finally:
            done(token)
        self.router.note(plan, response, content)
        return response

    async def aclose(self) -> None:
        if self.inner is not None:
            await self.inner.aclose()


class SyncStorageTransport(httpx2.BaseTransport):
    """For ``openai.OpenAI`` and ``openai.AzureOpenAI`` clients."""

    def __init__(self, **kwargs: Any) -> None:
        self.inner: httpx2.HTTPTransport | None = None  # created for the first real call
        self.router = _Router(**kwargs)
        self.cache = self.router.cache

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        plan = self.router.plan(request, request.read())
        _defer(request, plan)
        while plan.claim is not None:
            claimed = self.router.claim(request, plan)
            if claimed is None:
                time.sleep(_CLAIM_POLL)
            else:
                plan = claimed
        if plan.answer is not None:
            return plan.answer
        if self.inner is None:
            self.inner = bound_pool(httpx2.HTTPTransport())
        token = expecting(cap_of_request(request.content))  # bodies end at the cap
        try:
            response = self.inner.handle_request(request)
            content = response.read()
        finally:
            done(token)
        self.router.note(plan, response, content)
        return response

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()


def _as_recorded(response: httpx2.Response, content: bytes | None) -> dict[str, Any]:
    """An answer as vcrpy records it (the cassette's filters then keep what they keep):
    the body is already decoded, so no ``content-encoding`` goes with it."""
    headers: dict[str, list[str]] = {}
    for name, value in response.headers.multi_items():
        if name.lower() != "content-encoding":
            headers.setdefault(name, []).append(value)
    return {
        "status": {"code": response.status_code, "message": response.reason_phrase},
        "headers": headers,
        "body": {"string": content or b""},
    }


def _defer(request: httpx2.Request, plan: _Plan) -> None:
    """Hand a request that would go out to the :data:`DEFERRAL` hook, if one is set."""
    hook = DEFERRAL.get()
    if hook is not None and plan.answer is None:
        hook(request.method, str(request.url), request.content)
        _check_key(request)  # the hook let it go out


def _check_key(request: httpx2.Request) -> None:
    """Refuse a request that would go out with the placeholder key to an endpoint that needs
    a real one (:mod:`.credentials`), before anything is sent."""
    if sends_missing_key(request.headers.get("authorization")) and needs_key(str(request.url)):
        raise missing_key_error("this request (not in the cassette or the cache)")


def settle(exchange: Exchange | None, cache: ResponseCache | None, *, valid: bool) -> None:
    """The batch loop has judged an answer: cache it when it was fully valid (never failed or
    invalid ones), and let other processes have its request key."""
    try:
        if valid:
            _confirm(exchange, cache)
    finally:
        if exchange is not None:
            exchange.release()


def _confirm(exchange: Exchange | None, cache: ResponseCache | None) -> None:
    if (
        cache is None
        or exchange is None
        or exchange.key is None
        or exchange.status != 200
        or exchange.body is None
        or exchange.source == "cached"
    ):
        return
    cache.put(exchange.key, exchange.status, exchange.content_type, exchange.body)
