"""The ``synthdata`` summary says what was paid for apart from what was replayed, counts
texts and extractions, and gives the reasons of retries; exports never share a file; a
marker whose records the test never asks for gets a warning."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fakellm import FakeLLM, Fault
from test_plugin_text import SUITE as TEXT_SUITE

SUITE = """
import pytest
from pydantic import BaseModel


class Bill(BaseModel):
    bill_id: int
    patient_name: str


class Visit(BaseModel):
    visit_id: int
    reason: str


@pytest.mark.synth(Bill, n=3)
def test_bills(synth_data):
    assert len(synth_data) == 3


@pytest.mark.synth(Visit, n=2)
def test_visits(synth_data):
    assert len(synth_data) == 2
"""


def section(text: str) -> list[str]:
    """The lines of the synthdata section of a run's output."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^-+ synthdata -+$", line))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("="))
    return lines[start + 1 : end]


def test_an_offline_replay_says_nothing_was_sent_and_why_retries_were_made(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    def break_one(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        records[0]["bill_id"] = "not a number"
        return records

    llm_env.enqueue(Fault.SERVER_ERROR, Fault.TRUNCATED, Fault.mutate(break_one))
    pytester.makepyfile(test_bills=SUITE)
    first = pytester.runpytest("--synth-no-cache", "--synth-batch-size=3")
    first.assert_outcomes(passed=2)
    answered = [r for r in llm_env.chat_requests if r.status == 200]
    prompt = sum(r.response["usage"]["prompt_tokens"] for r in answered)
    completion = sum(r.response["usage"]["completion_tokens"] for r in answered)
    recorded = section(first.stdout.str())
    assert recorded[0] == "2 dataset(s), 5 record(s)"
    assert recorded[1] == (
        f"sent to the endpoint: {len(answered)} request(s), {prompt} prompt + "
        f"{completion} completion tokens"
    )
    assert recorded[2] == (
        "2 retry(ies) (1 truncated, 1 invalid), 1 transient failure(s) tried again; "
        "1 invalid and 0 duplicate record(s) dropped"
    )

    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    asked = llm_env.request_count
    replay = pytester.runpytest("--synth-no-cache", "--synth-record-mode=none")
    replay.assert_outcomes(passed=2)
    assert llm_env.request_count == asked
    assert section(replay.stdout.str()) == [
        "2 dataset(s), 5 record(s)",
        "sent to the endpoint: nothing",
        f"replayed (not paid for): {len(answered)} request(s), {prompt} prompt + "
        f"{completion} completion tokens",
        "2 retry(ies) (1 truncated, 1 invalid); 1 invalid and 0 duplicate record(s) dropped",
        f"responses: {len(answered)} replayed from cassettes, 0 recorded, 0 from the cache, "
        "0 live without a cassette",
    ]


def test_a_text_only_run_counts_texts_and_extractions(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makepyfile(test_actor_texts=TEXT_SUITE)
    result = pytester.runpytest("--synth-no-cache")
    result.assert_outcomes(passed=3)
    lines = section(result.stdout.str())
    # synth_texts: 3; the factory: 1 text, then 1 extraction; the round trip of 2 actors:
    # 2 texts and 2 extractions
    assert lines[0] == "1 dataset(s), 6 text(s), 3 extraction(s)"
    assert lines[1].startswith(f"sent to the endpoint: {len(llm_env.chat_requests)} request(s)")
    assert not any("record(s)," in line for line in lines[:2])


def test_exports_of_tests_whose_names_differ_only_in_accents_never_collide(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makepyfile(
        test_accents="""
        import pytest
        from pydantic import BaseModel


        class Bill(BaseModel):
            bill_id: int


        @pytest.mark.synth(Bill, n=2)
        def test_é(synth_data):
            assert len(synth_data) == 2


        @pytest.mark.synth(Bill, n=3)
        def test_è(synth_data):
            assert len(synth_data) == 3
        """
    )
    result = pytester.runpytest("--synth-no-cache", "--synth-export", "out")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["exported 2 dataset(s) as JSON Lines to out"])
    files = sorted((pytester.path / "out" / "test_accents").glob("*.jsonl"))
    assert len(files) == 2, files
    sizes = sorted(len(path.read_text().splitlines()) for path in files)
    assert sizes == [2, 3]
    for path in files:
        for line in path.read_text().splitlines():
            assert set(json.loads(line)) == {"bill_id"}


def test_a_marker_whose_records_the_test_never_asks_for_is_a_warning(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makepyfile(
        test_forgot="""
        import pytest
        from pydantic import BaseModel


        class Bill(BaseModel):
            bill_id: int


        @pytest.mark.synth(Bill, n=2)
        def test_forgot():
            pass


        @pytest.mark.synth(Bill, n=2, name="bills")
        def test_named():
            pass
        """
    )
    result = pytester.runpytest("--synth-no-cache")
    result.assert_outcomes(passed=2, warnings=2)
    result.stdout.fnmatch_lines(
        [
            "*SynthDataWarning: pytest-synthdata: test_forgot.py::test_forgot: "
            "@pytest.mark.synth(Bill, n=2) injects its records as the 'synth_data' fixture, "
            "but the test does not ask for it, so the marker does nothing; add a synth_data "
            "argument or drop the marker",
            "*test_forgot.py::test_named: @pytest.mark.synth(Bill, n=2, name='bills') "
            "injects its records as the 'bills' fixture*",
        ]
    )
    assert llm_env.request_count == 0
