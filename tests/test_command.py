"""The ``synthdata`` command as a user runs it: a subprocess against the loopback server.

(Not named test_cli.py: pytester runs in this process write modules of that name.)
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from command import FAKE_KEY, command, environment, records, synthdata
from fakellm import FakeLLM, Latency

MODELS = '''
from pydantic import BaseModel, field_validator


class Address(BaseModel):
    street: str
    city: str


class Bill(BaseModel):
    """A medical bill."""

    patient_id: int
    patient_name: str
    total_charge: float
    address: Address
    tags: list[str]
    note: str | None = None


class Person(BaseModel):
    name: str
    age: int


def helper():
    return 1
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "billing.py").write_text(MODELS)
    return tmp_path


def bills(project: Path) -> Any:
    sys.path.insert(0, str(project))
    try:
        import billing

        return billing
    finally:
        sys.path.remove(str(project))
        sys.modules.pop("billing", None)


# --------------------------------------------------------------------------- output


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_generate_writes_the_format_its_extension_names(
    llm: FakeLLM, project: Path, suffix: str
) -> None:
    run = synthdata(llm, project, "generate", "billing:Bill", "-n", "12", "-o", f"out{suffix}")
    assert run.code == 0, run
    text = (project / f"out{suffix}").read_text()
    if suffix == ".jsonl":
        rows = records(text)
    elif suffix == ".json":
        rows = json.loads(text)
    else:
        header = text.splitlines()[0].split(",")
        assert header == [
            *("patient_id", "patient_name", "total_charge", "address.street"),
            *("address.city", "tags", "note"),
        ]
        from pytest_synthdata.examples import unflatten

        raw = list(csv.DictReader(io.StringIO(text)))
        assert raw[0]["tags"].startswith("[")  # a list is one cell of JSON
        rows = [unflatten(row) for row in raw]
    model = bills(project).Bill
    parsed = [model.model_validate(row) for row in rows]
    if suffix == ".csv":  # None is null
        assert all(
            (row["note"] == "null") == (p.note is None) for row, p in zip(raw, parsed, strict=True)
        )
    assert len(parsed) == 12
    assert len({p.model_dump_json() for p in parsed}) == 12
    assert "synthdata: 12 records -> out" in run.err
    assert run.out == ""


def test_without_output_it_writes_json_lines_to_stdout_and_a_line_per_answer(
    llm: FakeLLM, project: Path
) -> None:
    run = synthdata(
        llm, project, "generate", "billing:Person", "-n", "25", "--batch-size", "10",
        "--concurrency", "1",
    )  # fmt: skip
    assert run.code == 0, run
    assert len(records(run.out)) == 25
    steps = [line for line in run.err.splitlines() if "/25 records" in line]
    assert steps == [
        "synthdata: Person 10/25 records, 1 requests, " + steps[0].split(", 1 requests, ")[1],
        *steps[1:],
    ]
    assert [re.search(r"(\d+)/25", s).group(1) for s in steps] == ["10", "20", "25"]  # type: ignore[union-attr]
    final = run.err.splitlines()[-1]
    assert re.fullmatch(
        r"synthdata: 25 records -> standard output; 3 requests, \d+ prompt \+ \d+ completion "
        r"tokens; retries: 0 re-asks of invalid answers, 0 after 429/5xx/timeouts; [\d.]+ s",
        final,
    ), final


def test_the_console_script_and_the_module_are_the_same_command(
    llm: FakeLLM, project: Path
) -> None:
    script = Path(sys.executable).with_name("synthdata")
    done = subprocess.run(
        [str(script), "generate", "billing:Person", "-n", "3", "--no-cache"],
        cwd=project,
        env=environment(llm),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    module = synthdata(llm, project, "generate", "billing:Person", "-n", "3", "--no-cache")
    assert records(done.stdout) == records(module.out)


def test_a_model_in_a_file_path(llm: FakeLLM, project: Path) -> None:
    (project / "models").mkdir()
    (project / "models" / "people.py").write_text(MODELS)
    run = synthdata(llm, project, "generate", "models/people.py:Person", "-n", "4")
    assert run.code == 0, run
    assert len(records(run.out)) == 4


def test_examples_from_a_csv_file_written_by_the_command(llm: FakeLLM, project: Path) -> None:
    first = synthdata(llm, project, "generate", "billing:Bill", "-n", "3", "-o", "seed.csv")
    assert first.code == 0, first
    run = synthdata(
        llm, project, "generate", "billing:Bill", "-n", "5", "--examples", "seed.csv",
        "--subject", "hospital bills", "--extra", "unusual names", "--seed", "7",
        "--unique", "patient_id",
    )  # fmt: skip
    assert run.code == 0, run
    prompt = llm.chat_requests[-1].messages[-1]["content"]
    seed_rows = list(csv.DictReader(io.StringIO((project / "seed.csv").read_text())))
    assert seed_rows[0]["patient_name"] in prompt  # the examples reached the prompt
    assert "hospital bills" in prompt and "unusual names" in prompt
    assert llm.chat_requests[-1].body["seed"] == 7
    assert len({row["patient_id"] for row in records(run.out)}) == 5


# --------------------------------------------------------------------------- settings


def test_settings_come_from_the_environment_and_flags_win(llm: FakeLLM, project: Path) -> None:
    env_run = synthdata(
        llm, project, "generate", "billing:Person", "-n", "4", "--no-cache",
        SYNTHDATA_MODEL="env-model", SYNTHDATA_BATCH_SIZE="2", SYNTHDATA_TEMPERATURE="0.5",
    )  # fmt: skip
    assert env_run.code == 0, env_run
    bodies = [r.body for r in llm.chat_requests]
    assert [(b["model"], b["temperature"]) for b in bodies] == [("env-model", 0.5)] * 2
    llm.reset()
    flag_run = synthdata(
        llm, project, "generate", "billing:Person", "-n", "4", "--no-cache",
        "--model", "flag-model", "--batch-size", "auto", "--max-tokens", "3000",
        SYNTHDATA_MODEL="env-model", SYNTHDATA_BATCH_SIZE="2",
    )  # fmt: skip
    assert flag_run.code == 0, flag_run
    assert [r.body["model"] for r in llm.chat_requests] == ["flag-model"]  # one batch of 4


# --------------------------------------------------------------------------- bad input

BAD: dict[str, tuple[list[str], dict[str, str], str]] = {
    "unknown module": (
        ["generate", "billin:Bill", "-n", "3"],
        {},
        "cannot import module 'billin'",
    ),
    "unknown model": (
        ["generate", "billing:Bil", "-n", "3"],
        {},
        "module 'billing' has no 'Bil' (did you mean 'Bill'?); its pydantic models: "
        "Address, Bill, Person",
    ),
    "not a model": (
        ["generate", "billing:helper", "-n", "3"],
        {},
        "billing:helper is a function, not a pydantic BaseModel subclass",
    ),
    "no colon": (["generate", "billing", "-n", "3"], {}, "expected MODULE:MODEL"),
    "unknown extension": (
        ["generate", "billing:Bill", "-n", "3", "-o", "out.xlsx"],
        {},
        "-o out.xlsx: the output format follows the extension, and extension '.xlsx' is not "
        "one of .jsonl, .json, .csv",
    ),
    "missing folder": (
        ["generate", "billing:Bill", "-n", "3", "-o", "nowhere/out.csv"],
        {},
        "the folder nowhere does not exist",
    ),
    "output is a folder": (
        ["generate", "billing:Bill", "-n", "3", "-o", "sub.jsonl"],
        {},
        "-o sub.jsonl: that is a folder",
    ),
    "cache flags": (
        ["generate", "billing:Bill", "-n", "3", "--no-cache", "--cache-dir", "c"],
        {},
        "--no-cache and --cache-dir contradict each other",
    ),
    "record mode without a cassette": (
        ["generate", "billing:Bill", "-n", "3", "--record-mode", "none"],
        {},
        "--record-mode applies to a --cassette recording",
    ),
    "one price": (
        ["generate", "billing:Bill", "-n", "3", "--price-in", "0.15", "--dry-run"],
        {},
        "a cost needs both prices: add --price-out",
    ),
    "bad flag value": (
        ["generate", "billing:Bill", "-n", "3", "--concurrency", "0"],
        {},
        "--concurrency: concurrency must be an integer >= 1, got 0",
    ),
    "bad environment value": (
        ["generate", "billing:Bill", "-n", "3"],
        {"SYNTHDATA_CONCURRENCY": "many"},
        "environment variable SYNTHDATA_CONCURRENCY: expected an integer, got 'many'",
    ),
    "n above max_n": (
        ["generate", "billing:Bill", "-n", "50", "--max-n", "10"],
        {},
        "n=50 is above the limit of 10 records per dataset",
    ),
    "unknown unique field": (
        ["generate", "billing:Bill", "-n", "3", "--unique", "patient"],
        {},
        "'patient' is not a field of Bill",
    ),
    "missing examples file": (
        ["generate", "billing:Bill", "-n", "3", "--examples", "seeds.jsonl"],
        {},
        "examples file not found: seeds.jsonl",
    ),
    "invalid example": (
        ["generate", "billing:Person", "-n", "3", "--examples", "people.jsonl"],
        {},
        "examples[0] does not validate against Person",
    ),
    "fields file of text": (
        ["text", "fields.txt"],
        {},
        "fields file fields.txt must end in .jsonl, .json, .csv",
    ),
    "preferences": (
        ["text", "fields.jsonl", "--preferences", "{'style': 1}"],
        {},
        "--preferences: not valid JSON",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_fails_before_any_request_and_says_how_to_fix_it(
    llm: FakeLLM, project: Path, case: str
) -> None:
    args, env, message = BAD[case]
    (project / "sub.jsonl").mkdir()
    (project / "people.jsonl").write_text('{"name": "Ada", "age": "old"}\n')
    (project / "fields.jsonl").write_text('{"actor": "Tom Hanks"}\n')
    run = synthdata(llm, project, *args, **env)
    assert run.code == 2, run
    assert message in run.err, run
    assert run.err.startswith("synthdata: error: "), run
    assert "Traceback" not in run.err
    assert llm.request_count == 0


def test_openai_needs_a_key_before_any_request(llm: FakeLLM, project: Path) -> None:
    env = environment(llm)
    del env["OPENAI_API_KEY"], env["OPENAI_BASE_URL"]
    done = subprocess.run(
        command("generate", "billing:Bill", "-n", "3"),
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "OPENAI_API_KEY is not set" in done.stderr


def test_help_lists_every_flag_the_code_reads(project: Path) -> None:
    from pytest_synthdata.cli import build_parser
    from pytest_synthdata.settings import SETTING_NAMES

    done = subprocess.run(
        command("generate", "--help"), cwd=project, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    for name in (*SETTING_NAMES, "cassette", "record_mode", "cache_dir", "no_cache"):
        assert f"--{name.replace('_', '-')}" in done.stdout
    for word in ("--dry-run", "--price-in", "--price-out", ".jsonl", ".csv", "address.city"):
        assert word in done.stdout
    assert "SYNTHDATA_CONCURRENCY" in done.stdout and ".synthdata-cache" in done.stdout
    parser = build_parser()
    assert parser.prog == "synthdata"


# --------------------------------------------------------------------------- dry run


def test_dry_run_sends_nothing_and_estimates_what_the_run_uses(llm: FakeLLM, project: Path) -> None:
    args = ["generate", "billing:Bill", "-n", "60", "--concurrency", "2", "--no-cache"]
    dry = synthdata(llm, project, *args, "--dry-run", "--price-in", "0.15", "--price-out", "0.6")
    assert dry.code == 0, dry
    assert llm.request_count == 0
    assert dry.out.startswith("dry run: nothing was sent\n")
    assert "planned requests: 3 (batches of 20, 2 wave(s), at most 2 in flight)" in dry.out
    found = re.search(r"estimated tokens: (\d+) prompt \+ (\d+) completion", dry.out)
    assert found, dry.out
    prompt, completion = int(found.group(1)), int(found.group(2))
    cost = re.search(r"= \$([\d.]+) \(at \$0.15 / \$0.6 per million tokens\)", dry.out)
    assert cost and float(cost.group(1)) == pytest.approx(
        (prompt * 0.15 + completion * 0.6) / 1e6, abs=1e-4
    )
    real = synthdata(llm, project, *args)
    assert real.code == 0, real
    assert llm.request_count == 3
    assert 0.5 <= prompt / llm.prompt_tokens <= 1.5
    assert 0.5 <= completion / llm.completion_tokens <= 1.5


# --------------------------------------------------------------------------- resume


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


RESUMED = ["generate", "billing:Person", "-n", "50", "--batch-size", "10", "--concurrency", "1"]


def start(llm: FakeLLM, project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(*args),
        cwd=project,
        env=environment(llm),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("how", ["kill -9", "Ctrl-C"])
def test_an_interrupted_run_started_again_pays_only_for_the_rest(
    llm: FakeLLM, project: Path, how: str
) -> None:
    llm.latency = Latency(delay=0.3)
    process = start(llm, project, *RESUMED, "-o", "people.jsonl")
    wait_for(lambda: llm.stats()["answered"] >= 3, "three answers")
    if how == "kill -9":
        process.kill()
    else:
        process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    first = llm.request_count
    if how == "Ctrl-C":
        assert process.returncode == 130, err
        assert re.search(r"interrupted: \d0 of 50 records \(\d request\(s\) sent", err), err
        assert "kept in .synthdata-cache; run the same command again" in err
        assert "Traceback" not in err
    assert not (project / "people.jsonl").exists()

    llm.latency = Latency()
    again = synthdata(llm, project, *RESUMED, "-o", "people.jsonl")
    assert again.code == 0, again
    resumed = llm.request_count - first
    assert resumed <= 5 - 2  # the answers received before the interruption were kept
    assert first + resumed <= 5 + 1  # at most the one in flight was paid twice
    assert f"({resumed} sent, {5 - resumed} replayed from the cassette or the cache)" in again.err

    whole = synthdata(llm, project, *RESUMED, "--no-cache")
    assert records((project / "people.jsonl").read_text()) == records(whole.out)


def test_a_finished_dataset_is_served_whole_from_the_cache(llm: FakeLLM, project: Path) -> None:
    first = synthdata(llm, project, "generate", "billing:Person", "-n", "30")
    count = llm.request_count
    again = synthdata(llm, project, "generate", "billing:Person", "-n", "30", "-o", "p.json")
    assert again.code == 0, again
    assert llm.request_count == count
    assert json.loads((project / "p.json").read_text()) == records(first.out)
    assert "0 requests (the finished dataset was in the cache)" in again.err


def test_cache_dir_and_no_cache(llm: FakeLLM, project: Path) -> None:
    synthdata(llm, project, "generate", "billing:Person", "-n", "3", "--cache-dir", "here")
    assert (project / "here").is_dir() and not (project / ".synthdata-cache").exists()
    synthdata(llm, project, "generate", "billing:Person", "-n", "3", SYNTHDATA_NO_CACHE="1")
    assert not (project / ".synthdata-cache").exists()
    assert llm.request_count == 2
    # a record mode set for the plugin's cassettes does not turn the command's cache off
    again = synthdata(
        llm, project, "generate", "billing:Person", "-n", "3", "--cache-dir", "here",
        SYNTHDATA_RECORD_MODE="rewrite",
    )  # fmt: skip
    assert again.code == 0, again
    assert llm.request_count == 2


# --------------------------------------------------------------------------- cassettes


def test_a_cassette_records_and_then_replays_without_a_request(llm: FakeLLM, project: Path) -> None:
    args = ["generate", "billing:Bill", "-n", "8", "--cassette", "bills.synth.yaml"]
    recorded = synthdata(llm, project, *args, "--no-cache")
    assert recorded.code == 0, recorded
    assert (project / "bills.synth.yaml").exists()
    count = llm.request_count
    replayed = synthdata(llm, project, *args, "--record-mode", "none", "--no-cache")
    assert replayed.code == 0, replayed
    assert llm.request_count == count
    assert records(replayed.out) == records(recorded.out)
    assert "(0 sent, 1 replayed from the cassette or the cache)" in replayed.err
    for path in project.rglob("*"):
        if path.is_file():
            assert FAKE_KEY not in path.read_text(errors="replace"), path
    assert FAKE_KEY not in recorded.err + replayed.err + recorded.out


def test_a_missing_recording_in_record_mode_none_fails_with_the_fix(
    llm: FakeLLM, project: Path
) -> None:
    run = synthdata(
        llm, project, "generate", "billing:Bill", "-n", "3", "--cassette", "new.synth.yaml",
        "--record-mode", "none", "--no-cache",
    )  # fmt: skip
    assert run.code == 1, run
    assert "cassette new.synth.yaml does not exist" in run.err
    assert "--cassette 'new.synth.yaml' --record-mode rewrite" in run.err  # the command's flags
    assert llm.request_count == 0


# --------------------------------------------------------------------------- rate limits


def test_under_a_rate_limit_every_record_arrives_and_the_retries_are_counted(
    llm: FakeLLM, project: Path
) -> None:
    llm.set_rate_limit(requests=3, tokens=100_000, window=1.0)
    run = synthdata(
        llm, project, "generate", "billing:Person", "-n", "80", "--batch-size", "10",
        "--concurrency", "8", "--no-cache",
    )  # fmt: skip
    assert run.code == 0, run
    assert len(records(run.out)) == 80
    throttled = llm.stats()["throttled"]
    assert throttled >= 5  # eight at once, three fit
    assert f"retries: 0 re-asks of invalid answers, {throttled} after 429/5xx/timeouts" in (run.err)
    assert "retried" in run.err  # the per-answer lines say so too


# --------------------------------------------------------------------------- texts


def test_text_writes_a_text_per_entry_that_mentions_its_values(llm: FakeLLM, project: Path) -> None:
    (project / "fields.jsonl").write_text(
        '{"actor": "Tom Hanks", "movie": "Big"}\n["blue", "yellow"]\n'
    )
    run = synthdata(
        llm, project, "text", "fields.jsonl", "--preferences", '{"style": "tweet"}',
        "-o", "texts.csv",
    )  # fmt: skip
    assert run.code == 0, run
    rows = list(csv.DictReader(io.StringIO((project / "texts.csv").read_text())))
    assert [row["fields.actor"] for row in rows] == ["Tom Hanks", ""]
    assert "Tom Hanks" in rows[0]["text"] and "yellow" in rows[1]["text"]
    assert rows[0]["preferences.style"] == "tweet"
    assert "synthdata: 2 texts -> texts.csv" in run.err


# --------------------------------------------------------------------------- terminal


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_terminal_gets_a_progress_bar(llm: FakeLLM, project: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        done = subprocess.run(
            command(*RESUMED, "--no-cache"),
            cwd=project,
            env=environment(llm),
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=60,
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0
    text = shown.decode(errors="replace")
    assert "\r" in text and "%|" in text  # a bar redrawn in place
    assert "Person 10/50 records" not in text  # not the plain lines
    assert "synthdata: 50 records -> standard output" in text
