"""Rate limits of endpoints that send no ``x-ratelimit-*`` headers, only 429 + retry-after.

The limiter's decisions are checked against the fake's own rate limit on a clock of our own
(no waiting, no dependence on the machine's load), and then a run meets the fake over HTTP
as a gateway that says nothing but 429 and ``retry-after``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
from fakellm import FakeLLM, RateLimit, RateLimiter
from fakellm.ratelimit import retry_headers
from models import MedicalBilling

from pytest_synthdata import generate
from pytest_synthdata.llm.pacing import Limiter, limiter_for, reservation, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Run:
    """What a simulated run did: when each request went out, each 429 and its pause."""

    sends: list[float] = field(default_factory=list)
    throttles: list[tuple[float, float]] = field(default_factory=list)
    """(when the 429 came back, the seconds its retry-after asked for)"""
    learned_at: float | None = None
    done_at: float = 0.0


def simulate(
    limit: RateLimit | None,
    requests: int,
    *,
    cost: int = 1000,
    latency: float = 0.8,
    concurrency: int = 32,
    refuse_every: int = 0,
    waves: bool = False,
) -> tuple[Limiter, Run]:
    """``requests`` requests of ``cost`` tokens through a :class:`Limiter`, each answered
    after ``latency`` seconds, against the fake's rate limit ``limit`` (a 429 comes back at
    once, with what the fake would say); ``refuse_every``: also answer every so many
    admitted requests 429 with ``retry-after: 0``, as an endpoint failing at random;
    ``waves``: send ``concurrency`` requests at a time and the next ones once all are back
    (a 429 is tried again within its wave), as the batches of a dataset go out."""
    clock = Clock()
    limiter = Limiter(clock)
    server = RateLimiter(limit, clock) if limit is not None else None
    run = Run()
    start = clock.now
    waiting = requests
    in_flight: list[tuple[float, int, bool, dict[str, str]]] = []
    admitted = 0
    wave = 0
    while waiting or in_flight:
        while in_flight and in_flight[0][0] <= clock.now:
            _, ticket, throttled, headers = heapq.heappop(in_flight)
            limiter.release(ticket, throttled=throttled, headers=headers, cost=cost)
            if throttled:
                run.throttles.append((clock.now - start, retry_after(headers) or 0.0))
                waiting += 1
                wave += 1
            if run.learned_at is None and limiter.pace.estimate is not None:
                run.learned_at = clock.now - start
        if not in_flight and not wave:
            wave = min(concurrency, waiting)
        while waiting and len(in_flight) < concurrency and (wave or not waves):
            ticket, _ = limiter.try_acquire(cost)
            if ticket is None:
                break
            waiting -= 1
            wave = max(0, wave - 1)
            run.sends.append(clock.now - start)
            answer = server.admit(cost) if server is not None else None
            if answer is not None and not answer.admitted:
                headers = retry_headers(answer.wait, precise=False)
                heapq.heappush(in_flight, (clock.now, ticket, True, headers))
                continue
            admitted += 1
            if refuse_every and admitted % refuse_every == 0:
                heapq.heappush(in_flight, (clock.now, ticket, True, {"retry-after": "0"}))
                continue
            heapq.heappush(in_flight, (clock.now + latency, ticket, False, {}))
        clock.now += 0.01
    run.done_at = clock.now - start
    return limiter, run


# 400 requests of 1000 tokens under 40,000 tokens per 6 s (6,667 a second), full at first:
# the floor is (400,000 - 40,000) / 6,667 = 54 s
LIMIT = RateLimit(requests=0, tokens=40_000, window=6.0, headers=False)
RATE = LIMIT.tokens / LIMIT.window


def test_an_endpoint_that_never_limits_is_never_paced() -> None:
    limiter, run = simulate(None, 400)
    assert limiter.pace.estimate is None
    assert run.throttles == []
    # 32 at a time, answered in 0.8 s: 13 rounds, nothing held back in between
    assert len(run.sends) == 400
    assert run.done_at < 13 * 0.8 + 1


def test_the_rate_of_a_limit_that_sends_no_headers_is_learned_from_its_429s() -> None:
    limiter, run = simulate(LIMIT, 400)
    assert run.learned_at is not None
    assert limiter.pace.estimate == pytest.approx(RATE, rel=0.3)
    # after learning, 429s are the occasional probe past the limit, not bursts
    later = [t for t, _ in run.throttles if t > run.learned_at + 1]
    sent_later = [t for t in run.sends if t > run.learned_at + 1]
    assert len(later) <= 0.1 * len(sent_later)
    floor = (400 * 1000 - LIMIT.tokens) / RATE
    assert run.done_at < 1.5 * floor  # simulated seconds, not the machine's


def test_after_a_quiet_spell_a_wave_fills_what_the_endpoint_bucket_was_seen_to_hold() -> None:
    # waves of 32 requests of 1600 tokens, answered 4 s after they go out
    limiter, run = simulate(LIMIT, 200, cost=1600, latency=4.0, waves=True)
    assert limiter.pace.estimate is not None
    # the first wave took what the 40,000-token bucket held (25 requests), no more
    assert 0.5 * LIMIT.tokens <= limiter.pace.capacity <= LIMIT.tokens + 1600
    # once the pace is known, a wave after the quiet spell of the one before goes out
    # together, as far as the bucket refilled meanwhile, not at the paced rate
    later = [t for t in run.sends if t > (run.learned_at or 0) + 1]
    together = max(later.count(t) for t in set(later))
    assert together * 1600 > 2 * RATE  # more than 2 s of the rate at once
    assert len([t for t, _ in run.throttles if t > (run.learned_at or 0) + 1]) <= 0.1 * len(later)


def test_no_request_goes_out_before_a_retry_after_has_elapsed() -> None:
    _, run = simulate(LIMIT, 400)
    assert run.throttles
    for came_back, pause in run.throttles:
        assert pause >= 1  # whole seconds, as the gateway says
        early = [t for t in run.sends if came_back < t < came_back + pause - 1e-9]
        assert early == [], f"sent {early} within the {pause} s asked for at {came_back}"


def test_the_first_burst_is_bounded_and_later_429s_do_not_halve_the_concurrency() -> None:
    limiter, run = simulate(LIMIT, 400)
    came_back, pause = run.throttles[0]
    first = [t for t, _ in run.throttles if t < came_back + pause]
    assert 0 < len(first) <= 32  # at most what was in flight when the first 429 came back
    assert limiter.allowance == math.inf  # a 429 that says when to come back holds, not halves


def test_an_endpoint_failing_at_random_with_429s_is_not_paced() -> None:
    limiter, run = simulate(None, 400, refuse_every=8)
    assert len(run.throttles) >= 40
    assert limiter.pace.estimate is None
    # as fast as without the failures, give or take the retried requests
    _, clean = simulate(None, 400)
    assert run.done_at < 1.3 * clean.done_at


def test_with_rate_limit_headers_the_mirrored_limits_pace_and_the_learned_rate_stands_by() -> None:
    headed = RateLimit(tokens=40_000, window=6.0)
    clock = Clock()
    limiter = Limiter(clock)
    server = RateLimiter(headed, clock)
    ticket, _ = limiter.try_acquire(1000)
    answer = server.admit(1000)
    limiter.release(ticket or 0, throttled=False, headers=answer.headers, cost=1000)
    assert limiter.modelled
    assert limiter.tokens.rate == pytest.approx(RATE, rel=0.01)
    assert limiter.pace.rate(clock.now) is None


def test_a_run_against_a_gateway_that_only_answers_429_returns_every_record(
    llm: FakeLLM,
    make_client: Callable[..., Any],
) -> None:
    # 16 requests per 2 s, no x-ratelimit-* header, 429 with retry-after in whole seconds
    llm.set_rate_limit(requests=16, window=2.0, headers=False)
    with make_client(llm) as c:
        bills = generate(MedicalBilling, 480, client=c, batch_size=10, concurrency=24)
        limiter = limiter_for(str(c.base_url))
    assert len(bills) == 480
    stats = llm.stats()
    assert stats["answered"] == 48
    assert limiter.throttled == stats["throttled"]  # the limiter this run used
    # the first 24 go out together and 16 fit; the pauses asked for hold every request, a
    # burst or two of retries shows the rate, and after that requests are paced to it
    assert stats["throttled"] <= 40
    assert limiter.pace.estimate is not None
    per_request = reservation(llm.chat_requests[-1].body)
    assert limiter.pace.estimate == pytest.approx(8 * per_request, rel=0.5)


def test_a_gateway_429_carries_retry_after_and_nothing_else(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    llm.set_rate_limit(requests=1, window=60.0, headers=False)
    with make_client(llm) as c:
        ask = c.chat.completions.with_raw_response.create
        first = ask(model="m", messages=[{"role": "user", "content": "Return 1 record."}])
        assert not [h for h in first.headers if h.startswith("x-ratelimit")]
        with pytest.raises(openai.RateLimitError) as caught:
            ask(model="m", messages=[{"role": "user", "content": "Return 1 record."}])
    headers = caught.value.response.headers
    assert headers["retry-after"] == "60"
    assert "retry-after-ms" not in headers
    assert not [h for h in headers if h.startswith("x-ratelimit")]
