"""Cassette metadata on vcrpy 8, the last vcrpy for Python 3.10.

Stored datasets and the recording state live in a cassette's metadata, next to its
interactions: vcrpy 9 (Python 3.11+) has that built in (``Cassette.get_metadata``, a third
value from a persister's ``load_cassette``, a ``metadata`` key in the serialized dict).
vcrpy 8 has none of it. :func:`install` gives vcrpy 8's ``Cassette`` the same small API
with the same meaning, and :func:`serialize`/:func:`deserialize` carry the metadata through
vcrpy 8's (de)serialization; with vcrpy 9 all three leave vcrpy as it is.
"""

from __future__ import annotations

from typing import Any

from vcr.cassette import Cassette
from vcr.persisters.filesystem import CassetteNotFoundError
from vcr.record_mode import RecordMode
from vcr.serialize import deserialize as _vcr_deserialize
from vcr.serialize import serialize as _vcr_serialize

try:
    from vcr.errors import MissingMetadataError
except ImportError:  # vcrpy 8

    class MissingMetadataError(KeyError):  # type: ignore[no-redef]
        """A metadata key a write-protected cassette does not hold (as in vcrpy 9)."""

        def __init__(self, cassette: Any = None, key: str = "") -> None:
            super().__init__(key)
            self.cassette, self.key = cassette, key


__all__ = ["HAS_METADATA", "MissingMetadataError", "deserialize", "install", "serialize"]

HAS_METADATA: bool = hasattr(Cassette, "get_metadata")
"""Whether this vcrpy keeps cassette metadata itself (vcrpy 9 and later)."""


class _Carrier:
    """A serializer that hands the ``metadata`` of a cassette past vcrpy 8, both ways."""

    def __init__(self, inner: Any, metadata: dict[str, Any] | None = None) -> None:
        self.inner = inner
        self.metadata = metadata

    def serialize(self, data: dict[str, Any]) -> str:
        text: str = self.inner.serialize(
            {**data, "metadata": self.metadata} if self.metadata else data
        )
        return text

    def deserialize(self, text: str) -> Any:
        data = self.inner.deserialize(text)
        if isinstance(data, dict) and data.get("metadata"):
            self.metadata = data["metadata"]
        return data


def serialize(cassette_dict: dict[str, Any], serializer: Any) -> str:
    """vcrpy's ``serialize``, with the cassette's ``metadata`` on every vcrpy."""
    if HAS_METADATA:
        return str(_vcr_serialize(cassette_dict, serializer))
    return str(_vcr_serialize(cassette_dict, _Carrier(serializer, cassette_dict.get("metadata"))))


def deserialize(text: str, serializer: Any) -> Any:
    """vcrpy's ``deserialize``: ``(requests, responses)``, and the metadata third when the
    cassette holds any, on every vcrpy."""
    if HAS_METADATA:
        return _vcr_deserialize(text, serializer)
    carrier = _Carrier(serializer)
    requests, responses = _vcr_deserialize(text, carrier)
    return (requests, responses, carrier.metadata) if carrier.metadata else (requests, responses)


def _metadata(cassette: Any) -> dict[str, Any]:
    found: dict[str, Any] = cassette.__dict__.setdefault("_metadata", {})
    return found


def _get_metadata(self: Any, key: str, default: Any) -> Any:
    """The value stored under ``key``; else store ``default`` and return it, or raise
    :class:`MissingMetadataError` if the record mode does not allow changing the cassette."""
    metadata = _metadata(self)
    if key in metadata:
        return metadata[key]
    if self.write_protected:
        raise MissingMetadataError(cassette=self, key=key)
    metadata[key] = default
    self.dirty = True
    return default


def _load(self: Any) -> None:
    """vcrpy 8's ``Cassette._load``, keeping the metadata a persister returns third."""
    _metadata(self)
    try:
        requests, responses, *metadata = self._persister.load_cassette(
            self._path, serializer=self._serializer
        )
    except CassetteNotFoundError:
        return
    for request, response in zip(requests, responses, strict=True):
        self.append(request, response)
        self._old_interactions.append((request, response))
    self._loaded_count = len(self.data)
    self.dirty = False
    self.rewound = True
    self._metadata = metadata[0] if metadata else {}


def _save(self: Any, force: bool = False) -> None:
    """vcrpy 8's ``Cassette._save``, writing the metadata with the interactions."""
    cassette_dict: dict[str, Any]
    if self.record_mode == RecordMode.ALL:
        if not (force or self.dirty):
            return
        interactions = self._rerecorded_interactions()
        cassette_dict = {
            "requests": [request for request, _ in interactions],
            "responses": [response for _, response in interactions],
        }
    elif self.drop_unused_requests and len(self._played_interactions) < len(self._old_interactions):
        cassette_dict, force = self._build_used_interactions_dict(), True
    else:
        cassette_dict = self._as_dict()
    if force or self.dirty:
        metadata = _metadata(self)
        if metadata:
            cassette_dict = {**cassette_dict, "metadata": metadata}
        self._persister.save_cassette(self._path, cassette_dict, serializer=self._serializer)
        self.dirty = False


def install() -> None:
    """Give vcrpy 8's ``Cassette`` vcrpy 9's metadata; nothing on vcrpy 9."""
    if HAS_METADATA or getattr(Cassette, "_synthdata_metadata", False):
        return
    Cassette.get_metadata = _get_metadata
    Cassette._load = _load
    Cassette._save = _save
    Cassette._synthdata_metadata = True
