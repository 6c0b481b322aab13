"""What the ``synthdata`` command writes: never a secret the run holds, always strict JSON;
its warnings on one line; its cache folder ignored by git."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from command import FAKE_KEY, synthdata
from fakellm import FakeLLM

MODELS = """
from pydantic import BaseModel, Field


class Person(BaseModel):
    name: str
    age: int


class Reading(BaseModel):
    sensor: str
    value: float


class Gauge(BaseModel):
    sensor: str
    value: float = Field(allow_inf_nan=True)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "people.py").write_text(MODELS)
    return tmp_path


def every_file(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("output", ["out.jsonl", "out.json", "out.csv", None])
def test_an_echoed_key_is_never_written(llm: FakeLLM, project: Path, output: str | None) -> None:
    llm.enqueue(lambda rows: [{**row, "name": f"{FAKE_KEY}"} if i == 1 else row
                              for i, row in enumerate(rows)])  # fmt: skip
    args = ["generate", "people:Person", "-n", "3"]
    run = synthdata(llm, project, *args, *(["-o", output] if output else []))
    assert run.code == 1, run
    where = output or "standard output"
    assert "the dataset holds a secret this run uses" in run.err
    assert f"so it was not written to {where}" in run.err
    assert FAKE_KEY not in run.out + run.err
    assert not list(project.glob("out.*"))
    assert FAKE_KEY not in every_file(project)  # nor in the cache


def test_outputs_are_strict_json(llm: FakeLLM, project: Path) -> None:
    def nan_first(rows: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{**row, "value": float("nan")} if i == 0 else row for i, row in enumerate(rows)]

    llm.enqueue(nan_first)  # a field that does not allow NaN: an invalid record, asked again
    asked = synthdata(llm, project, "generate", "people:Reading", "-n", "2", "-o", "a.json")
    assert asked.code == 0, asked
    assert "1 re-asks of invalid answers" in asked.err
    json.loads((project / "a.json").read_text(), parse_constant=pytest.fail)
    llm.enqueue(nan_first)  # a field that allows NaN: valid, but no output may hold it
    run = synthdata(llm, project, "generate", "people:Gauge", "-n", "2", "-o", "r.json")
    assert run.code == 1, run
    assert "a record holds a value JSON cannot carry" in run.err
    assert not (project / "r.json").exists()
    fine = synthdata(llm, project, "generate", "people:Gauge", "-n", "2", "--no-cache")
    assert fine.code == 0, fine
    for line in fine.out.splitlines():
        json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in the output"))


def test_the_cache_folder_is_ignored_by_git(llm: FakeLLM, project: Path) -> None:
    run = synthdata(llm, project, "generate", "people:Person", "-n", "2")
    assert run.code == 0, run
    assert (project / ".synthdata-cache" / ".gitignore").read_text().splitlines()[-1] == "*"
    mine = project / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    again = synthdata(llm, project, "generate", "people:Person", "-n", "2", "--cache-dir", "mine")
    assert again.code == 0, again
    assert not (mine / ".gitignore").exists()  # a folder the user had is left alone


def test_texts_progress_names_the_data_and_warnings_take_one_line(
    llm: FakeLLM, project: Path
) -> None:
    (project / "fields.jsonl").write_text('{"actor": "Tom Hanks"}\n["blue", "yellow"]\n')
    run = synthdata(llm, project, "text", "fields.jsonl", "-o", "texts.jsonl")
    assert run.code == 0, run
    steps = [line for line in run.err.splitlines() if "/2 texts" in line]
    assert steps and all(line.startswith("synthdata: ") for line in steps)
    assert not any("generate_dataset" in line for line in run.err.splitlines())
    # a warning: examples longer than a prompt carries are sampled
    big = [{"name": "x" * 3000 + str(i), "age": i} for i in range(8)]
    (project / "big.jsonl").write_text("".join(json.dumps(row) + "\n" for row in big))
    warned = synthdata(
        llm, project, "generate", "people:Person", "-n", "2", "--examples", "big.jsonl",
        "--no-cache",
    )  # fmt: skip
    assert warned.code == 0, warned
    lines = [line for line in warned.err.splitlines() if "warning" in line.lower()]
    assert len(lines) == 1, warned.err
    assert lines[0].startswith("synthdata: warning: examples: ")
    assert "warnings.warn" not in warned.err and ".py:" not in warned.err
