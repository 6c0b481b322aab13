"""One object per test session that opens cassettes, owns the cache and counts sources."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock
import vcr
from vcr.cassette import Cassette, CassetteContextDecorator
from vcr.request import Request as VcrRequest

from ..errors import SynthConfigError, SynthRecordingError
from ..settings import RECORD_MODES
from .cache import ResponseCache
from .cassettes import (
    INCOMPLETE,
    explain_difference,
    is_incomplete,
    make_vcr,
    mark_complete,
    raise_refusal,
    with_command,
)
from .datasets import Step, StoredDataset, decode, from_cassette
from .footprint import Footprint, opened
from .owners import OWNER, Owner, merged
from .transport import Counters, StorageTransport, SyncStorageTransport
from .turns import held
from .vcrcompat import MissingMetadataError

REPLAYING_MODES = ("none", "once", "new_episodes")
"""Record modes that read what a cassette holds (``all`` and ``rewrite`` record afresh)."""


@dataclass
class Recording:
    """What one generation needs from storage: transports, and its starting endpoint profile.

    ``touched`` collects the cassette's exchanges that answered this generation's
    requests, so the dataset it stores can name the exchanges it took."""

    transport_options: dict[str, Any]
    cassette: Any | None
    profile_key: str
    path: Path | None = None
    storage: Storage | None = None
    rerecord: str = ""
    """The command that records what this cassette is missing (for error messages)."""

    @property
    def touched(self) -> list[str]:
        touched: list[str] = self.transport_options["touched"]
        return touched

    @property
    def cache(self) -> ResponseCache | None:
        cache: ResponseCache | None = self.transport_options["cache"]
        return cache

    def async_transport(self) -> StorageTransport:
        return StorageTransport(**self.transport_options)

    def sync_transport(self) -> SyncStorageTransport:
        return SyncStorageTransport(**self.transport_options)

    @property
    def replay_only(self) -> bool:
        return self.cassette is not None and bool(self.cassette.write_protected)

    def store_dataset(self, key: str, entry: dict[str, Any]) -> None:
        """Store a whole dataset with a cassette that is recording (never a replayed one:
        replaying leaves committed files alone)."""
        if self.cassette is None or self.cassette.write_protected:
            return
        stored = self.cassette.get_metadata(key, {})
        stored.clear()  # ``all`` keeps what the file held: the new recording wins
        stored.update(entry)
        self.cassette.dirty = True

    def stored_dataset(self, key: str) -> StoredDataset | None:
        """The dataset stored under ``key`` in the cassette as it was opened (under its
        lock, so what another process stored meanwhile is there too), when this record
        mode reads what a cassette holds, or the file was recorded in this session."""
        if self.cassette is None or self.storage is None or self.path is None:
            return None
        if not self.storage.reads(self.path):
            return None
        metadata = getattr(self.cassette, "_metadata", None)
        return decode(metadata.get(key)) if isinstance(metadata, dict) else None

    def note_use(
        self, key: str, count: int, steps: Iterable[Step] | None, written: str | None = None
    ) -> None:
        """This generation used (or ``written``: recorded) ``count`` items of the dataset
        ``key``, made by ``steps``."""
        if self.storage is not None and self.path is not None:
            self.storage.note_use(self.path, key, self.profile_key, count, steps, written)

    def start_profile(self, current: dict[str, Any]) -> dict[str, Any]:
        """The endpoint profile (structured mode, seed support) the recording started from.

        Recorded with the cassette, so a replay takes exactly the same path (including a
        structured-mode fallback) whatever ran before it in this process.
        """
        if self.cassette is None:
            return current
        try:
            state = self.cassette.get_metadata(self.profile_key, current)
        except MissingMetadataError:
            return current
        return dict(state) if isinstance(state, dict) else current


@contextlib.contextmanager
def _opened(recorder: vcr.VCR, path: Path, mode: str) -> Iterator[Any]:
    """The cassette at ``path``, saved when the block ends without an exception, as
    vcrpy's ``use_cassette`` (with ``record_on_exception=False``) opens it, but without
    patching any HTTP library: the storage transports answer from, and record into, their
    own cassette (:mod:`.transport`). A patch is process-wide, so requests of calls on
    other cassettes (or none) running meanwhile would be answered and recorded by this one,
    and patches undone out of order would leave one in place for good."""
    skipped = getattr(
        CassetteContextDecorator,
        "_non_cassette_arguments",
        ("path_transformer", "func_path_generator", "record_on_exception"),
    )
    config = recorder.get_merged_config(path=str(path), record_mode=mode)
    cassette = Cassette.load(**{k: v for k, v in config.items() if k not in skipped})
    yield cassette  # an exception propagates from here: nothing is saved
    cassette._save()


def _own(cassette: Any, owner: Owner) -> None:
    """Name ``owner`` in the metadata of a cassette it recorded into (saved with it)."""
    metadata: dict[str, Any] = vars(cassette).setdefault("_metadata", {})
    metadata[OWNER] = merged(metadata.get(OWNER), owner)


class Storage:
    """Cassettes and the response cache for one session (or one library call)."""

    def __init__(
        self,
        *,
        record_mode: str = "once",
        cache_dir: Path | None = None,
        use_cache: bool = True,
        lock_dir: Path | None = None,
        session_start: float | None = None,
        finish_at_end: bool = False,
    ) -> None:
        """``finish_at_end``: a cassette this storage records into stays marked incomplete
        until :meth:`finish` (a test session marks it, and finishes only when it was not
        interrupted), so a run killed half-way leaves a cassette the next run completes."""
        if record_mode not in RECORD_MODES:
            raise SynthConfigError(
                f"record mode must be one of {', '.join(RECORD_MODES)}, got {record_mode!r}"
            )
        self.record_mode = record_mode
        self.vcr = make_vcr()
        fresh = record_mode in ("all", "rewrite")
        self.cache = (
            ResponseCache(cache_dir, read=not fresh)
            if use_cache and cache_dir is not None
            else None
        )
        self.lock_dir = lock_dir or (cache_dir / "locks" if cache_dir is not None else None)
        self.session_start = session_start if session_start is not None else time.time()
        self.counters = Counters()
        self.used: set[Path] = set()
        self.completed: set[Path] = set()
        """Cassettes an interrupted run had left incomplete, completed by this one."""
        self._finish_at_end = finish_at_end
        self._written: set[Path] = set()
        self._unfinished: set[Path] = set()
        self._failed: set[Path] = set()
        """Cassettes a generation of this run failed on."""
        self.uses: dict[Path, Footprint] = {}
        """What the session used of each cassette (for ``--synth-update``)."""
        self._uses_lock = threading.Lock()

    def reads(self, path: Path) -> bool:
        """Whether a generation reads what the cassette at ``path`` holds: in the modes
        that replay, or when this session recorded it (``all``, ``rewrite``)."""
        if self.record_mode in REPLAYING_MODES:
            return True
        return path in self._written or self._recorded_this_session(path)

    def _recorded_this_session(self, path: Path) -> bool:
        """Written since the session began: by this process or another xdist worker (they
        share the controller's start). Such a file is being recorded, not left incomplete
        by an interrupted run, even while it carries the incomplete mark."""
        try:
            return path.stat().st_mtime >= self.session_start
        except OSError:
            return False

    def note_use(
        self,
        path: Path,
        key: str,
        profile_key: str,
        count: int,
        steps: Iterable[Step] | None,
        written: str | None = None,
    ) -> None:
        """The session used ``count`` items of the dataset ``key`` of the cassette at
        ``path`` (made by ``steps``: ``None`` when not known) and its endpoint profile."""
        use = Footprint(datasets={key: count}, profiles={profile_key} if profile_key else set())
        if steps is None:
            use.unknown = True
        else:
            start = 0
            for step in steps:  # the steps that made the first ``count`` items
                if start >= count:
                    break
                use.exchanges.update(step.exchanges)
                start = step.upto
        if written:
            use.written.append(written)
        with self._uses_lock:
            self.uses.setdefault(path, Footprint()).add(use)

    @contextlib.contextmanager
    def _lock(self, path: Path) -> Iterator[None]:
        """This process's turn on the cassette at ``path`` (:mod:`.turns`: calls of this
        process that share it take turns), then its file lock, which other processes
        wait on."""
        with held(path):
            if self.lock_dir is None:
                yield
                return
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:20]
            with filelock.FileLock(str(self.lock_dir / f"{digest}.lock")):
                yield

    def _vcr_mode(self, path: Path) -> str:
        mode = self.record_mode
        if mode == "rewrite":
            if (
                path not in self._written
                and path.exists()
                and path.stat().st_mtime < self.session_start
            ):
                path.unlink()
            return "all"
        fresh = path in self._written or self._recorded_this_session(path)
        if mode == "once" and fresh:
            return "new_episodes"  # this session records it (another xdist worker began)
        if (
            mode in REPLAYING_MODES
            and not fresh
            and (path in self.completed or is_incomplete(path))  # left by an interrupted run
        ):
            self.completed.add(path)  # marked complete by finish() once a run records into it
            if mode == "once":
                return "new_episodes"  # record what the interrupted run did not
        return mode

    def finish(self) -> None:
        """Mark the cassettes recorded (or completed) by this storage as complete: not one
        an interrupted run had left incomplete where a generation of this run failed, nor
        one only replayed (record mode ``none``), which still lacks what was interrupted."""
        for path in sorted(self._unfinished):
            if path in self.completed and path in self._failed:
                continue
            with self._lock(path):
                mark_complete(path)
        self._unfinished.clear()

    def stored_dataset(
        self, path: Path | None, key: str, rerecord: str = ""
    ) -> StoredDataset | None:
        """The dataset stored under ``key`` in the cassette at ``path``, when this record
        mode reads what a cassette holds (``none``, ``once``, ``new_episodes``)."""
        if path is None or self.record_mode not in REPLAYING_MODES:
            return None
        try:
            entry = from_cassette(path, key)
        except SynthRecordingError as exc:
            raise with_command(exc, rerecord) from None
        if entry is not None:
            self.used.add(path)
        return entry

    @contextlib.contextmanager
    def recording(
        self, path: Path | None, profile_key: str, rerecord: str, owner: Owner | None = None
    ) -> Iterator[Recording]:
        """Open the cassette at ``path`` (or none) for one generation. When it records into
        the cassette, ``owner`` is written into it (see :mod:`.owners`)."""
        if path is None:
            yield Recording(
                self._transport(None, None, rerecord), None, profile_key, None, self, rerecord
            )
            return
        with self._lock(path), contextlib.ExitStack() as stack:
            mode = self._vcr_mode(path)
            self.used.add(path)
            opened(path)
            try:
                cassette = stack.enter_context(_opened(self.vcr, path, mode))
            except SynthRecordingError as exc:
                raise with_command(exc, rerecord) from None
            if self._finish_at_end and not cassette.write_protected:
                cassette.get_metadata(INCOMPLETE, True)  # saved with the first recording
            if owner is not None and not cassette.write_protected:
                _own(cassette, owner)  # saved with the first recording, if there is one
            with stack:
                try:
                    yield Recording(
                        self._transport(cassette, path, rerecord),
                        cassette,
                        profile_key,
                        path,
                        self,
                        rerecord,
                    )
                except BaseException:
                    self._failed.add(path)
                    raise
                completing = path in self.completed and mode != "none"
                if self._finish_at_end and (cassette.dirty or completing):
                    self._unfinished.add(path)
            raise_refusal(path)
            if path.exists() and mode != "none":
                self._written.add(path)

    def _transport(self, cassette: Any | None, path: Path | None, rerecord: str) -> dict[str, Any]:
        def on_missing(request: VcrRequest) -> Exception:
            assert path is not None and cassette is not None
            if not path.exists():
                what = f"cassette {path} does not exist"
            else:
                what = (
                    f"cassette {path} has no recording of this request "
                    f"({explain_difference(request, list(cassette.requests))})"
                )
            if path in self.completed:
                what += (
                    "; an interrupted recording left this cassette incomplete, and a run in "
                    "record mode 'once' completes it"
                )
            return SynthRecordingError(
                f"{what}, and record mode {self.record_mode!r} does not allow recording. "
                f"Record it with: {rerecord}"
            )

        return {
            "cache": self.cache,
            "cassette": cassette,
            "counters": self.counters,
            "on_missing": on_missing,
            "touched": [],
        }

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
