"""A recording killed at any moment leaves no cassette, or one the next run completes.

A test session marks every cassette it records into as incomplete until the session ends
normally; a run killed (``kill -9``) or interrupted (Ctrl-C) half-way through a test leaves
the mark, and the next run in the default record mode completes the cassette and says so.
"""

from __future__ import annotations

import pytest
from fakellm import FakeLLM

SUITE = """
import os
import signal
import pathlib

from pydantic import BaseModel


class Bill(BaseModel):
    patient_id: int
    patient_name: str


STOP = pathlib.Path(__file__).parent / "stop"


def test_two_calls(synth_factory):
    first = synth_factory(Bill, n=3, extra="first")
    if STOP.exists():
        how = STOP.read_text()
        STOP.unlink()
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise KeyboardInterrupt
    second = synth_factory(Bill, n=2, extra="second")
    assert (len(first), len(second)) == (3, 2)
"""


@pytest.mark.parametrize("how", ["kill", "ctrl-c"])
def test_an_interrupted_recording_is_completed_by_the_next_run(
    pytester: pytest.Pytester, llm_env: FakeLLM, how: str
) -> None:
    pytester.makepyfile(test_bills=SUITE)
    (pytester.path / "stop").write_text("kill" if how == "kill" else "interrupt")
    first = pytester.runpytest_subprocess("--synth-no-cache")
    assert first.ret != 0
    cassette = pytester.path / "cassettes" / "test_bills" / "test_two_calls.synth.yaml"
    assert cassette.is_file()  # the first call's recording, marked incomplete
    assert "\nincomplete: true\n" in cassette.read_text()
    assert llm_env.request_count == 1
    # the default run completes it (one more request), says so, and clears the mark
    second = pytester.runpytest_subprocess("--synth-no-cache")
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(
        ["*1 cassette file(s) left incomplete by an interrupted recording were completed:*"]
    )
    assert llm_env.request_count == 2
    assert "incomplete" not in cassette.read_text()
    # and from then on it replays offline
    third = pytester.runpytest_subprocess("--synth-no-cache", "--synth-record-mode=none")
    third.assert_outcomes(passed=1)
    assert llm_env.request_count == 2
    assert "left incomplete" not in third.stdout.str()


def test_replay_only_names_an_incomplete_cassette(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makepyfile(test_bills=SUITE)
    (pytester.path / "stop").write_text("kill")
    pytester.runpytest_subprocess("--synth-no-cache")
    result = pytester.runpytest_subprocess("--synth-no-cache", "--synth-record-mode=none")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*an interrupted recording left this cassette incomplete, and a run in record "
            "mode 'once' completes it*",
            "*left incomplete by an interrupted recording (run in record mode 'once' to "
            "complete them)*",
        ]
    )


def test_a_finished_session_leaves_no_mark(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    pytester.makepyfile(test_bills=SUITE)
    pytester.runpytest("--synth-no-cache").assert_outcomes(passed=1)
    text = (pytester.path / "cassettes" / "test_bills" / "test_two_calls.synth.yaml").read_text()
    assert "incomplete" not in text
