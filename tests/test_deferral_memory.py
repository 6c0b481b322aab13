"""A batch pass stops hundreds of requests before any of their callers resumes: each request
a batch answers lets go of its state (the SDK's and httpx's request objects) as soon as it is
stopped, and no request waits for another's first one to look the platform up."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import httpx2
import pytest
from fakellm import FakeLLM
from models import EXAMPLES, MedicalBilling

from pytest_synthdata import agenerate
from pytest_synthdata.batching import RequestDeferred
from pytest_synthdata.storage.transport import DEFERRAL

pytestmark = pytest.mark.usefixtures("fresh_endpoints")

WAVE = 40


class Counting:
    """A pass's deferral hook that notes, at each request it stops, how many HTTP requests
    and how many of the SDK's per-request options are alive in the process (the request
    being stopped included)."""

    def __init__(self) -> None:
        self.alive: list[int] = []
        self.options: list[int] = []

    def __call__(self, method: str, url: str, body: bytes) -> None:
        objects = gc.get_objects()
        self.alive.append(sum(1 for o in objects if type(o) is httpx2.Request))
        self.options.append(sum(1 for o in objects if type(o).__name__ == "FinalRequestOptions"))
        raise RequestDeferred("deferred by the test")


def test_each_deferred_request_lets_go_of_its_state_at_once(
    llm_env: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    hook = Counting()

    async def collecting_pass() -> None:
        token = DEFERRAL.set(hook)
        try:
            await agenerate(
                MedicalBilling,
                WAVE * 5,
                examples=EXAMPLES,
                seed=4,
                cache_dir=tmp_path / "cache",
                batch_size=5,
                concurrency=WAVE,
                http_retries=0,
            )
        finally:
            DEFERRAL.reset(token)

    gc.collect()
    gc.disable()  # nothing is left to the collector: what the hook sees is what is held
    try:
        with pytest.raises(RequestDeferred):
            asyncio.run(collecting_pass())
    finally:
        gc.enable()
    assert len(hook.alive) == WAVE  # the whole wave reached the hook, one request at a time
    assert max(hook.alive) <= 2, hook.alive  # not one per request stopped so far
    # nor one per request started: none waits for another to look the platform up
    assert max(hook.options) <= 5, hook.options
    assert llm_env.request_count == 0
