"""``--synth-update``'s clean-up: cassettes cut down to what a session used, and stale ones.

A session notes, for each cassette it used, the datasets it read or recorded (and how many of
their records), their endpoint profiles and the recorded exchanges they took (see
:class:`.recorder.Footprint`). :func:`prune` rewrites the file to hold just that, through
the cassette serializer, so the result is sealed with a fresh checksum like any recording.

vcrpy's own ``drop_unused_requests`` is not used for this: it keeps only the interactions
played while one cassette object was open, so with several generations per cassette (two
``synth_factory`` calls, the items of an ``each=True`` test on several xdist workers) each
would drop the others' exchanges; it cannot see a dataset replayed from the ``datasets``
section without any exchange, and it never drops stored datasets or endpoint profiles.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SynthRecordingError
from .cassettes import (
    INCOMPLETE,
    YamlSerializer,
    corrupt,
    exchange_id,
    read_text,
    write_atomically,
)
from .datasets import truncate
from .integrity import Tampered
from .owners import OWNER
from .paths import DATASET_PREFIX, FOLDER, SUFFIX
from .secrets import found_in


@dataclass(frozen=True)
class Pruned:
    """What :func:`prune` dropped from one cassette."""

    path: Path
    datasets: int
    exchanges: int
    records: int

    def describe(self) -> str:
        parts = []
        if self.datasets:
            parts.append(f"{self.datasets} unused dataset(s)")
        if self.records:
            parts.append(f"{self.records} record(s) beyond the n asked for")
        if self.exchanges:
            parts.append(f"{self.exchanges} unused exchange(s)")
        return ", ".join(parts) or "endpoint profiles"


def prune(
    path: Path,
    datasets: Mapping[str, int],
    profiles: Iterable[str],
    exchanges: Iterable[str] | None,
) -> Pruned | None:
    """Rewrite the cassette at ``path`` to hold only ``datasets`` (each cut to its first
    ``datasets[key]`` records), the endpoint ``profiles`` and the recorded ``exchanges``
    (``None``: keep every exchange). ``None`` when there was nothing to drop (the file is
    left alone); a cassette that is not what pytest-synthdata wrote is an error."""
    text = read_text(path)
    if text is None:
        return None
    try:
        data = YamlSerializer.deserialize(text)
    except (Tampered, ValueError, KeyError, TypeError) as exc:
        raise corrupt(path, exc) from None
    keep_profiles = set(profiles)
    metadata: dict[str, Any] = dict(data.get("metadata") or {})
    kept: dict[str, Any] = {}
    dropped_datasets = dropped_records = 0
    for key, value in metadata.items():
        if key.startswith(DATASET_PREFIX):
            if key not in datasets:
                dropped_datasets += 1
                continue
            cut = truncate(value, datasets[key]) if isinstance(value, dict) else value
            if cut is not value:
                dropped_records += int(value.get("n", 0)) - int(cut.get("n", 0))
            kept[key] = cut
        elif key in (INCOMPLETE, OWNER) or key in keep_profiles:
            kept[key] = value
    interactions = data["interactions"]
    if exchanges is not None:
        wanted = set(exchanges)
        interactions = [i for i in interactions if _ident(i) in wanted]
    dropped_exchanges = len(data["interactions"]) - len(interactions)
    if kept == metadata and not dropped_exchanges:
        return None
    body = {**data, "interactions": interactions, "metadata": kept}
    if not kept:
        body.pop("metadata")
    sealed = YamlSerializer.serialize(body)  # the one serializer: sealed with a checksum
    if found_in(sealed):  # it held no secret of this run before; never write one now
        raise SynthRecordingError(
            f"refusing to rewrite cassette {path}: it would contain a secret this run uses"
        )
    write_atomically(path, sealed)
    return Pruned(path, dropped_datasets, dropped_exchanges, dropped_records)


def _ident(exchange: dict[str, Any]) -> str:
    request = exchange["request"]
    return exchange_id(
        str(request.get("method", "")), str(request.get("uri", "")), request.get("body")
    )


def delete(paths: Iterable[Path]) -> list[Path]:
    """Delete the cassette files ``paths``, and the cassette folders that leaves empty;
    the files that were deleted."""
    deleted = []
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        deleted.append(path)
        for folder in (path.parent, path.parent.parent):
            if folder.name != FOLDER and folder.parent.name != FOLDER:
                break
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
    return deleted


def leftovers(folders: Iterable[Path], before: float) -> list[Path]:
    """The temporary files an atomic write of a cassette left in ``folders`` when its
    process was killed before the rename (``.<name>.synth.yaml.<random>.tmp``, see
    :func:`.cassettes.write_atomically`), last changed before ``before``."""
    found = []
    for folder in folders:
        for path in sorted(folder.rglob(f".*{SUFFIX}.*.tmp")) if folder.is_dir() else []:
            with contextlib.suppress(OSError):
                if path.is_file() and path.stat().st_mtime < before:
                    found.append(path)
    return found
