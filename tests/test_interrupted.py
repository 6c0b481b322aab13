"""A recording killed at any moment leaves no cassette, or one the next run completes.

A test session marks every cassette it records into as incomplete until the session ends
normally; a run killed (``kill -9``) or interrupted (Ctrl-C) half-way through a test leaves
the mark, and the next run in the default record mode completes the cassette and says so.
"""

from __future__ import annotations

import time
from pathlib import Path

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


def test_a_replay_or_a_failed_run_leaves_the_mark_for_the_run_that_completes_it(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makepyfile(test_bills=SUITE)
    (pytester.path / "stop").write_text("kill")
    pytester.runpytest_subprocess("--synth-no-cache")
    cassette = next(pytester.path.rglob("*.synth.yaml"))
    assert "incomplete: true" in cassette.read_text()
    replay = pytester.runpytest_subprocess("--synth-no-cache", "--synth-record-mode=none")
    replay.assert_outcomes(failed=1)
    assert "incomplete: true" in cassette.read_text()  # a replay records nothing
    llm_env.always("500")
    failing = pytester.runpytest_subprocess("--synth-no-cache", "--synth-http-retries=0")
    failing.assert_outcomes(failed=1)
    assert "incomplete: true" in cassette.read_text()  # nothing was completed
    llm_env.always(None)
    done = pytester.runpytest_subprocess("--synth-no-cache")
    done.assert_outcomes(passed=1)
    done.stdout.fnmatch_lines(
        ["*1 cassette file(s) left incomplete by an interrupted recording were completed:*"]
    )
    assert "incomplete" not in cassette.read_text()


def test_a_finished_session_leaves_no_mark(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    pytester.makepyfile(test_bills=SUITE)
    pytester.runpytest("--synth-no-cache").assert_outcomes(passed=1)
    text = (pytester.path / "cassettes" / "test_bills" / "test_two_calls.synth.yaml").read_text()
    assert "incomplete" not in text


def test_a_cassette_another_worker_is_recording_is_not_taken_for_an_interrupted_one(
    llm_env: FakeLLM, tmp_path: Path
) -> None:
    """xdist workers share the session's start; a cassette another worker recorded in this
    session carries the incomplete mark until that worker finishes, and is grown (even in
    ``once`` mode, as this session is recording it) rather than reported as completed."""
    from models import MedicalBilling

    from pytest_synthdata import generate
    from pytest_synthdata.route import Route, using
    from pytest_synthdata.storage.recorder import Storage

    path = tmp_path / "cassettes" / "shared.synth.yaml"
    start = time.time()  # the session's start, which xdist hands every worker
    for mode in ("new_episodes", "once"):
        path.unlink(missing_ok=True)
        workers = [
            Storage(record_mode=mode, use_cache=False, session_start=start, finish_at_end=True)
            for _ in range(2)
        ]
        with using(Route.for_test(workers[0], path, "hint")):
            first = generate(MedicalBilling, 2)
        assert "\nincomplete: true\n" in path.read_text()  # the first worker is not done
        with using(Route.for_test(workers[1], path, "hint")):
            grown = generate(MedicalBilling, 4)
        assert grown[:2] == first
        assert workers[1].completed == set()
        for storage in workers:
            storage.finish()
            storage.close()
        assert "incomplete" not in path.read_text()
