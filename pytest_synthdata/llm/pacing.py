"""How requests are paced: retries with backoff, and each endpoint's rate limits.

* A transient failure (HTTP 408, 409, 429, 5xx, a dropped connection, a timeout, an HTTP 200
  whose body is not JSON) is tried again, up to ``http_retries`` times. The wait honours
  ``retry-after-ms`` / ``retry-after`` and otherwise doubles from 0.5 s up to 8 s. Each try
  has a deadline (``timeout``) over the whole request, first byte to last; a request that
  has timed out twice is not tried again, so a hung or trickling server costs at most
  2 x ``timeout`` per request, and once four tries in a row have timed out the endpoint is
  taken for unresponsive: later requests to it fail at once, saying so.
* Every endpoint has a :class:`Limiter`, shared by all calls of the process:
  ``retry-after`` holds every request to the endpoint for as long as the server said, and
  until the endpoint's rate is known, the requests in flight follow additive increase,
  multiplicative decrease (a 429 that does not say when to come back halves the allowance,
  once per burst of 429s, and each answer adds ``1/allowance``). A time-out halves it
  too: a server that answers one request at a time (llama.cpp or Ollama on a CPU) makes
  the second request wait behind the first and run past its deadline while the server is
  busy. After a time-out the allowance grows only with answers quick enough for one more
  request to wait before them (:data:`QUEUE_MARGIN`).
* Once an endpoint's ``x-ratelimit-limit-*``, ``-remaining-*`` and ``-reset-*`` headers have
  been seen, its requests and tokens per minute are mirrored (:class:`Budget`): a request
  waits until what it reserves (:func:`reservation`: the prompt and ``max_tokens``, as hosted
  APIs count them) fits, instead of being sent to collect a 429. An endpoint that says only
  that a limit is used up (``remaining`` 0 and a reset time) holds every request until then.
* An endpoint that sends no such headers (many gateways and proxies answer only 429 with
  ``retry-after``) has its admissible rate learned from the answers themselves (:class:`Pace`):
  what it admitted between two 429s is what its limit refilled in between, so requests are
  then paced to that rate (a token bucket of reserved tokens), probing gently upwards until
  the next 429 says where the limit is. Before its first 429 nothing is paced.

Nothing here imports openai: the client feeds it status codes and headers.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

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
QUEUE_MARGIN = 1.25
"""After a time-out, the requests in flight grow only with an answer this many times quicker
than the deadline allows for one more request waiting before it (answers vary)."""
PACE_MARGIN = 0.95
"""Share of the learned admissible rate requests are paced to after a 429."""
PACE_PROBE = 0.05
"""How fast the pace creeps up while no 429 comes: this share of the learned rate a second,
or more while the rate is learned from few requests (one request's share of them)."""
PACE_BURST = 1.0
"""Seconds of the paced rate a quiet spell (or a pause a server asked for) lets out at once,
at least (more once the endpoint's bucket has been seen, see :class:`Pace`)."""
PACE_LOOKBACK = 10.0
"""Seconds before the first 429 whose admitted requests show how much the endpoint's bucket
holds."""
PACE_WINDOW = 60.0
"""Seconds of 429s and answers the admissible rate is learned from."""
PACE_MIN_ADMITTED = 4
"""Requests that must have been admitted between two 429s before their rate is believed."""
PACE_REFUSED = 0.25
"""Share of the requests between two 429s that must have had one for a pace to be set."""

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
    """How long the server asked to wait (``retry-after-ms``, ``retry-after``), if it did,
    at most :data:`MAX_WAIT`."""
    asked = asked_wait(headers)
    return None if asked is None else min(MAX_WAIT, asked)


def asked_wait(headers: Mapping[str, str]) -> float | None:
    """How long the server asked to wait, as it said it (``retry-after-ms``, then
    ``retry-after``), if it did."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            asked = max(0.0, float(lowered["retry-after-ms"]) / 1000)
        except ValueError:
            pass
        else:
            if not math.isnan(asked):
                return asked
    if "retry-after" in lowered:
        seconds = duration(lowered["retry-after"])
        if seconds is not None:
            return seconds
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


class Budget:
    """What is left of one of an endpoint's rate limits (requests or tokens), mirrored from
    its ``x-ratelimit-limit-*`` / ``-remaining-*`` / ``-reset-*`` headers.

    Hosted APIs refill a limit continuously (a bucket), so the headers give the refill rate:
    ``(limit - remaining) / reset``. Between answers the mirror refills at that rate and
    takes what each request sent reserves; an answer's ``remaining`` can only lower it (a
    header is as old as its request's admission, so it never raises what is believed to be
    left; other users of the same key show up this way).
    """

    def __init__(self) -> None:
        self.limit: float | None = None
        self.rate: float | None = None
        self.level = 0.0
        self.stamp = 0.0

    @property
    def known(self) -> bool:
        return self.limit is not None and self.rate is not None

    def refill(self, now: float) -> None:
        if self.known:
            assert self.limit is not None and self.rate is not None
            self.level = min(self.limit, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` fits (0: now, or nothing is known)."""
        if not self.known:
            return 0.0
        assert self.limit is not None and self.rate is not None
        wanted = min(amount, self.limit)
        return 0.0 if self.level >= wanted else (wanted - self.level) / self.rate

    def learn(
        self,
        limit: float,
        remaining: float,
        reset: float | None,
        now: float,
        *,
        age: float = 0.0,
        since: float = 0.0,
    ) -> None:
        """Take in what a header says: ``remaining`` as of ``age`` seconds ago (when the
        request it answers was sent), before ``since`` more was reserved by requests sent
        after it."""
        self.refill(now)
        first = not self.known
        if reset is not None and reset > 0 and limit > remaining:
            self.rate = (limit - remaining) / reset  # a full bucket does not tell the rate
        self.limit = limit
        # An upper bound: the bucket may have been full for a while in between.
        said = min(limit, remaining + (self.rate or 0.0) * age - since)
        self.level = said if first else min(self.level, said)
        self.stamp = now


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def reservation(request: Mapping[str, Any]) -> int:
    """The tokens a hosted API counts against its tokens-per-minute limit before answering
    ``request``: its prompt (messages, and the schema or tools it sends), at about four
    characters a token, plus the output it allows (``max_tokens``)."""
    chars = 0
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, Mapping) else None
        chars += len(content) if isinstance(content, str) else len(json.dumps(content))
    for key in ("response_format", "tools", "functions"):
        if key in request:
            chars += len(json.dumps(request[key]))
    allowed = request.get("max_tokens") or request.get("max_completion_tokens") or 0
    return -(-chars // 4) + int(allowed)


class Pace:
    """An endpoint's admissible rate, learned from which requests it admitted and which it
    turned away with a 429, for endpoints that say nothing else (no ``x-ratelimit-*``).

    A 429 means the endpoint's limit was used up when the request arrived, so between two
    429s it admitted what its limit refilled in the meantime: the reserved tokens of the
    requests sent between them and not turned away (those still in flight count: a 429
    comes back at once), divided by the time between them, is the rate of the limit, the
    more exactly the longer apart they are (:attr:`estimate`, from the last
    :data:`PACE_WINDOW` seconds). Requests are then let out at :data:`PACE_MARGIN` of it
    (:attr:`rate`), from a bucket holding :data:`PACE_BURST` seconds of it, or as much as
    the endpoint's own bucket was seen to hold (:attr:`capacity`: what it admitted in the
    :data:`PACE_LOOKBACK` seconds up to its first 429, less what it refilled meanwhile), so
    that after a quiet spell, in which the endpoint's bucket filled up again, a wave of
    requests goes out at once instead of at the paced rate; and the
    rate creeps up by :data:`PACE_PROBE` of the estimate a second until the next 429, so a
    limit that was underestimated, or rose, is found again. A request's units are the
    tokens it reserves (at least 1), which also paces a limit on requests when requests are
    alike. Not thread-safe on its own: :class:`Limiter` holds its lock around every call.
    """

    def __init__(self) -> None:
        self.estimate: float | None = None
        """Units (reserved tokens) a second the endpoint admits, once learned."""
        self.capacity = 0.0
        """Units the endpoint's bucket was seen to hold (0: not known)."""
        self.level = 0.0
        self.stamp = 0.0
        self._base = 0.0
        self._probe = PACE_PROBE
        self._since = 0.0
        self._sends: dict[int, tuple[float, float]] = {}
        """Each recent request: when it was sent and its units, in the order sent."""
        self._open: set[int] = set()
        self._refused: set[int] = set()
        self._throttles: list[tuple[float, float]] = []
        """Each recent 429: when its request was sent and when the 429 came back."""

    def rate(self, now: float) -> float | None:
        """Units a second requests are let out at now (``None``: not paced)."""
        if self.estimate is None:
            return None
        return self._base + self._probe * self.estimate * max(0.0, now - self._since)

    def refill(self, now: float) -> None:
        rate = self.rate(now)
        if rate is not None and now > self.stamp:
            elapsed = now - self.stamp
            # Beyond one burst the bucket fills at the learned rate, not the probing one: a
            # quiet spell lets out no more than the endpoint refilled meanwhile.
            probed = min(rate * PACE_BURST, self.level + elapsed * rate)
            stored = min(self.capacity, self.level + elapsed * self._base)
            self.level = max(self.level, probed, stored)
        self.stamp = max(self.stamp, now)

    def wait_for(self, units: float, now: float) -> float:
        """Seconds until a request of ``units`` may go (0: now, or nothing is paced)."""
        rate = self.rate(now)
        if rate is None:
            return 0.0
        wanted = min(units, self._room(rate))
        return 0.0 if self.level >= wanted else (wanted - self.level) / rate

    def _room(self, rate: float) -> float:
        return max(rate * PACE_BURST, self.capacity)

    def sent(self, ticket: int, units: float, now: float) -> None:
        if self.estimate is not None:
            self.level -= units
        self._sends[ticket] = (now, units)
        self._open.add(ticket)

    def answered(self, ticket: int, *, throttled: bool, now: float, resume: float) -> None:
        """Request ``ticket`` came back (``throttled``: with a 429); no request may be sent
        before ``resume`` (a pause the server asked for)."""
        self._open.discard(ticket)
        if throttled and ticket in self._sends:
            self._refused.add(ticket)
            self._throttles.append((self._sends[ticket][0], now))
            self._throttles = [t for t in self._throttles if t[1] >= now - PACE_WINDOW]
            self._learn(ticket, now, resume)
        self._forget(now)

    def _learn(self, ticket: int, now: float, resume: float) -> None:
        """Take in a 429 to request ``ticket``: the limit was used up when it was sent."""
        last = self._sends[ticket][0]
        if last < self._since:
            return  # sent before the pace was last set: its burst is already taken in
        first_back = self._throttles[0][1]
        # The limit was used up at the end of the oldest burst of 429s still remembered (the
        # last request turned away that was sent before the first of them came back); what
        # it admitted since is what it refilled. Requests of that burst that overtook it and
        # were admitted are the endpoint's full bucket, not its rate: only those sent once
        # the first 429 was back are counted.
        start = max(sent for sent, _ in self._throttles if sent <= first_back)
        # Requests sent before this one and not turned away were admitted (or will be: a 429
        # comes back at once); those sent with it or after it may yet be turned away.
        counted = [t for t, (sent, _) in self._sends.items() if first_back < sent and t <= ticket]
        admitted = [self._sends[t][1] for t in counted if t not in self._refused]
        refused = len(counted) - len(admitted)
        # Until a pace is set, 429s to fewer than PACE_REFUSED of the requests are taken for
        # an endpoint failing at random, which pacing would only slow down.
        limited = self.estimate is not None or refused >= PACE_REFUSED * len(counted)
        if len(admitted) >= PACE_MIN_ADMITTED and last > start and limited:
            if self.estimate is None:
                self._see_bucket(start, sum(admitted) / (last - start))
            self.estimate = sum(admitted) / (last - start)
            # the estimate may be off by about one request: probe as fast as that is likely
            self._probe = max(PACE_PROBE, max(admitted) / sum(admitted))
        if self.estimate is not None:
            self.refill(now)
            self._base = PACE_MARGIN * self.estimate
            self._since = max(now, resume)
            self.level = min(self.level, 0.0)  # the limit is used up: so is the pace

    def _see_bucket(self, start: float, rate: float) -> None:
        """How much the endpoint's bucket holds: what it admitted in the
        :data:`PACE_LOOKBACK` seconds up to ``start``, when it was used up, less what it
        refilled at ``rate`` meanwhile."""
        since = start - PACE_LOOKBACK
        before = [
            (sent, units)
            for ticket, (sent, units) in self._sends.items()
            if since <= sent <= start and ticket not in self._refused
        ]
        if before:
            first = min(sent for sent, _ in before)
            self.capacity = max(0.0, sum(u for _, u in before) - rate * (start - first))

    def _forget(self, now: float) -> None:
        """Drop requests sent before the oldest burst of 429s still learned from (or, before
        any, :data:`PACE_LOOKBACK` seconds ago), once back."""
        oldest = min((t[0] for t in self._throttles), default=now)
        keep_from = oldest - (0.0 if self.estimate is not None else PACE_LOOKBACK)
        while self._sends:
            ticket = next(iter(self._sends))
            if self._sends[ticket][0] >= keep_from or ticket in self._open:
                break
            del self._sends[ticket]
            self._refused.discard(ticket)


class Limiter:
    """Requests in flight to one endpoint, and when the next may start (thread-safe: blocking
    calls run event loops of their own, possibly several at once).

    Four things hold a request back: a pause a server asked for (``retry-after``), the
    number in flight (additive increase, multiplicative decrease), once the endpoint's
    ``x-ratelimit-*`` headers have been seen, what is left of its requests and tokens per
    minute (:class:`Budget`): a request waits until its reservation fits, and, for an
    endpoint that sends no such headers, the rate its 429s showed it admits (:class:`Pace`)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.allowance = float("inf")
        self.in_flight = 0
        self.peak = 0
        self.throttled = 0
        self.timeouts_in_row = 0
        self.slow = False
        """Whether a request to the endpoint has run past its deadline: from then on, the
        requests in flight grow only with answers quick enough for one more to wait before
        them."""
        self.went_away: str | None = None
        """What the first request the endpoint went away while answering carried (it may
        have crashed on it), for the errors of the requests that then cannot reach it; an
        answer clears it."""
        self.requests = Budget()
        self.tokens = Budget()
        self.pace = Pace()
        self._clock = clock
        self._not_before = 0.0
        self._sent = 0
        self._decreased_at = 0
        self._sends: dict[int, tuple[float, int]] = {}
        """When each recent request was sent, and the tokens it reserved (0: it got a 429)."""
        self._open: set[int] = set()
        self._lock = threading.Lock()

    def try_acquire(self, cost: int = 0) -> tuple[int | None, float]:
        """Take a place for a request reserving ``cost`` tokens: ``(ticket, 0)``, or
        ``(None, seconds)`` to wait before trying again."""
        with self._lock:
            now = self._clock()
            if _HELD.is_set():
                return None, _POLL
            wait = self._not_before - now
            if wait > 0:
                return None, wait
            if self.in_flight >= max(1.0, self.allowance):
                return None, _POLL
            self.requests.refill(now)
            self.tokens.refill(now)
            wait = max(self.requests.wait_for(1.0), self.tokens.wait_for(float(cost)))
            if not self.modelled:
                self.pace.refill(now)
                wait = max(wait, self.pace.wait_for(max(1.0, cost), now))
            if wait > 0:
                return None, max(wait, 0.001)
            self.pace.sent(self._sent + 1, max(1.0, cost), now)
            if self.requests.known:
                self.requests.level -= 1
            if self.tokens.known:
                self.tokens.level -= cost
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self._sent += 1
            self._sends[self._sent] = (now, cost)
            self._open.add(self._sent)
            return self._sent, 0.0

    async def acquire(self, cost: int = 0) -> int:
        """Wait for a free place, any pause the server asked for, and room in its rate
        limits for ``cost`` tokens; the ticket to hand back to :meth:`release`."""
        while True:
            ticket, wait = self.try_acquire(cost)
            if ticket is not None:
                return ticket
            await asyncio.sleep(min(max(wait, _POLL / 10), 1.0))

    @property
    def modelled(self) -> bool:
        """Whether the endpoint's rate limits are mirrored from its headers."""
        return self.requests.known or self.tokens.known

    @property
    def unresponsive(self) -> bool:
        return self.timeouts_in_row >= DEAD_AFTER

    def release(
        self,
        ticket: int = 0,
        *,
        throttled: bool,
        headers: Mapping[str, str] | None = None,
        timed_out: bool | None = False,
        cost: int = 0,
        fits: float = float("inf"),
    ) -> None:
        """A request finished. Until the endpoint's rate is known (its headers are mirrored,
        or its 429s have shown it, see :class:`Pace`), a 429 halves the allowance, once for
        all the requests that were already in flight when the first 429 came back; it gives
        back the request's reservation (the server did not count it). An answer adds
        ``1/allowance`` (one per round of answers), or 1 once the rate is known. The headers
        update the rate limits, and a pause they ask for holds every request.

        A time-out (``timed_out`` true, or ``None``: one answered with a smaller request)
        halves the allowance too, once per burst: a server that answers one request at a
        time (llama.cpp and Ollama on a CPU) makes a second request wait behind the first, so
        it runs past the deadline while the server is working. After a time-out the
        allowance grows only with answers that would still come in time with one more request
        waiting before them: ``fits`` is how many answers as long as this one fit in the
        deadline."""
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        pause = retry_after(lowered) if throttled else None
        with self._lock:
            now = self._clock()
            if timed_out is not None:  # None: a time-out answered with a smaller request
                self.timeouts_in_row = self.timeouts_in_row + 1 if timed_out else 0
            if timed_out is not False:
                self.slow = True
                if ticket > self._decreased_at:
                    self.allowance = max(1.0, min(self.allowance, float(self.in_flight)) / 2)
                    self._decreased_at = self._sent
            if throttled and ticket in self._sends:
                self._sends[ticket] = (self._sends[ticket][0], -1)  # not counted by the server
            modelled = self._learn(lowered, now, ticket)
            self._forget_sends(ticket)
            if not modelled:
                used_up = exhausted_until(lowered)
                if used_up is not None:
                    pause = max(pause or 0.0, used_up)
            if pause:
                self._not_before = max(self._not_before, now + pause)
            self.pace.answered(ticket, throttled=throttled, now=now, resume=self._not_before)
            # Once the rate is known (mirrored, or learned from 429s), it holds requests back
            # where needed, so the allowance grows back by one per answer, and is no longer
            # halved; otherwise it is halved by a burst of 429s and grows by one per round.
            paced = self.modelled or self.pace.estimate is not None
            if throttled:
                self.throttled += 1
                # A 429 that says when to come back holds every request until then instead.
                said = retry_after(lowered) is not None
                if ticket > self._decreased_at and not paced and not said:
                    self.allowance = max(1.0, min(self.allowance, float(self.in_flight)) / 2)
                    self._decreased_at = self._sent
                if self.requests.known:
                    self.requests.level += 1
                if self.tokens.known:
                    self.tokens.level += cost
            elif self.allowance != float("inf") and timed_out is False:
                grown = self.allowance + (1.0 if paced else 1 / self.allowance)
                # after a time-out, only while the most requests it lets in flight would
                # each still be answered in time, waiting one after another
                if not self.slow or fits >= QUEUE_MARGIN * math.ceil(grown):
                    self.allowance = grown
            self.in_flight -= 1

    def _forget_sends(self, ticket: int) -> None:
        """Drop what no request still in flight needs to judge its headers by."""
        self._open.discard(ticket)
        oldest = min(self._open, default=self._sent + 1)
        for old in [t for t in self._sends if t <= oldest and t not in self._open]:
            del self._sends[old]

    def _learn(self, headers: Mapping[str, str], now: float, ticket: int) -> bool:
        """Update the budgets from rate-limit headers; whether both kinds given are known."""
        sent, _ = self._sends.get(ticket, (now, 0))
        later = [cost for t, (_, cost) in self._sends.items() if t > ticket and cost >= 0]
        reserved = {"requests": float(len(later)), "tokens": float(sum(later))}
        modelled = True
        for kind, budget in (("requests", self.requests), ("tokens", self.tokens)):
            limit = _header_float(headers, f"x-ratelimit-limit-{kind}")
            remaining = _header_float(headers, f"x-ratelimit-remaining-{kind}")
            reset_text = headers.get(f"x-ratelimit-reset-{kind}")
            reset = duration(reset_text) if reset_text is not None else None
            if limit is None or remaining is None:
                if remaining is not None:
                    modelled = False
                continue
            budget.learn(limit, remaining, reset, now, age=now - sent, since=reserved[kind])
            modelled = modelled and budget.known
        return modelled


_HELD = threading.Event()


def hold(held: bool = True) -> None:
    """Send no new request to any endpoint until ``hold(False)`` (requests already in
    flight go on): how a command that is stopping keeps the answers already paid for."""
    if held:
        _HELD.set()
    else:
        _HELD.clear()


def in_flight() -> int:
    """Requests in flight to every endpoint of the process."""
    with _LIMITERS_LOCK:
        return sum(limiter.in_flight for limiter in _LIMITERS.values())


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
