"""Compatibility matrix (clients, endpoint quirks) and the fault matrix, on the loopback server.

Every fault is listed with the behaviour expected from it: either exactly n valid records,
or the typed error with an actionable message once the retry budget is spent. In both cases
nothing invalid may be cached or recorded.
"""

from __future__ import annotations

import asyncio
import gc
import json
import warnings
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from fakellm import FakeLLM, Fault
from models import MedicalBilling, Strict

from pytest_synthdata import SynthAPIError, SynthGenerationError, generate
from pytest_synthdata.llm import SynthDataWarning
from pytest_synthdata.storage.cache import ResponseCache

AZURE_KEY = "azure-secret-key-0123456789abcdef"


pytestmark = pytest.mark.usefixtures("fresh_endpoints")  # nothing remembered across tests


def sync_client(server: FakeLLM, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="sk-test-compat-000000", **kwargs)


# --- clients and endpoints ----------------------------------------------------------------


def test_azure_client_records_and_replays_without_the_api_key(
    llm: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    azure = openai.AzureOpenAI(
        azure_endpoint=llm.origin, api_key=AZURE_KEY, api_version="2024-06-01"
    )
    cassette = tmp_path / "azure.synth.yaml"
    recorded = generate(MedicalBilling, 6, client=azure, model="my-deployment", cassette=cassette)
    sent = llm.chat_requests[0]
    assert sent.path == "/openai/deployments/my-deployment/chat/completions"
    assert sent.headers["api-key"] == AZURE_KEY
    text = cassette.read_text()
    assert AZURE_KEY not in text and "api-key" not in text
    assert "api-version=2024-06-01" in text
    llm.stop()
    try:
        replayed = generate(
            MedicalBilling,
            6,
            client=azure,
            model="my-deployment",
            cassette=cassette,
            record_mode="none",
        )
    finally:
        llm.start()
    assert replayed == recorded


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_user_clients_use_the_cache(llm: FakeLLM, tmp_path: Path, kind: str) -> None:
    def make() -> openai.OpenAI | openai.AsyncOpenAI:
        if kind == "sync":
            return sync_client(llm)
        return openai.AsyncOpenAI(base_url=llm.url, api_key="sk-test-compat-000000")

    first = generate(MedicalBilling, 5, client=make(), cache_dir=tmp_path)
    # a cassette makes the request go through the client's transport (and the cache)
    second = generate(
        MedicalBilling, 5, client=make(), cache_dir=tmp_path, cassette=tmp_path / "c.yaml"
    )
    assert second == first
    assert llm.request_count == 1
    assert first.usage.cache_hits == 0
    assert second.usage.cache_hits == second.usage.requests == 1


def test_one_async_client_serves_several_blocking_calls(llm: FakeLLM) -> None:
    """Each blocking call runs an event loop of its own; the caller's async client must
    still work for the next call, keep its options, and leave no connection open."""
    from pytest_synthdata.texts import generate_text

    async_client = openai.AsyncOpenAI(
        base_url=llm.url, api_key="sk-test-compat-000000", default_headers={"x-team": "qa"}
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = generate(MedicalBilling, 3, client=async_client)
        second = generate(MedicalBilling, 3, client=async_client, seed=7)
        text = generate_text(["blue", "yellow"], client=async_client)
        asyncio.run(async_client.close())
        del async_client
        gc.collect()
    assert len(first) == len(second) == 3 and "blue" in text.lower()
    assert [r.headers.get("x-team") for r in llm.chat_requests] == ["qa", "qa", "qa"]
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, [str(w.message) for w in leaks]


@pytest.mark.parametrize(
    ("supported", "warnings_expected"),
    [({"json_object"}, 1), ({"tools"}, 2), ({"json_object", "tools"}, 1)],
)
def test_mode_fallback_is_automatic_warned_once_and_remembered(
    llm: FakeLLM, supported: set[str], warnings_expected: int
) -> None:
    llm.supported_modes = supported
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert len(generate(MedicalBilling, 6, client=sync_client(llm), concurrency=2)) == 6
    mode_warnings = [w for w in caught if issubclass(w.category, SynthDataWarning)]
    assert len(mode_warnings) == warnings_expected
    rejected = [r for r in llm.chat_requests if r.status == 400]
    assert len(rejected) <= 2 * warnings_expected  # probes happen in the first run only


def test_seed_rejection_is_dropped_once_and_remembered(llm: FakeLLM) -> None:
    llm.reject_seed = True
    with pytest.warns(SynthDataWarning, match="rejected the 'seed' parameter"):
        generate(MedicalBilling, 3, client=sync_client(llm), seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(generate(MedicalBilling, 3, client=sync_client(llm), seed=5)) == 3
    assert "seed" not in llm.chat_requests[-1].body


def test_unknown_response_fields_missing_usage_and_gzip(llm: FakeLLM, tmp_path: Path) -> None:
    llm.extra_response_fields = {
        "system_fingerprint": "fp_123",
        "service_tier": "default",
        "x_vendor": {"nested": True},
    }
    llm.omit_usage = True
    llm.gzip = True
    bills = generate(MedicalBilling, 5, client=sync_client(llm), cassette=tmp_path / "c.yaml")
    assert len(bills) == 5
    assert bills.usage.prompt_tokens == 0 and bills.usage.requests == 1
    assert (
        generate(
            MedicalBilling,
            5,
            client=sync_client(llm),
            cassette=tmp_path / "c.yaml",
            record_mode="none",
        )
        == bills
    )


# --- the fault matrix ---------------------------------------------------------------------


def _poison(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records[0]["patient_name"] = "Xavier"
    return records


# fault -> expected behaviour when it happens once
ONCE: dict[str, str] = {
    "429": "retried (retry-after honoured); exactly n",
    "500": "retried; exactly n",
    "503": "retried; exactly n",
    "reset": "connection error retried; exactly n",
    "timeout": "past the deadline, retried; exactly n",
    "trickle": "a trickled answer past the deadline, retried; exactly n",
    "html": "an HTML page with HTTP 200, retried; exactly n",
    "html_json": "an HTML page labelled JSON, retried; exactly n",
    "malformed": "re-asked with the JSON error; exactly n",
    "truncated": "complete records kept, the rest re-asked; exactly n",
    "refusal": "re-asked; exactly n",
    "empty_choices": "re-asked; exactly n",
    "fewer": "the missing records re-asked; exactly n",
    "more": "the surplus ignored; exactly n",
    "duplicate": "duplicates dropped and topped up; exactly n",
    "validator": "the invalid record re-asked with the pydantic error; exactly n",
}


def _fault(name: str) -> Fault | str:
    if name == "validator":
        return Fault.mutate(_poison)
    if name == "timeout":
        return Fault.timeout(1.0)
    return name


@pytest.mark.parametrize("name", sorted(ONCE))
def test_each_fault_once_still_gives_exactly_n(llm: FakeLLM, tmp_path: Path, name: str) -> None:
    llm.retry_after_ms = 0
    llm.enqueue(_fault(name))
    cassette = tmp_path / "c.synth.yaml"
    llm.trickle_delay = 0.05
    people = generate(
        Strict,
        12,
        client=sync_client(llm),
        timeout=0.5,
        batch_size=6,
        concurrency=2,
        cassette=cassette,
        cache_dir=tmp_path / "cache",
    )
    assert len(people) == 12, ONCE[name]
    assert len({json.dumps(p.model_dump(), sort_keys=True) for p in people}) == 12
    # nothing invalid is cached: every cached response parses into valid records only
    cache = ResponseCache(tmp_path / "cache")
    for key in list(cache._cache.iterkeys()):
        hit = cache.get(key)
        assert hit is not None and hit["status"] == 200
        content = json.loads(hit["body"])["choices"][0]["message"]["content"]
        for row in json.loads(content)["records"]:
            Strict.model_validate(row)
    # transient failures never reach the cassette; it replays to the same records
    assert all(
        i["response"]["status"]["code"] == 200
        for i in yaml.safe_load(cassette.read_text())["interactions"]
    )
    replayed = generate(
        Strict,
        12,
        client=sync_client(llm),
        batch_size=6,
        concurrency=2,
        cassette=cassette,
        record_mode="none",
    )
    assert replayed == people


def test_faults_mixed_still_give_exactly_n(llm: FakeLLM) -> None:
    llm.retry_after_ms = 0
    llm.enqueue(
        "429",
        "malformed",
        "500",
        "truncated",
        Fault.mutate(_poison),
        "fewer",
        "reset",
        "refusal",
        "duplicate",
        "503",
        "empty_choices",
        "more",
    )
    # the 12 faults may all land on one batch: give it the budget to absorb them
    people = generate(
        Strict, 40, client=sync_client(llm), batch_size=8, concurrency=4, max_retries=12
    )
    assert len(people) == 40
    assert all(not p.patient_name.startswith("X") for p in people)


def test_transient_failures_are_tried_again_up_to_http_retries(llm: FakeLLM) -> None:
    llm.retry_after_ms = 0
    llm.enqueue("500", "503", "429", "reset", "html")  # the client's own retries are off
    people = generate(Strict, 5, client=sync_client(llm, max_retries=0), http_retries=5)
    assert len(people) == 5
    assert llm.request_count == 5 + people.usage.requests  # each fault tried again once


# fault -> what the user is told when it never stops
ALWAYS: dict[str, tuple[type[Exception], str]] = {
    "malformed": (SynthGenerationError, "not valid JSON"),
    "truncated": (SynthGenerationError, "cut off at the output-token limit"),
    "refusal": (SynthGenerationError, "You refused"),
    "empty_choices": (SynthGenerationError, "no choices"),
    "fewer": (SynthGenerationError, "were asked for"),
    "validator": (SynthGenerationError, "names starting with X are not allowed"),
    "duplicate": (SynthGenerationError, "repeated an earlier record"),
    "500": (SynthAPIError, "HTTP 500.*after 3 tries"),
    "429": (SynthAPIError, "lower concurrency"),
    "reset": (SynthAPIError, "went away while answering this request"),
    "html": (SynthAPIError, "not a JSON completion.*502 Bad Gateway"),
    "html_json": (SynthAPIError, "not a JSON completion"),
    "trickle": (SynthAPIError, "did not finish answering within 0.5s.*after 2 tries"),
}


@pytest.mark.parametrize("name", sorted(ALWAYS))
def test_each_fault_forever_raises_the_typed_error(llm: FakeLLM, tmp_path: Path, name: str) -> None:
    error, message = ALWAYS[name]
    llm.retry_after_ms = 0
    fault = _fault(name)
    if name == "validator":
        fault = Fault.mutate(lambda rows: [{**r, "patient_name": "Xena"} for r in rows])
    llm.always(fault)
    cassette = tmp_path / "c.synth.yaml"
    with pytest.raises(error, match=message) as info:
        generate(
            Strict,
            6,
            client=sync_client(llm, max_retries=1),
            max_retries=2,
            http_retries=2,
            timeout=0.5,
            cassette=cassette,
            cache_dir=tmp_path / "cache",
        )
    if isinstance(info.value, SynthGenerationError):
        assert "raise max_retries" in str(info.value) or "keeps repeating" in str(info.value)
        assert info.value.usage.requests >= 1
    assert not cassette.exists()  # a failed generation records nothing
    assert len(ResponseCache(tmp_path / "cache")) == 0
