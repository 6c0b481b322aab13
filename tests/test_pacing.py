"""Pacing under rate limits: the limiter's decisions (with a clock of our own, no waiting),
and runs against the fake acting as a rate-limited hosted API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fakellm import FakeLLM
from models import MedicalBilling

from pytest_synthdata import generate
from pytest_synthdata.llm.pacing import Limiter, reservation
from pytest_synthdata.records import output_budget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limits(remaining: int, reset: str, limit: int = 1000) -> dict[str, str]:
    return {
        "x-ratelimit-limit-tokens": str(limit),
        "x-ratelimit-remaining-tokens": str(remaining),
        "x-ratelimit-reset-tokens": reset,
    }


def test_nothing_holds_requests_back_before_an_endpoint_says_anything() -> None:
    limiter = Limiter(Clock())
    tickets = [limiter.try_acquire(10**6)[0] for _ in range(50)]
    assert None not in tickets
    assert limiter.peak == 50


def test_a_request_waits_until_its_reservation_fits_the_mirrored_budget() -> None:
    clock = Clock()
    limiter = Limiter(clock)
    ticket, _ = limiter.try_acquire(400)
    assert ticket is not None
    # 600 of 1000 left, full again in 1 s: the bucket refills at 400 tokens per second
    limiter.release(ticket, throttled=False, headers=limits(600, "1s"), cost=400)
    assert limiter.tokens.rate == pytest.approx(400.0)
    second, _ = limiter.try_acquire(500)
    assert second is not None  # 600 left
    third, wait = limiter.try_acquire(500)
    assert third is None  # 100 left: 400 more arrive in 1 s
    assert wait == pytest.approx(1.0)
    clock.now += 1.0
    third, _ = limiter.try_acquire(500)
    assert third is not None


def test_an_old_header_counts_the_refill_and_the_requests_sent_since() -> None:
    clock = Clock()
    limiter = Limiter(clock)
    first, _ = limiter.try_acquire(100)
    assert first is not None
    limiter.release(first, throttled=False, headers=limits(500, "1s"), cost=100)  # 500/s
    old, _ = limiter.try_acquire(100)  # sent when 500 were left
    later = [limiter.try_acquire(100)[0] for _ in range(3)]
    assert None not in later
    clock.now += 1.0  # the answer to `old` comes a second later, saying 400 were left then
    limiter.release(old or 0, throttled=False, headers=limits(400, "1.2s"), cost=100)
    # 400 then, +500 refilled, -300 reserved by the three sent after it; never above 1000
    assert limiter.tokens.level == pytest.approx(600.0)


def test_a_burst_of_429s_halves_the_allowance_once_and_answers_bring_it_back() -> None:
    limiter = Limiter(Clock())
    tickets = [limiter.try_acquire()[0] or 0 for _ in range(32)]
    for ticket in tickets[:8]:  # eight 429s from requests sent before the first came back
        limiter.release(ticket, throttled=True)
    assert limiter.allowance == 16.0
    assert limiter.throttled == 8
    assert limiter.try_acquire()[0] is None  # 24 in flight, 16 allowed
    for ticket in tickets[8:20]:
        limiter.release(ticket, throttled=False)
    assert 16.0 < limiter.allowance < 17.0  # one per round of 16 answers
    fresh = limiter.try_acquire()[0]
    assert fresh is not None
    limiter.release(fresh, throttled=True)  # a request sent after the decrease: a new burst
    assert limiter.allowance < 16.0


def test_a_time_out_halves_the_requests_in_flight_and_only_quick_answers_add_more() -> None:
    limiter = Limiter(Clock())
    first, second = (limiter.try_acquire()[0] or 0 for _ in range(2))
    limiter.release(first, throttled=False, timed_out=None)  # asked again, smaller
    limiter.release(second, throttled=False, timed_out=None)  # the same burst: once
    assert limiter.allowance == 1.0 and limiter.slow
    assert limiter.timeouts_in_row == 0  # not a sign the endpoint is down
    probe = limiter.try_acquire()[0]
    assert probe is not None and limiter.try_acquire()[0] is None  # one at a time
    limiter.release(probe, throttled=False, fits=2.0)  # two such answers, one after the
    assert limiter.allowance == 1.0  # other, would run too close to the deadline
    probe = limiter.try_acquire()[0] or 0
    limiter.release(probe, throttled=False, fits=4.0)
    assert limiter.allowance == 2.0  # room for one waiting behind another
    probe = limiter.try_acquire()[0] or 0
    limiter.release(probe, throttled=False, fits=3.0)  # 2.5 would let three in flight
    assert limiter.allowance == 2.0


def test_a_429_gives_its_reservation_back() -> None:
    limiter = Limiter(Clock())
    first = limiter.try_acquire(100)[0] or 0
    limiter.release(first, throttled=False, headers=limits(900, "6s"), cost=100)
    level = limiter.tokens.level
    ticket = limiter.try_acquire(300)[0] or 0
    assert limiter.tokens.level == pytest.approx(level - 300)
    limiter.release(ticket, throttled=True, cost=300)
    assert limiter.tokens.level == pytest.approx(level)


def test_retry_after_holds_every_request() -> None:
    clock = Clock()
    limiter = Limiter(clock)
    ticket = limiter.try_acquire()[0] or 0
    limiter.release(ticket, throttled=True, headers={"retry-after-ms": "1500"})
    blocked, wait = limiter.try_acquire()
    assert blocked is None and wait == pytest.approx(1.5)
    clock.now += 1.5
    assert limiter.try_acquire()[0] is not None


def test_a_used_up_limit_without_its_size_holds_requests_until_the_reset() -> None:
    clock = Clock()
    limiter = Limiter(clock)
    ticket = limiter.try_acquire()[0] or 0
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}
    limiter.release(ticket, throttled=False, headers=headers)
    assert limiter.try_acquire()[0] is None
    clock.now += 2.0
    assert limiter.try_acquire()[0] is not None


def test_a_reservation_is_the_prompt_at_four_characters_a_token_plus_max_tokens() -> None:
    request: dict[str, Any] = {
        "messages": [{"role": "user", "content": "x" * 400}],
        "response_format": {"type": "json_object"},
        "max_tokens": 250,
    }
    # 400 characters of messages and 23 of '{"type": "json_object"}': 106 tokens
    assert reservation(request) == 106 + 250
    del request["max_tokens"]
    assert reservation(request) == 106


def test_each_request_reserves_what_its_records_need(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    bills = generate(MedicalBilling, 60, client=make_client(llm), batch_size=20)
    assert len(bills) == 60
    assert [r.body["max_tokens"] for r in llm.chat_requests] == [
        output_budget(MedicalBilling, 20)
    ] * 3
    written = llm.completion_tokens / 3
    assert written < output_budget(MedicalBilling, 20) < 1.6 * written


def test_a_batch_cut_off_at_max_tokens_asks_with_twice_the_limit(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    llm.enqueue("truncated")
    bills = generate(MedicalBilling, 10, client=make_client(llm))
    assert len(bills) == 10
    first, second = (r.body for r in llm.chat_requests)
    owed = int(second["messages"][-1]["content"].rsplit("Return exactly ", 1)[1].split()[0])
    assert 0 < owed < 10  # the complete records of the cut-off answer were kept
    assert first["max_tokens"] == output_budget(MedicalBilling, 10)
    assert second["max_tokens"] == 2 * output_budget(MedicalBilling, owed)


def test_a_rate_limited_run_returns_every_record_and_holds_requests_back(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    # room for about three requests at once, refilled in a few seconds
    cost = reservation({"max_tokens": output_budget(MedicalBilling, 10)}) + 600
    llm.set_rate_limit(requests=100, tokens=3 * cost, window=1.0)
    bills = generate(MedicalBilling, 120, client=make_client(llm), batch_size=10, concurrency=12)
    assert len(bills) == 120
    stats = llm.stats()
    assert stats["answered"] == 12
    # the first 12 go out together (the endpoint has said nothing yet) and 3 of them fit;
    # after that each request waits for room instead of collecting a 429
    assert stats["throttled"] <= 9
