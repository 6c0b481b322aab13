"""Sampled fields, coverage axes, edge cases and near-duplicates in real runs: pytester runs
of test files against the loopback server over HTTP, their cassettes replayed offline with
the server stopped, and the library's result."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fakellm import FakeLLM, Fault
from pydantic import BaseModel, Field, model_validator

from pytest_synthdata import generate, samplers
from pytest_synthdata.diversity import NearDuplicates, example_texts, record_text

FAKE_KEY = "sk-test-diversity-0123456789"


@pytest.fixture(autouse=True)
def _no_faults_left_behind(fake_llm: FakeLLM) -> Iterator[None]:
    """Faults set here are cleared after each test: later tests share the session server."""
    yield
    fake_llm.reset()


BILLING = """
from pydantic import BaseModel, Field, model_validator


class MedicalBilling(BaseModel):
    patient_id: int = Field(ge=100000, le=999999)
    patient_name: str
    diagnosis_code: str
    procedure_code: str
    total_charge: float = Field(gt=0)
    insurance_claim_amount: float = Field(ge=0)
"""

THE_ISSUES_EXAMPLE = """
import json
import os

import pytest
from billing_here import MedicalBilling
from pytest_synthdata import samplers


@pytest.mark.synth(
    MedicalBilling,
    n=N,
    seed=7,
    sample={
        "patient_id": samplers.sequence(start=100000),
        "diagnosis_code": samplers.choice(["J20.9", "M54.5", "E11.9"], weights=[2, 1, 1]),
        "total_charge": samplers.uniform(50, 5000),
        "patient_name": samplers.faker("name", locale="ja_JP"),
    },
    cover={"specialty": ["cardiology", "oncology", "pediatrics"], "payer": ["medicare", "private"]},
    edge_cases=0.2,
    unique="patient_id",
)
def test_bills(synth_data):
    assert synth_data[0].patient_id == 100000
    out = {
        "records": [bill.model_dump(mode="json") for bill in synth_data],
        "coverage": synth_data.coverage,
        "diversity": synth_data.diversity.to_dict(),
    }
    with open(os.environ["SYNTH_OUT"], "w") as handle:
        json.dump(out, handle)
