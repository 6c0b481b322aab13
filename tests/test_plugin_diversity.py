"""The plugin side of sampled fields, coverage and the diversity report: the marker's
keywords, ``synth_data.coverage`` and ``.diversity``, ``--synth-show``'s diversity lines and
the warning of a recording run whose free text lacks variety."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fakellm import FakeLLM, Fault


@pytest.fixture(autouse=True)
def _no_faults_left_behind(fake_llm: FakeLLM) -> Iterator[None]:
    """Faults set here are cleared after each test: later tests share the session server."""
    yield
    fake_llm.reset()


MODELS = """
from pydantic import BaseModel, Field


class Ticket(BaseModel):
    ticket_id: int = Field(ge=1)
    title: str
    body: str
"""

MARKED = """
import pytest
from tickets_here import Ticket
from pytest_synthdata import samplers


@pytest.mark.synth(
    Ticket,
    n=12,
    sample={"ticket_id": samplers.sequence(start=500)},
    cover={"channel": ["email", "phone", "chat"]},
    edge_cases=0.25,
    near_duplicates=0.85,
    unique="ticket_id",
)
def test_tickets(synth_data):
    assert [t.ticket_id for t in synth_data] == list(range(500, 512))
    assert [c["channel"] for c in synth_data.coverage[:3]] == ["email", "phone", "chat"]
    assert sum(c["edge_case"] for c in synth_data.coverage) == 3
    assert synth_data.diversity.n == 12
    assert synth_data.diversity.fields["ticket_id"].distinct == 1.0


@pytest.mark.synth(Ticket, n=3)
def test_plain(synth_data):
    assert synth_data.coverage is None
    assert synth_data.diversity.n == 3
"""


def suite(pytester: pytest.Pytester, tests: str) -> None:
    pytester.makepyfile(tickets_here=MODELS)
    pytester.makepyfile(test_tickets=tests)
    pytester.syspathinsert()


def test_the_marker_takes_sample_cover_edge_cases_and_near_duplicates(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    suite(pytester, MARKED)
    pytester.runpytest("--synth-no-cache").assert_outcomes(passed=2)
    asked = llm_env.request_count
    again = pytester.runpytest("--synth-no-cache", "--synth-record-mode=none")
    again.assert_outcomes(passed=2)
    assert llm_env.request_count == asked


def test_a_bad_keyword_value_fails_the_test_before_any_request(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    suite(
        pytester,
        "import pytest\nfrom tickets_here import Ticket\n\n\n"
        "@pytest.mark.synth(Ticket, n=4, near_duplicates=2)\n"
        "def test_tickets(synth_data):\n    pass\n\n\n"
        "@pytest.mark.synth(Ticket, n=4, cover={'title': ['a', 'b']})\n"
        "def test_axis(synth_data):\n    pass\n",
    )
    result = pytester.runpytest("--synth-no-cache")
    assert result.ret != 0
    out = result.stdout.str()
    assert "near_duplicates must be the similarity" in out
    assert "'title' is a field of Ticket" in out
    assert llm_env.request_count == 0


def test_synth_show_prints_the_diversity_report(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    suite(pytester, MARKED)
    result = pytester.runpytest("--synth-no-cache", "--synth-show")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [  # the previews in the order of their titles: test_plain first
            "*diversity of 3 records: * near-duplicate(s) dropped, * close to an example",
            "*test_tickets (synth_data): 12 Ticket record(s)*",
            "*diversity of 12 records: * near-duplicate(s) dropped, * close to an example",
            "*ticket_id: 100% distinct, entropy 1.00; top: '500' x1*",
        ]
    )


def test_a_recording_run_warns_when_free_text_lacks_variety(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    def same_body(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**record, "body": "It does not work."} for record in records]

    llm_env.always(Fault.mutate(same_body))
    suite(
        pytester,
        "import pytest\nfrom tickets_here import Ticket\n\n\n"
        "@pytest.mark.synth(Ticket, n=10, near_duplicates=None)\n"
        "def test_tickets(synth_data):\n    assert len(synth_data) == 10\n",
    )
    result = pytester.runpytest("--synth-no-cache")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*SynthDataWarning: Ticket dataset: little variety in free-text field(s) body (10% *"]
    )
    # a replay warns no more: the warning is the recording run's
    again = pytester.runpytest("--synth-no-cache", "--synth-record-mode=none")
    again.assert_outcomes(passed=1)
    assert "little variety" not in again.stdout.str()
