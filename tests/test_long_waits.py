"""A rate limit whose server asks for a longer wait than a run makes (a daily quota spent, a
broken header): one clear error at once, not every try waiting the longest a run waits."""

from __future__ import annotations

import pytest
from fakellm import FakeLLM
from pydantic import BaseModel

from pytest_synthdata import SynthAPIError, generate
from pytest_synthdata.llm.pacing import MAX_WAIT


class Item(BaseModel):
    name: str
    qty: int


def test_a_wait_longer_than_a_run_waits_fails_at_once(
    llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-long-waits-0123456789")
    llm.retry_after_ms = 3600 * 1000.0  # an hour
    llm.always("429")
    with pytest.raises(SynthAPIError) as info:
        generate(Item, n=3, seed=1, timeout=5)
    message = str(info.value)
    assert "asks to wait 3600 s before the next request" in message, message
    assert f"more than the {MAX_WAIT:.0f} s a run waits" in message
    assert llm.request_count == 1  # not tried again after waiting the longest a run waits


def test_a_wait_a_run_can_make_is_waited_for(llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-long-waits-0123456789")
    llm.retry_after_ms = 50.0
    llm.enqueue("429")
    assert len(generate(Item, n=3, seed=1)) == 3
    assert llm.request_count == 2
