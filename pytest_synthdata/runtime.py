"""Session state shared by the plugin's fixtures: datasets produced so far, and totals."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import SynthError, SynthGenerationError
from .markers import DatasetRequest
from .settings import Settings
from .usage import Usage

if TYPE_CHECKING:
    from .dataset import Dataset
    from .llm import LLM
    from .storage.recorder import Storage

T = TypeVar("T")

AMBIENT: ContextVar[tuple[Storage, Path | None, str] | None] = ContextVar(
    "synthdata_ambient_storage", default=None
)
"""Storage, cassette and re-record hint that library calls made inside a test use."""


@dataclass
class Totals:
    """What the session cost, for the terminal summary (merged across xdist workers)."""

    datasets: int = 0
    records: int = 0
    usage: Usage = field(default_factory=Usage)
    replayed: int = 0
    recorded: int = 0
    cached: int = 0
    network: int = 0

    def add(self, other: Totals) -> None:
        self.datasets += other.datasets
        self.records += other.records
        self.usage.add(other.usage)
        self.replayed += other.replayed
        self.recorded += other.recorded
        self.cached += other.cached
        self.network += other.network

    def as_dict(self) -> dict[str, Any]:
        return {
            "datasets": self.datasets,
            "records": self.records,
            "usage": self.usage.as_dict(),
            "replayed": self.replayed,
            "recorded": self.recorded,
            "cached": self.cached,
            "network": self.network,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Totals:
        data = dict(data)
        usage = Usage(**data.pop("usage", {}))
        return cls(usage=usage, **data)


async def with_llm(
    settings: Settings,
    work: Callable[[LLM], Awaitable[T]],
    *,
    client: object | None = None,
    storage: Storage | None = None,
    cassette: Path | None = None,
    state_key: str = "",
    rerecord: str = "",
) -> T:
    """Run ``work`` with an :class:`LLM` wired to the cassette and cache when ``storage`` is
    given (the one place that opens recordings), and close the client afterwards."""
    from .llm import LLM

    if storage is None:
        llm = LLM(settings, client)
        try:
            return await work(llm)
        finally:
            await llm.aclose()
    with storage.recording(cassette, state_key, rerecord) as recording:
        llm = LLM(settings, client, recording=recording)
        try:
            return await work(llm)
        finally:
            await llm.aclose()


class SynthRuntime:
    """Produces each dataset once per session and keeps the totals."""

    def __init__(self, settings: Settings, storage: Callable[[], Storage] | None = None) -> None:
        self.settings = settings
        self._storage_factory = storage
        self._storage: Storage | None = None
        self.totals = Totals()
        self._failures: dict[Hashable, SynthError] = {}
        self._results: dict[Hashable, Any] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    @property
    def storage(self) -> Storage | None:
        """Cassettes and cache, created on first use (vcrpy and diskcache load only then)."""
        if self._storage is None and self._storage_factory is not None:
            with self._lock:
                if self._storage is None:
                    self._storage = self._storage_factory()
        return self._storage

    @contextlib.contextmanager
    def ambient(self, cassette: Path | None, rerecord: str) -> Iterator[None]:
        """Library calls (text generation, extraction) inside this block record into
        ``cassette`` and use the session's cache."""
        storage = self.storage
        if storage is None:
            yield
            return
        token = AMBIENT.set((storage, cassette, rerecord))
        try:
            yield
        finally:
            AMBIENT.reset(token)

    def remember(self, key: Hashable, make: Callable[[], T], usage: Usage) -> T:
        """``make()`` once per session for ``key``; its cost (in ``usage``) joins the totals."""
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._failures:
                raise self._failures[key]
            if key not in self._results:
                try:
                    self._results[key] = make()
                except SynthError as exc:
                    self._failures[key] = exc
                    if isinstance(exc, SynthGenerationError):
                        usage.add(exc.usage)  # what the failed attempt cost still counts
                    raise
                finally:
                    with self._lock:
                        self.totals.usage.add(usage)
                with self._lock:
                    self.totals.datasets += 1
            result: T = self._results[key]
            return result

    def used_cassettes(self) -> set[Path]:
        return set(self._storage.used) if self._storage is not None else set()

    def close(self) -> None:
        if self._storage is not None:
            self._storage.close()

    def produce(
        self,
        owner: str,
        request: DatasetRequest,
        *,
        cassette: Path | None = None,
        rerecord: str = "",
    ) -> Dataset[Any]:
        """The dataset for ``request``, generated on first use; ``owner`` scopes the sharing."""
        from .api import agenerate, run_sync
        from .spec import make_spec

        settings = self.settings.replace(**request.options) if request.options else self.settings
        spec = make_spec(request.model, max_n=settings.max_n, **request.spec_kwargs)
        usage = Usage()

        def make() -> Dataset[Any]:
            with self.ambient(cassette, rerecord):
                dataset = run_sync(
                    agenerate(request.model, settings=settings, **request.spec_kwargs)
                )
            usage.add(dataset.usage)
            with self._lock:
                self.totals.records += len(dataset)
            return dataset

        return self.remember((owner, request.name, spec.key(), settings), make, usage)

    def snapshot(self) -> Totals:
        """The totals including where responses came from."""
        totals = Totals()
        totals.add(self.totals)
        if self._storage is not None:
            counters = self._storage.counters
            totals.replayed += counters.replayed
            totals.recorded += counters.recorded
            totals.cached += counters.cached
            totals.network += counters.network
        return totals


@dataclass
class Inventory:
    """Which cassettes the collected tests and fixtures would use (for stale-file reports)."""

    folders: set[Path] = field(default_factory=set)
    expected: set[Path] = field(default_factory=set)
    fixture_names: set[str] = field(default_factory=set)

    def add(self, other: Inventory) -> None:
        self.folders |= other.folders
        self.expected |= other.expected
        self.fixture_names |= other.fixture_names

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "folders": sorted(map(str, self.folders)),
            "expected": sorted(map(str, self.expected)),
            "fixture_names": sorted(self.fixture_names),
        }

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> Inventory:
        return cls(
            folders={Path(p) for p in data.get("folders", [])},
            expected={Path(p) for p in data.get("expected", [])},
            fixture_names=set(data.get("fixture_names", [])),
        )

    def stale(self, used: set[Path]) -> list[Path]:
        """Cassette files in the folders that no collected test or fixture would use."""
        from .storage.paths import SUFFIX, stale_cassettes

        return [
            path
            for path in stale_cassettes(self.folders, self.expected | used)
            if not (
                path.parent.name == "conftest" and path.name[: -len(SUFFIX)] in self.fixture_names
            )
        ]
