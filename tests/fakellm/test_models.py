"""The fake server started from a clone as documented answers ``GET /v1/models``.

The command is run from the repository's root with no ``PYTHONPATH``, as a user who has just
cloned the project types it, and the official openai SDK lists and looks up models.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]

#: how the README tells users to start the fake server as a rate-limited hosted API
DOCUMENTED = "python -m tests.fakellm --limit-requests 60 --limit-tokens 40000 --limit-window 6"


@pytest.fixture
def documented_server() -> Iterator[str]:
    """The documented command, run from the root of the clone; yields its base URL."""
    args = shlex.split(DOCUMENTED)
    args[0] = sys.executable
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = proc.stdout.readline().strip()  # printed once it listens
        if not line.startswith("http://"):
            proc.kill()
            pytest.fail(f"{DOCUMENTED!r} did not start: {line!r} {proc.stderr.read()!r}")
        yield line
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_the_sdk_lists_the_models_of_the_documented_server(documented_server: str) -> None:
    client = openai.OpenAI(base_url=documented_server, api_key="sk-test", max_retries=0)
    models = client.models.list()
    ids = [model.id for model in models]
    assert "gpt-4o-mini" in ids
    assert all(model.object == "model" and model.owned_by for model in models)
    one = client.models.retrieve("my-local-model")
    assert (one.id, one.object) == ("my-local-model", "model")
    client.close()


def test_models_answers_in_openai_wire_format(documented_server: str) -> None:
    with urllib.request.urlopen(documented_server + "/models", timeout=10) as response:
        assert response.status == 200
        assert response.headers["content-type"].startswith("application/json")
        listing = json.loads(response.read())
    assert listing["object"] == "list"
    assert listing["data"][0] == {
        "id": "gpt-4o-mini",
        "object": "model",
        "created": listing["data"][0]["created"],
        "owned_by": "fakellm",
    }
    assert isinstance(listing["data"][0]["created"], int)
    with urllib.request.urlopen(documented_server + "/models/org/model-7b", timeout=10) as answer:
        assert json.loads(answer.read())["id"] == "org/model-7b"


def test_the_documented_server_answers_a_chat_request(documented_server: str) -> None:
    client = openai.OpenAI(base_url=documented_server, api_key="sk-test", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=16
    )
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-ratelimit-limit-requests"] == "60"  # the documented limits apply
    client.close()
