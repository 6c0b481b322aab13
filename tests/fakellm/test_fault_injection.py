"""FakeLLM's injected faults, through the real ``openai`` SDK: HTTP errors, dropped and slow
connections, broken and wrong-sized answers, in the order they were queued."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import openai
import pytest
from pydantic import TypeAdapter

from fakellm import (
    FAULT_KINDS,
    FakeLLM,
    Fault,
)
from fakellm.helpers import (
    PERSON_SCHEMA,
    Person,
    ask,
    chat,
    records_of,
    tool_args,
    user,
)

# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


def test_rate_limit_fault(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.enqueue("429")
    with pytest.raises(openai.RateLimitError) as info:
        ask(client)
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "0"
    assert info.value.body == {
        "message": "Rate limit reached for requests. Please try again later.",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert records_of(ask(client).choices[0].message.content)


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_faults(client: openai.OpenAI, llm: FakeLLM, status: int) -> None:
    llm.enqueue(str(status))
    with pytest.raises(openai.InternalServerError) as info:
        ask(client)
    assert info.value.status_code == status
    assert isinstance(info.value.body, dict) and info.value.body["type"] == "server_error"


def test_sdk_retries_through_faults(llm: FakeLLM) -> None:
    llm.retry_after_ms = 0
    llm.enqueue(Fault.RATE_LIMIT, 503, "500")
    started = time.monotonic()
    with openai.OpenAI(base_url=llm.url, api_key="sk-test", max_retries=3) as retrying:
        resp = ask(retrying)
    # no SDK backoff, which would wait at least 0.375 + 0.75 + 1.5 s: the server said "retry now"
    assert time.monotonic() - started < 1.5
    assert len(records_of(resp.choices[0].message.content)) == 3
    assert [r.status for r in llm.requests] == [429, 503, 500, 200]
    assert llm.requests[0].fault == Fault("429")


def test_reset_fault_drops_the_connection(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.enqueue("reset")
    with pytest.raises(openai.APIConnectionError) as info:
        ask(client)
    assert not isinstance(info.value, openai.APITimeoutError)
    assert records_of(ask(client).choices[0].message.content)


def test_timeout_fault(llm: FakeLLM) -> None:
    llm.timeout_delay = 1.0
    llm.enqueue("timeout")
    with (
        openai.OpenAI(base_url=llm.url, api_key="k", max_retries=0, timeout=0.5) as impatient,
        pytest.raises(openai.APITimeoutError),
    ):
        ask(impatient)
    llm.enqueue(Fault.timeout(0.05))
    with openai.OpenAI(base_url=llm.url, api_key="k", max_retries=0, timeout=5) as patient:
        assert len(records_of(ask(patient).choices[0].message.content)) == 3


def test_malformed_fault(client: openai.OpenAI, llm: FakeLLM) -> None:
    good = ask(client).choices[0].message.content or ""
    llm.enqueue("malformed")
    bad = ask(client).choices[0].message.content or ""
    assert bad == good[:-7] + "}{oops"
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad)


def test_truncated_fault(client: openai.OpenAI, llm: FakeLLM) -> None:
    good = ask(client).choices[0].message.content or ""
    llm.enqueue("truncated")
    choice = ask(client).choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content == good[: int(len(good) * 0.6)]


def test_refusal_fault(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.enqueue("refusal")
    choice = ask(client).choices[0]
    assert choice.message.content is None
    assert choice.message.refusal == "I can't help with that."
    assert choice.finish_reason == "stop"


def test_empty_choices_fault(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.enqueue("empty_choices")
    resp = ask(client)
    assert resp.choices == []
    assert resp.usage is not None


@pytest.mark.parametrize(("kind", "expected"), [("fewer", 2), ("more", 7)])
def test_wrong_count_faults(client: openai.OpenAI, llm: FakeLLM, kind: str, expected: int) -> None:
    llm.enqueue(kind)
    records = records_of(ask(client, "Generate exactly 5 records.").choices[0].message.content)
    assert len(records) == expected
    TypeAdapter(list[Person]).validate_python(records)


def test_fewer_rounds_down_to_zero(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.enqueue("fewer")
    assert records_of(ask(client, "exactly 1 record").choices[0].message.content) == []


def test_duplicate_fault(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.enqueue("duplicate")
    records = records_of(ask(client, "Generate exactly 4 records.").choices[0].message.content)
    assert len(records) == 4
    assert all(r == records[0] for r in records)


def test_mutate_fault(client: openai.OpenAI, llm: FakeLLM) -> None:
    def break_first(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        records[0]["age"] = "not a number"
        return [*records, copy.deepcopy(records[1])]

    llm.enqueue(Fault.mutate(break_first))
    records = records_of(ask(client, "Generate exactly 3 records.").choices[0].message.content)
    assert len(records) == 4
    assert records[0]["age"] == "not a number"
    assert records[3] == records[1]

    llm.enqueue(lambda records: records[:1])  # a bare callable is a mutate fault
    assert len(records_of(ask(client).choices[0].message.content)) == 1


def test_faults_apply_to_tool_arguments(client: openai.OpenAI, llm: FakeLLM) -> None:
    def call(**extra: Any) -> Any:
        return chat(
            client,
            model="m",
            messages=user("Generate exactly 4 records."),
            **tool_args(PERSON_SCHEMA),
            **extra,
        ).choices[0]

    good = (call().message.tool_calls or [])[0].function.arguments
    llm.enqueue("malformed", "truncated", "fewer", "refusal")
    assert (call().message.tool_calls or [])[0].function.arguments == good[:-7] + "}{oops"
    truncated = call()
    assert truncated.finish_reason == "length"
    assert (truncated.message.tool_calls or [])[0].function.arguments == good[
        : int(len(good) * 0.6)
    ]
    assert len(records_of((call().message.tool_calls or [])[0].function.arguments)) == 2
    refused = call()
    assert refused.message.refusal and not refused.message.tool_calls


def test_faults_are_consumed_in_order(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.enqueue("500", "429", "more")
    assert len(llm.pending_faults) == 3
    with pytest.raises(openai.InternalServerError):
        ask(client)
    with pytest.raises(openai.RateLimitError):
        ask(client)
    assert len(records_of(ask(client).choices[0].message.content)) == 5
    assert len(records_of(ask(client).choices[0].message.content)) == 3
    assert llm.pending_faults == []


def test_always_fault_until_reset(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.always("duplicate")
    llm.enqueue("fewer")
    assert len(records_of(ask(client, "exactly 4 records").choices[0].message.content)) == 2
    for _ in range(2):
        records = records_of(ask(client).choices[0].message.content)
        assert all(r == records[0] for r in records)
    llm.reset()
    records = records_of(ask(client).choices[0].message.content)
    assert len({json.dumps(r) for r in records}) == 3


def test_fault_validation() -> None:
    assert {
        "429",
        "500",
        "503",
        "reset",
        "crash",
        "timeout",
        "malformed",
        "truncated",
        "refusal",
        "empty_choices",
        "fewer",
        "more",
        "html",
        "html_json",
        "trickle",
        "chatty",
        "mutate",
        "duplicate",
        "huge",
        "deep_body",
        "deep_content",
        "echo_key",
    } == FAULT_KINDS
    with pytest.raises(ValueError, match="unknown fault"):
        Fault("explode")
    with pytest.raises(ValueError, match="callable"):
        Fault("mutate")
    assert Fault.coerce(429) == Fault("429")
    with pytest.raises(TypeError):
        Fault.coerce(3.5)  # type: ignore[arg-type]
