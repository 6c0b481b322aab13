"""Progress reports from the batch loop, through a real exchange with the loopback server."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakellm import FakeLLM
from models import MedicalBilling

from pytest_synthdata import generate, generate_dataset
from pytest_synthdata.progress import Progress, listening

pytestmark = pytest.mark.usefixtures("fresh_endpoints")


def test_records_report_progress_after_every_answer(llm_env: FakeLLM) -> None:
    seen: list[Progress] = []
    with listening(seen.append):
        generate(MedicalBilling, 25, batch_size=10, concurrency=1)
    assert [p.done for p in seen] == [10, 20, 25]
    assert {(p.label, p.total) for p in seen} == {("MedicalBilling", 25)}
    assert [p.usage.requests for p in seen] == [1, 2, 3]
    assert seen[-1].usage.completion_tokens > 0


def test_texts_report_progress_too(llm_env: FakeLLM) -> None:
    seen: list[Progress] = []
    with listening(seen.append):
        generate_dataset([["blue", "yellow"], ["red"]])
    assert seen and seen[-1].done == seen[-1].total == 2


def test_nothing_is_reported_without_a_listener(llm_env: FakeLLM) -> None:
    assert len(generate(MedicalBilling, 3)) == 3  # no listener: nothing to call


def test_each_report_says_where_its_answer_came_from(llm_env: FakeLLM, tmp_path: Path) -> None:
    llm_env.retry_after_ms = 0
    llm_env.enqueue("429")
    seen: list[Progress] = []
    with listening(seen.append):
        generate(MedicalBilling, 20, batch_size=10, concurrency=1, cache_dir=tmp_path)
    answers = [p.answer for p in seen]
    assert [(a.source, a.tries, a.paid) for a in answers if a] == [
        ("network", 2, True),  # one 429 first
        ("network", 1, True),
    ]
    assert sum(a.completion_tokens for a in answers if a) == seen[-1].usage.completion_tokens
    cached: list[Progress] = []
    with listening(cached.append):  # the same requests, recorded into a new cassette
        generate(
            MedicalBilling,
            20,
            batch_size=10,
            concurrency=1,
            cache_dir=tmp_path,
            cassette=tmp_path / "new.synth.yaml",
            record_mode="new_episodes",
        )
    assert [(p.answer.source, p.answer.paid) for p in cached if p.answer] == [
        ("cached", False),
        ("cached", False),
    ]
