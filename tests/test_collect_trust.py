"""Request files and ``synthdata collect`` as a user without a key, a runner that fails
lines, and a hostile results file meet them: subprocess runs of the command."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from command import Run, command, records, synthdata
from fakellm import FakeLLM
from test_command_collect import MODELS, SPEC, chat_requests, runner


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "claims.py").write_text(MODELS)
    return tmp_path


def keyless(cwd: Path, *args: str) -> Run:
    """The command with no ``OPENAI_API_KEY`` and no ``OPENAI_BASE_URL``: OpenAI's endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNTHDATA_", "OPENAI_"))}
    done = subprocess.run(
        command(*args), cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    return Run(done)


def test_a_request_file_is_written_and_collected_without_a_key(project: Path) -> None:
    wrote = keyless(project, "generate", *SPEC, "--batch-file", "requests.jsonl")
    assert wrote.code == 0, wrote
    lines = (project / "requests.jsonl").read_text().splitlines()
    assert len(lines) == 12 and "nothing sent" in wrote.err

    runner(project, "requests.jsonl", "results.jsonl")
    done = keyless(project, "collect", "results.jsonl", *SPEC, "-o", "claims.jsonl")
    assert done.code == 0, done
    assert len(records((project / "claims.jsonl").read_text())) == 60

    # Submitting to OpenAI's Batch API does need the key: refused before anything is sent.
    submit = keyless(project, "generate", *SPEC, "--seed", "12", "--batch")
    assert submit.code == 2, submit
    assert "OPENAI_API_KEY" in submit.err and "Traceback" not in submit.err


def test_a_local_batch_api_needs_no_key_and_openai_s_does(llm: FakeLLM, project: Path) -> None:
    done = synthdata(llm, project, "generate", *SPEC, "--batch", "-o", "c.jsonl", OPENAI_API_KEY="")
    assert done.code == 0, done
    assert len(records((project / "c.jsonl").read_text())) == 60

    detached = synthdata(llm, project, "generate", *SPEC, "--seed", "3", "--batch", "--detach")
    assert detached.code == 0, detached
    llm.batches.configure(processing_time=3600)  # still running when it is listed
    listed = keyless(project, "batches")
    assert listed.code == 2, listed
    assert "OPENAI_API_KEY is not set" in listed.err and "Traceback" not in listed.err


def _printed(err: str, after: str) -> list[str]:
    """The command the output prints after ``after``, as arguments."""
    line = next(line for line in err.splitlines() if after in line)
    return shlex.split(line.split(after, 1)[1].split(";")[0])


def test_the_printed_commands_answer_and_collect_the_followup(llm: FakeLLM, project: Path) -> None:
    assert synthdata(llm, project, "generate", *SPEC, "--batch-file", "requests.jsonl").code == 0
    runner(project, "requests.jsonl", "results.jsonl", "--fail-fraction", "0.3")
    failed = [json.loads(line) for line in (project / "results.jsonl").read_text().splitlines()]
    failed = [line for line in failed if line["error"]]
    assert failed

    first = synthdata(llm, project, "collect", "results.jsonl", *SPEC, "-o", "claims.jsonl")
    assert first.code == 0, first
    error = failed[0]["error"]
    reason = str(error["message"] if isinstance(error, dict) else error)
    assert f"{len(failed)} not (" in first.err, first  # and why
    assert reason and reason in first.err, first

    run = _printed(first.err, "e.g.: ")
    assert run[:2] == ["vllm", "run-batch"]
    runner(project, run[run.index("-i") + 1], run[run.index("-o") + 1])
    again = _printed(first.err, "then collect the answers with: ")
    assert again[:2] == ["synthdata", "collect"] and "results.jsonl" not in again, again
    done = synthdata(llm, project, *again[1:])
    assert done.code == 0, done
    assert len(records((project / "claims.jsonl").read_text())) == 60
    assert chat_requests(llm) == 0


def test_a_hostile_results_file_gets_a_clear_error_and_is_shown_not_acted_on(
    llm: FakeLLM, project: Path
) -> None:
    assert synthdata(llm, project, "generate", *SPEC, "--batch-file", "requests.jsonl").code == 0
    ids = [json.loads(line)["custom_id"] for line in (project / "requests.jsonl").open()]

    deep = project / "deep.jsonl"
    deep.write_text('{"custom_id": "x", "response": ' + "[" * 50_000 + "]" * 50_000 + "}\n")
    nested = synthdata(llm, project, "collect", "deep.jsonl", *SPEC)
    assert nested.code == 2, nested
    assert "deep.jsonl:1" in nested.err and "nested more than" in nested.err
    assert "Traceback" not in nested.err

    escape = "\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\rboom"
    hostile = project / "hostile.jsonl"
    hostile.write_text(
        "".join(
            json.dumps({"custom_id": cid, "error": escape, "response": None}) + "\n" for cid in ids
        )
    )
    shown = synthdata(llm, project, "collect", "hostile.jsonl", *SPEC)
    assert shown.code == 0, shown
    assert f"{len(ids)} x \\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b[2J\\rboom" in shown.err, shown
    assert "\x1b" not in shown.err and "\r" not in shown.err
    assert (project / "hostile.followup-w2.jsonl").exists()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
