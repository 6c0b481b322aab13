"""A batch pass stops hundreds of requests before any of their callers resumes: each request
a batch answers lets go of its state (the SDK's and httpx's request objects) as soon as it is
stopped, and no request waits for another's first one to look the platform up. The next pass
finds the batch's answers in the response cache and judges each before reading the next,
instead of holding every answer of the wave until all are read."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from pathlib import Path

import httpx2
import pytest
from fakellm import FakeLLM
from models import EXAMPLES, MedicalBilling
from test_cache_memory import Hook

from pytest_synthdata import agenerate, batching
from pytest_synthdata.batching import RequestDeferred
from pytest_synthdata.storage.batchjobs import cache_answer
from pytest_synthdata.storage.cache import ResponseCache
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


async def a_pass(hook: object, folder: Path) -> object:
    """One pass of a batch run: the generation, with ``hook`` in front of the network."""
    token = DEFERRAL.set(hook)  # type: ignore[arg-type]
    try:
        return await agenerate(
            MedicalBilling,
            WAVE * 5,
            examples=EXAMPLES,
            seed=4,
            cache_dir=folder,
            batch_size=5,
            concurrency=WAVE,
            http_retries=0,
        )
    finally:
        DEFERRAL.reset(token)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Python 3.10 runs each request in a task")
def test_answers_a_batch_left_in_the_cache_are_judged_one_at_a_time(
    llm_env: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    folder, hook = tmp_path / "cache", Hook()
    with pytest.raises(RequestDeferred):
        asyncio.run(a_pass(hook, folder))
    assert len(hook.bodies) == WAVE
    cache = ResponseCache(folder)
    for body in hook.bodies:  # what a batch answers, kept as the command keeps it
        answered = httpx2.post(f"{llm_env.url}/chat/completions", content=body, timeout=30)
        cache_answer(cache, llm_env.url, json.loads(body), answered.json())
    cache.close()
    alive: list[int] = []
    parse = batching.parse_items

    def counting(*args: object, **kwargs: object) -> object:
        alive.append(sum(1 for o in gc.get_objects() if type(o).__name__ == "RawAnswer"))
        return parse(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(batching, "parse_items", counting)
    dataset = asyncio.run(a_pass(hook, folder))
    assert len(dataset) == WAVE * 5  # type: ignore[arg-type]
    assert len(hook.bodies) == WAVE  # every request of this pass was answered by the cache
    assert len(alive) == WAVE
    assert max(alive) <= 2, alive  # the answer being judged, not the wave's


@pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="Python 3.10 keeps each stopped request's state until its caller resumes: asyncio's "
    "wait_for runs the request in a task of its own",
)
def test_each_deferred_request_lets_go_of_its_state_at_once(
    llm_env: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    hook = Counting()

    gc.collect()
    gc.disable()  # nothing is left to the collector: what the hook sees is what is held
    try:
        with pytest.raises(RequestDeferred):
            asyncio.run(a_pass(hook, tmp_path / "cache"))
    finally:
        gc.enable()
    assert len(hook.alive) == WAVE  # the whole wave reached the hook, one request at a time
    assert max(hook.alive) <= 2, hook.alive  # not one per request stopped so far
    # nor one per request started: none waits for another to look the platform up
    assert max(hook.options) <= 5, hook.options
    assert llm_env.request_count == 0
