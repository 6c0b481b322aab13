"""Running the ``synthdata`` command as a user does: a subprocess against the loopback server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from fakellm import FakeLLM

FAKE_KEY = "sk-test-fake-key-0123456789"


class Run:
    """A finished ``synthdata`` process."""

    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        self.code = done.returncode
        self.out = done.stdout
        self.err = done.stderr

    def __repr__(self) -> str:
        return f"<exit {self.code}\nstdout:\n{self.out[-2000:]}\nstderr:\n{self.err[-3000:]}>"


def environment(llm: FakeLLM, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNTHDATA_", "OPENAI_"))}
    env.update(OPENAI_BASE_URL=llm.url, OPENAI_API_KEY=FAKE_KEY, PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest_synthdata", *args]


def synthdata(llm: FakeLLM, cwd: Path, *args: str, **env: str) -> Run:
    done = subprocess.run(
        command(*args),
        cwd=cwd,
        env=environment(llm, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(done)


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def start(llm: FakeLLM, cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(*args),
        cwd=cwd,
        env=environment(llm),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
