"""``pytest --synth-dry-run`` for a dataset whose fields code partly chooses (``sample=``,
``cover=``): the estimate counts only what the model writes, and is within half of what the
real run then uses (pytester runs against the loopback fake server)."""

from __future__ import annotations

import re

import pytest
from fakellm import FakeLLM

SUITE = """
import pytest
from pydantic import BaseModel

from pytest_synthdata import samplers


class Bill(BaseModel):
    patient_id: int
    patient_name: str
    diagnosis_code: str
    total_charge: float


@pytest.mark.synth(Bill, n=12, extra="clinic bills"SLOTS)
def test_bills(synth_data):
    assert len(synth_data) == 12
"""

SLOTS = (
    ', sample={"patient_id": samplers.sequence(start=1000), '
    '"diagnosis_code": samplers.choice(["J20.9", "M54.5"]), '
    '"total_charge": samplers.uniform(50, 500)}, '
    'cover={"payer": ["medicare", "private", "self-pay"]}'
)


def estimate(text: str) -> tuple[int, int, int]:
    found = re.search(r"total: (\d+) request\(s\), (\d+) prompt \+ (\d+) completion", text)
    assert found is not None, text
    requests, prompt, completion = (int(value) for value in found.groups())
    return requests, prompt, completion


def dry_then_real(pytester: pytest.Pytester, llm: FakeLLM, slots: str) -> tuple[int, ...]:
    """The dry run's estimate and what the real run then used: requests, prompt and
    completion tokens of each."""
    pytester.makepyfile(test_bills=SUITE.replace("SLOTS", slots))
    llm.reset()
    dry = pytester.runpytest("--synth-dry-run", "--synth-no-cache")
    assert dry.ret == pytest.ExitCode.OK
    assert llm.request_count == 0
    planned = estimate(dry.stdout.str())
    pytester.runpytest("--synth-no-cache").assert_outcomes(passed=1)
    used = (llm.request_count, llm.prompt_tokens, llm.completion_tokens)
    for path in (pytester.path / "cassettes").rglob("*.yaml"):
        path.unlink()
    return planned + used


def test_sampled_fields_are_left_out_of_the_estimate(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    plain = dry_then_real(pytester, llm_env, "")
    slotted = dry_then_real(pytester, llm_env, SLOTS)
    requests, prompt, completion, sent, prompt_used, completion_used = slotted
    assert requests == sent
    assert 0.5 * prompt_used <= prompt <= 1.5 * prompt_used
    assert 0.5 * completion_used <= completion <= 1.5 * completion_used
    # three of four fields are chosen by code: the model writes less, and the estimate says so
    assert completion_used < plain[5]
    assert completion < plain[2]
