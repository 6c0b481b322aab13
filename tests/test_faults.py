"""Exactly n, or a clear error, against a flaky endpoint: a 50% fault mix, trickling and
hung servers, each through real HTTP with the loopback server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakellm import FakeLLM, Fault, RandomFaults
from models import EXAMPLES, MedicalBilling

from pytest_synthdata import SynthAPIError, generate

pytestmark = pytest.mark.usefixtures("fresh_endpoints")

EVERY_KIND = (
    "429",
    "500",
    "503",
    "reset",
    "html",
    "html_json",
    "malformed",
    "truncated",
    "fewer",
    "duplicate",
    "refusal",
    "empty_choices",
)


@pytest.mark.parametrize(("n", "seed"), [(10, 1), (10, 2), (10, 3), (100, 1), (100, 2), (1000, 1)])
def test_exactly_n_under_a_fifty_percent_fault_mix(
    llm: FakeLLM, tmp_path: Path, n: int, seed: int, make_client: Callable[..., Any]
) -> None:
    llm.retry_after_ms = 0  # 429/5xx say "retry now"; the others back off as usual
    llm.fault_mix = RandomFaults(0.5, EVERY_KIND, seed=seed)
    cassette = tmp_path / "bills.synth.yaml"
    bills = generate(
        MedicalBilling, n, examples=EXAMPLES, client=make_client(llm), cassette=cassette
    )
    assert len(bills) == n
    assert len({b.model_dump_json() for b in bills}) == n
    faults = [r.fault.kind for r in llm.chat_requests if r.fault is not None]
    assert len(faults) >= len(llm.chat_requests) // 3  # the mix did hit
    # the recording replays without the endpoint to the very same records
    llm.fault_mix = None
    offline = make_client(llm)
    llm.stop()
    try:
        replayed = generate(
            MedicalBilling,
            n,
            examples=EXAMPLES,
            client=offline,
            cassette=cassette,
            record_mode="none",
        )
    finally:
        llm.start()
    assert replayed == bills


def test_a_trickling_server_costs_two_deadlines_and_says_so(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    llm.trickle_delay = 0.05  # an answer of ~1 KB takes ~50 s to arrive
    llm.always("trickle")
    with pytest.raises(SynthAPIError) as info:
        generate(MedicalBilling, 3, client=make_client(llm), timeout=0.5)
    message = str(info.value)
    assert "did not finish answering within 0.5s" in message
    assert "(after 2 tries)" in message and "--synth-timeout" in message
    # 3 records, then 2 (one try each: a smaller request follows), then 1 record twice
    assert llm.request_count == 4


def test_a_hung_server_is_given_up_on_for_the_rest_of_the_run(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    llm.always(Fault.timeout(30.0))
    for _ in range(2):
        with pytest.raises(SynthAPIError, match=r"did not finish answering within 0\.3s"):
            generate(MedicalBilling, 3, client=make_client(llm), timeout=0.3)
    assert llm.request_count == 8  # 3, 2, then 1 record twice, in each run
    # four tries of one record in a row timed out: later calls fail at once, saying why
    with pytest.raises(SynthAPIError, match="stopped answering: its last 4 tries"):
        generate(MedicalBilling, 3, client=make_client(llm), timeout=0.3)
    assert llm.request_count == 8


def test_a_proxy_html_page_is_retried_not_parsed(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    llm.enqueue("html", "html_json")
    bills = generate(MedicalBilling, 4, client=make_client(llm))
    assert len(bills) == 4
    assert [r.status for r in llm.chat_requests] == [200, 200, 200]
    assert bills.usage.requests == 1  # the two pages were transient failures, not answers
