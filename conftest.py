"""Shared fixtures: a loopback OpenAI-compatible server (the ``fakellm`` package in tests/)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import pkgutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import openai


def _load_all(package: str) -> None:
    """Import ``package`` and every submodule it can import: optional backends and helpers
    may not (``ImportError``, or the openai SDK's own error for a missing extra)."""
    root = importlib.import_module(package)
    for module in pkgutil.walk_packages(root.__path__, package + ".", onerror=lambda _: None):
        if not module.name.endswith(".__main__"):
            with contextlib.suppress(Exception):
                importlib.import_module(module.name)


# pytester's in-process runs unload the modules first imported inside them, and a later
# import makes a second copy: PyYAML's C extension cannot be imported twice, the openai SDK's
# response classes and the HTTP stack's exception classes must stay the ones its client
# checks against, and this package's context variables, caches and classes must be the same
# objects in every test whatever ran before. So load them all here, once, for the session.
for _package in ("yaml", "openai", "vcr", "diskcache", "httpx2", "httpcore2", "h11", "anyio"):
    _load_all(_package)
_load_all("pytest_synthdata")

_TESTS_DIR = str(Path(__file__).resolve().parent / "tests")
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from fakellm import FakeLLM  # noqa: E402

FAKE_API_KEY = "sk-test-fake-key-0123456789"
CLIENT_API_KEY = "sk-test"


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLM]:
    """One FakeLLM server for the whole session."""
    server = FakeLLM().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_endpoints() -> Iterator[None]:
    """No structured mode or seed support remembered for an endpoint, before or after."""
    from pytest_synthdata.llm import forget_endpoints

    forget_endpoints()
    yield
    forget_endpoints()


@pytest.fixture
def llm(fake_llm: FakeLLM) -> Iterator[FakeLLM]:
    """The session server, reset: no faults, zeroed counters, default switches, and no rate
    limit or unresponsiveness remembered for it."""
    from pytest_synthdata.llm.pacing import forget_limits

    fake_llm.reset()
    forget_limits()
    yield fake_llm


@pytest.fixture
def llm_env(monkeypatch: pytest.MonkeyPatch, llm: FakeLLM) -> FakeLLM:
    """The reset server, with OPENAI_BASE_URL and OPENAI_API_KEY pointing at it."""
    monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_API_KEY)
    return llm


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SYNTHDATA_* or OPENAI_BASE_URL leaks in from the developer's shell."""
    from pytest_synthdata.settings import ENV_PREFIX

    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def make_client() -> Iterator[Callable[..., Any]]:
    """Makes openai clients for a fake server: ``make_client(llm)`` is an ``openai.OpenAI``
    for it with the key ``sk-test`` and no retries of the SDK's own (the package retries on
    its own, and the server's tests count every request); ``asynchronous=True`` makes an
    ``openai.AsyncOpenAI``, other keyword arguments go to the client (``max_retries=1``,
    ``timeout=...``). Every client it made is closed after the test."""
    import openai

    made: list[openai.OpenAI | openai.AsyncOpenAI] = []

    def make(server: FakeLLM, *, asynchronous: bool = False, **options: Any) -> Any:
        options = {"api_key": CLIENT_API_KEY, "max_retries": 0, **options}
        kind = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        made.append(kind(base_url=server.url, **options))
        return made[-1]

    yield make
    for client in made:
        if isinstance(client, openai.AsyncOpenAI):
            asyncio.run(client.close())
        else:
            client.close()


@pytest.fixture
def client(llm: FakeLLM, make_client: Callable[..., Any]) -> openai.OpenAI:
    """An ``openai.OpenAI`` for the reset session server (see ``make_client``)."""
    return make_client(llm)


@pytest.fixture(autouse=True)
def _no_leaked_recording_patch() -> Iterator[None]:
    """A cassette must never stay patched into httpx2 after the code that opened it."""
    import httpx2

    before = (httpx2.AsyncHTTPTransport.handle_async_request, httpx2.HTTPTransport.handle_request)
    yield
    after = (httpx2.AsyncHTTPTransport.handle_async_request, httpx2.HTTPTransport.handle_request)
    assert after == before, "a vcrpy patch outlived its cassette"


@pytest.fixture(autouse=True)
def _fixed_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytester runs truncate their short summary to the terminal width; pin it so the
    output the tests read is the same in a terminal, a pipe and CI."""
    monkeypatch.setenv("COLUMNS", "120")
