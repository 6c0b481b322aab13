"""A slow model still reaches exactly n with default settings: a request that runs past the
deadline is asked again as smaller batches (halving down to one record), and only a server
that does not answer even one record in time is given up on, after a bounded number of
requests. Real HTTP to the loopback server, whose answer time grows with the records asked
for, as a small model on a CPU does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakellm import FakeLLM, Fault
from fakellm.server import Latency
from models import MedicalBilling

from pytest_synthdata import SynthAPIError, generate

pytestmark = pytest.mark.usefixtures("fresh_endpoints")


def asked(server: FakeLLM) -> list[int]:
    return [
        FakeLLM.requested_count(r.body, r.body["response_format"]["json_schema"]["schema"])
        for r in server.chat_requests
    ]


def tokens_per_record(server: FakeLLM, make_client: Callable[..., Any]) -> float:
    """Completion tokens the server writes per MedicalBilling record."""
    generate(MedicalBilling, 20, client=make_client(server))
    per_record = server.completion_tokens / 20
    server.reset()
    return per_record


def test_a_model_too_slow_for_twenty_records_gets_smaller_requests(
    llm: FakeLLM, tmp_path: Path, make_client: Callable[..., Any]
) -> None:
    # 20 records take 2 s, 10 take 1 s: past a 1.5 s deadline, and well within it
    llm.latency = Latency(per_token=0.1 / tokens_per_record(llm, make_client))
    cassette = tmp_path / "slow.synth.yaml"
    bills = generate(MedicalBilling, 40, client=make_client(llm), timeout=1.5, cassette=cassette)
    assert len(bills) == 40
    assert len({b.model_dump_json() for b in bills}) == 40
    sizes = asked(llm)
    assert sorted(sizes[:2]) == [20, 20]  # the first wave, past the deadline once each
    assert sizes[2:] == [10, 10, 10, 10]  # one probe, then as many as in flight before
    assert llm.request_count == 6  # a timed-out request is not sent again as it was
    # the recording replays without the endpoint to the very same records
    offline = make_client(llm)
    llm.stop()
    try:
        replayed = generate(
            MedicalBilling, 40, client=offline, cassette=cassette, record_mode="none"
        )
    finally:
        llm.start()
    assert replayed == bills


def test_a_hung_server_ends_the_run_after_halving_down_to_one_record(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    llm.always(Fault.timeout(30.0))
    with pytest.raises(SynthAPIError) as info:
        generate(MedicalBilling, 40, client=make_client(llm), timeout=0.3)
    message = str(info.value)
    assert "did not finish answering within 0.3s" in message and "(after 2 tries)" in message
    # 20 and 20 at once, then one request at a time: 10, 5, 3, 2, and 1 record twice
    sizes = asked(llm)
    assert sorted(sizes[:2]) == [20, 20]
    assert sizes[2:] == [10, 5, 3, 2, 1, 1]
    assert llm.request_count == 8


def test_a_server_that_answers_one_request_at_a_time_is_not_sent_a_queue(
    llm: FakeLLM, tmp_path: Path, make_client: Callable[..., Any]
) -> None:
    # As llama-cpp-python on a CPU: one answer at a time, an answer whose client gave up is
    # still generated to its end, and a waiting one whose client gave up is dropped. 20
    # records take 2 s, past the 1.8 s deadline; 10 take 1 s, but only when they do not wait
    # behind another answer.
    llm.latency = Latency(per_token=0.1 / tokens_per_record(llm, make_client))
    llm.serial = True
    bills = generate(MedicalBilling, 40, client=make_client(llm), timeout=1.8)
    assert len(bills) == 40
    sizes = asked(llm)
    assert sorted(sizes[:2]) == [20, 20]  # both past the deadline: one ran, one waited
    # then one request at a time, each answered in time: the endpoint learned that answers
    # take more than half the deadline, so it never has a second one waiting
    assert sizes[2:] == [10, 10, 10, 10]
    assert bills.usage.requests == 4
