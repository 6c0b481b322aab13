"""The fake behaving like a hosted model: latency, a seeded fault mix, sampled answers,
legacy function calls, token accounting, and the server in a process of its own."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from fakellm import FakeLLM, FakeLLMProcess, Fault, FaultMix, Latency

BILL: dict[str, Any] = {
    "type": "object",
    "properties": {
        "patient_id": {"type": "integer"},
        "patient_name": {"type": "string"},
        "total_charge": {"type": "number"},
    },
    "required": ["patient_id", "patient_name", "total_charge"],
    "additionalProperties": False,
}
RECORDS: dict[str, Any] = {
    "type": "object",
    "properties": {"records": {"type": "array", "items": BILL}},
    "required": ["records"],
    "additionalProperties": False,
}
FUNCTIONS = [{"name": "output_formatter", "description": "Output", "parameters": BILL}]


def ask(client: openai.OpenAI, prompt: str = "Return exactly 3 records.", **kwargs: Any) -> Any:
    if not kwargs:
        kwargs["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "records", "schema": RECORDS, "strict": True},
        }
    create: Any = client.chat.completions.create
    return create(model="m", messages=[{"role": "user", "content": prompt}], **kwargs)


def call_function(client: openai.OpenAI, prompt: str = "Make one bill.") -> Any:
    return ask(client, prompt, functions=FUNCTIONS, function_call={"name": "output_formatter"})


# --------------------------------------------------------------------------------------------
# Latency
# --------------------------------------------------------------------------------------------


def test_answers_take_a_delay_plus_a_delay_per_completion_token(
    client: openai.OpenAI, llm: FakeLLM
) -> None:
    llm.latency = Latency(delay=0.1, per_token=0.002)
    started = time.perf_counter()
    resp = ask(client, "Return exactly 20 records.")
    took = time.perf_counter() - started
    tokens = resp.usage.completion_tokens
    assert tokens > 100
    assert took >= 0.1 + 0.002 * tokens
    assert Latency(0.3, 0.004).answer(50) == pytest.approx(0.5)


def test_http_faults_take_the_error_delay(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.latency = Latency(delay=5.0, per_token=1.0, error_delay=0.2)
    llm.enqueue("429")
    started = time.perf_counter()
    with pytest.raises(openai.RateLimitError):
        ask(client)
    assert 0.2 <= time.perf_counter() - started < 2.0


# --------------------------------------------------------------------------------------------
# The fault mix
# --------------------------------------------------------------------------------------------


def test_fault_mix_is_a_seeded_sequence_in_the_stated_shares() -> None:
    def fates(seed: int) -> list[str | None]:
        mix = FaultMix(broken=0.15, errors=0.10, seed=seed)
        return [None if (f := mix.draw()) is None else f.kind for _ in range(2000)]

    first = fates(0)
    assert first == fates(0)
    assert first != fates(1)
    share = {kind: first.count(kind) / len(first) for kind in set(first)}
    assert share["429"] + share["500"] == pytest.approx(0.10, abs=0.03)
    assert share["malformed"] + share["truncated"] == pytest.approx(0.15, abs=0.03)
    assert set(share) == {None, "429", "500", "malformed", "truncated"}
    with pytest.raises(ValueError, match="shares"):
        FaultMix(broken=0.7, errors=0.5)


def test_queued_and_always_faults_come_before_the_mix(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.fault_mix = FaultMix(broken=1.0)
    llm.enqueue("refusal")
    assert ask(client).choices[0].message.refusal
    llm.always(Fault.mutate(lambda records: records[:1]))
    assert len(json.loads(ask(client).choices[0].message.content)["records"]) == 1
    llm.always(None)
    ask(client)
    kinds = [None if r.fault is None else r.fault.kind for r in llm.requests]
    assert kinds[:2] == ["refusal", "mutate"] and kinds[2] in ("malformed", "truncated")


# --------------------------------------------------------------------------------------------
# Sampling, legacy function calls, tokens
# --------------------------------------------------------------------------------------------


def test_sampling_seed_makes_identical_requests_differ(client: openai.OpenAI, llm: FakeLLM) -> None:
    same = [call_function(client).choices[0].message.function_call.arguments for _ in range(2)]
    assert same[0] == same[1]
    llm.configure(seed=7)
    first = [call_function(client).choices[0].message.function_call.arguments for _ in range(3)]
    assert len(set(first)) == 3
    llm.configure(seed=7)  # the sequence starts afresh
    again = [call_function(client).choices[0].message.function_call.arguments for _ in range(3)]
    assert again == first


def test_legacy_function_call_is_answered_with_a_function_call(
    client: openai.OpenAI, llm: FakeLLM
) -> None:
    message = call_function(client).choices[0].message
    assert message.content is None and message.tool_calls is None
    assert message.function_call.name == "output_formatter"
    bill = json.loads(message.function_call.arguments)
    assert set(bill) == {"patient_id", "patient_name", "total_charge"}
    assert llm.last_request.mode == "functions"
    llm.supported_modes = {"json_schema"}
    with pytest.raises(openai.BadRequestError, match="functions are not supported"):
        call_function(client)


def test_prompt_tokens_count_the_schema_the_request_sends(
    client: openai.OpenAI, llm: FakeLLM
) -> None:
    prompt = "Return exactly 2 records."
    usage = ask(client, prompt).usage
    assert usage.prompt_tokens == (len(prompt) + len(json.dumps(RECORDS))) // 4
    usage = call_function(client, prompt).usage
    assert usage.prompt_tokens == (len(prompt) + len(json.dumps(FUNCTIONS))) // 4
    plain = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x" * 9}]
    )
    assert plain.usage is not None
    assert (plain.usage.prompt_tokens, plain.usage.completion_tokens) == (2, 1)
    llm.round_tokens_up = True
    plain = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x" * 9}]
    )
    assert plain.usage is not None
    assert (plain.usage.prompt_tokens, plain.usage.completion_tokens) == (3, 1)


# --------------------------------------------------------------------------------------------
# Settings and counters
# --------------------------------------------------------------------------------------------


def test_configure_changes_settings_and_forgets_counters(
    client: openai.OpenAI, llm: FakeLLM
) -> None:
    ask(client)
    config = llm.configure(delay=0.01, errors=0.5, seed=3, retry_after_ms=100)
    assert config == {
        "delay": 0.01,
        "per_token": 0.0,
        "error_delay": 0.0,
        "broken": 0.0,
        "errors": 0.5,
        "seed": 3,
        "retry_after_ms": 100.0,
        "round_tokens_up": False,
        "limit_requests": 0,
        "limit_tokens": 0,
        "limit_window": 60.0,
        "invalid": 0.0,
        "invalid_rule": "",
    }
    assert llm.request_count == 0 and llm.prompt_tokens == 0
    assert llm.latency == Latency(delay=0.01)
    assert llm.sampling_seed == 3
    assert repr(llm.fault_mix) == "FaultMix(broken=0.0, errors=0.5, seed=3)"
    assert llm.configure(per_token=0.5)["delay"] == 0.01  # the others keep their values
    with pytest.raises(ValueError, match="unknown setting"):
        llm.configure(speed=2)
    llm.reset()
    assert llm.latency == Latency() and llm.fault_mix is None and llm.sampling_seed is None


def test_stats_count_requests_answers_tokens_faults_and_modes(
    client: openai.OpenAI, llm: FakeLLM
) -> None:
    ask(client)
    call_function(client)
    llm.enqueue("500", "malformed")
    with pytest.raises(openai.InternalServerError):
        ask(client)
    ask(client)
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="m", input="hi")
    stats = llm.stats()
    assert stats == {
        "requests": 5,
        "chat_requests": 4,
        "answered": 3,
        "prompt_tokens": llm.prompt_tokens,
        "completion_tokens": llm.completion_tokens,
        "total_tokens": llm.total_tokens,
        "in_flight": 0,
        "max_in_flight": 1,
        "status": {"200": 3, "500": 1},
        "faults": {"500": 1, "malformed": 1},
        "modes": {"json_schema": 2, "functions": 1},
        "throttled": 0,
        "reserved_tokens": 0,
    }


def _http(url: str, data: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=None if data is None else json.dumps(data).encode(),
        method="GET" if data is None else "POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_control_endpoints_only_when_asked_for(llm: FakeLLM) -> None:
    assert _http(llm.origin + "/_stats")[0] == 404
    with FakeLLM(control=True) as server:
        status, stats = _http(server.origin + "/_stats")
        assert status == 200 and stats["requests"] == 0
        status, config = _http(server.origin + "/_config", {"delay": 0.5, "seed": 2})
        assert status == 200 and config["delay"] == 0.5 and server.sampling_seed == 2
        status, error = _http(server.origin + "/_config", {"nope": 1})
        assert status == 400 and "unknown setting" in error["error"]["message"]
        assert server.request_count == 0  # control requests are not recorded


# --------------------------------------------------------------------------------------------
# Served from asyncio, and in a process of its own
# --------------------------------------------------------------------------------------------


@pytest.fixture
def async_llm() -> Iterator[FakeLLM]:
    """A FakeLLM served by :meth:`FakeLLM.serve` on an event loop in a background thread."""
    server = FakeLLM(control=True)
    loop = asyncio.new_event_loop()
    listening = threading.Event()
    task: asyncio.Task[None] | None = None

    def run() -> None:
        nonlocal task
        task = loop.create_task(server.serve(lambda url: listening.set()))
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task)
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert listening.wait(10)
    try:
        yield server
    finally:
        assert task is not None
        loop.call_soon_threadsafe(task.cancel)
        thread.join(10)
        assert not server.running


def test_served_from_asyncio_with_the_same_answers_and_faults(async_llm: FakeLLM) -> None:
    with openai.OpenAI(base_url=async_llm.url, api_key="k", max_retries=0) as c:
        records = json.loads(ask(c).choices[0].message.content)["records"]
        assert len(records) == 3
        assert json.loads(ask(c).choices[0].message.content)["records"] == records  # keep-alive
        async_llm.enqueue("reset", "503", "timeout")
        with pytest.raises(openai.APIConnectionError):
            ask(c)
        with pytest.raises(openai.InternalServerError) as info:
            ask(c)
        assert info.value.status_code == 503
        async_llm.timeout_delay = 2.0
        with pytest.raises(openai.APITimeoutError):
            ask(c, timeout=0.3)
        with pytest.raises(openai.NotFoundError):
            c.embeddings.create(model="m", input="hi")
        async_llm.gzip = True
        raw = c.chat.completions.with_raw_response.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
        assert (
            raw.headers["content-encoding"] == "gzip"
            and raw.parse().choices[0].message.content == "ok"
        )
    assert [r.status for r in async_llm.requests] == [200, 200, 0, 503, None, 404, 200]
    status, stats = _http(async_llm.origin + "/_stats")
    assert status == 200 and stats["chat_requests"] == 6


def test_asyncio_server_reads_chunked_bodies(async_llm: FakeLLM) -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", async_llm.port, timeout=10)
    try:
        connection.request(
            "POST", "/v1/chat/completions", body=iter([body[:10], body[10:]]), encode_chunked=True
        )
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["choices"][0]["message"]["content"] == "ok"
    finally:
        connection.close()
    assert async_llm.last_request.body["model"] == "m"


def test_the_server_in_a_child_process() -> None:
    with FakeLLMProcess(seed=1, errors=1.0, retry_after_ms=1, round_tokens_up=True) as server:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/v1")
        with openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as c:
            with pytest.raises((openai.RateLimitError, openai.InternalServerError)):
                ask(c)
            config = server.configure(errors=0.0, delay=0.01)
            assert config["seed"] == 1 and config["round_tokens_up"] is True
            assert len(json.loads(ask(c).choices[0].message.content)["records"]) == 3
        stats = server.stats()
        assert (stats["chat_requests"], stats["answered"]) == (1, 1)
        assert stats["completion_tokens"] > 0
    assert server.proc.poll() is not None


def test_the_child_process_stops_when_its_parent_lets_go() -> None:
    server = FakeLLMProcess()
    try:
        assert server.proc.stdin is not None
        server.proc.stdin.close()
        assert server.proc.wait(timeout=10) == 0
    finally:
        server.stop()
