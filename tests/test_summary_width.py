"""Every line of the ``synthdata`` summary fits an 80-column terminal, in a typical run
(recorded, then replayed) and in one with retries; a wrapped line goes on indented."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fakellm import FakeLLM, Fault
from test_plugin_summary import SUITE, section


def _joined(lines: list[str]) -> str:
    """The section as sentences again: continuation lines joined to the line they continue."""
    out: list[str] = []
    for line in lines:
        if line.startswith("  ") and out:
            out[-1] += " " + line.strip()
        else:
            out.append(line)
    return "\n".join(out)


def _assert_fits(lines: list[str], width: int = 80) -> None:
    assert lines, "no synthdata section"
    too_wide = [line for line in lines if len(line) > width]
    assert not too_wide, f"wider than {width} columns: {too_wide}"


def test_a_recorded_then_replayed_run_fits_80_columns(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    pytester.makepyfile(test_bills=SUITE)
    first = pytester.runpytest("--synth-no-cache")
    first.assert_outcomes(passed=2)
    assert re.search(r"^-{10,} synthdata -{10,}$", first.stdout.str(), re.M)
    recorded = section(first.stdout.str())
    _assert_fits(recorded)
    assert (
        "responses: 0 replayed from cassettes, 2 recorded, 0 from the cache, "
        "0 live without a cassette"
    ) in _joined(recorded)
    assert any(line.startswith("  ") for line in recorded)  # the responses line was wrapped

    replay = pytester.runpytest("--synth-no-cache", "--synth-record-mode=none")
    replay.assert_outcomes(passed=2)
    replayed = section(replay.stdout.str())
    _assert_fits(replayed)
    assert (
        "responses: 2 replayed from cassettes, 0 recorded, 0 from the cache, "
        "0 live without a cassette"
    ) in _joined(replayed)


def test_a_run_with_retries_fits_80_columns(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    def break_one(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        records[0]["bill_id"] = "not a number"
        return records

    monkeypatch.setenv("COLUMNS", "80")
    llm_env.retry_after_ms = 0
    llm_env.enqueue(Fault.SERVER_ERROR, Fault.TRUNCATED, Fault.mutate(break_one))
    pytester.makepyfile(test_bills=SUITE)
    result = pytester.runpytest("--synth-no-cache", "--synth-batch-size=3")
    result.assert_outcomes(passed=2)
    lines = section(result.stdout.str())
    _assert_fits(lines)
    text = _joined(lines)
    assert (
        "2 retry(ies) (1 truncated, 1 invalid), 1 transient failure(s) tried again; "
        "1 invalid and 0 duplicate record(s) dropped"
    ) in text
    assert "1 failed and retried" in text


def test_a_wide_terminal_keeps_each_line_whole(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    pytester.makepyfile(test_bills=SUITE)
    result = pytester.runpytest("--synth-no-cache")
    lines = section(result.stdout.str())
    assert not any(line.startswith("  ") for line in lines)
    assert lines[-1] == (
        "responses: 0 replayed from cassettes, 2 recorded, 0 from the cache, "
        "0 live without a cassette"
    )
