"""What a dataset covers: near-duplicate detection and the diversity report.

**Near-duplicates.** A record's *text* is the values of the fields the model wrote (sampled
fields left out: a fresh id does not make a copied record new), lower-cased, in field order.
Two texts are near-duplicates when their normalised Indel similarity
(``rapidfuzz.fuzz.ratio`` / 100, 1.0 for equal texts) is at least the threshold:
:data:`DEFAULT_NEAR_DUPLICATES` by default, a level that two records differing by a word or
two reach and records written independently do not. Free-text examples are compared by
``token_set_ratio`` too, so a record that copies an example's values under other labels is
caught. rapidfuzz compares in C++ and prunes by length, so checking each of 5,000 records
against all earlier ones takes seconds, not minutes (benchmarks/diversity.py).

**Variety rules.** A small model copies parts of records rather than whole ones: the first
example's name in every other record, or a handful of names over a whole dataset. So, for
the free-text fields whose examples each hold a value of their own of two words or more (a
name, an address: :func:`distinctive_values`), two more rules judge a record: it may not
repeat one example's value (:attr:`Match.field` names the field), and one value may appear in
at most :data:`REPEAT_SHARE` of the records, at least once (:func:`repeat_limits`). They are
checked only while the caller allows (``rules=`` of :meth:`NearDuplicates.check`): a dataset
lets them cost only part of its retry budget, so they never cost it exactly n.

**The report.** Per field: the share of distinct values, the normalised entropy (Shannon
entropy of the values over ``log(n)``: 1.0 when every value differs, 0.0 when all are
equal) and the most common values; plus the near-duplicates dropped and the records close
to an example.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process, utils

from .errors import SynthConfigError, surface

__all__ = [
    "CLOSE_TO_EXAMPLE",
    "DEFAULT_NEAR_DUPLICATES",
    "CloseToExample",
    "DiversityReport",
    "FieldDiversity",
    "Match",
    "NearDuplicates",
    "check_near_duplicates",
    "distinctive_values",
    "diversity_report",
    "example_texts",
    "low_variety_fields",
    "own_value_fields",
    "record_text",
    "repeat_limits",
    "variety_warning",
]

DEFAULT_NEAR_DUPLICATES = 0.9
"""Similarity (0 to 1) from which a record counts as a copy of an earlier one or an example."""
CLOSE_TO_EXAMPLE = 0.75
"""Similarity from which the report lists a record as close to an example."""
LOW_VARIETY = 0.5
LOW_VARIETY_MIN_N = 10
MOST_COMMON = 3
REPEAT_SHARE = 0.025
"""Of a field whose examples each hold a value of their own (a name, an address), one value
may recur in at most this share of a dataset's records (once below 80 records)."""


def check_near_duplicates(value: object) -> float | None:
    """``near_duplicates=`` checked: a similarity above 0 and at most 1, or ``None`` (off)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise SynthConfigError(
            "near_duplicates must be the similarity (above 0, at most 1) from which a record "
            f"counts as a copy, e.g. {DEFAULT_NEAR_DUPLICATES}, or "
            f"{'off' if surface() == 'command' else 'None'} to keep near-copies; "
            f"got {value!r}"
        )
    return float(value)


def record_text(data: Mapping[str, Any], fields: Sequence[str] | None = None) -> str:
    """The text a record is compared by: its ``fields`` (all by default), in order."""
    names = list(data) if fields is None else [name for name in fields if name in data]
    parts = []
    for name in names:
        value = data[name]
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 500.0 reads as an example's "$500"
        parts.append(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    return utils.default_process(" | ".join(parts))


def distinctive_values(
    examples: Sequence[object], fields: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Per free-text field of ``fields``, the examples' values of two words or more that no
    other example shares (compared as :func:`record_text` compares), each with the index of
    its example: a record that repeats one copies that example."""
    out: dict[str, dict[str, int]] = {}
    for name in fields:
        found: dict[str, int] = {}
        shared: set[str] = set()
        for index, example in enumerate(examples):
            value = example.get(name) if isinstance(example, Mapping) else None
            text = utils.default_process(value) if isinstance(value, str) else ""
            if len(text.split()) < 2:
                continue
            if text in found:
                shared.add(text)
            found.setdefault(text, index)
        kept = {text: index for text, index in found.items() if text not in shared}
        if kept:
            out[name] = kept
    return out


def own_value_fields(
    examples: Sequence[object], copies: Mapping[str, Mapping[str, int]]
) -> list[str]:
    """The fields whose examples (two or more) each give a value of their own
    (``copies``, :func:`distinctive_values`): names, addresses, what every record should
    hold its own of."""
    out = []
    for name, values in copies.items():
        given = sum(1 for e in examples if isinstance(e, Mapping) and isinstance(e.get(name), str))
        if len(values) >= 2 and len(values) == given:
            out.append(name)
    return out


