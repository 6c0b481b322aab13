"""The round-trip report: how faithfully records survived being written and read back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ..usage import Usage
from .fidelity import dumps, same, short


@dataclass(frozen=True)
class Mismatch:
    """A field whose extracted value differs from the record's (``index`` into the records)."""

    index: int
    field: str
    expected: Any
    got: Any
    text: str


@dataclass(frozen=True, repr=False)
class RoundTripReport:
    """How faithfully records survived being written as texts and extracted back.

    ``accuracy`` is the fraction of all compared fields that agree; ``per_field`` the same
    per field name; ``mismatches`` every disagreement, with its text. ``str(report)`` lists
    everything (texts included); ``repr(report)`` is one line that starts with the
    mismatches, so the message of ``assert report.accuracy >= 0.95, report`` shows them even
    where pytest shortens it.
    """

    total: int
    accuracy: float
    per_field: dict[str, float]
    mismatches: list[Mismatch]
    texts: list[str]
    extracted: list[BaseModel]
    usage: Usage = field(default_factory=Usage)

    def summary(self, limit: int = 20) -> str:
        """The accuracy, the per-field agreement and up to ``limit`` mismatches with texts."""
        lines = [
            f"round trip of {self.total} record(s): {self.accuracy:.1%} of fields agree, "
            f"{len(self.mismatches)} mismatch(es)"
        ]
        if self.per_field:
            lines.append(f"per field: {self._per_field()}")
        for mismatch in self.mismatches[:limit]:
            lines.append(f"  {describe_mismatch(mismatch)}")
            lines.append(f"    text: {short(mismatch.text, 300)}")
        if len(self.mismatches) > limit:
            lines.append(f"  ... and {len(self.mismatches) - limit} more")
        lines.append(f"usage: {self.usage.summary()}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        shown = "; ".join(describe_mismatch(m) for m in self.mismatches[:5])
        more = f"; ... {len(self.mismatches) - 5} more" if len(self.mismatches) > 5 else ""
        return (
            f"<RoundTripReport {self.accuracy:.1%} agree, {len(self.mismatches)} mismatch(es)"
            f"{': ' + shown + more if shown else ''} | {self.total} record(s), per field: "
            f"{self._per_field()}>"
        )

    def _per_field(self) -> str:
        return ", ".join(f"{name} {share:.0%}" for name, share in self.per_field.items())


def describe_mismatch(mismatch: Mismatch) -> str:
    return (
        f"record {mismatch.index} {mismatch.field}: expected "
        f"{short(dumps(mismatch.expected))}, got {short(dumps(mismatch.got))}"
    )


def build_report(
    records: list[BaseModel], texts: list[str], extracted: list[BaseModel], usage: Usage
) -> RoundTripReport:
    agree: dict[str, int] = {}
    seen: dict[str, int] = {}
    mismatches: list[Mismatch] = []
    for index, (record, text, back) in enumerate(zip(records, texts, extracted, strict=True)):
        expected_data = record.model_dump(mode="json")
        got_data = back.model_dump(mode="json")
        for name in type(record).model_fields:
            if name not in expected_data:
                continue
            expected, got = expected_data[name], got_data.get(name)
            seen[name] = seen.get(name, 0) + 1
            if same(expected, got):
                agree[name] = agree.get(name, 0) + 1
            else:
                mismatches.append(Mismatch(index, name, expected, got, text))
    compared = sum(seen.values())
    return RoundTripReport(
        total=len(records),
        accuracy=(sum(agree.values()) / compared) if compared else 1.0,
        per_field={name: agree.get(name, 0) / count for name, count in seen.items()},
        mismatches=mismatches,
        texts=list(texts),
        extracted=list(extracted),
        usage=usage,
    )
