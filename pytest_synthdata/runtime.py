"""Session state shared by the plugin's fixtures: datasets produced so far, and totals."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from .dataset import Dataset
from .errors import SynthError
from .markers import DatasetRequest
from .settings import Settings
from .spec import make_spec
from .usage import Usage


@dataclass
class Totals:
    """What the session cost, for the terminal summary."""

    datasets: int = 0
    records: int = 0
    usage: Usage = field(default_factory=Usage)

    def add(self, other: Totals) -> None:
        self.datasets += other.datasets
        self.records += other.records
        self.usage.add(other.usage)

    def as_dict(self) -> dict[str, Any]:
        return {"datasets": self.datasets, "records": self.records, **self.usage.as_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Totals:
        data = dict(data)
        totals = cls(datasets=data.pop("datasets", 0), records=data.pop("records", 0))
        totals.usage = Usage(**data)
        return totals


class SynthRuntime:
    """Produces each dataset once per session and keeps the totals."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.totals = Totals()
        self._datasets: dict[Hashable, Dataset[Any]] = {}
        self._failures: dict[Hashable, SynthError] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def produce(self, owner: str, request: DatasetRequest) -> Dataset[Any]:
        """The dataset for ``request``, generated on first use; ``owner`` scopes the sharing."""
        settings = self.settings.replace(**request.options) if request.options else self.settings
        spec = make_spec(request.model, max_n=settings.max_n, **request.spec_kwargs)
        key = (owner, request.name, spec.key(), settings)
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._failures:
                raise self._failures[key]
            if key not in self._datasets:
                from .api import run_sync
                from .engine import Engine
                from .llm import LLM

                engine: Engine[Any] = Engine(spec, settings, LLM(settings))
                try:
                    dataset = run_sync(engine.run())
                except SynthError as exc:
                    self._failures[key] = exc
                    raise
                with self._lock:
                    self.totals.datasets += 1
                    self.totals.records += len(dataset)
                    self.totals.usage.add(dataset.usage)
                self._datasets[key] = dataset
            return self._datasets[key]