def repeat_limits(
    examples: Sequence[object], copies: Mapping[str, Mapping[str, int]], n: int
) -> dict[str, int]:
    """How often one value may appear in ``n`` records, for each of the
    :func:`own_value_fields`: :data:`REPEAT_SHARE` of the records, at least once."""
    limit = max(1, math.floor(n * REPEAT_SHARE))
    return {name: limit for name in own_value_fields(examples, copies)}


def example_texts(examples: Sequence[object], fields: Sequence[str] | None = None) -> list[str]:
    """The seed examples as compared texts: a dict by :func:`record_text`, free text as is."""
    return [
        record_text(example, fields) if isinstance(example, Mapping) else str(example)
        for example in examples
    ]


@dataclass(frozen=True)
class Match:
    """What a text is close to: an earlier record (``example`` False) or a seed example."""

    index: int
    """The earlier record's index (among those added), or the example's."""
    score: float
    """Similarity, 0 to 1."""
    example: bool = False
    field: str | None = None
    """A variety rule's field: the value copies an example's, or (``example`` False, no
    index) repeats one already used as often as allowed; ``None``: the whole record is close."""


@dataclass(frozen=True)
class CloseToExample:
    """A record of the dataset close to a seed example."""

    record: int
    example: int
    score: float


class NearDuplicates:
    """Finds, record after record, whether a text nearly repeats an earlier one or an
    example, or breaks a variety rule. ``check`` then ``add`` the records kept, in order."""

    def __init__(
        self,
        threshold: float,
        examples: Sequence[str] = (),
        copies: Mapping[str, Mapping[str, int]] | None = None,
        repeats: Mapping[str, int] | None = None,
    ) -> None:
        self.threshold = threshold
        self.cutoff = threshold * 100
        self.examples = [utils.default_process(text) for text in examples]
        self.copies = copies or {}
        """:func:`distinctive_values` of the examples."""
        self.repeats = repeats or {}
        """:func:`repeat_limits`: how often one value of such a field may appear."""
        self.counts: dict[str, Counter[str]] = {name: Counter() for name in self.repeats}
        self.texts: list[str] = []
        self._base: NearDuplicates | None = None
        """The finder this one is a fork of (:meth:`fork`): its records come first."""
        self._base_size = 0
        self._offset = 0
        """How many records come before this one's own (those of the finders it forks)."""

    def check(
        self, text: str, data: Mapping[str, Any] | None = None, *, rules: bool = False
    ) -> Match | None:
        """The closest earlier record or example at or above the threshold, if any; with
        ``rules`` (and ``data``, the record's fields), then a variety rule it breaks."""
        example = self.closest_example(text, self.threshold)
        if example is not None:
            return example
        if rules and data is not None:
            broken = self.broken_rule(data)
            if broken is not None:
                return broken
        found = self._closest_record(text)
        if found is None:
            return None
        score, index = found
        return Match(index, round(score / 100, 4))

    def _closest_record(self, text: str) -> tuple[float, int] | None:
        """The best score at or above the cutoff among the records (those of the finder
        this one is a fork of first) and the first record with it."""
        best: tuple[float, int] | None = None
        if self._base is not None:
            best = self._unchanged_base()._closest_record(text)
        own = process.extractOne(
            text, self.texts, scorer=fuzz.ratio, processor=None, score_cutoff=self.cutoff
        )
        if own is not None and (best is None or own[1] > best[0]):
            best = (own[1], self._offset + int(own[2]))
        return best

    def _count(self, name: str, value: str) -> int:
        """How many records have ``value`` as their ``name`` (a field in :attr:`repeats`)."""
        base = self._unchanged_base()._count(name, value) if self._base is not None else 0
        return base + self.counts[name][value]

    def _unchanged_base(self) -> NearDuplicates:
        assert self._base is not None
        if len(self._base.texts) != self._base_size:
            raise RuntimeError("a near-duplicate finder took a record while a fork of it judged")
        return self._base

    def broken_rule(self, data: Mapping[str, Any]) -> Match | None:
        """The variety rule ``data`` breaks: an example's distinctive value copied, or a
        value used as often as :attr:`repeats` allows."""
        for name, values in self.copies.items():
            value = data.get(name)
            at = values.get(utils.default_process(value)) if isinstance(value, str) else None
            if at is not None:
                return Match(at, 1.0, example=True, field=name)
        for name, limit in self.repeats.items():
            value = data.get(name)
            if isinstance(value, str) and self._count(name, utils.default_process(value)) >= limit:
                return Match(-1, 1.0, field=name)
        return None

    def closest_example(self, text: str, threshold: float) -> Match | None:
        best: Match | None = None
        for i, example in enumerate(self.examples):
            score = max(fuzz.ratio(text, example), _values_copied(text, example)) / 100
            if score >= threshold and (best is None or score > best.score):
                best = Match(i, round(score, 4), example=True)
        return best

    def add(self, text: str, data: Mapping[str, Any] | None = None) -> None:
        self.texts.append(text)
        for name in self.repeats:
            value = data.get(name) if data is not None else None
            if isinstance(value, str):
                self.counts[name][utils.default_process(value)] += 1

    def fork(self) -> NearDuplicates:
        """A finder a batch extends with its own records (its texts and counts its own): it
        reads this one's records where they are, not copies of them (every batch of a wave
        forks the dataset's finder, thousands of records), so this one takes no record
        while its forks judge."""
        fork = NearDuplicates(self.threshold, copies=self.copies, repeats=self.repeats)
        fork.examples = self.examples
        fork._base, fork._base_size = self, len(self.texts)
        fork._offset = self._offset + len(self.texts)
        return fork