"""

COVER_12 = {"tier": ["free", "pro", "team"], "region": ["eu", "us", "apac", "latam"]}


class Ticket(BaseModel):
    ticket_id: int = Field(ge=1)
    title: str
    body: str


class Bill(BaseModel):
    patient_id: int = Field(ge=100000, le=999999)
    patient_name: str
    diagnosis_code: str
    procedure_code: str
    total_charge: float = Field(gt=0)
    insurance_claim_amount: float = Field(ge=0)


def write_suite(pytester: pytest.Pytester, n: int) -> None:
    pytester.makepyfile(billing_here=BILLING)
    pytester.makepyfile(test_bills=THE_ISSUES_EXAMPLE.replace("n=N", f"n={n}"))
    pytester.syspathinsert()


def run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, out: str, *args: str
) -> tuple[pytest.RunResult, dict[str, Any]]:
    target = pytester.path / out
    monkeypatch.setenv("SYNTH_OUT", str(target))
    result = pytester.runpytest("--synth-no-cache", *args)
    result.assert_outcomes(passed=1)
    return result, json.loads(target.read_text())


def test_the_issues_example_records_then_replays_offline_with_the_server_stopped(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeLLM().start()
    try:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        write_suite(pytester, 40)
        _, recorded = run(pytester, monkeypatch, "recorded.json")
        asked = server.request_count
        url = server.url
    finally:
        server.stop()
    assert asked >= 1
    records = recorded["records"]
    assert [r["patient_id"] for r in records] == list(range(100000, 100040))
    assert all(r["diagnosis_code"] in {"J20.9", "M54.5", "E11.9"} for r in records)
    assert all(50 <= r["total_charge"] <= 5000 for r in records)
    # 6 combinations over 40 records: each 6 or 7 times, and the request stated each
    combos = Counter((c["specialty"], c["payer"]) for c in recorded["coverage"])
    assert len(combos) == 6 and set(combos.values()) <= {6, 7}
    assert sum(c["edge_case"] for c in recorded["coverage"]) == 8  # 0.2 of 40
    assert recorded["diversity"]["n"] == 40
    assert recorded["diversity"]["fields"]["patient_id"]["distinct"] == 1.0

    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_BASE_URL", url)  # stopped: nothing answers there
    again, replayed = run(pytester, monkeypatch, "replayed.json", "--synth-record-mode=none")
    again.stdout.fnmatch_lines(["*sent to the endpoint: nothing*"])
    assert replayed == recorded


def test_a_3x4_cover_at_n_24_gives_each_combination_exactly_twice(llm: FakeLLM) -> None:
    client = openai.OpenAI(base_url=llm.url, api_key=FAKE_KEY)
    tickets = generate(Ticket, 24, cover=COVER_12, seed=5, batch_size=6, client=client)
    combos = Counter((c["tier"], c["region"]) for c in tickets.coverage or [])
    assert len(combos) == 12 and set(combos.values()) == {2}
    # what the server read: every record line of the requests names its combination
    stated = Counter()
    for request in llm.chat_requests:
        prompt = request.body["messages"][-1]["content"]
        stated.update(
            re.findall(r"^Record \d+: attributes tier: (\w+), region: (\w+)\.", prompt, re.M)
        )
    assert set(stated.values()) == {2} and len(stated) == 12


def test_completion_tokens_per_record_fall_with_sampled_fields(llm: FakeLLM) -> None:
    client = openai.OpenAI(base_url=llm.url, api_key=FAKE_KEY)
    whole = generate(Bill, 12, seed=3, client=client)
    sampled = generate(
        Bill,
        12,
        seed=3,
        client=client,
        sample={
            "patient_id": samplers.sequence(start=100000),
            "diagnosis_code": samplers.choice(["J20.9", "M54.5", "E11.9"]),
            "total_charge": samplers.uniform(50, 5000),
        },
    )
    assert whole.usage.retries == sampled.usage.retries == 0
    # half the fields are sampled: the model writes about half as much
    assert sampled.usage.completion_tokens < 0.75 * whole.usage.completion_tokens
    last = llm.chat_requests[-1].body
    record = json.dumps(last["response_format"]["json_schema"]["schema"])
    assert "patient_id" not in record and "procedure_code" in record


def test_near_copies_of_an_example_are_replaced(llm: FakeLLM) -> None:
    example = {"ticket_id": 9, "title": "Printer on floor 3 jams", "body": "Paper jams daily."}
    copied = {"done": False}

    def copy_the_example_once(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if copied["done"] or not records:
            return records
        copied["done"] = True
        first = {**records[0], "title": example["title"], "body": example["body"] + "!"}
        return [first, *records[1:]]

    llm.always(Fault.mutate(copy_the_example_once))
    client = openai.OpenAI(base_url=llm.url, api_key=FAKE_KEY)
    tickets = generate(Ticket, 6, examples=[example], seed=1, client=client)
    assert copied["done"]
    assert tickets.usage.dropped_near_duplicate == 1
    assert tickets.diversity is not None and tickets.diversity.near_duplicates_dropped == 1
    written = ["ticket_id", "title", "body"]
    finder = NearDuplicates(0.9, example_texts([example], written))
    for ticket in tickets:
        text = record_text(ticket.model_dump(mode="json"), written)
        assert finder.check(text) is None
        finder.add(text)
    # the follow-up said why
    assert any(
        "nearly copied example 1" in r.body["messages"][-1]["content"] for r in llm.chat_requests
    )


def test_unique_ticket_id_with_a_sequence_holds_at_n_12(llm: FakeLLM) -> None:
    def same_id(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**record, "ticket_id": 1} for record in records]  # a model that repeats ids

    llm.always(Fault.mutate(same_id))
    client = openai.OpenAI(base_url=llm.url, api_key=FAKE_KEY)
    tickets = generate(
        Ticket,
        12,
        unique="ticket_id",
        sample={"ticket_id": samplers.sequence()},
        client=client,
    )
    assert [t.ticket_id for t in tickets] == list(range(1, 13))


def test_growth_with_synth_update_keeps_the_prefix(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, llm_env: FakeLLM
) -> None:
    write_suite(pytester, 12)
    _, first = run(pytester, monkeypatch, "first.json")
    test_file = pytester.path / "test_bills.py"
    test_file.write_text(test_file.read_text().replace("n=12", "n=20"))
    _, grown = run(pytester, monkeypatch, "grown.json", "--synth-update")
    assert grown["records"][:12] == first["records"]
    assert grown["coverage"][:12] == first["coverage"]
    assert [r["patient_id"] for r in grown["records"]] == list(range(100000, 100020))
    asked = llm_env.request_count
    _, replayed = run(pytester, monkeypatch, "replayed.json", "--synth-record-mode=none")
    assert replayed == grown and llm_env.request_count == asked


def test_a_replay_returns_what_was_recorded_even_if_the_check_would_drop_it(
    tmp_path: Path, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cassette recorded before the near-duplicate check existed (simulated: the check
    finds nothing while recording) replays exactly: checks apply when records are
    generated, never to a replay."""

    def all_alike(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        alike = {"title": "Printer jams", "body": "Paper jams daily on floor 3."}
        return [{**record, **alike} for record in records]

    llm.always(Fault.mutate(all_alike))
    client = openai.OpenAI(base_url=llm.url, api_key=FAKE_KEY)
    cassette = tmp_path / "alike.yaml"
    with monkeypatch.context() as patched:
        patched.setattr(NearDuplicates, "check", lambda *args, **kwargs: None)
        kept = generate(Ticket, 4, client=client, cassette=cassette)
    assert len({t.body for t in kept}) == 1
    asked = llm.request_count
    again = generate(Ticket, 4, client=client, cassette=cassette, record_mode="none")
    assert again == kept and llm.request_count == asked
    assert again.diversity is not None and again.diversity.fields["body"].distinct == 0.25


class Reading(BaseModel):
    level: int = Field(ge=0, le=100)
    note: str

    @model_validator(mode="after")
    def not_at_the_ends(self) -> Reading:
        if self.level in (0, 100):
            raise ValueError("a level of exactly 0 or 100 is a sensor fault")
        return self


def test_edge_case_boundaries_the_model_rejects_are_left_to_the_model(llm: FakeLLM) -> None:
    client = openai.OpenAI(base_url=llm.url, api_key=FAKE_KEY)
    readings = generate(Reading, 4, edge_cases=1.0, seed=2, client=client)
    assert [c["edge_case"] for c in readings.coverage or []] == [True] * 4
    assert all(0 < r.level < 100 for r in readings)
    prompts = [r.body["messages"][-1]["content"] for r in llm.chat_requests]
    assert re.findall(r'values \{"level": (?:0|100)\}', prompts[0])  # asked with boundaries
    assert not re.findall(r'values \{"level"', prompts[-1])  # then left to the model
    assert readings.usage.dropped_invalid >= 4
