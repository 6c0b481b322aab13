"""``--synth-show`` on an 80-column terminal: nested models as dotted columns, one
``field: value`` line each when the columns do not fit; what a model wrote is shown with
its control characters escaped, never acted on by the terminal."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fakellm import FakeLLM

from pytest_synthdata.plugin.live import describe
from pytest_synthdata.progress import Progress
from pytest_synthdata.terminal_safe import escape_controls
from pytest_synthdata.usage import Usage

SUITE = """
import pytest
from pydantic import BaseModel


class Address(BaseModel):
    street: str
    city: str
    postcode: str


class Customer(BaseModel):
    customer_id: int
    full_name: str
    email: str
    phone: str
    address: Address


class Place(BaseModel):
    place_id: int
    address: Address


@pytest.mark.synth(Customer, n=2)
def test_customers(synth_data):
    assert len(synth_data) == 2


@pytest.mark.synth(Place, n=2)
def test_places(synth_data):
    assert len(synth_data) == 2
"""

HOSTILE = "Eve\x1b]52;c;ZXZpbA==\x07\x1b[2J\x9b31m\u202eend"
"""An OSC 52 clipboard write, a screen clear, a C1 CSI and a right-to-left override."""


def run_shown(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("COLUMNS", "80")
    pytester.makepyfile(test_people=SUITE)
    result = pytester.runpytest_subprocess("--synth-show", "--synth-no-cache")
    result.assert_outcomes(passed=2)
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if re.match(r"^-+ synthdata -+$", line))
    return lines[start:]


def test_show_fits_80_columns_with_a_nested_model(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = run_shown(pytester, monkeypatch)
    tables = lines[next(i for i, line in enumerate(lines) if "(synth_data)" in line) :]
    assert all(len(line) <= 80 for line in tables), [line for line in tables if len(line) > 80]
    # Place fits as a table, its nested address as dotted columns
    at = lines.index("test_people.py::test_places (synth_data): 2 Place record(s)")
    header = lines[at + 1]
    assert re.match(
        r"^  place_id +\| address\.street +\| address\.city +\| address\.postcode$", header
    ), header
    assert len(lines[at + 3].split("|")) == 4
    # Customer has too many columns for 80: one "field: value" line each
    at = lines.index("test_people.py::test_customers (synth_data): 2 Customer record(s)")
    block = lines[at + 1 : at + 1 + 2 * 8]
    assert [line.strip() for line in block if line.startswith("  #")] == ["#1", "#2"]
    fields = [line.split(":")[0].strip() for line in block if line.startswith("    ")]
    assert fields == 2 * [
        "customer_id",
        "full_name",
        "email",
        "phone",
        "address.street",
        "address.city",
        "address.postcode",
    ]


def test_control_characters_from_the_model_are_shown_escaped(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    def hostile(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for record in records:
            if "full_name" in record:
                record["full_name"] = HOSTILE
            if isinstance(record.get("address"), dict):
                record["address"]["city"] = HOSTILE
        return records

    llm_env.always(hostile)
    lines = run_shown(pytester, monkeypatch)
    text = "\n".join(lines)
    for char in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert char not in text, repr(char)
    escaped = r"Eve\x1b]52;c;ZXZpbA==\x07\x1b[2J\x9b31m\u202eend"
    assert any(line.endswith(f"full_name       : {escaped}") for line in lines), text
    assert any(escaped[:10] in line and "|" in line for line in lines), text  # Place's city


def test_the_live_line_and_the_helper_escape_controls() -> None:
    progress = Progress(f"Bill{HOSTILE}", 1, 2, Usage(requests=1))
    line = describe(progress)
    assert "\x1b" not in line and "\x07" not in line
    assert line.startswith(r"BillEve\x1b]52;c;ZXZpbA==\x07\x1b[2J\x9b31m\u202eend 1/2 records")
    assert escape_controls("a\tb\nc é", keep="\n") == "a\\tb\nc é"
    assert escape_controls("a\r\nb") == "a\\r\\nb"
