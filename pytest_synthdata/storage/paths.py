"""Where cassettes live (no vcrpy import: used at collection time), and whether a cassette
or cache path can be used at all, checked before any request is made."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import SynthConfigError

SUFFIX = ".synth.yaml"
FOLDER = "cassettes"
DATASET_PREFIX = "dataset:"
"""Cassette metadata keys under which whole generated datasets are kept (see datasets.py)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def safe_name(name: str) -> str:
    """A file-name-safe, readable version of a test or fixture name (long ones hashed)."""
    cleaned = _UNSAFE.sub("_", name).strip("._") or "unnamed"
    if len(cleaned) > 100:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        cleaned = f"{cleaned[:80]}-{digest}"
    return cleaned


def distinct_name(name: str) -> str:
    """A file name for ``name`` that no other name gets: :func:`safe_name`'s, with a digest
    of ``name`` when characters had to be replaced (``test_é`` and ``test_è`` would both
    become ``test``, ``test_x[a/b]`` and ``test_x[a_b]`` both ``test_x_a_b``)."""
    safe = safe_name(name)
    if _UNSAFE.search(name) is None:
        return safe
    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def cassette_for_test(module_path: Path, test_name: str) -> Path:
    """``<dir>/cassettes/<module>/<Class.test_name>.synth.yaml`` (pytest-recording's layout,
    with a suffix of its own so both plugins can share the folder)."""
    return module_path.parent / FOLDER / module_path.stem / (distinct_name(test_name) + SUFFIX)


def fixture_cassette(defining_file: Path, fixture_name: str) -> Path:
    """``<dir>/cassettes/<conftest>/<fixture>.synth.yaml`` for a ``synth_fixture``."""
    stem = defining_file.stem
    return defining_file.parent / FOLDER / stem / (distinct_name(fixture_name) + SUFFIX)


def cassette_files(folder: Path) -> Iterator[Path]:
    """Every cassette of this plugin under ``folder`` (recursively)."""
    if folder.is_dir():
        yield from sorted(folder.rglob("*" + SUFFIX))


def name_from_nodeid(nodeid: str) -> str:
    """``tests/test_a.py::TestX::test_y[1]`` -> ``TestX.test_y`` (parameters share a cassette)."""
    parts = nodeid.split("[", 1)[0].split("::")[1:]
    return ".".join(parts) or "module"


def stale_cassettes(folders: set[Path], expected: set[Path]) -> list[Path]:
    """Cassettes of this plugin under ``folders`` that nothing collected would use."""
    known = {path.resolve() for path in expected}
    return [
        path
        for folder in sorted(folders)
        for path in cassette_files(folder)
        if path.resolve() not in known
    ]


RECORDING_MODES = ("new_episodes", "all", "rewrite")
"""Record modes that write a cassette even when it exists (``once`` writes a missing one)."""


def check_storage(
    cassette: str | Path | None,
    record_mode: str,
    cache_dir: str | Path | None,
    *,
    what: str | None = None,
) -> None:
    """Fail before any request when a generation could not use its cassette or cache: a
    cassette that is a folder, or in a folder that cannot be written while it may record; a
    cache folder that is a file or cannot be written. ``what`` names the cassette in messages
    (default: the ``cassette=...`` argument as given)."""
    what = what or f"cassette={str(cassette)!r}"
    if cassette is not None:
        path = Path(cassette)
        if path.is_dir():
            raise SynthConfigError(
                f"{what}: {path} is a folder; name a cassette file, such as "
                f"{str(path / ('data' + SUFFIX))!r}"
            )
        records = record_mode in RECORDING_MODES or (record_mode == "once" and not path.exists())
        problem = writable_problem(path.parent) if records else None
        if problem is not None:
            raise SynthConfigError(
                f"{what} cannot be recorded: {problem}; choose a path in a folder you can "
                "write to (it is created if missing), or replay an existing cassette with "
                "record_mode='none'"
            )
    if cache_dir is not None:
        problem = writable_problem(Path(cache_dir))
        if problem is not None:
            raise SynthConfigError(
                f"cache_dir={str(cache_dir)!r}: {problem}; name a folder (it is created if missing)"
            )


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be a folder (a file is in the way), or ``None``."""
    for place in (folder, *folder.parents):
        if place.exists():
            if place.is_dir():
                return None
            if place == folder:
                return f"{folder} is a file, not a folder"
            return f"{place} is a file, so {folder} cannot be created"
    return None


def writable_problem(folder: Path) -> str | None:
    """Why no file can be written into ``folder`` (created when missing), or ``None``.
    Tried with a temporary file in the nearest folder that exists, removed at once."""
    problem = folder_problem(folder)
    if problem is not None:
        return problem
    existing = next((place for place in (folder, *folder.parents) if place.exists()), None)
    if existing is None:
        return None
    try:
        handle, name = tempfile.mkstemp(prefix=".synthdata-", suffix=".tmp", dir=existing)
        os.close(handle)
        os.unlink(name)
    except OSError as exc:
        return f"{existing} is not writable ({exc.strerror or exc})"
    return None
