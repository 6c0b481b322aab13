"""Reading and editing the stored datasets at the top of a cassette file (sealed again
with its checksum, as the tool writes it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from pytest_synthdata.storage.integrity import seal, verify


def edit(path: Path, change: Callable[[str], str]) -> None:
    """Change a cassette's body and seal it again, as this tool would have written it."""
    body = verify(path.read_text())
    path.write_text(seal(change(body)))


def strip_datasets(path: Path) -> None:
    """Drop a cassette's stored datasets, as in a file recorded before they existed, so a
    replay has to go through the recorded exchanges."""

    def change(body: str) -> str:
        assert body.startswith("datasets:")
        return body[body.index("\ninteractions:") + 1 :]

    edit(path, change)


def only_datasets(path: Path) -> None:
    """Keep a cassette's stored datasets and drop its exchanges, so a replay can only read
    the datasets."""

    def change(body: str) -> str:
        assert body.startswith("datasets:")
        return body[: body.index("\ninteractions:") + 1] + "interactions: []\nversion: 1\n"

    edit(path, change)


def stored_lines(path: Path) -> list[dict[str, Any]]:
    """The records of the cassette's only stored dataset, one JSON line each."""
    (entry,) = yaml.safe_load(path.read_text())["datasets"].values()
    return [json.loads(line) for line in entry["records"].split("\n") if line]
