"""The session's ledger: what it made, used and left out, as plain data an xdist worker can
send (the terminal summary and ``--synth-update`` read it).

:class:`Totals` (what the datasets cost, where responses came from), :class:`Inventory`
(which cassettes the collected tests would use, what the run left out) and :class:`Ledger`
(both, with the cassettes used and what of them, the datasets to show and those exported).
Nothing heavy is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..storage.footprint import Footprint
from ..usage import Usage


@dataclass
class Totals:
    """What the session's datasets cost, and where the responses came from.

    Datasets are kept by identity, so one that several xdist workers need (a session
    fixture, the items of an ``each=True`` test) counts once, whichever worker made it;
    ``calls`` is what text and extraction calls cost. The response counters count answers
    as they arrived: ``recorded`` only those a cassette keeps, ``failed`` the transient
    failures (429, 5xx, ...) that were retried and never written. ``sent`` counts the
    answers the endpoint was asked for (paid: recorded, or live), with their tokens;
    ``texts`` and ``extractions`` what the text fixtures produced.
    """

    datasets: dict[str, tuple[int, Usage]] = field(default_factory=dict)
    calls: Usage = field(default_factory=Usage)
    replayed: int = 0
    recorded: int = 0
    cached: int = 0
    network: int = 0
    failed: int = 0
    sent: int = 0
    sent_prompt_tokens: int = 0
    sent_completion_tokens: int = 0
    texts: int = 0
    extractions: int = 0

    @property
    def records(self) -> int:
        return sum(records for records, _ in self.datasets.values())

    @property
    def usage(self) -> Usage:
        total = Usage()
        for _, usage in self.datasets.values():
            total.add(usage)
        total.add(self.calls)
        return total

    def add(self, other: Totals) -> None:
        for key, entry in other.datasets.items():
            self.datasets.setdefault(key, entry)
        self.calls.add(other.calls)
        for name in _COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        return {
            "datasets": {k: [n, u.as_dict()] for k, (n, u) in self.datasets.items()},
            "calls": self.calls.as_dict(),
            **{name: getattr(self, name) for name in _COUNTERS},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Totals:
        return cls(
            datasets={k: (int(n), Usage(**u)) for k, (n, u) in data["datasets"].items()},
            calls=Usage(**data["calls"]),
            **{name: int(data.get(name, 0)) for name in _COUNTERS},
        )


_COUNTERS = (
    "replayed",
    "recorded",
    "cached",
    "network",
    "failed",
    "sent",
    "sent_prompt_tokens",
    "sent_completion_tokens",
    "texts",
    "extractions",
)


@dataclass
class Inventory:
    """Which cassettes the collected tests and fixtures would use (for stale-file reports),
    and what the run left out (for ``--synth-update``).

    ``owners`` maps each test's cassette to the collected items that use it (kept with
    ``--synth-update`` only); ``narrowed`` holds the cassettes of tests some of whose items
    were deselected or not selected; ``deselected`` and ``collect_errors`` say whether
    anything was deselected or failed to be collected.
    """

    folders: set[Path] = field(default_factory=set)
    expected: set[Path] = field(default_factory=set)
    fixture_names: set[str] = field(default_factory=set)
    owners: dict[str, set[str]] = field(default_factory=dict)
    narrowed: set[Path] = field(default_factory=set)
    deselected: bool = False
    collect_errors: bool = False
    protected: set[Path] = field(default_factory=set)
    """Test modules and folders the run left uncollected on purpose (ignored, or skipped
    as a whole), whose cassettes are not stale (``--synth-update`` only)."""
    tests: set[str] = field(default_factory=set)
    """The node ids (without parameters) of every collected test (``--synth-update`` only)."""
    fixtures: set[str] = field(default_factory=set)
    """The names of every fixture the collection defines (``--synth-update`` only)."""
    gathered: bool = False
    """Whether ``tests`` and ``fixtures`` were gathered (a collection with ``--synth-update``)."""

    def add(self, other: Inventory) -> None:
        self.folders |= other.folders
        self.expected |= other.expected
        self.fixture_names |= other.fixture_names
        for path, items in other.owners.items():
            self.owners.setdefault(path, set()).update(items)
        self.narrowed |= other.narrowed
        self.deselected = self.deselected or other.deselected
        self.collect_errors = self.collect_errors or other.collect_errors
        self.protected |= other.protected
        self.tests |= other.tests
        self.fixtures |= other.fixtures
        self.gathered = self.gathered or other.gathered

    def as_dict(self) -> dict[str, Any]:
        return {
            "folders": sorted(map(str, self.folders)),
            "expected": sorted(map(str, self.expected)),
            "fixture_names": sorted(self.fixture_names),
            "owners": {path: sorted(items) for path, items in sorted(self.owners.items())},
            "narrowed": sorted(map(str, self.narrowed)),
            "deselected": self.deselected,
            "collect_errors": self.collect_errors,
            "protected": sorted(map(str, self.protected)),
            "tests": sorted(self.tests),
            "fixtures": sorted(self.fixtures),
            "gathered": self.gathered,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Inventory:
        return cls(
            folders={Path(p) for p in data.get("folders", [])},
            expected={Path(p) for p in data.get("expected", [])},
            fixture_names=set(data.get("fixture_names", [])),
            owners={path: set(items) for path, items in data.get("owners", {}).items()},
            narrowed={Path(p) for p in data.get("narrowed", [])},
            deselected=bool(data.get("deselected", False)),
            collect_errors=bool(data.get("collect_errors", False)),
            protected={Path(p) for p in data.get("protected", [])},
            tests=set(data.get("tests", [])),
            fixtures=set(data.get("fixtures", [])),
            gathered=bool(data.get("gathered", False)),
        )

    def stale(self, used: set[Path]) -> list[Path]:
        """Cassette files in the folders that no collected test or fixture would use."""
        from ..storage.paths import SUFFIX, stale_cassettes

        return [
            path
            for path in stale_cassettes(self.folders, self.expected | used)
            if path.name[: -len(SUFFIX)] not in self.fixture_names
        ]


@dataclass
class Ledger:
    """What the terminal summary reports: the totals, the inventory, the cassettes used
    (and, for ``--synth-update``, what of each), and the datasets to show or exported.

    Each xdist worker sends its own (:meth:`as_dict`) and the controller adds them up.
    """

    totals: Totals = field(default_factory=Totals)
    inventory: Inventory = field(default_factory=Inventory)
    used: set[Path] = field(default_factory=set)
    completed: set[Path] = field(default_factory=set)
    uses: dict[Path, Footprint] = field(default_factory=dict)
    previews: dict[str, dict[str, Any]] = field(default_factory=dict)
    exported: set[str] = field(default_factory=set)

    def add(self, other: Ledger) -> None:
        self.totals.add(other.totals)
        self.inventory.add(other.inventory)
        self.used |= other.used
        self.completed |= other.completed
        for path, use in other.uses.items():
            self.uses.setdefault(path, Footprint()).add(use)
        for key, preview in other.previews.items():
            self.previews.setdefault(key, preview)
        self.exported |= other.exported

    def as_dict(self) -> dict[str, Any]:
        return {
            "totals": self.totals.as_dict(),
            "inventory": self.inventory.as_dict(),
            "used": sorted(map(str, self.used)),
            "completed": sorted(map(str, self.completed)),
            "uses": {str(path): use.as_dict() for path, use in self.uses.items()},
            "previews": self.previews,
            "exported": sorted(self.exported),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ledger:
        return cls(
            Totals.from_dict(data["totals"]),
            Inventory.from_dict(data["inventory"]),
            {Path(p) for p in data["used"]},
            {Path(p) for p in data["completed"]},
            {Path(p): Footprint.from_dict(u) for p, u in data.get("uses", {}).items()},
            dict(data.get("previews", {})),
            set(data.get("exported", [])),
        )

    def stale(self) -> list[Path]:
        """Cassette files in the inventory's folders that nothing collected or run used."""
        return self.inventory.stale(self.used)
