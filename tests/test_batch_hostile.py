"""``synthdata generate --batch`` against a Batch API that is broken or hostile: a loopback
server whose files and batches endpoints answer with what is not a file or a batch object,
ids that are not strings, text holding terminal escape sequences, or an output file whose
line has no end. Each is a clear error (or a line shown escaped), never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from command import Run, command
from loopback import JsonHandler, Loopback, serving
from test_command_collect import MODELS, SPEC

ESCAPE = "\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\r"
"""Sets the clipboard, clears the screen, returns the cursor: if a terminal got it."""


class Hostile(Loopback):
    """The Batch API's routes, each answering as ``mode`` says (the rest as OpenAI would)."""

    def __init__(self, mode: str) -> None:
        super().__init__(Handler)
        self.mode = mode


class Handler(JsonHandler):
    server: Hostile

    def batch(self, status: str, **extra: Any) -> dict[str, Any]:
        found = {
            "id": "batch_1",
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": "file-1",
            "completion_window": "24h",
            "status": status,
            "created_at": 1,
            "request_counts": {"total": 12, "completed": 0, "failed": 0},
        }
        return {**found, **extra}

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        mode = self.server.mode
        if self.path.endswith("/files"):
            if mode == "upload-list":
                return self.send([])
            if mode == "upload-html":
                return self.send(b"<html>maintenance</html>", "text/html")
            return self.send(
                {"id": "file-1", "object": "file", "bytes": 1, "created_at": 1,
                 "filename": "x.jsonl", "purpose": "batch", "status": "processed"}
            )  # fmt: skip
        if self.path.endswith("/batches"):
            if mode == "create-int-id":
                return self.send({**self.batch("validating"), "id": 123})
            return self.send(self.batch("validating"))
        self.send_error(404)

    def do_GET(self) -> None:
        mode = self.server.mode
        if self.path.endswith("/batches/batch_1"):
            if mode == "retrieve-list":
                return self.send(["completed"])
            errors = {"data": [{"code": "bad" + ESCAPE, "message": "line" + ESCAPE, "line": 1}]}
            return self.send(self.batch("completed", output_file_id="file-out", errors=errors))
        if self.path.endswith("/files/file-out/content"):
            if mode == "endless-line":
                return self.send(b"x" * (17 * 2**20), "application/jsonl")
            return self.send(self.failed_lines(), "application/jsonl")
        if self.path.split("?")[0].endswith(("/batches", "/files")):
            return self.send({"object": "list", "data": [], "has_more": False})
        self.send_error(404)

    def failed_lines(self) -> bytes:
        """Every request of the uploaded file failing, with an error holding escapes."""
        lines = (Path(os.environ["HOSTILE_REQUESTS"])).read_text().splitlines()
        return "".join(
            json.dumps(
                {
                    "custom_id": json.loads(line)["custom_id"],
                    "error": "no" + ESCAPE,
                    "response": None,
                }
            )
            + "\n"
            for line in lines
        ).encode()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "claims.py").write_text(MODELS)
    return tmp_path


def batch_run(server: Hostile, project: Path, *extra: str) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNTHDATA_", "OPENAI_"))}
    env.update(OPENAI_BASE_URL=server.url, OPENAI_API_KEY="sk-hostile-0123456789")
    done = subprocess.run(
        command("generate", *SPEC, "--batch", "--poll-interval", "0.05", *extra),
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(done)


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("upload-list", "failed: the endpoint answered with 'list' data, not a file object"),
        ("upload-html", "failed: the endpoint answered with 'str' data, not a file object"),
        ("create-int-id", "the endpoint's batch object has no 'id' string"),
        ("retrieve-list", "reading batch batch_1 failed: the endpoint answered with 'list'"),
        ("endless-line", "output.jsonl:1: a line of more than 16 MiB"),
    ],
)
def test_what_is_not_a_batch_api_answer_is_a_clear_error(
    project: Path, mode: str, said: str
) -> None:
    with serving(Hostile(mode)) as server:
        run = batch_run(server, project)
    assert run.code in (1, 2), run
    assert said in run.err, run
    assert "Traceback" not in run.err
    assert mode == "endless-line" or "OPENAI_BASE_URL" in run.err  # what to check


def test_text_from_the_batch_api_is_shown_escaped(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrote = subprocess.run(
        command("generate", *SPEC, "--batch-file", "requests.jsonl"),
        cwd=project,
        env={**os.environ, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrote.returncode == 0, wrote.stderr
    monkeypatch.setenv("HOSTILE_REQUESTS", str(project / "requests.jsonl"))
    with serving(Hostile("escapes")) as server:
        run = batch_run(server, project)
    assert run.code == 1, run  # every line fails, wave after wave, until the budget is spent
    assert "12 not (12 x no\\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b[2J)" in run.err, run
    assert "line 1: bad\\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b[2J\\r" in run.err, run
    assert "\x1b" not in run.err and "\r" not in run.err and "\x07" not in run.err
