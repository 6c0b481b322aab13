"""How requests are paced: retries with backoff, and each endpoint's rate limits.

* A transient failure (HTTP 408, 409, 429, 5xx, a dropped connection, a timeout, an HTTP 200
  whose body is not JSON) is tried again, up to ``http_retries`` times. The wait honours
  ``retry-after-ms`` / ``retry-after`` and otherwise doubles from 0.5 s up to 8 s. Each try
  has a deadline (``timeout``) over the whole request, first byte to last; a request that
  has timed out twice is not tried again, so a hung or trickling server costs at most
  2 x ``timeout`` per request, and once four tries in a row have timed out the endpoint is
  taken for unresponsive: later requests to it fail at once, saying so.
* Every endpoint has a :class:`Limiter`, shared by all calls of the process: the requests
  in flight follow additive increase, multiplicative decrease (a 429 halves the allowance,
  each answer adds ``1/allowance``), and ``retry-after`` or an exhausted
  ``x-ratelimit-remaining-requests`` / ``-tokens`` holds every request to the endpoint
  until the reset time the server gave.

Nothing here imports openai: the client feeds it status codes and headers.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Mapping

BACKOFF_START = 0.5
BACKOFF_CAP = 8.0
MAX_WAIT = 120.0
"""Longest pause a server's ``retry-after`` or rate-limit reset is honoured for."""
MAX_TIMEOUTS = 2
"""Tries of one request that may time out before it fails."""
DEAD_AFTER = 4
"""Tries in a row that timed out, across requests, after which an endpoint is taken for
unresponsive: later requests fail at once instead of waiting out their deadlines."""
_POLL = 0.02

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def backoff(attempt: int) -> float:
    """The pause before try ``attempt + 2`` when the server said nothing."""
    return float(min(BACKOFF_CAP, BACKOFF_START * (2**attempt)))


def duration(text: str) -> float | None:
    """``"1s"``, ``"6m0s"``, ``"20ms"``, ``"0.5"`` (seconds) as seconds; ``None`` if unreadable."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(f"{v}{u}" for v, u in parts) != text:
        return None
    return sum(float(value) * _UNITS[unit] for value, unit in parts)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """How long the server asked to wait (``retry-after-ms``, ``retry-after``), if it did."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return min(MAX_WAIT, max(0.0, float(lowered["retry-after-ms"]) / 1000))
        except ValueError:
            pass
    if "retry-after" in lowered:
        seconds = duration(lowered["retry-after"])
        if seconds is not None:
            return min(MAX_WAIT, seconds)
    return None


def exhausted_until(headers: Mapping[str, str]) -> float | None:
    """Seconds until a rate limit the headers say is used up resets (``None``: not used up)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    waits = []
    for kind in ("requests", "tokens"):
        remaining = lowered.get(f"x-ratelimit-remaining-{kind}")
        reset = lowered.get(f"x-ratelimit-reset-{kind}")
        if remaining is None or reset is None:
            continue
        try:
            left = float(remaining)
        except ValueError:
            continue
        seconds = duration(reset)
        if left <= 0 and seconds is not None:
            waits.append(min(MAX_WAIT, seconds))
    return max(waits) if waits else None


class Limiter:
    """Requests in flight to one endpoint, and when the next may start (thread-safe: blocking
    calls run event loops of their own, possibly several at once)."""

    def __init__(self) -> None:
        self.allowance = float("inf")
        self.in_flight = 0
        self.peak = 0
        self.throttled = 0
        self.timeouts_in_row = 0
        self._not_before = 0.0
        self._lock = threading.Lock()

    async def acquire(self) -> None:
        """Wait for a free place and for any pause the server asked for."""
        while True:
            with self._lock:
                wait = self._not_before - time.monotonic()
                if wait <= 0 and self.in_flight < max(1.0, self.allowance):
                    self.in_flight += 1
                    self.peak = max(self.peak, self.in_flight)
                    return
            await asyncio.sleep(min(max(wait, _POLL), 1.0))

    @property
    def unresponsive(self) -> bool:
        return self.timeouts_in_row >= DEAD_AFTER

    def release(
        self,
        *,
        throttled: bool,
        headers: Mapping[str, str] | None = None,
        timed_out: bool = False,
    ) -> None:
        """A request finished: a 429 halves the allowance, an answer adds ``1/allowance``;
        a pause the headers ask for holds every request to the endpoint."""
        pause = None
        if headers is not None:
            pause = retry_after(headers) if throttled else None
            used_up = exhausted_until(headers)
            if used_up is not None:
                pause = max(pause or 0.0, used_up)
        with self._lock:
            self.timeouts_in_row = self.timeouts_in_row + 1 if timed_out else 0
            if throttled:
                self.throttled += 1
                self.allowance = max(1.0, min(self.allowance, float(self.in_flight)) / 2)
            elif self.allowance != float("inf"):
                self.allowance += 1 / self.allowance
            self.in_flight -= 1
            if pause:
                self._not_before = max(self._not_before, time.monotonic() + pause)


_LIMITERS: dict[str, Limiter] = {}
_LIMITERS_LOCK = threading.Lock()


def limiter_for(endpoint: str) -> Limiter:
    """The limiter of ``endpoint``, shared by every call of the process."""
    with _LIMITERS_LOCK:
        return _LIMITERS.setdefault(endpoint, Limiter())


def forget_limits() -> None:
    """Forget every endpoint's rate limits (tests and long-lived processes)."""
    with _LIMITERS_LOCK:
        _LIMITERS.clear()
