"""Progress reports from the batch loop, through a real exchange with the loopback server."""

from __future__ import annotations

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
