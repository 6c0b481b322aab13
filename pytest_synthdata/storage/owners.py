"""Who owns a cassette: the test, the conftest fixture or the library call that records into
it, written into the cassette whenever it is recorded into.

``--synth-update`` deletes a cassette file only when it can prove that nobody owns it any
more (see ``plugin/update.py``); a cassette without an owner, or one this package did not
write, is never deleted. The owner is one metadata entry of the cassette::

    metadata:
      owner: {kind: library, id: generate, test: tests/test_a.py::test_x}

``kind`` is ``test`` (``id``: the test's node id, without parameters), ``fixture`` (``id``:
the fixture's name) or ``library`` (``id``: the call, ``generate``, ``extract`` ...;
``test``: the test that made it, or none outside any test). A cassette several owners
recorded into holds the list of them. The entry is sealed by the checksum with the rest of
the file, and a replay never reads it.

Nothing heavy is imported here, unless a cassette is read (:func:`recorded_owners`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OWNER = "owner"
"""The cassette metadata key under which its owners are kept."""

KINDS = ("test", "fixture", "library")

__all__ = ["KINDS", "OWNER", "Owner", "base_nodeid", "current_test", "merged", "recorded_owners"]


@dataclass(frozen=True)
class Owner:
    """Who records into a cassette (see the module's docstring)."""

    kind: str
    id: str
    test: str | None = None

    @classmethod
    def of_test(cls, nodeid: str) -> Owner:
        return cls("test", base_nodeid(nodeid))

    @classmethod
    def of_fixture(cls, name: str) -> Owner:
        return cls("fixture", name)

    @classmethod
    def of_library(cls, call: str, test: str | None) -> Owner:
        return cls("library", call, base_nodeid(test) if test else None)

    @property
    def calling_test(self) -> str | None:
        """The test this owner's calls run in, when it is one."""
        return self.id if self.kind == "test" else self.test

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "test": self.test}

    @classmethod
    def from_dict(cls, data: object) -> Owner | None:
        """The owner a cassette names, or ``None`` when the entry is not one."""
        if not isinstance(data, dict):
            return None
        kind, ident, test = data.get("kind"), data.get("id"), data.get("test")
        if kind not in KINDS or not isinstance(ident, str) or not ident:
            return None
        if test is not None and not isinstance(test, str):
            return None
        return cls(str(kind), ident, test or None)

    def describe(self) -> str:
        if self.kind == "test":
            return f"test {self.id}"
        if self.kind == "fixture":
            return f"fixture {self.id!r}"
        where = f"in test {self.test}" if self.test else "outside any test"
        return f"a library call ({self.id}) {where}"


def base_nodeid(nodeid: str) -> str:
    """``tests/test_a.py::test_x[1]`` -> ``tests/test_a.py::test_x`` (parameters share a
    cassette, so they share its ownership)."""
    return nodeid.split("[", 1)[0]


def current_test() -> str | None:
    """The node id of the test pytest is running in this process (from the
    ``PYTEST_CURRENT_TEST`` variable pytest sets; no pytest import), or ``None``."""
    value = os.environ.get("PYTEST_CURRENT_TEST", "")
    nodeid = value.rsplit(" (", 1)[0].strip() if value.endswith(")") else value.strip()
    return base_nodeid(nodeid) if nodeid else None


def owners_in(value: object) -> list[Owner] | None:
    """The owners a metadata entry names (a mapping, or a list of them); ``None``: no
    entry, or one that is not a list of owners."""
    entries = value if isinstance(value, list) else [value]
    owners = [Owner.from_dict(entry) for entry in entries]
    if value is None or not owners or any(owner is None for owner in owners):
        return None
    return [owner for owner in owners if owner is not None]


def merged(value: object, owner: Owner) -> dict[str, Any] | list[dict[str, Any]]:
    """The metadata entry once ``owner`` recorded into a cassette whose entry is ``value``:
    the owners already named stay (each of them may still need the file), ``owner`` is
    added; one owner is written as a mapping, several as a list."""
    owners = owners_in(value) or []
    if owner not in owners:
        owners.append(owner)
    if len(owners) == 1:
        return owners[0].as_dict()
    return [each.as_dict() for each in owners]


def recorded_owners(path: Path) -> tuple[list[Owner], str]:
    """The owners the cassette at ``path`` names, or why none can be trusted: ``([], why)``
    for a file this package did not write (no valid checksum, not a cassette) or one that
    names no owner (written before owners were recorded)."""
    from .cassettes import YamlSerializer
    from .integrity import Tampered

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], f"unreadable ({exc})"
    try:
        data = YamlSerializer.deserialize(text)
    except Tampered as exc:
        return [], f"not a file pytest-synthdata wrote: {exc}"
    except Exception:  # any YAML or shape error: not a cassette of ours
        return [], "not a pytest-synthdata cassette"
    metadata = data.get("metadata")
    value = metadata.get(OWNER) if isinstance(metadata, dict) else None
    if value is None:
        return [], "no owner recorded, so it cannot be proven stale (delete it by hand if unused)"
    owners = owners_in(value)
    if owners is None:
        return [], "its owner entry is not one pytest-synthdata writes"
    return owners, ""
