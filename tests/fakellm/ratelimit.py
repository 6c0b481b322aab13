"""A hosted API's rate limit: requests and tokens per window, as continuous token buckets.

Hosted APIs (OpenAI's among them) limit each key to so many requests and so many tokens per
minute. Each limit is a bucket that starts full, holds at most the limit, and refills
continuously at ``limit / window`` per second. A request is admitted when both buckets
hold enough: one request, and its *reservation* of tokens, which is what the server
estimates before generating anything: the prompt's tokens plus the ``max_tokens`` (or
``max_completion_tokens``) the request allows. A request that sends no limit reserves only
its prompt, and its completion tokens are taken from the bucket when it is answered (which
may leave the bucket in debt). Unused reserved tokens are not given back.

A request that does not fit is answered HTTP 429 with ``retry-after-ms`` / ``retry-after``
(the time until it would fit), and every chat answer, 429 or not, carries the
``x-ratelimit-limit-*``, ``x-ratelimit-remaining-*`` and ``x-ratelimit-reset-*`` headers
for requests and tokens (a reset is the time until that bucket is full again), in the
formats OpenAI uses (``"1s"``, ``"6m0s"``, ``"120ms"``).

Many gateways and proxies say less: with ``headers=False`` no answer carries
``x-ratelimit-*`` headers, and a 429 carries only ``retry-after`` in whole seconds (rounded
up, at least 1), as HTTP defines it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Admission", "RateLimit", "RateLimiter", "format_duration", "retry_headers"]


@dataclass(frozen=True)
class RateLimit:
    """``requests`` and ``tokens`` allowed per ``window`` seconds (0: that one is unlimited);
    ``headers``: whether answers carry ``x-ratelimit-*`` headers and 429s ``retry-after-ms``
    (False: a 429 with ``retry-after`` in whole seconds is all that is said)."""

    requests: int = 0
    tokens: int = 0
    window: float = 60.0
    headers: bool = True

    @property
    def active(self) -> bool:
        return self.requests > 0 or self.tokens > 0


@dataclass(frozen=True)
class Admission:
    """Whether a request may be answered now; if not, how long until it would fit."""

    admitted: bool
    wait: float
    headers: dict[str, str]
    too_large: bool = False


class _Bucket:
    def __init__(self, limit: int, window: float, now: float) -> None:
        self.limit = limit
        self.rate = limit / window if limit else 0.0
        self.level = float(limit)
        self.stamp = now

    def refill(self, now: float) -> None:
        if self.limit:
            self.level = min(float(self.limit), self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until the bucket holds ``amount`` (0 when it does now)."""
        if not self.limit or self.level >= amount:
            return 0.0
        return (amount - self.level) / self.rate

    def reset(self) -> float:
        """Seconds until the bucket is full."""
        return self.wait_for(float(self.limit))

    def remaining(self) -> int:
        return max(0, math.floor(self.level))


class RateLimiter:
    """The requests and tokens buckets of one API key (thread-safe)."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._requests = _Bucket(limit.requests, limit.window, now)
        self._tokens = _Bucket(limit.tokens, limit.window, now)
        self.throttled = 0
        self.reserved_tokens = 0

    def admit(self, reserve: int) -> Admission:
        """Take one request and ``reserve`` tokens, or say how long until they would fit."""
        with self._lock:
            now = self._clock()
            self._requests.refill(now)
            self._tokens.refill(now)
            too_large = bool(self.limit.tokens) and reserve > self.limit.tokens
            wait = max(self._requests.wait_for(1.0), self._tokens.wait_for(float(reserve)))
            if too_large or wait > 0:
                self.throttled += 1
                return Admission(False, wait, self._headers(), too_large)
            if self._requests.limit:
                self._requests.level -= 1
            if self._tokens.limit:
                self._tokens.level -= reserve
            self.reserved_tokens += reserve
            return Admission(True, 0.0, self._headers())

    def charge(self, tokens: int) -> dict[str, str]:
        """Take ``tokens`` more (a completion that had no ``max_tokens``); the headers after."""
        with self._lock:
            now = self._clock()
            self._requests.refill(now)
            self._tokens.refill(now)
            if self._tokens.limit:
                self._tokens.level -= tokens
            self.reserved_tokens += tokens
            return self._headers()

    def headers(self) -> dict[str, str]:
        with self._lock:
            now = self._clock()
            self._requests.refill(now)
            self._tokens.refill(now)
            return self._headers()

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if not self.limit.headers:
            return headers
        for kind, bucket in (("requests", self._requests), ("tokens", self._tokens)):
            if not bucket.limit:
                continue
            headers[f"x-ratelimit-limit-{kind}"] = str(bucket.limit)
            headers[f"x-ratelimit-remaining-{kind}"] = str(bucket.remaining())
            headers[f"x-ratelimit-reset-{kind}"] = format_duration(bucket.reset())
        return headers


def format_duration(seconds: float) -> str:
    """A duration as OpenAI's rate-limit headers write it: ``"120ms"``, ``"1.5s"``, ``"6m0s"``."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


def retry_headers(wait: float, precise: bool = True) -> dict[str, str]:
    """What a 429 says about when to come back, ``wait`` seconds from now: ``retry-after``
    in whole seconds (at least 1), and with ``precise`` also ``retry-after-ms``."""
    headers = {"retry-after": str(max(1, math.ceil(wait)))}
    if precise:
        headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
    return headers
