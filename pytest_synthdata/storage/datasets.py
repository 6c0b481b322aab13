"""The dataset store: every whole dataset a call produced, keyed by what decides it.

Record datasets, text datasets, single texts and extractions are kept the same way: the
items the model answered, one JSON value per line exactly as it sent them, with a label,
the count, what producing them cost and the *steps* that produced them. The caller validates
the items again on every read, as the recording run did, so a replay hands back what the
recording run handed out.

A record dataset is a stable prefix: a run that wants fewer items reads the first ones, and
one that wants more keeps the stored items and adds a step for the rest. Each step says up
to which item it reaches and which recorded exchanges (by :func:`.cassettes.exchange_id`)
it took, so ``--synth-update`` knows which exchanges a dataset it only read still needs, and
cutting a dataset to its first ``n`` items also drops the exchanges of the steps beyond them.
Two homes:

* with a cassette, under its top-level ``datasets:`` section (vcrpy metadata, see
  :mod:`.cassettes`); only a recording run writes it, and a replay reads just that section;
* for a library call with a cache folder and no cassette, in the response cache, keyed also
  by the endpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from .paths import DATASET_PREFIX as PREFIX

__all__ = [
    "PREFIX",
    "EncodedItem",
    "Step",
    "StoredDataset",
    "cache_text",
    "decode",
    "encode",
    "from_cache",
    "from_cassette",
    "to_cache",
    "truncate",
]

_YAML_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


@dataclass(frozen=True)
class Step:
    """One generation that added to a dataset: items up to ``upto`` (exclusive), made from
    the recorded exchanges ``exchanges``, at the cost ``usage``."""

    upto: int
    exchanges: tuple[str, ...]
    usage: dict[str, int] | None = None


@dataclass(frozen=True)
class StoredDataset:
    """A dataset as stored: its items as JSON texts, the usage of producing it, and the
    steps that produced it (``None``: not known, as in files written before steps were)."""

    lines: list[str]
    usage: dict[str, int]
    steps: tuple[Step, ...] | None = None

    def json_array(self, count: int | None = None) -> str:
        """The (first ``count``) items as one JSON array (for validating them in one call)."""
        lines = self.lines if count is None else self.lines[:count]
        return "[" + ",".join(lines) + "]"

    def exchanges(self) -> set[str] | None:
        """The exchanges every step took (``None``: not known)."""
        if self.steps is None:
            return None
        return {ident for step in self.steps for ident in step.exchanges}


class EncodedItem(str):
    """An item already in its stored form, ``json.dumps(item, ensure_ascii=False)``: what a
    record run keeps of each answer until the dataset is stored, instead of the parsed item
    (a quarter of the memory); :func:`encode` writes it as it is."""

    __slots__ = ()


def encode(
    label: str,
    items: list[object],
    usage: dict[str, int],
    steps: tuple[Step, ...] = (),
) -> dict[str, Any]:
    """The stored form of ``items``: one JSON line per item, what producing it cost and
    the steps that produced it."""
    text = "".join(_line(item) for item in items)
    entry: dict[str, Any] = {"model": label, "n": len(items), "records": text, "usage": usage}
    if steps:
        entry["steps"] = [_step(step) for step in steps]
    return entry


def _line(item: object) -> str:
    """An item's line in the stored text (its JSON and a newline), with the characters YAML
    reads as line breaks written as JSON escapes."""
    line = item if isinstance(item, EncodedItem) else json.dumps(item, ensure_ascii=False)
    line = f"{line}\n"
    for char, escaped in _YAML_BREAKS.items():  # line breaks to YAML, not to JSON
        if char in line:
            line = line.replace(char, escaped)
    return line


def cache_text(label: str, items: list[object], usage: dict[str, int]) -> str:
    """``json.dumps(encode(label, items, usage), ensure_ascii=False)``: the text a dataset is
    kept under in the response cache, joined from each item's escaped line. Escaping the
    whole records text instead holds that text, its escaped copy and the result at once
    (three copies of about 2 MB at 10,000 records, each a fresh allocation); the lines are
    small objects, in memory the run has let go of."""
    head = json.dumps({"model": label, "n": len(items)}, ensure_ascii=False)[:-1]
    parts = [head, ', "records": "']
    parts.extend(encode_basestring(_line(item))[1:-1] for item in items)
    parts += ['", "usage": ', json.dumps(usage, ensure_ascii=False), "}"]
    return "".join(parts)


def _step(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {"upto": step.upto, "exchanges": sorted(set(step.exchanges))}
    if step.usage is not None:
        out["usage"] = dict(step.usage)
    return out


def _counters(raw: object) -> dict[str, int]:
    return {
        name: value
        for name, value in (raw.items() if isinstance(raw, dict) else ())
        if isinstance(name, str) and isinstance(value, int)
    }


def decode(entry: object) -> StoredDataset | None:
    """The dataset of a stored entry; ``None`` for anything that is not one."""
    if not isinstance(entry, dict) or not isinstance(entry.get("records"), str):
        return None
    lines = [line for line in entry["records"].split("\n") if line.strip()]
    return StoredDataset(lines, _counters(entry.get("usage")), _steps(entry.get("steps")))


def _steps(raw: object) -> tuple[Step, ...] | None:
    if not isinstance(raw, list) or not raw:
        return None
    steps = []
    for step in raw:
        if not isinstance(step, dict):
            return None
        upto, exchanges = step.get("upto"), step.get("exchanges")
        if not isinstance(upto, int) or not isinstance(exchanges, list):
            return None
        usage = _counters(step["usage"]) if isinstance(step.get("usage"), dict) else None
        steps.append(Step(upto, tuple(str(ident) for ident in exchanges), usage))
    return tuple(steps)


def truncate(entry: dict[str, Any], count: int) -> dict[str, Any]:
    """``entry`` cut to its first ``count`` items, with the steps that made them and what
    those cost (when every step says)."""
    stored = decode(entry)
    if stored is None or len(stored.lines) <= count:
        return entry
    kept = dict(entry)
    text = "".join(f"{line}\n" for line in stored.lines[:count])
    kept.update(records=text, n=count)
    if stored.steps is not None:
        steps: list[Step] = []
        start = 0
        for step in stored.steps:
            if start >= count:
                break
            steps.append(Step(min(step.upto, count), step.exchanges, step.usage))
            start = step.upto
        kept["steps"] = [_step(step) for step in steps]
        if all(step.usage is not None for step in steps):
            total: dict[str, int] = {}
            for step in steps:
                for name, value in (step.usage or {}).items():
                    total[name] = total.get(name, 0) + value
            kept["usage"] = total
    return kept


def from_cassette(path: Path, key: str) -> StoredDataset | None:
    """The dataset stored under ``key`` in the cassette at ``path``, if any."""
    from .cassettes import read_datasets_entry

    return decode(read_datasets_entry(path, key))


def from_cache(directory: Path, key: str) -> StoredDataset | None:
    """The dataset kept under ``key`` in the response cache at ``directory``, if any."""
    from .cache import ResponseCache

    text = ResponseCache.shared(directory).get_text(key)
    if text is None:
        return None
    try:
        return decode(json.loads(text))
    except ValueError:
        return None


def to_cache(directory: Path, key: str, text: str) -> None:
    """Keep a dataset's :func:`cache_text` in the response cache at ``directory``."""
    from .cache import ResponseCache

    ResponseCache.shared(directory).put_text(key, text)


def forget_cached(directory: Path, key: str) -> None:
    """Drop a cached dataset that no longer validates (the model changed since)."""
    from .cache import ResponseCache

    ResponseCache.shared(directory).delete(key)
