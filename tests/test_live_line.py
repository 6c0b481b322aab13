"""The live progress line, as a terminal shows it: pytest runs under a pseudo-terminal, and
their raw output is replayed the way a terminal draws it (a carriage return goes back to
the start of the line)."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest
from fakellm import FakeLLM, Fault

pty = pytest.importorskip("pty")

SUITE = """
import pytest
from pydantic import BaseModel


class Bill(BaseModel):
    patient_id: int
    patient_name: str


@pytest.mark.synth(Bill, n=3, batch_size=1, concurrency=1)
def test_bills(synth_data):
    assert len(synth_data) == 3


def test_plain():
    pass
"""

LIVE = re.compile(
    r"synthdata: (\[gw\d\] )?Bill \d/3 records, \d request\(s\), \d+ tokens, 0 retry\(ies\)"
)


def in_terminal(
    pytester: pytest.Pytester,
    *args: str,
    when: Callable[[str], bool] = lambda raw: False,
    then: Callable[[], None] = lambda: None,
) -> str:
    """Run pytest on a pseudo-terminal and return everything it wrote; ``then()`` is called
    once, as soon as ``when(output so far)`` holds (or when the run ends)."""
    master, slave = pty.openpty()
    env = dict(os.environ, COLUMNS="100", LINES="40", PY_COLORS="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--synth-no-cache", *args],
        cwd=pytester.path,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    called = False
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            if not ready:
                break  # a guard against a hung run, not a measurement
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
            if not called and when(b"".join(chunks).decode(errors="replace")):
                called = True
                then()
    finally:
        if not called:
            then()
        proc.wait(timeout=120)
        os.close(master)
    return b"".join(chunks).decode(errors="replace")


def screen(raw: str) -> list[str]:
    """The lines a terminal shows for ``raw``: ``\\r`` returns to the line's start and what
    follows overwrites it."""
    lines = []
    for line in raw.replace("\r\n", "\n").split("\n"):
        cells: list[str] = []
        column = 0
        for char in line:
            if char == "\r":
                column = 0
                continue
            if column < len(cells):
                cells[column] = char
            else:
                cells.append(char)
            column += 1
        lines.append("".join(cells).rstrip())
    return lines


@pytest.mark.parametrize("verbosity", ["-q", "", "-v"])
def test_a_terminal_shows_the_line_while_a_dataset_is_generated(
    pytester: pytest.Pytester, llm_env: FakeLLM, verbosity: str
) -> None:
    pytester.makepyfile(test_live=SUITE)
    raw = in_terminal(pytester, *([verbosity] if verbosity else []))
    drawn = LIVE.findall(raw)
    assert len(drawn) == 3, raw  # one line per answer: 1/3, 2/3, 3/3
    assert "synthdata: Bill 3/3 records, 3 request(s)" in raw
    # the line is gone afterwards, and pytest's own lines read as without it
    shown = screen(raw)
    assert not any("synthdata: Bill" in line for line in shown), shown
    expected = {
        "-q": r"^\.\.\s+\[100%\]$",
        "": r"^test_live\.py \.\.\s+\[100%\]$",
        "-v": r"^test_live\.py::test_bills PASSED\s+\[ 50%\]$",
    }[verbosity]
    assert any(re.match(expected, line) for line in shown), shown
    assert any(re.match(r"^\d+ passed in ", line.strip("= ")) for line in shown), shown


def test_output_that_is_not_a_terminal_never_gets_the_line(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makepyfile(test_live=SUITE)
    for args in ([], ["-q"], ["-n", "2"]):
        result = pytester.runpytest_subprocess("--synth-no-cache", *args)
        result.assert_outcomes(passed=2)
        text = result.stdout.str() + result.stderr.str()
        assert not LIVE.search(text), text
        assert "\r" not in text.replace("\r\n", "\n")
        for path in pytester.path.joinpath("cassettes").rglob("*.yaml"):
            path.unlink()


def test_the_xdist_controller_shows_its_workers_lines(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    """The second answer waits until the controller has drawn the worker's first line, so
    the line is seen whatever the speed of the machine."""
    pytester.makepyfile(test_live=SUITE)
    gate = threading.Event()

    def hold(records: list[dict[str, object]]) -> list[dict[str, object]]:
        gate.wait(120)
        return records

    llm_env.enqueue(Fault.mutate(lambda records: records), Fault.mutate(hold))
    raw = in_terminal(
        pytester,
        "-n",
        "2",
        when=lambda raw: re.search(r"\[gw\d\] Bill 1/3 records", raw) is not None,
        then=gate.set,
    )
    assert re.search(r"synthdata: \[gw\d\] Bill 1/3 records, 1 request\(s\), \d+ tokens", raw), raw
    shown = screen(raw)
    assert not any("synthdata: [gw" in line for line in shown), shown
    assert any(re.match(r"^\.\.\s+\[100%\]$", line) for line in shown), shown
    assert any(re.match(r"^=+ 2 passed in ", line) for line in shown), shown
