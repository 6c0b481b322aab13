"""What a large run keeps in memory besides its records: the response cache's SQLite database
is read from its file (not mapped, a small page cache), and a request a batch answers lets go
of its traceback at once instead of waiting in reference cycles for the collector."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
from pathlib import Path

import diskcache
import pytest
from fakellm import FakeLLM
from models import EXAMPLES, MedicalBilling

from pytest_synthdata import agenerate
from pytest_synthdata.batching import RequestDeferred
from pytest_synthdata.storage.cache import ResponseCache, request_key
from pytest_synthdata.storage.transport import DEFERRAL

pytestmark = pytest.mark.usefixtures("fresh_endpoints")

URL = "http://127.0.0.1:9/v1/chat/completions"


def stored_settings(folder: Path) -> dict[str, object]:
    with sqlite3.connect(folder / "cache.db") as db:
        return dict(db.execute("SELECT key, value FROM Settings").fetchall())


def test_the_cache_is_opened_with_its_database_read_from_the_file(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache")
    cache.put(request_key("POST", URL, b"{}"), 200, "application/json", '{"ok": true}')
    cache.close()
    settings = stored_settings(tmp_path / "cache")
    assert settings["sqlite_mmap_size"] == 0
    assert settings["sqlite_cache_size"] == 16
    # another process opening the folder with diskcache's defaults uses the same settings
    other = diskcache.Cache(str(tmp_path / "cache"), disk=diskcache.JSONDisk)
    assert (other.sqlite_mmap_size, other.sqlite_cache_size) == (0, 16)
    assert other.get(request_key("POST", URL, b"{}"))["body"] == '{"ok": true}'
    other.close()


def test_a_cache_folder_written_with_diskcaches_defaults_opens_and_reads_back(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "cache"
    key = request_key("POST", URL, b'{"n": 1}')
    old = diskcache.Cache(str(folder), disk=diskcache.JSONDisk)  # as earlier versions wrote it
    old.set(key, {"status": 200, "content_type": "application/json", "body": '{"a": 1}'})
    old.set("dataset", {"text": "x" * 200_000})
    old.close()
    assert stored_settings(folder)["sqlite_mmap_size"] == 2**26

    cache = ResponseCache(folder)
    assert cache.get(key) == {"status": 200, "content_type": "application/json", "body": '{"a": 1}'}
    assert cache.get_text("dataset") == "x" * 200_000
    cache.put_text("more", "y" * 100)
    cache.close()
    assert stored_settings(folder)["sqlite_mmap_size"] == 0

    again = diskcache.Cache(str(folder), disk=diskcache.JSONDisk)  # and earlier versions read it
    assert again.get("more") == {"text": "y" * 100}
    assert again.get(key)["body"] == '{"a": 1}'
    again.close()


class Hook:
    """A pass's deferral hook: collects the requests nothing answers and stops them."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, method: str, url: str, body: bytes) -> None:
        self.bodies.append(body)
        raise RequestDeferred("deferred by the test")


def test_deferred_requests_leave_no_reference_cycles(
    llm_env: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    hook = Hook()

    async def collecting_pass() -> None:
        token = DEFERRAL.set(hook)
        try:
            await agenerate(
                MedicalBilling,
                60,
                examples=EXAMPLES,
                seed=3,
                cache_dir=tmp_path / "cache",
                batch_size=5,
                concurrency=12,
            )
        finally:
            DEFERRAL.reset(token)

    gc.collect()
    gc.disable()  # what the run leaves in cycles stays there for us to find
    try:
        with pytest.raises(RequestDeferred):
            asyncio.run(collecting_pass())
        left = [
            o
            for o in gc.get_objects()
            if isinstance(o, RequestDeferred) and str(o) == "deferred by the test"
        ]
    finally:
        gc.enable()
    assert len(hook.bodies) == 12  # one wave, each request collected and stopped
    assert left == []
    assert llm_env.request_count == 0
