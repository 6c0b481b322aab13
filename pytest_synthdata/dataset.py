"""The list type every generation returns."""

from __future__ import annotations

from typing import TypeVar

from .usage import Usage

T = TypeVar("T")


class Dataset(list[T]):
    """A plain ``list`` of records that also carries the :class:`Usage` of producing it."""

    usage: Usage

    def __init__(self, records: list[T] | None = None, usage: Usage | None = None) -> None:
        super().__init__(records or [])
        self.usage = usage if usage is not None else Usage()
