"""What ``synthdata generate`` writes reads back equal: as ``--examples`` and through the
one reader, for strings with any characters, empty strings, None, nested models, lists and
strings that look like numbers, JSON or dates."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from command import synthdata
from fakellm import FakeLLM

MODELS = """
import datetime

from pydantic import BaseModel


class Inner(BaseModel):
    city: str
    zip: str | None = None


class Tricky(BaseModel):
    key: int
    text: str
    maybe: str | None = None
    must: str | None
    inner: Inner | None = None
    tags: list[str]
    places: list[Inner] = []
    when: datetime.date | None = None
    flag: bool = False
    ratio: float = 0.0
"""

TEXTS = [
    "", " ", "plain", "a,b", 'say "hi"', "line1\nline2", "bare\rcr", "crlf\r\nend", "[1, 2]",
    '{"a": 1}', '"quoted"', "null", "None", "true", "42", "007", "-5", "=1+1", "+1", "@x",
    "2024-01-02", "1e5", "NaN", "tab\tin", "\u2028sep", "ünïcödé 字", " leading", "trailing ",
    "back\\slash", "'single", "#hash", ",", '"', "[", "{", "[unclosed", "a.b", "x\x00y",
]  # fmt: skip


def record(i: int, text: str) -> dict[str, Any]:
    other = TEXTS[(i + 7) % len(TEXTS)]
    return {
        "key": i,
        "text": text,
        "maybe": None if i % 3 == 0 else other,
        "must": None if i % 2 else text,
        "inner": None if i % 4 == 0 else {"city": other, "zip": None if i % 2 else text},
        "tags": [text, other] if i % 2 else [],
        "places": [{"city": text, "zip": None}] if i % 5 == 0 else [],
        "when": "2024-02-29" if i % 2 else None,
        "flag": i % 2 == 0,
        "ratio": -1.5 * i,
    }


RECORDS = [record(i, text) for i, text in enumerate(TEXTS)]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "tricky.py").write_text(MODELS)
    return tmp_path


def model(project: Path) -> Any:
    sys.path.insert(0, str(project))
    try:
        import tricky

        return tricky.Tricky
    finally:
        sys.path.remove(str(project))
        sys.modules.pop("tricky", None)


def generated(llm: FakeLLM, project: Path, output: str, *flags: str) -> None:
    llm.enqueue(lambda rows: RECORDS[: len(rows)])
    run = synthdata(
        llm, project, "generate", "tricky:Tricky", "-n", str(len(RECORDS)),
        "--batch-size", str(len(RECORDS)), "--max-tokens", "60000", "--no-cache",
        "--near-duplicates", "off",  # the tricky records are short and alike by design
        "-o", output, *flags,
    )  # fmt: skip
    assert run.code == 0, run


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_every_value_reads_back_equal(llm: FakeLLM, project: Path, suffix: str) -> None:
    from pytest_synthdata.examples import read_items

    Tricky = model(project)
    expected = [Tricky.model_validate(row) for row in RECORDS]
    generated(llm, project, f"out{suffix}")
    back = read_items(project / f"out{suffix}")
    assert [Tricky.model_validate(item) for item in back] == expected

    # and fed back as --examples, each example reaches the prompt as the record it was
    again = synthdata(
        llm, project, "generate", "tricky:Tricky", "-n", "2", "--examples", f"out{suffix}",
        "--no-cache",
    )  # fmt: skip
    assert again.code == 0, again
    prompt = llm.chat_requests[-1].messages[-1]["content"]
    for one in expected:
        shown = json.dumps(one.model_dump(mode="json"), ensure_ascii=False, separators=(", ", ": "))
        assert shown in prompt


def test_a_cell_with_a_bare_carriage_return_is_quoted(llm: FakeLLM, project: Path) -> None:
    generated(llm, project, "out.csv")
    raw = (project / "out.csv").read_bytes().decode()
    rows = list(csv.reader(io.StringIO(raw, newline="")))
    assert len(rows) == len(RECORDS) + 1  # a header and one row per record, never more
    texts = [row[1] for row in rows[1:]]
    assert texts[TEXTS.index("bare\rcr")] == "bare\rcr"
    assert texts[TEXTS.index("")] == '""'  # the empty string is not a missing value
    assert texts[TEXTS.index("[1, 2]")] == '"[1, 2]"'  # nor a list
    assert texts[TEXTS.index("42")] == "42"  # a string that reads as one for a str field


def test_spreadsheet_safe_is_opt_in_and_neutralises_formulas(llm: FakeLLM, project: Path) -> None:
    generated(llm, project, "plain.csv")
    generated(llm, project, "safe.csv", "--spreadsheet-safe")

    def cells(name: str) -> list[str]:
        text = (project / name).read_bytes().decode()
        return [row[1] for row in list(csv.reader(io.StringIO(text, newline="")))[1:]]

    plain, safe = cells("plain.csv"), cells("safe.csv")
    for trigger in ("=1+1", "+1", "-5", "@x", "tab\tin"):
        index = TEXTS.index(trigger)
        assert plain[index] == trigger  # by default the data is left as it is
    for trigger in ("=1+1", "+1", "-5", "@x"):
        assert safe[TEXTS.index(trigger)] == "'" + trigger
    assert safe[TEXTS.index("plain")] == "plain"
    text = (project / "safe.csv").read_bytes().decode()
    header = next(csv.reader(io.StringIO(text, newline="")))
    ratio = header.index("ratio")
    rows = list(csv.reader(io.StringIO(text, newline="")))[1:]
    assert rows[1][ratio] == "'-1.5"  # negative numbers too: it changes the data
