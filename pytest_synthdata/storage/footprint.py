"""What a session used of each cassette, for ``--synth-update`` (no heavy imports: the
plugin merges these from xdist workers without loading vcrpy)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Footprint:
    """What a session used of one cassette: the datasets (and how many of their items),
    the endpoint profiles and the recorded exchanges; ``unknown``: a dataset was read whose
    exchanges are not known (all of them are kept). ``written`` says what it recorded."""

    datasets: dict[str, int] = field(default_factory=dict)
    profiles: set[str] = field(default_factory=set)
    exchanges: set[str] = field(default_factory=set)
    unknown: bool = False
    written: list[str] = field(default_factory=list)

    def add(self, other: Footprint) -> None:
        for key, count in other.datasets.items():
            self.datasets[key] = max(count, self.datasets.get(key, 0))
        self.profiles |= other.profiles
        self.exchanges |= other.exchanges
        self.unknown = self.unknown or other.unknown
        self.written += [line for line in other.written if line not in self.written]

    def as_dict(self) -> dict[str, Any]:
        return {
            "datasets": dict(sorted(self.datasets.items())),
            "profiles": sorted(self.profiles),
            "exchanges": sorted(self.exchanges),
            "unknown": self.unknown,
            "written": list(self.written),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Footprint:
        return cls(
            datasets={str(k): int(v) for k, v in data.get("datasets", {}).items()},
            profiles=set(data.get("profiles", [])),
            exchanges=set(data.get("exchanges", [])),
            unknown=bool(data.get("unknown", False)),
            written=list(data.get("written", [])),
        )


OPENED: set[Path] = set()
"""Every cassette file this process opened or read, by any call (a library call with its own
``cassette=`` included): none of them is stale, whatever the collected tests are called."""


def opened(path: Path | str) -> None:
    OPENED.add(Path(os.path.abspath(path)))
