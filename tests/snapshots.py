"""Reading and editing the dataset snapshots at the top of a cassette file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def strip_snapshots(path: Path) -> None:
    """Drop a cassette's dataset snapshots, as in a file recorded before they existed, so a
    replay has to go through the recorded exchanges."""
    text = path.read_text()
    assert text.startswith("datasets:")
    path.write_text(text[text.index("\ninteractions:") + 1 :])


def snapshot_lines(path: Path) -> list[dict[str, Any]]:
    """The records of the cassette's only dataset snapshot, one JSON line each."""
    (entry,) = yaml.safe_load(path.read_text())["datasets"].values()
    return [json.loads(line) for line in entry["records"].split("\n") if line]
