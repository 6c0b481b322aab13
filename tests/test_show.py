"""A look at the data: ``--synth-show`` tables and ``--synth-export`` JSON Lines, offline
from committed cassettes, with and without xdist."""

from __future__ import annotations

import json
import re

import pytest
from fakellm import FakeLLM

CONFTEST = """
import socket

from pydantic import BaseModel
from pytest_synthdata import synth_fixture


class Customer(BaseModel):
    customer_id: int
    full_name: str


customers = synth_fixture(Customer, n=3, scope="session")

_saved = {}


def _refuse(*args, **kwargs):
    raise AssertionError("a socket was opened during an offline replay")


def pytest_configure(config):
    if config.getoption("synth_record_mode") == "none":
        _saved["connect"] = socket.socket.connect
        socket.socket.connect = _refuse


def pytest_unconfigure(config):
    if _saved:
        socket.socket.connect = _saved.pop("connect")
"""

SUITE = """
import pytest
from pydantic import BaseModel, SecretStr


class Note(BaseModel):
    note_id: int
    body: str
    token: SecretStr


@pytest.mark.synth(Note, n=8, extra="the body is a long paragraph", near_duplicates=None)
def test_notes(synth_data):
    assert len(synth_data) == 8


@pytest.mark.synth(Note, n=2, name="short_notes", extra="short", near_duplicates=None)
def test_named(short_notes, customers):
    assert len(short_notes) == 2 and len(customers) == 3


def test_factory(synth_factory):
    synth_factory(Note, n=2, extra="first call", near_duplicates=None)
    synth_factory(Note, n=1, extra="second call", near_duplicates=None)
"""

LONG = "x" * 80
"""Every body is the same long run of x's and the note's id: near-copies by design, so the
suite turns the near-duplicate check off (near_duplicates=None)."""


def record_suite(pytester: pytest.Pytester, llm: FakeLLM) -> None:
    def long_bodies(records: list[dict[str, object]]) -> list[dict[str, object]]:
        for record in records:
            if "body" in record:
                record["body"] = f"{LONG} {record['note_id']}"
        return records

    llm.always(long_bodies)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_notes=SUITE)
    pytester.runpytest("--synth-no-cache").assert_outcomes(passed=3)
    llm.always(None)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_show_prints_the_first_rows_of_each_dataset_offline(
    pytester: pytest.Pytester,
    llm_env: FakeLLM,
    monkeypatch: pytest.MonkeyPatch,
    workers: list[str],
) -> None:
    record_suite(pytester, llm_env)
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    result = pytester.runpytest_subprocess(
        "--synth-show", "--synth-record-mode=none", "--synth-no-cache", *workers
    )
    result.assert_outcomes(passed=3)
    lines = result.stdout.lines
    text = result.stdout.str()
    titles = [line for line in lines if re.match(r"^\S.*: \d+ \w+ record\(s\)", line)]
    assert sorted(titles) == [
        "fixture customers (conftest.py): 3 Customer record(s)",
        "test_notes.py::test_factory (synth_factory(Note, n=1) #2): 1 Note record(s)",
        "test_notes.py::test_factory (synth_factory(Note, n=2) #1): 2 Note record(s)",
        "test_notes.py::test_named (short_notes): 2 Note record(s)",
        "test_notes.py::test_notes (synth_data): 8 Note record(s), the first 5",
    ], text
    at = lines.index("test_notes.py::test_notes (synth_data): 8 Note record(s), the first 5")
    header, rule, *rows = lines[at + 1 : at + 8]
    assert re.match(r"^  note_id +\| body +\| token$", header), header
    assert re.match(r"^  -+ \| -+ \| -+$", rule), rule
    for row in rows:
        note_id, body, token = (cell.strip() for cell in row.strip().split("|"))
        assert note_id.isdigit()
        assert body.startswith("xxxx") and body.endswith("...") and len(body) <= 24  # cut
        assert token == "**********"  # a SecretStr stays masked
    assert lines[at + 8].startswith("  diversity of 8 records:")  # five rows, then the report
    assert text.count("test_notes.py::test_notes (synth_data)") == 1  # once, on any worker


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_export_writes_each_dataset_as_json_lines_offline(
    pytester: pytest.Pytester,
    llm_env: FakeLLM,
    monkeypatch: pytest.MonkeyPatch,
    workers: list[str],
) -> None:
    record_suite(pytester, llm_env)
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    result = pytester.runpytest_subprocess(
        "--synth-export", "data/out", "--synth-record-mode=none", "--synth-no-cache", *workers
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["exported 5 dataset(s) as JSON Lines to data/out"])
    folder = pytester.path / "data" / "out"
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jsonl"))
    assert files == [
        "conftest/customers.jsonl",
        "test_notes/test_factory.factory-1.jsonl",
        "test_notes/test_factory.factory-2.jsonl",
        "test_notes/test_named.short_notes.jsonl",
        "test_notes/test_notes.jsonl",
    ]
    notes = [
        json.loads(line)
        for line in (folder / "test_notes/test_notes.jsonl").read_text().splitlines()
    ]
    assert len(notes) == 8
    assert {tuple(note) for note in notes} == {("note_id", "body", "token")}
    assert all(note["body"].startswith(LONG) and note["token"] == "**********" for note in notes)
    assert len((folder / "conftest/customers.jsonl").read_text().splitlines()) == 3
    assert not list(folder.rglob("*.tmp"))


def test_the_options_come_from_the_ini_file_too(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    record_suite(pytester, llm_env)
    pytester.makeini("[pytest]\nsynth_show = true\nsynth_export = exported\n")
    result = pytester.runpytest("--synth-no-cache")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["fixture customers (conftest.py): 3 Customer record(s)"])
    assert (pytester.path / "exported" / "conftest" / "customers.jsonl").is_file()


def test_without_the_options_nothing_is_shown_or_written(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    record_suite(pytester, llm_env)
    before = {p for p in pytester.path.rglob("*") if p.is_file()}
    result = pytester.runpytest("--synth-no-cache")
    result.assert_outcomes(passed=3)
    assert "record(s), the first" not in result.stdout.str()
    assert "exported" not in result.stdout.str()
    assert {p for p in pytester.path.rglob("*") if p.is_file()} == before
