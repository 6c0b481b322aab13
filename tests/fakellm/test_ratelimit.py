"""The fake as a hosted API with a rate limit, and a model that stops at ``max_tokens``."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from fakellm import FakeLLM, FakeLLMProcess, RateLimit, RateLimiter
from fakellm.ratelimit import format_duration, retry_headers

RECORDS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "records": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"patient_name": {"type": "string"}, "total": {"type": "number"}},
                "required": ["patient_name", "total"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["records"],
    "additionalProperties": False,
}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ask(client: openai.OpenAI, prompt: str = "Return exactly 3 records.", **kwargs: Any) -> Any:
    create: Any = client.chat.completions.with_raw_response.create
    return create(
        model="m",
        messages=[{"role": "user", "content": prompt}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "records", "schema": RECORDS, "strict": True},
        },
        **kwargs,
    )


def test_buckets_start_full_and_refill_at_the_limit_per_window() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(requests=3, tokens=1000, window=10.0), clock)
    assert limiter.admit(400).admitted
    assert limiter.admit(400).admitted
    refused = limiter.admit(400)  # 200 tokens left, 400 wanted: 200 more at 100 per second
    assert not refused.admitted
    assert refused.wait == pytest.approx(2.0)
    assert refused.headers["x-ratelimit-remaining-tokens"] == "200"
    assert refused.headers["x-ratelimit-reset-tokens"] == "8s"  # 800 to refill at 100/s
    assert refused.headers["x-ratelimit-remaining-requests"] == "1"
    clock.now += 2.0
    admitted = limiter.admit(400)
    assert admitted.admitted
    assert admitted.headers["x-ratelimit-remaining-requests"] == "0"
    refused = limiter.admit(1)  # 0.6 requests left: one comes back every 10/3 s
    assert not refused.admitted
    assert refused.wait == pytest.approx(0.4 * 10 / 3)
    assert limiter.throttled == 2
    assert limiter.reserved_tokens == 1200


def test_a_request_larger_than_the_whole_limit_never_fits() -> None:
    limiter = RateLimiter(RateLimit(tokens=1000, window=60.0), Clock())
    answer = limiter.admit(1001)
    assert not answer.admitted and answer.too_large
    assert "x-ratelimit-limit-requests" not in answer.headers  # requests are not limited


def test_completion_tokens_of_a_request_without_a_limit_are_charged_afterwards() -> None:
    limiter = RateLimiter(RateLimit(tokens=1000, window=60.0), Clock())
    assert limiter.admit(100).admitted
    headers = limiter.charge(950)
    assert headers["x-ratelimit-remaining-tokens"] == "0"  # in debt: nothing fits for a while
    assert limiter.admit(10).wait == pytest.approx(60 / 1000 * 60)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0ms"),
        (0.1204, "121ms"),
        (1.5, "1.5s"),
        (6.0, "6s"),
        (360.0, "6m0s"),
        (61.25, "1m1.25s"),
    ],
)
def test_durations_are_written_as_openai_writes_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_the_server_answers_429_with_retry_after_and_rate_limit_headers(
    client: openai.OpenAI, llm: FakeLLM
) -> None:
    llm.set_rate_limit(requests=2, tokens=100_000, window=60.0)
    first = ask(client)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-limit-tokens"] == "100000"
    assert int(first.headers["x-ratelimit-remaining-tokens"]) < 100_000
    ask(client)
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client)
    headers = caught.value.response.headers
    assert 29_000 <= int(headers["retry-after-ms"]) <= 30_000  # one request per 30 s
    assert headers["retry-after"] == "30"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert "Rate limit reached" in caught.value.message
    assert llm.stats()["throttled"] == 1
    assert [r.status for r in llm.chat_requests] == [200, 200, 429]


def test_a_request_reserves_its_prompt_and_its_max_tokens(
    client: openai.OpenAI, llm: FakeLLM
) -> None:
    llm.set_rate_limit(tokens=1000, window=1e6)  # refills too slowly to matter here
    answer = ask(client, max_tokens=600)
    used = answer.parse().usage
    reserved = llm.stats()["reserved_tokens"]
    assert reserved > used.total_tokens  # 600 reserved, far fewer written
    assert reserved == used.prompt_tokens + 600
    assert int(answer.headers["x-ratelimit-remaining-tokens"]) == 1000 - reserved
    with pytest.raises(openai.RateLimitError):
        ask(client, max_tokens=600)  # the reservation, not the use, fills the bucket
    llm.set_rate_limit(tokens=1000, window=60.0)
    with pytest.raises(openai.RateLimitError, match="Request too large"):
        ask(client, max_tokens=1200)


def test_without_max_tokens_the_completion_is_charged_when_answered(
    client: openai.OpenAI, llm: FakeLLM
) -> None:
    llm.set_rate_limit(tokens=100_000, window=1e6)
    answer = ask(client)
    used = answer.parse().usage
    assert llm.stats()["reserved_tokens"] == used.prompt_tokens + used.completion_tokens
    assert int(answer.headers["x-ratelimit-remaining-tokens"]) == 100_000 - used.total_tokens


def test_a_model_stops_at_max_tokens(client: openai.OpenAI, llm: FakeLLM) -> None:
    full = ask(client, prompt="Return exactly 10 records.").parse()
    assert full.choices[0].finish_reason == "stop"
    assert full.usage.completion_tokens > 20
    cut = ask(client, prompt="Return exactly 10 records.", max_tokens=20).parse()
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage.completion_tokens == 20
    text = cut.choices[0].message.content
    assert len(text) == 20 * 4  # a token is four characters
    with pytest.raises(ValueError):
        json.loads(text)


def test_the_rate_limit_is_set_by_flags_and_by_post_config() -> None:
    with FakeLLMProcess(limit_requests=1, limit_tokens=50_000, limit_window=60) as server:
        assert server.stats()["throttled"] == 0
        with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client:
            ask(client)
            with pytest.raises(openai.RateLimitError):
                ask(client)
            assert server.stats()["throttled"] == 1
            config = server.configure(limit_requests=0, limit_tokens=0)
            assert (config["limit_requests"], config["limit_tokens"]) == (0, 0)
            for _ in range(3):
                assert "x-ratelimit-limit-requests" not in ask(client).headers
            server.configure(limit_requests=5, limit_window=6)
            assert ask(client).headers["x-ratelimit-remaining-requests"] == "4"


def test_a_gateway_rate_limit_without_headers_is_set_by_post_config() -> None:
    with FakeLLMProcess(limit_requests=1, limit_window=60) as server:
        server.configure(limit_headers=False)
        with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client:
            first = ask(client)
            assert not [h for h in first.headers if h.startswith("x-ratelimit-")]
            with pytest.raises(openai.RateLimitError) as caught:
                ask(client)
            headers = caught.value.response.headers
            assert headers["retry-after"] == "60"
            assert "retry-after-ms" not in headers
            assert not [h for h in headers if h.startswith("x-ratelimit-")]
            server.configure(limit_requests=5)  # the other settings keep their values
            assert not [h for h in ask(client).headers if h.startswith("x-ratelimit-")]
            server.configure(limit_headers=True)
            assert ask(client).headers["x-ratelimit-limit-requests"] == "5"


def test_retry_headers_are_whole_seconds_and_milliseconds_unless_a_gateway() -> None:
    assert retry_headers(0.05) == {"retry-after": "1", "retry-after-ms": "50"}
    assert retry_headers(2.2, precise=False) == {"retry-after": "3"}
