"""The ``synthdata`` command on inputs nobody listed: a dry run never shows a URL's
credentials, an output it cannot write or that would replace its own examples is refused
before anything is paid for, standard output holds the records alone, and CSV reads back
every record it wrote."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from command import records, synthdata
from fakellm import FakeLLM

from pytest_synthdata.examples import SynthOutputError, read_items, write_rows

MODELS = """
from pydantic import BaseModel


class Person(BaseModel):
    name: str
    age: int


class Tag(BaseModel):
    name: str
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "people.py").write_text(MODELS)
    return tmp_path


def test_a_dry_run_shows_the_url_without_its_credentials(llm: FakeLLM, project: Path) -> None:
    url = llm.url.replace("http://", "http://user:pw1@") + "?api-key=abc123&sig=s1"
    run = synthdata(
        llm, project, "generate", "people:Person", "-n", "2", "--dry-run", "--base-url", url
    )
    assert run.code == 0, run
    assert "pw1" not in run.out + run.err and "abc123" not in run.out
    assert "sig=s1" not in run.out
    assert "http://REDACTED@127.0.0.1" in run.out and "api-key=REDACTED" in run.out
    hostile = synthdata(
        llm, project, "generate", "people:Person", "-n", "2", "--dry-run",
        OPENAI_BASE_URL=llm.url + "\x1b[2J",
    )  # fmt: skip
    assert "\x1b" not in hostile.out + hostile.err and "\\x1b[2J" in hostile.out, hostile
    assert llm.request_count == 0


def test_outputs_that_cannot_be_written_are_refused_before_any_request(
    llm: FakeLLM, project: Path
) -> None:
    (project / "seeds.jsonl").write_text('{"name": "Ann Lee", "age": 40}\n')
    same = synthdata(
        llm, project, "generate", "people:Person", "-n", "2", "--examples", "seeds.jsonl",
        "-o", "seeds.jsonl",
    )  # fmt: skip
    assert same.code == 2 and "is the examples file itself" in same.err, same
    assert (project / "seeds.jsonl").read_text() == '{"name": "Ann Lee", "age": 40}\n'

    (project / ".out.jsonl.partial").mkdir()
    blocked = synthdata(llm, project, "generate", "people:Person", "-n", "2", "-o", "out.jsonl")
    assert blocked.code == 2 and ".out.jsonl.partial is a folder" in blocked.err, blocked

    here = synthdata(llm, project, "generate", "people:Person", "-n", "2", "-o", ".")
    assert here.code == 2 and "records.jsonl" in here.err and "Traceback" not in here.err, here

    cache = synthdata(
        llm, project, "generate", "people:Person", "-n", "2", "--cache-dir", "/proc/x"
    )
    assert cache.code == 2 and "not writable" in cache.err and "Traceback" not in cache.err, cache

    unsafe = synthdata(
        llm, project, "generate", "people:Person", "-n", "2", "-o", "o.jsonl", "--spreadsheet-safe"
    )
    assert unsafe.code == 2 and "--spreadsheet-safe protects CSV files" in unsafe.err, unsafe
    assert llm.request_count == 0


def test_a_write_that_fails_after_the_run_says_so_and_keeps_nothing_half_written(
    tmp_path: Path,
) -> None:
    gone = tmp_path / "gone" / "out.jsonl"
    with pytest.raises(SynthOutputError, match=r"cannot write .*out\.jsonl .*nothing was written"):
        write_rows([{"name": "Ann", "age": 1}], gone, open(os.devnull, "w"))  # noqa: SIM115


def test_standard_output_holds_the_records_alone_and_quiet_is_quiet(
    llm: FakeLLM, project: Path
) -> None:
    (project / "noisy.py").write_text('print("HELLO FROM IMPORT")\n' + MODELS)
    run = synthdata(llm, project, "generate", "noisy:Person", "-n", "3", "-q")
    assert run.code == 0, run
    assert len(records(run.out)) == 3  # every line is a record
    assert "HELLO FROM IMPORT" in run.err
    assert "diversity of" not in run.err
    assert run.err.strip().splitlines()[-1].startswith("synthdata: 3 records -> standard output")


def test_an_interrupt_while_the_model_imports_is_an_interrupt(llm: FakeLLM, project: Path) -> None:
    (project / "slow.py").write_text("raise KeyboardInterrupt\n")
    run = synthdata(llm, project, "generate", "slow:Person", "-n", "3")
    assert run.code == 130 and "interrupted before any request" in run.err, run
    assert "Traceback" not in run.err


def test_csv_reads_back_records_whose_cells_are_only_white_space(
    llm: FakeLLM, project: Path
) -> None:
    spaces = [" ", "\t", "  \t "]
    llm.enqueue(lambda rows: [{**row, "name": spaces[i % 3]} for i, row in enumerate(rows)])
    run = synthdata(
        llm, project, "generate", "people:Tag", "-n", "3", "--near-duplicates", "off",
        "-o", "tags.csv",
    )  # fmt: skip
    assert run.code == 0, run
    back = read_items(project / "tags.csv")
    assert [row["name"] for row in back] == spaces


def test_an_output_that_is_a_link_stays_a_link_and_a_private_file_stays_private(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    target = data / "v3.jsonl"
    target.write_text("old\n")
    target.chmod(0o600)
    link = tmp_path / "latest.jsonl"
    link.symlink_to(target)
    write_rows([{"name": "Ann", "age": 1}], link, open(os.devnull, "w"))  # noqa: SIM115
    assert link.is_symlink()
    assert json.loads(target.read_text()) == {"name": "Ann", "age": 1}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_advice_names_the_command_s_own_flags(llm: FakeLLM, project: Path) -> None:
    def error(*args: str) -> str:
        run = synthdata(llm, project, "generate", "people:Person", *args)
        assert run.code in (1, 2), run
        return run.err

    assert "raise the limit with --max-n 5001" in error("-n", "5001")
    short = error("-n", "5", "--sample", "name=values:a,b")
    assert "give at least n values" in short and "cycle=True" not in short
    field = error("-n", "5", "--cover", "name=a,b")
    assert "--sample name=choice:V1,V2" in field and "samplers" not in field
    replay = error("-n", "2", "--cassette", "c.synth.yaml", "--record-mode", "none")
    assert "--record-mode rewrite" in replay and "record_mode=" not in replay, replay
    assert llm.request_count == 0


def test_a_csv_with_a_column_twice_or_a_seed_beyond_64_bits_is_refused(
    llm: FakeLLM, project: Path
) -> None:
    (project / "seeds.csv").write_text("name,age,name\nAnn Lee,40,Bob Stone\n")
    twice = synthdata(
        llm, project, "generate", "people:Person", "-n", "2", "--examples", "seeds.csv"
    )
    assert twice.code == 2 and "'name' appear more than once" in twice.err, twice
    big = synthdata(llm, project, "generate", "people:Person", "-n", "2", "--seed", str(2**80))
    assert big.code == 2 and "seed must fit in 64 bits" in big.err, big
    assert llm.request_count == 0
