"""``synthdata generate --batch-file`` and ``synthdata collect``: a request file answered by
the loopback runner in vLLM's output format, as ``vllm run-batch`` would, then collected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from command import records, synthdata
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

SPEC = ("claims:Claim", "-n", "60", "--seed", "11", "--batch-size", "5", "--model", "m-1")
TESTS = Path(__file__).parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "claims.py").write_text(MODELS)
    return tmp_path


def runner(project: Path, source: str, target: str, *extra: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fakellm.runner",
            "-i",
            str(project / source),
            "-o",
            str(project / target),
            *extra,
        ],
        cwd=TESTS,
        check=True,
        capture_output=True,
    )


def chat_requests(llm: FakeLLM) -> int:
    return sum(1 for r in llm.requests if r.path.endswith("/chat/completions"))


def test_batch_file_runner_and_collect_give_exactly_n(llm: FakeLLM, project: Path) -> None:
    wrote = synthdata(llm, project, "generate", *SPEC, "--batch-file", "requests.jsonl")
    assert wrote.code == 0, wrote
    assert "nothing sent" in wrote.err and "synthdata collect" in wrote.err
    lines = (project / "requests.jsonl").read_text().splitlines()
    assert len(lines) == 12
    first = json.loads(lines[0])
    assert first["method"] == "POST" and first["url"] == "/v1/chat/completions"
    assert first["body"]["model"] == "m-1"
    assert chat_requests(llm) == 0 and llm.batches.uploads == 0

    # The same command writes the very same file (seeded prompts), whatever the endpoint.
    again = synthdata(
        llm,
        project,
        "generate",
        *SPEC,
        "--batch-file",
        "again.jsonl",
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
    )
    assert again.code == 0, again
    assert (project / "again.jsonl").read_bytes() == (project / "requests.jsonl").read_bytes()

    runner(project, "requests.jsonl", "results.jsonl")
    done = synthdata(llm, project, "collect", "results.jsonl", *SPEC, "-o", "claims.jsonl")
    assert done.code == 0, done
    rows = records((project / "claims.jsonl").read_text())
    assert len(rows) == 60
    assert len({json.dumps(r, sort_keys=True) for r in rows}) == 60
    assert chat_requests(llm) == 0

    # A later ordinary run of the same spec replays the collected answers: no request.
    sync = synthdata(llm, project, "generate", *SPEC, "-o", "sync.jsonl")
    assert sync.code == 0, sync
    assert records((project / "sync.jsonl").read_text()) == rows
    assert chat_requests(llm) == 0


def test_collect_writes_the_followup_file_for_failed_lines(llm: FakeLLM, project: Path) -> None:
    assert synthdata(llm, project, "generate", *SPEC, "--batch-file", "requests.jsonl").code == 0
    runner(project, "requests.jsonl", "results.jsonl", "--fail-fraction", "0.3")
    failed = sum(
        1
        for line in (project / "results.jsonl").read_text().splitlines()
        if json.loads(line)["error"]
    )
    assert failed > 0
    first = synthdata(llm, project, "collect", "results.jsonl", *SPEC, "-o", "claims.jsonl")
    assert first.code == 0, first
    followup = project / "results.followup-w2.jsonl"
    assert followup.exists(), first
    assert f"{failed} not" in first.err
    assert "synthdata collect" in first.err
    assert not (project / "claims.jsonl").exists()
    assert len(followup.read_text().splitlines()) == failed

    runner(project, "results.followup-w2.jsonl", "results2.jsonl")
    done = synthdata(llm, project, "collect", "results2.jsonl", *SPEC, "-o", "claims.jsonl")
    assert done.code == 0, done
    assert len(records((project / "claims.jsonl").read_text())) == 60
    assert chat_requests(llm) == 0


def test_a_malformed_results_file_is_a_clear_error(llm: FakeLLM, project: Path) -> None:
    assert synthdata(llm, project, "generate", *SPEC, "--batch-file", "requests.jsonl").code == 0
    (project / "results.jsonl").write_text('{"custom_id": "x", "response": \n')
    done = synthdata(llm, project, "collect", "results.jsonl", *SPEC)
    assert done.code in (1, 2), done
    assert "results.jsonl:1" in done.err and "not a JSON line" in done.err
    missing = synthdata(llm, project, "collect", "nothere.jsonl", *SPEC)
    assert missing.code == 2 and "nothere.jsonl" in missing.err
    foreign = project / "foreign.jsonl"
    foreign.write_text(json.dumps({"custom_id": "other-w1-b0", "error": "x", "response": None}))
    other = synthdata(llm, project, "collect", "foreign.jsonl", *SPEC)
    assert other.code == 2 and "none of the 1 answers" in other.err
