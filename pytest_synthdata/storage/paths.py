"""Where cassettes live (no vcrpy import: used at collection time)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

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


def cassette_for_test(module_path: Path, test_name: str) -> Path:
    """``<dir>/cassettes/<module>/<Class.test_name>.synth.yaml`` (pytest-recording's layout,
    with a suffix of its own so both plugins can share the folder)."""
    return module_path.parent / FOLDER / module_path.stem / (safe_name(test_name) + SUFFIX)


def fixture_cassette(defining_file: Path, fixture_name: str) -> Path:
    """``<dir>/cassettes/<conftest>/<fixture>.synth.yaml`` for a ``synth_fixture``."""
    stem = defining_file.stem
    return defining_file.parent / FOLDER / stem / (safe_name(fixture_name) + SUFFIX)


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
