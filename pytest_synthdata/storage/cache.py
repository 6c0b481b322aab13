"""The on-disk response cache (diskcache, JSON values; never pickles).

Keys are the canonical request (method, URL, JSON body); values are the successful,
validated HTTP response (status, content type, body text). Anything unreadable is dropped
and treated as a miss. Nothing that holds a secret of the run is ever written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import zlib
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

import diskcache

from ..errors import SynthConfigError
from .secrets import found_in


def request_key(method: str, url: str, body: bytes) -> str:
    """A stable key: the body is compared as canonical JSON, headers (keys) are ignored."""
    try:
        canonical_body: object = json.loads(body)
    except ValueError:
        canonical_body = body.decode("utf-8", "replace")
    payload = json.dumps(
        {"method": method.upper(), "url": url, "body": canonical_body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    """A diskcache ``Cache`` of validated responses, safe across processes (xdist workers)."""

    def __init__(self, directory: Path, *, read: bool = True) -> None:
        self.directory = directory
        self.read = read
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SynthConfigError(
                f"the cache folder {str(directory)!r} cannot be created "
                f"({exc.strerror or exc}); name a folder you can write to"
            ) from None
        self._cache = diskcache.Cache(str(directory), disk=TextJSONDisk, **SQLITE_SETTINGS)

    @classmethod
    def shared(cls, directory: Path) -> ResponseCache:
        """One open cache per folder for the whole process (opening one costs milliseconds)."""
        key = str(directory.resolve())
        with _SHARED_LOCK:
            if key not in _SHARED:
                _SHARED[key] = cls(directory)
            return _SHARED[key]

    def get(self, key: str) -> dict[str, Any] | None:
        """A cached response, or ``None``; an unreadable entry is dropped."""
        value = self._read(key, _well_formed)
        return value if isinstance(value, dict) else None

    def put(self, key: str, status: int, content_type: str, body: str) -> None:
        """Keep a response, unless it holds a secret of this run (a server echoing the key):
        that one is simply not cached."""
        if not found_in(body):
            self._cache.set(key, {"status": status, "content_type": content_type, "body": body})

    def get_text(self, key: str) -> str | None:
        """A plain text entry (a whole dataset), or ``None``; an unreadable entry is dropped."""
        value = self._read(key, lambda v: isinstance(v, dict) and isinstance(v.get("text"), str))
        return str(value["text"]) if isinstance(value, dict) else None

    def _read(self, key: str, valid: Callable[[object], bool]) -> object:
        if not self.read:
            return None
        try:
            value = self._cache.get(key)
        except (ValueError, TypeError, sqlite3.Error, OSError):
            value = _CORRUPT
        if value is None:
            return None
        if not valid(value):
            self.delete(key)
            return None
        return value

    def put_text(self, key: str, text: str) -> None:
        """Keep a text entry, unless it holds a secret of this run."""
        if not found_in(text):
            self._cache.set(key, {"text": text})

    def lock(self, key: str) -> Any:
        """A cross-process lock for one request key (``filelock``), so processes sharing this
        cache pay for a request once."""
        import filelock

        folder = self.directory / "locks" / "requests"
        folder.mkdir(parents=True, exist_ok=True)
        return filelock.FileLock(str(folder / f"{key[:40]}.lock"))

    def delete(self, key: str) -> None:
        with contextlib.suppress(sqlite3.Error, OSError):
            self._cache.delete(key)

    def clear(self) -> int:
        return int(self._cache.clear())

    def __len__(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        self._cache.close()


class TextJSONDisk(diskcache.JSONDisk):  # type: ignore[misc]
    """diskcache's ``JSONDisk``, storing the same bytes; a large text entry (a whole dataset)
    is escaped and compressed a slice at a time instead of as whole copies of its JSON (two
    copies of over 2 MB each for a dataset of 10,000 records)."""

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
        text = value.get("text") if not read and type(value) is dict and len(value) == 1 else None
        if not isinstance(text, str) or len(text) < _SLICE:
            return super().store(value, read, key=key)
        return diskcache.Disk.store(self, compressed_text(text, self.compress_level), read, key=key)


def compressed_text(text: str, level: int) -> bytes:
    """``zlib.compress(json.dumps({"text": text}).encode(), level)``, without a whole copy of
    the JSON: JSON escapes each character alone, and zlib's output does not depend on how
    its input is cut into pieces."""
    packer = zlib.compressobj(level)
    parts = [packer.compress(b'{"text": "')]
    for at in range(0, len(text), _SLICE):
        escaped = encode_basestring_ascii(text[at : at + _SLICE])
        parts.append(packer.compress(escaped[1:-1].encode("ascii")))
    parts += (packer.compress(b'"}'), packer.flush())
    return b"".join(parts)


SQLITE_SETTINGS: dict[str, int] = {"sqlite_mmap_size": 0, "sqlite_cache_size": 16}
"""How the cache's SQLite database is opened. diskcache's defaults map up to 64 MiB of it
into memory and keep up to 8,192 of its pages (32 MiB) in SQLite's page cache, and every
page a run reads or writes stays in the process's resident memory until it ends. The cache
reads and writes one entry at a time, by key, so it reads its pages from the file instead
and keeps 16 of them. diskcache stores these settings in the folder's database: a folder
written with its defaults opens with these, and is read as before."""
_SLICE = 1 << 16
_CORRUPT = object()
_SHARED: dict[str, ResponseCache] = {}
_SHARED_LOCK = threading.Lock()


def _well_formed(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("status"), int)
        and isinstance(value.get("content_type"), str)
        and isinstance(value.get("body"), str)
    )