def _values_copied(text: str, example: str) -> float:
    """How far a record's words are all found in a free-text example (labels aside): the
    token-set similarity, counted only when the record has several words."""
    return fuzz.token_set_ratio(text, example) if len(text.split()) >= 4 else 0.0


@dataclass(frozen=True)
class FieldDiversity:
    distinct: float
    """Share of distinct values (1.0: every record has its own)."""
    entropy: float
    """Normalised Shannon entropy of the values (1.0: all differ; 0.0: all equal)."""
    most_common: list[tuple[Any, int]]


@dataclass(frozen=True)
class DiversityReport:
    n: int
    fields: dict[str, FieldDiversity]
    near_duplicates_dropped: int = 0
    close_to_examples: list[CloseToExample] = field(default_factory=list)
    """Records at or above :data:`CLOSE_TO_EXAMPLE` similarity to a seed example."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "fields": {
                name: {
                    "distinct": f.distinct,
                    "entropy": f.entropy,
                    "most_common": [[value, count] for value, count in f.most_common],
                }
                for name, f in self.fields.items()
            },
            "near_duplicates_dropped": self.near_duplicates_dropped,
            "close_to_examples": [
                {"record": c.record, "example": c.example, "score": c.score}
                for c in self.close_to_examples
            ],
        }

    def lines(self) -> list[str]:
        """The report as short lines (what ``--synth-show`` prints)."""
        out = [
            f"diversity of {self.n} records: {self.near_duplicates_dropped} near-duplicate(s) "
            f"dropped, {len(self.close_to_examples)} close to an example"
        ]
        for name, f in self.fields.items():
            common = ", ".join(f"{_short(value)} x{count}" for value, count in f.most_common)
            out.append(
                f"  {name}: {f.distinct:.0%} distinct, entropy {f.entropy:.2f}; top: {common}"
            )
        return out


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return repr(text[:27] + "..." if len(text) > 30 else text)


def _field_diversity(values: Sequence[Any]) -> FieldDiversity:
    keys = [json.dumps(v, sort_keys=True, ensure_ascii=False) for v in values]
    counts = Counter(keys)
    n = len(keys)
    if n <= 1:
        entropy = float(n)
    else:
        h = -sum(c / n * math.log(c / n) for c in counts.values())
        entropy = round(h / math.log(n), 4) + 0.0  # one value: 0.0, never -0.0
    first = {key: value for key, value in zip(keys, values, strict=True)}
    common = [(first[key], count) for key, count in counts.most_common(MOST_COMMON)]
    return FieldDiversity(round(len(counts) / n, 4) if n else 0.0, entropy, common)


def diversity_report(
    records: Sequence[Mapping[str, Any]],
    *,
    examples: Sequence[str] = (),
    compared: Sequence[str] | None = None,
    dropped: int = 0,
    close: float = CLOSE_TO_EXAMPLE,
) -> DiversityReport:
    """The report on ``records`` (JSON forms, top-level fields): ``examples`` are the seed
    examples' texts (:func:`record_text` of a dict example, a free-text example as it is),
    ``compared`` the fields records are compared by, ``dropped`` the near-duplicates the run
    dropped."""
    names: list[str] = []
    for record in records:
        names.extend(name for name in record if name not in names)
    fields = {name: _field_diversity([r.get(name) for r in records]) for name in names}
    finder = NearDuplicates(close, examples)
    near = [
        CloseToExample(i, m.index, m.score)
        for i, record in enumerate(records)
        if (m := finder.closest_example(record_text(record, compared), close)) is not None
    ]
    return DiversityReport(len(records), fields, dropped, near)


def low_variety_fields(report: DiversityReport, text_fields: Sequence[str]) -> list[str]:
    """Free-text fields with fewer than half distinct values, at ``n`` >= 10."""
    if report.n < LOW_VARIETY_MIN_N:
        return []
    return [
        name
        for name in text_fields
        if name in report.fields and report.fields[name].distinct < LOW_VARIETY
    ]


def variety_warning(report: DiversityReport, text_fields: Sequence[str], what: str) -> str | None:
    """The text of a SynthDataWarning about :func:`low_variety_fields`, or ``None``."""
    low = low_variety_fields(report, text_fields)
    if not low:
        return None
    shown = ", ".join(f"{name} ({report.fields[name].distinct:.0%} distinct)" for name in low)
    return (
        f"{what}: little variety in free-text field(s) {shown} over {report.n} records; "
        "sample them (sample={'field': samplers.faker(...)}), add cover= axes, or use a "
        "larger model"
    )
