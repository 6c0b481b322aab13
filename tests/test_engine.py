"""The core engine through the real openai SDK against the loopback server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import warnings
from collections.abc import Callable
from typing import Any

import openai
import pytest
from fakellm import FakeLLM, Fault
from models import EXAMPLES, MedicalBilling, Strict, Ticket
from pydantic import BaseModel, Field

from pytest_synthdata import (
    Dataset,
    SynthAPIError,
    SynthConfigError,
    SynthGenerationError,
    UnsupportedModelError,
    agenerate,
    generate,
)
from pytest_synthdata.llm import SynthDataWarning
from pytest_synthdata.settings import StructuredMode

pytestmark = pytest.mark.usefixtures("fresh_endpoints")  # nothing remembered across tests


def distinct(records: list[Any]) -> int:
    return len({json.dumps(r.model_dump(mode="json"), sort_keys=True) for r in records})


def test_hundred_records_in_few_requests_and_identical_bodies(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    bills = generate(MedicalBilling, n=100, examples=EXAMPLES, seed=0, client=make_client(llm))
    assert isinstance(bills, Dataset)
    assert len(bills) == 100
    assert all(isinstance(b, MedicalBilling) for b in bills)
    assert distinct(bills) == 100
    assert llm.request_count <= 10
    assert bills.usage.requests == llm.request_count
    assert bills.usage.prompt_tokens == llm.prompt_tokens
    assert bills.usage.completion_tokens == llm.completion_tokens
    first = sorted(r.raw_body for r in llm.chat_requests)

    llm.reset()
    again = generate(MedicalBilling, n=100, examples=EXAMPLES, seed=0, client=make_client(llm))
    assert sorted(r.raw_body for r in llm.chat_requests) == first
    assert list(again) == list(bills)


def test_request_carries_strict_schema_examples_subject_and_extra(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    generate(
        MedicalBilling,
        n=3,
        examples=EXAMPLES,
        extra="the name must be chosen at random; make it unusual",
        seed=7,
        client=make_client(llm),
        model="gpt-test",
        temperature=0.5,
    )
    body = llm.chat_requests[0].body
    assert body["model"] == "gpt-test"
    assert body["temperature"] == 0.5
    assert body["seed"] == 7
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["strict"] is True
    items = fmt["json_schema"]["schema"]["properties"]["records"]["items"]
    assert items["additionalProperties"] is False
    assert set(items["required"]) == set(MedicalBilling.model_fields)
    prompt = body["messages"][-1]["content"]
    assert "Subject: medical billing" in prompt
    assert "Patient ID: 123456" in prompt
    assert '"patient_name": "Emily Stone"' in prompt
    assert '"patient_name": "Johnson Smith"' in prompt
    assert "make it unusual" in prompt
    assert "Return exactly 3 records." in prompt


def test_subject_defaults_from_model_name_and_docstring(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    generate(Ticket, n=1, client=make_client(llm))
    prompt = llm.chat_requests[0].body["messages"][-1]["content"]
    assert "Subject: ticket: A customer support ticket." in prompt
    assert "Unique ticket number" in prompt


def test_invalid_example_is_an_error_before_any_request(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    with pytest.raises(SynthConfigError, match=r"(?s)examples\[1\] does not validate.*patient_id"):
        generate(
            MedicalBilling,
            n=2,
            examples=["free text", {"patient_id": "x"}],
            client=make_client(llm),
        )
    assert llm.request_count == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be a positive integer"),
        ({"n": 10_000}, "above the limit of 5000"),
        ({"n": 2, "unique": "nope"}, "'nope' is not a field of MedicalBilling"),
        ({"n": 2, "concurrency": 0}, "concurrency must be an integer >= 1"),
        ({"n": 2, "batch_size": -1}, "batch_size must be an integer >= 1"),
        ({"n": 2, "structured": "xml"}, "structured must be one of"),
        ({"n": 2, "examples": "not-a-list"}, "examples must be a list"),
    ],
)
def test_bad_arguments_name_the_argument(
    llm: FakeLLM, kwargs: dict[str, Any], message: str, make_client: Callable[..., Any]
) -> None:
    with pytest.raises(SynthConfigError, match=message):
        generate(MedicalBilling, client=make_client(llm), **kwargs)
    assert llm.request_count == 0


def test_non_model_and_unsupported_model(llm: FakeLLM, make_client: Callable[..., Any]) -> None:
    with pytest.raises(UnsupportedModelError, match="BaseModel subclass"):
        generate(dict, n=1, client=make_client(llm))  # type: ignore[type-var]

    class Bag(BaseModel):
        data: dict[str, int]

    with pytest.raises(UnsupportedModelError, match=r"Bag\.data"):
        generate(Bag, n=1, client=make_client(llm))
    assert llm.request_count == 0


def test_constrained_model_round_trips(llm: FakeLLM, make_client: Callable[..., Any]) -> None:
    tickets = generate(Ticket, n=12, client=make_client(llm))
    assert len(tickets) == 12
    for ticket in tickets:
        assert Ticket.model_validate(ticket.model_dump(mode="json")) == ticket
        assert ticket.ticket_id >= 1
        assert len(ticket.title) <= 30
        assert 0 <= ticket.score <= 10
    assert tickets.usage.dropped_invalid == 0


@pytest.mark.parametrize(
    "fault",
    [
        "429",
        "500",
        "503",
        "reset",
        "malformed",
        "truncated",
        "refusal",
        "empty_choices",
        "fewer",
        "more",
        "duplicate",
    ],
)
def test_each_fault_still_gives_exactly_n_valid_records(
    llm: FakeLLM, fault: str, make_client: Callable[..., Any]
) -> None:
    llm.retry_after_ms = 0
    llm.enqueue(fault)
    bills = generate(MedicalBilling, n=30, client=make_client(llm), batch_size=10, concurrency=2)
    assert len(bills) == 30
    assert distinct(bills) == 30
    assert all(isinstance(b, MedicalBilling) for b in bills)


def test_timeout_is_retried_by_the_sdk(llm: FakeLLM, make_client: Callable[..., Any]) -> None:
    llm.enqueue(Fault.timeout(1.0))
    bills = generate(MedicalBilling, n=5, client=make_client(llm), timeout=0.5)
    assert len(bills) == 5


def test_validator_failure_is_reasked_with_the_pydantic_error(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    def poison(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        records[1]["patient_name"] = "Xavier"
        return records

    llm.enqueue(Fault.mutate(poison))
    people = generate(Strict, n=4, client=make_client(llm))
    assert len(people) == 4
    assert all(not p.patient_name.startswith("X") for p in people)
    assert people.usage.dropped_invalid == 1
    assert people.usage.retries == 1
    # the follow-up is a fresh request, not the failed conversation sent again: it asks for
    # what is missing, lists the values already taken and says what went wrong
    followup = llm.chat_requests[-1].body["messages"]
    assert [m["role"] for m in followup] == ["system", "user"]
    ask = followup[-1]["content"]
    assert "names starting with X are not allowed" in ask
    assert "Return exactly 1 records" in ask and "attempt 2" in ask
    assert all(p.patient_name in ask for p in people[:1])
    assert "Xavier" not in ask.split("Values already used")[0]


def test_budget_exhausted_raises_typed_error_with_details(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    def poison(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**r, "patient_name": "Xena"} for r in records]

    llm.always(Fault.mutate(poison))
    with pytest.raises(SynthGenerationError) as info:
        generate(Strict, n=3, client=make_client(llm), max_retries=2)
    err = info.value
    assert err.usage.requests == 3
    assert err.usage.retries == 2
    assert "Xena" in (err.last_output or "")
    assert any("names starting with X are not allowed" in e for e in err.errors)
    text = str(err)
    assert "raise max_retries" in text
    assert "3 Strict record(s)" in text
    assert "last raw output" in text


def test_always_malformed_exhausts_budget(llm: FakeLLM, make_client: Callable[..., Any]) -> None:
    llm.always("malformed")
    with pytest.raises(SynthGenerationError, match="not valid JSON"):
        generate(MedicalBilling, n=3, client=make_client(llm), max_retries=1)
    assert llm.request_count == 2


@pytest.mark.parametrize("structured", ["json_object", "json_schema"])
def test_json_in_a_code_fence_between_sentences_is_read_not_re_asked(
    llm: FakeLLM, structured: StructuredMode, make_client: Callable[..., Any]
) -> None:
    llm.always("chatty")
    bills = generate(MedicalBilling, n=4, client=make_client(llm), structured=structured)
    assert len(bills) == 4 and bills.usage.retries == 0
    (answer,) = [r.response for r in llm.chat_requests]
    content = answer["choices"][0]["message"]["content"]
    assert content.startswith("Here is the JSON") and "```json" in content


def test_a_truncated_answer_after_a_sentence_keeps_its_complete_records() -> None:
    from pytest_synthdata.batching import parse_items
    from pytest_synthdata.llm.client import Completion

    text = 'Here you go:\n```json\n{"records": [{"a": 1}, {"a": 2}, {"a": 3'
    cut = Completion(text, "length", None, prompt_tokens=10, completion_tokens=20)
    items, problems = parse_items(cut, 3)
    assert items == [{"a": 1}, {"a": 2}]
    assert "cut off" in problems[0]


def test_prose_without_json_is_still_an_error_that_asks_for_json_only() -> None:
    from pytest_synthdata.batching import parse_items
    from pytest_synthdata.llm.client import Completion

    prose = Completion("I cannot {help} with that.", "stop", None, 5, 5)
    items, problems = parse_items(prose, 3)
    assert items == [] and "Send only the JSON object" in problems[0]


def test_http_error_after_sdk_retries_is_a_synth_api_error(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    llm.retry_after_ms = 0
    llm.always("500")
    with pytest.raises(SynthAPIError, match="HTTP 500") as info:
        generate(MedicalBilling, n=3, client=make_client(llm, max_retries=1))
    assert info.value.status_code == 500


def test_unique_field_is_enforced_and_topped_up(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    def same_ids(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**r, "patient_id": 42} for r in records]

    llm.enqueue(Fault.mutate(same_ids))
    bills = generate(
        MedicalBilling, n=6, client=make_client(llm), unique="patient_id", concurrency=1
    )
    ids = [b.patient_id for b in bills]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert bills.usage.dropped_duplicate == 5
    # the one planned batch, then top-ups for what it lost: each of them is a follow-up
    assert bills.usage.requests >= 2
    assert bills.usage.retries == bills.usage.requests - 1
    later = llm.chat_requests[-1].body["messages"][-1]["content"]
    assert "patient_id: 42" in later
    assert "must be unique" in later


def test_later_waves_are_steered_away_from_used_values(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    bills = generate(MedicalBilling, n=40, client=make_client(llm), batch_size=10, concurrency=2)
    assert len(bills) == 40
    prompts = [r.body["messages"][-1]["content"] for r in llm.chat_requests]
    steered = [p for p in prompts if "Values already used" in p]
    assert len(steered) == 2
    assert all(bills[19].patient_name in p for p in steered)
    assert all(bills[0].patient_name not in p for p in steered)  # only the most recent 12


def test_concurrency_is_bounded(llm: FakeLLM, make_client: Callable[..., Any]) -> None:
    llm.response_delay = 0.2
    bills = generate(MedicalBilling, n=60, client=make_client(llm), batch_size=5, concurrency=3)
    assert len(bills) == 60
    assert llm.max_in_flight == 3
    assert llm.request_count == 12


@pytest.mark.parametrize("mode", ["json_object", "tools"])
def test_auto_falls_back_once_with_a_warning_and_remembers(
    llm: FakeLLM, mode: str, make_client: Callable[..., Any]
) -> None:
    llm.supported_modes = {mode}
    with pytest.warns(SynthDataWarning, match="does not support structured mode") as record:
        bills = generate(MedicalBilling, n=8, client=make_client(llm), concurrency=1)
    assert len(bills) == 8
    # Only the fallback warnings: a loaded machine may add others (an unclosed socket
    # collected late, a slow answer), which this test is not about.
    fallbacks = [
        w
        for w in record
        if issubclass(w.category, SynthDataWarning)
        and "does not support structured mode" in str(w.message)
    ]
    assert len(fallbacks) == (1 if mode == "json_object" else 2)
    failed = llm.request_count
    llm.reset()
    llm.supported_modes = {mode}
    with warnings.catch_warnings():
        warnings.simplefilter("error", SynthDataWarning)  # a late ResourceWarning is not ours
        generate(MedicalBilling, n=3, client=make_client(llm))
    assert llm.request_count == 1
    assert failed >= 2


def test_json_object_mode_sends_schema_in_prompt_and_format(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    generate(MedicalBilling, n=2, client=make_client(llm), structured="json_object")
    body = llm.chat_requests[0].body
    assert body["response_format"]["type"] == "json_object"
    assert body["response_format"]["schema"]["required"] == ["records"]
    assert any("must match this JSON schema" in m["content"] for m in body["messages"])


def test_explicit_mode_never_falls_back(llm: FakeLLM, make_client: Callable[..., Any]) -> None:
    llm.supported_modes = {"tools"}
    with pytest.raises(SynthAPIError, match="try another structured mode"):
        generate(MedicalBilling, n=2, client=make_client(llm), structured="json_schema")


def test_llama_style_500_for_unsupported_mode_falls_back(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    llm.supported_modes = {"json_object", "tools"}
    llm.unsupported_status = 500
    with pytest.warns(SynthDataWarning):
        bills = generate(MedicalBilling, n=2, client=make_client(llm, max_retries=0))
    assert len(bills) == 2


def test_async_client_and_agenerate(llm: FakeLLM) -> None:
    async def go() -> int:
        async with openai.AsyncOpenAI(base_url=llm.url, api_key="sk-test") as async_client:
            return len(await agenerate(MedicalBilling, n=5, client=async_client))

    assert asyncio.run(go()) == 5


def test_generate_inside_a_running_loop(llm: FakeLLM, make_client: Callable[..., Any]) -> None:
    async def inner() -> int:
        return len(generate(MedicalBilling, n=3, client=make_client(llm)))

    assert asyncio.run(inner()) == 3


def test_environment_configures_the_endpoint(llm_env: FakeLLM) -> None:
    bills = generate(MedicalBilling, n=2)
    assert len(bills) == 2
    assert llm_env.chat_requests[0].headers["authorization"] == "Bearer sk-test-fake-key-0123456789"


def test_wrong_client_type(llm: FakeLLM) -> None:
    with pytest.raises(SynthConfigError, match=r"client must be an openai\.OpenAI"):
        generate(MedicalBilling, n=1, client="http://x")


def test_import_is_lazy() -> None:
    code = (
        "import sys, pytest_synthdata, pytest_synthdata.plugin\n"
        "heavy = [m for m in ('openai', 'vcr', 'diskcache', 'httpx2') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class Bounded(BaseModel):
    value: int = Field(ge=0, le=1000)


def test_pydantic_constraint_failures_count_as_invalid(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    def negative(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        records[0]["value"] = -3
        return records

    llm.enqueue(Fault.mutate(negative))
    values = generate(Bounded, n=3, client=make_client(llm), unique="value")
    assert len(values) == 3
    assert values.usage.dropped_invalid == 1
    assert "greater than or equal to 0" in llm.chat_requests[1].body["messages"][-1]["content"]
