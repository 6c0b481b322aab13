"""``synthdata generate --batch`` as a user runs it: subprocesses against the loopback batch
server (``/v1/files``, ``/v1/batches``), counting what the server was sent."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from command import Run, records, start, synthdata
from fakellm import FakeLLM

MODELS = '''
from pydantic import BaseModel


class Claim(BaseModel):
    """A medical claim."""

    claim_id: int
    patient_name: str
    amount: float
    diagnosis: str
'''

BATCH = ("--batch", "--poll-interval", "0.05", "--batch-size", "5")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "claims.py").write_text(MODELS)
    return tmp_path


def generate(llm: FakeLLM, project: Path, *args: str, n: int = 40) -> Run:
    return synthdata(llm, project, "generate", "claims:Claim", "-n", str(n), "--seed", "7", *args)


def chat_requests(llm: FakeLLM) -> int:
    return sum(1 for r in llm.requests if r.path.endswith("/chat/completions"))


def test_batch_gives_exactly_n_through_the_batch_api(llm: FakeLLM, project: Path) -> None:
    done = generate(
        llm, project, *BATCH, "-o", "claims.jsonl", "--price-in", "1", "--price-out", "2"
    )
    assert done.code == 0, done
    rows = records((project / "claims.jsonl").read_text())
    assert len(rows) == 40
    assert len({json.dumps(r, sort_keys=True) for r in rows}) == 40
    assert llm.batches.uploads == 1 and llm.batches.creations == 1
    assert chat_requests(llm) == 0  # every request went through the batch
    assert "submitted batch" in done.err and "completed" in done.err
    assert "$" in done.err.splitlines()[-1]  # the final line prices at batch prices
    # ... and says the batch answered the requests: they were paid for, not replayed
    assert "8 requests (8 answered by batches, 0 sent)" in done.err.splitlines()[-1]

    # A later ordinary run of the same spec replays from the cache: no request at all.
    again = generate(llm, project, "--batch-size", "5", "-o", "again.jsonl")
    assert again.code == 0, again
    assert records((project / "again.jsonl").read_text()) == rows
    assert chat_requests(llm) == 0
    assert llm.batches.uploads == 1


def test_failed_lines_are_asked_again_in_at_most_two_followups(llm: FakeLLM, project: Path) -> None:
    llm.batches.fail_fraction = 0.1
    llm.batches.fail_seed = 3
    done = generate(llm, project, *BATCH, n=200)
    assert done.code == 0, done
    assert len(records(done.out)) == 200
    assert 2 <= llm.batches.creations <= 3, done  # the first batch and at most two follow-ups
    assert "not" in done.err


def test_followups_sync_sends_what_is_missing_as_ordinary_requests(
    llm: FakeLLM, project: Path
) -> None:
    llm.batches.fail_fraction = 0.2
    done = generate(llm, project, *BATCH, "--batch-followups", "sync", n=100)
    assert done.code == 0, done
    assert len(records(done.out)) == 100
    assert llm.batches.creations == 1
    assert chat_requests(llm) >= 1


def test_kill_during_polling_and_rerun_submit_nothing_twice(llm: FakeLLM, project: Path) -> None:
    llm.batches.lines_per_poll = 0  # held in progress until released
    process = start(
        llm,
        project,
        "generate",
        "claims:Claim",
        "-n",
        "40",
        "--seed",
        "7",
        *BATCH,
        "-o",
        "claims.jsonl",
    )
    deadline = time.monotonic() + 60
    while llm.batches.creations < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a few polls
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert llm.batches.uploads == 1 and llm.batches.creations == 1
    llm.batches.lines_per_poll = None
    done = generate(llm, project, *BATCH, "-o", "claims.jsonl")
    assert done.code == 0, done
    assert "picked up batch" in done.err
    assert len(records((project / "claims.jsonl").read_text())) == 40
    assert llm.batches.uploads == 1 and llm.batches.creations == 1


def test_detach_then_the_same_command_collects(llm: FakeLLM, project: Path) -> None:
    llm.batches.lines_per_poll = 0
    detached = generate(llm, project, *BATCH, "--detach", "-o", "claims.jsonl")
    assert detached.code == 0, detached
    assert "submitted batch(es) batch_" in detached.err
    assert "--detach" not in detached.err.split("collect them with:")[1].splitlines()[0]
    assert not (project / "claims.jsonl").exists()

    listed = synthdata(llm, project, "batches")
    assert listed.code == 0, listed
    assert "in_progress" in listed.out or "validating" in listed.out
    assert "0/8 done" in listed.out

    llm.batches.lines_per_poll = None
    done = generate(llm, project, *BATCH, "-o", "claims.jsonl")
    assert done.code == 0, done
    assert len(records((project / "claims.jsonl").read_text())) == 40
    assert llm.batches.uploads == 1 and llm.batches.creations == 1
    assert "completed" in synthdata(llm, project, "batches").out


def test_batches_cancel(llm: FakeLLM, project: Path) -> None:
    llm.batches.lines_per_poll = 0
    assert generate(llm, project, *BATCH, "--detach").code == 0
    cancelled = synthdata(llm, project, "batches", "--cancel")
    assert cancelled.code == 0, cancelled
    assert llm.batches.cancellations == 1
    assert "cancel" in cancelled.out
    empty = synthdata(llm, project, "batches", "--cache-dir", "elsewhere")
    assert "no batches are known" in empty.out


def test_an_endpoint_without_a_batch_api_says_so(llm: FakeLLM, project: Path) -> None:
    done = synthdata(
        llm,
        project,
        "generate",
        "claims:Claim",
        "-n",
        "10",
        *BATCH,
        OPENAI_BASE_URL=llm.url.rstrip("/") + "/nobatch",
    )
    assert done.code == 1, done
    assert "404" in done.err and "--batch-file" in done.err
    assert "sk-test" not in done.err


def test_batch_flags_that_contradict_fail_before_anything_is_sent(
    llm: FakeLLM, project: Path
) -> None:
    both = generate(llm, project, *BATCH, "--batch-file", "r.jsonl")
    assert both.code == 2 and "give one of them" in both.err
    nocache = generate(llm, project, *BATCH, "--no-cache")
    assert nocache.code == 2 and "--no-cache" in nocache.err
    detach = generate(llm, project, "--detach")
    assert detach.code == 2 and "--batch" in detach.err
    discount = generate(llm, project, *BATCH, "--batch-discount", "1.5")
    assert discount.code == 2 and "--batch-discount" in discount.err
    assert llm.batches.uploads == 0 and chat_requests(llm) == 0


def test_dry_run_prices_at_batch_prices(llm: FakeLLM, project: Path) -> None:
    sync = generate(llm, project, "--dry-run", "--price-in", "1", "--price-out", "1")
    batch = generate(
        llm,
        project,
        "--dry-run",
        "--batch",
        "--price-in",
        "1",
        "--price-out",
        "1",
        "--batch-discount",
        "0.4",
    )
    assert sync.code == 0 and batch.code == 0, batch

    def cost(out: str) -> float:
        line = next(x for x in out.splitlines() if x.startswith("estimated cost"))
        return float(line.split("= $")[1].split()[0])

    assert cost(batch.out) == pytest.approx(0.4 * cost(sync.out), rel=0.02)


def test_help_explains_the_batch_flags_and_commands() -> None:
    out = subprocess.run(
        [*__import__("command").command("generate", "--help")], capture_output=True, text=True
    ).stdout
    for flag in ("--batch ", "--detach", "--batch-followups", "--batch-file", "--batch-discount"):
        assert flag in out
    top = subprocess.run(
        [*__import__("command").command("--help")], capture_output=True, text=True
    ).stdout
    assert "collect" in top and "batches" in top


def test_an_expired_batch_keeps_its_answers_and_the_rest_is_asked_again(
    llm: FakeLLM, project: Path
) -> None:
    llm.batches.lines_per_poll = 1
    assert generate(llm, project, *BATCH, "--detach").code == 0
    for _ in range(2):  # each status read answers one more line
        assert synthdata(llm, project, "batches").code == 0
    llm.batches.expire()
    llm.batches.lines_per_poll = None
    done = generate(llm, project, *BATCH, "-o", "claims.jsonl")
    assert done.code == 0, done
    found = re.search(r"expired: (\d+) answered, (\d+) not", done.err)
    assert found is not None, done
    assert int(found[1]) >= 2 and int(found[1]) + int(found[2]) == 8
    assert len(records((project / "claims.jsonl").read_text())) == 40
    assert llm.batches.uploads == 2 and llm.batches.creations == 2


def test_a_cassette_records_what_the_batches_answered(llm: FakeLLM, project: Path) -> None:
    done = generate(llm, project, *BATCH, "--cassette", "claims.synth.yaml", "-o", "a.jsonl")
    assert done.code == 0, done
    assert (project / "claims.synth.yaml").exists()
    replay = generate(
        llm,
        project,
        "--batch-size",
        "5",
        "--cassette",
        "claims.synth.yaml",
        "--no-cache",
        "-o",
        "b.jsonl",
    )
    assert replay.code == 0, replay
    assert (project / "b.jsonl").read_text() == (project / "a.jsonl").read_text()
    assert chat_requests(llm) == 0 and llm.batches.creations == 1


def test_ctrl_c_while_polling_stops_and_the_rerun_picks_up(llm: FakeLLM, project: Path) -> None:
    llm.batches.lines_per_poll = 0
    args = ("generate", "claims:Claim", "-n", "40", "--seed", "7", *BATCH, "-o", "claims.jsonl")
    process = start(llm, project, *args)
    deadline = time.monotonic() + 60
    while llm.batches.creations < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)  # a run waiting for its batch still stops
    assert process.returncode == 130, err
    assert "interrupted" in err and "run the same command again" in err
    llm.batches.lines_per_poll = None
    done = generate(llm, project, *BATCH, "-o", "claims.jsonl")
    assert done.code == 0, done
    assert "picked up batch" in done.err
    assert llm.batches.uploads == 1 and llm.batches.creations == 1
