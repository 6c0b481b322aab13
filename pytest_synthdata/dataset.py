"""The list type every generation returns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from .usage import Usage

if TYPE_CHECKING:
    from .diversity import DiversityReport

T = TypeVar("T")


class Dataset(list[T]):
    """A plain ``list`` of records that also carries the :class:`Usage` of producing it,
    and, for a spec with ``cover=`` or ``edge_cases=``, what record ``i`` covers
    (``coverage[i]``, e.g. ``{"payer": "private", "edge_case": False}``) and the
    :class:`~pytest_synthdata.diversity.DiversityReport` (``None`` when unused)."""

    usage: Usage
    coverage: list[dict[str, Any]] | None
    diversity: DiversityReport | None

    def __init__(
        self,
        records: list[T] | None = None,
        usage: Usage | None = None,
        *,
        coverage: list[dict[str, Any]] | None = None,
        diversity: DiversityReport | None = None,
    ) -> None:
        super().__init__(records or [])
        self.usage = usage if usage is not None else Usage()
        self.coverage = coverage
        self.diversity = diversity
