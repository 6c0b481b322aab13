"""The dataset store: every whole dataset a call produced, keyed by what decides it.

Record datasets, text datasets, single texts and extractions are kept the same way: the
items the model answered, one JSON value per line exactly as it sent them, with a label,
the count and what producing them cost. The caller validates the items again on every read,
as the recording run did, so a replay hands back what the recording run handed out. Two
homes:

* with a cassette, under its top-level ``datasets:`` section (vcrpy metadata, see
  :mod:`.cassettes`); only a recording run writes it, and a replay reads just that section;
* for a library call with a cache folder and no cassette, in the response cache, keyed also
  by the endpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .paths import DATASET_PREFIX as PREFIX

__all__ = ["PREFIX", "StoredDataset", "decode", "encode", "from_cache", "from_cassette", "to_cache"]

_YAML_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


@dataclass(frozen=True)
class StoredDataset:
    """A dataset as stored: its items as JSON texts, and the usage of producing it."""

    lines: list[str]
    usage: dict[str, int]

    def json_array(self) -> str:
        """The items as one JSON array (for validating them in one call)."""
        return "[" + ",".join(self.lines) + "]"


def encode(label: str, items: list[object], usage: dict[str, int]) -> dict[str, Any]:
    """The stored form of ``items``: one JSON line per item, and what producing it cost."""
    lines = (json.dumps(item, ensure_ascii=False) for item in items)
    text = "".join(f"{line}\n" for line in lines)
    for char, escaped in _YAML_BREAKS.items():  # line breaks to YAML, not to JSON
        text = text.replace(char, escaped)
    return {"model": label, "n": len(items), "records": text, "usage": usage}


def decode(entry: object) -> StoredDataset | None:
    """The dataset of a stored entry; ``None`` for anything that is not one."""
    if not isinstance(entry, dict) or not isinstance(entry.get("records"), str):
        return None
    lines = [line for line in entry["records"].split("\n") if line.strip()]
    stored = entry.get("usage")
    usage = {
        name: value
        for name, value in (stored.items() if isinstance(stored, dict) else ())
        if isinstance(name, str) and isinstance(value, int)
    }
    return StoredDataset(lines, usage)


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


def to_cache(directory: Path, key: str, entry: dict[str, Any]) -> None:
    from .cache import ResponseCache

    ResponseCache.shared(directory).put_text(key, json.dumps(entry, ensure_ascii=False))


def forget_cached(directory: Path, key: str) -> None:
    """Drop a cached dataset that no longer validates (the model changed since)."""
    from .cache import ResponseCache

    ResponseCache.shared(directory).delete(key)
