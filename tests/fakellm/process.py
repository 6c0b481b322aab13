"""The fake server in a process of its own, behaving like a hosted model.

Run it alone (it prints its ``base_url`` on the first line of its output, then serves until
interrupted)::

    python -m tests.fakellm --port 0 --delay 0.3 --per-token 0.004 --broken 0.15 --errors 0.1
    python -m tests.fakellm --limit-requests 60 --limit-tokens 40000 --limit-window 6

from the repository's root (or ``python -m fakellm`` with ``tests/`` on ``PYTHONPATH``), or
from Python with :class:`FakeLLMProcess`, which starts
it and talks to it over HTTP: a child process has a CPU of its own, so a busy client does not
slow the answers down. It serves from asyncio, so a thousand clients at once are all in
flight together. ``GET /_stats`` returns :meth:`FakeLLM.stats
<fakellm.server.FakeLLM.stats>`; ``POST /_config`` with a JSON object changes settings
(:meth:`FakeLLM.configure <fakellm.server.FakeLLM.configure>`) and resets the counters.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

from .server import FakeLLM

__all__ = ["FakeLLMProcess", "main"]

JSONDict = dict[str, Any]

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


class FakeLLMProcess:
    """``python -m fakellm`` in a child process, controlled over HTTP.

    Keyword arguments are settings (:data:`~fakellm.server.CONFIG_KEYS`), passed as
    command-line options. The child stops with :meth:`stop`, and by itself when this process
    goes away (it watches its standard input).
    """

    def __init__(self, *, python: str = sys.executable, **settings: Any) -> None:
        args = [python, "-m", "fakellm", "--port", "0", "--stop-on-eof"]
        for key, value in settings.items():
            option = f"--{key.replace('_', '-')}"
            if isinstance(value, bool):
                args += [option] if value else []
            else:
                args += [option, str(value)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the fake server did not start: {line!r}")
        self.url = line
        self.origin = line.removesuffix("/v1")

    def _call(self, path: str, data: JSONDict | None = None) -> JSONDict:
        request = urllib.request.Request(
            self.origin + path,
            data=json.dumps(data).encode() if data is not None else None,
            method="POST" if data is not None else "GET",
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            result: JSONDict = json.loads(response.read())
            return result

    def configure(self, **changes: Any) -> JSONDict:
        """Change settings (the others keep their values) and reset the counters."""
        return self._call("/_config", changes)

    def stats(self) -> JSONDict:
        """The counters since the last :meth:`configure`."""
        return self._call("/_stats")

    def stop(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> FakeLLMProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakellm",
        description="A fake OpenAI-compatible chat-completions server that behaves like a "
        "hosted model; prints its base URL, then serves until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (default): any free port")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--per-token", type=float, default=0.0, help="seconds per completion token")
    parser.add_argument(
        "--error-delay", type=float, default=0.0, help="seconds before an HTTP 429/500"
    )
    parser.add_argument(
        "--broken", type=float, default=0.0, help="share of malformed or truncated answers"
    )
    parser.add_argument("--errors", type=float, default=0.0, help="share of HTTP 429/500")
    parser.add_argument("--seed", type=int, default=0, help="seed of the values and faults")
    parser.add_argument("--retry-after-ms", type=float, default=None, help="sent with HTTP 429/500")
    parser.add_argument(
        "--round-tokens-up",
        action="store_true",
        help="estimate tokens as characters / 4 rounded up (default: down)",
    )
    parser.add_argument(
        "--limit-requests", type=int, default=0, help="rate limit: requests per window (0: none)"
    )
    parser.add_argument(
        "--limit-tokens",
        type=int,
        default=0,
        help="rate limit: tokens per window, prompt plus max_tokens reserved (0: none)",
    )
    parser.add_argument(
        "--limit-window", type=float, default=60.0, help="rate limit window in seconds (60)"
    )
    parser.add_argument(
        "--crash-on-pattern",
        default=None,
        help="exit at once on a request whose schema sends a pattern holding this text",
    )
    parser.add_argument(
        "--stop-on-eof", action="store_true", help="stop when standard input closes"
    )
    args = parser.parse_args(argv)

    server = FakeLLM(args.host, args.port, control=True)
    server.configure(
        delay=args.delay,
        per_token=args.per_token,
        error_delay=args.error_delay,
        broken=args.broken,
        errors=args.errors,
        seed=args.seed,
        retry_after_ms=args.retry_after_ms,
        round_tokens_up=args.round_tokens_up,
        limit_requests=args.limit_requests,
        limit_tokens=args.limit_tokens,
        limit_window=args.limit_window,
    )
    server.crash_on_pattern = args.crash_on_pattern
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(server, stop_on_eof=args.stop_on_eof))


async def _serve(server: FakeLLM, *, stop_on_eof: bool) -> None:
    """Serve until SIGTERM (or, with ``stop_on_eof``, until standard input closes)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    if stop_on_eof:

        def watch() -> None:
            with contextlib.suppress(OSError, ValueError):
                sys.stdin.read()
            with contextlib.suppress(RuntimeError):  # the loop is closed already
                loop.call_soon_threadsafe(task.cancel)

        threading.Thread(target=watch, name="stdin-watch", daemon=True).start()
    with contextlib.suppress(asyncio.CancelledError):
        await server.serve(lambda url: print(url, flush=True))
