"""Ctrl-C keeps the answers already on their way: the command sends nothing new, waits for
them, stores them in its resumable cache, and the next run does not pay for them again."""

from __future__ import annotations

import re
import signal
import sys
import time
from pathlib import Path

import pytest
from command import records, start, synthdata
from fakellm import FakeLLM, Latency

MODELS = """
from pydantic import BaseModel


class Person(BaseModel):
    name: str
    age: int
"""

ARGS = ["generate", "people:Person", "-n", "60", "--batch-size", "10", "--concurrency", "3"]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_ctrl_c_keeps_the_answers_in_flight(llm: FakeLLM, tmp_path: Path) -> None:
    (tmp_path / "people.py").write_text(MODELS)
    llm.latency = Latency(delay=1.5)
    process = start(llm, tmp_path, *ARGS, "-o", "people.jsonl")
    deadline = time.monotonic() + 60
    while llm.request_count < 3:  # three requests in flight, none answered yet
        assert time.monotonic() < deadline, "the command sent nothing"
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "stopping: waiting up to 10 s for the " in err
    sent = llm.request_count
    answered = llm.stats()["answered"]
    assert answered == sent >= 3  # every request sent was answered, none after Ctrl-C
    said = re.search(
        r"interrupted: (\d+) of 60 records \((\d+) request\(s\) sent, 0 replayed\)", err
    )
    assert said, err
    assert int(said.group(2)) == sent  # the command counts what the server answered
    assert int(said.group(1)) == 10 * sent
    assert not (tmp_path / "people.jsonl").exists()

    llm.latency = Latency()
    again = synthdata(llm, tmp_path, *ARGS, "-o", "people.jsonl")
    assert again.code == 0, again
    assert llm.request_count == 6  # nothing paid twice
    assert f"({6 - sent} sent, {sent} replayed from the cassette or the cache)" in again.err
    assert len(records((tmp_path / "people.jsonl").read_text())) == 60
