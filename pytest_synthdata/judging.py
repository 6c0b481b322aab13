"""Judging the records of a dataset: each answer's items (valid, not repeated within the
batch, not nearly repeating a kept record or an example) and the records kept so far (exact
duplicates and repeated ``unique`` values), plus what a record dataset covers and its
diversity report, rebuilt the same way from a run and from a replay (see :mod:`.records`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from .batching import Verdict
from .coverage import Slot, merge_sampled
from .diversity import (
    DiversityReport,
    Match,
    NearDuplicates,
    diversity_report,
    example_texts,
    record_text,
)
from .fieldlines import wire_name
from .jsonform import json_form
from .jsonread import nonfinite_problem
from .planning import Planner
from .spec import SynthSpec, format_validation_error
from .storage.datasets import EncodedItem
from .storage.secrets import redact

Accepted = tuple[Any, dict[str, Any]]
"""A validated record and its JSON form (what duplicates are judged on)."""


def sampled_keys(spec: SynthSpec) -> tuple[str, ...]:
    """The JSON keys of the fields code sets (``sample=``): they cost no output tokens."""
    return tuple(wire_name(spec.model, name) for name, _ in spec.sample)


def describe_records(
    spec: SynthSpec,
    records: Sequence[BaseModel],
    dropped: int,
    data: Sequence[dict[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]] | None, DiversityReport]:
    """What a record dataset covers (``coverage``: ``None`` without ``cover=`` or
    ``edge_cases=``) and its diversity report, from the spec and the records alone: a
    run and a replay of it say the same. ``dropped``: the near-duplicates the run dropped;
    ``data``: the records' JSON forms when the caller holds them already (not made again)."""
    plan = spec.slots
    coverage = plan.coverage(len(records)) if spec.cover or spec.edge_cases else None
    report = diversity_report(
        data if data is not None else [json_form(record) for record in records],
        examples=example_texts(spec.examples, plan.written_fields),
        compared=plan.written_fields,
        dropped=dropped,
    )
    return coverage, report


def near_problem(what: str, match: Match) -> str:
    """Why a record was dropped as a near-duplicate (``what``: "Record 3", ...)."""
    if match.field is not None and not match.example:
        return (
            f"{what} repeated the {match.field} of earlier records and was dropped; give "
            f"each record a {match.field} of its own."
        )
    if match.field is not None:
        return (
            f"{what} copied the {match.field} of example {match.index + 1} and was dropped; "
            f"write a {match.field} of your own, not one from the examples."
        )
    if match.example:
        return (
            f"{what} nearly copied example {match.index + 1} (similarity {match.score:.2f}) "
            "and was dropped; write a new record in the examples' style, not a copy."
        )
    return (
        f"{what} nearly repeated an earlier record (similarity {match.score:.2f}) and was "
        "dropped; write one that differs in its wording and values."
    )


def fork(finder: NearDuplicates | None) -> NearDuplicates | None:
    """A copy of ``finder`` a batch extends with its own records (not shared with others)."""
    return None if finder is None else finder.fork()


class Leeway:
    """How long a dataset asks again for records that break its variety rules
    (:meth:`.diversity.NearDuplicates.broken_rule`): while fewer than ``most`` records were
    dropped for them and less than half of its retry budget is spent. After that such
    records are kept: the rules make the data better, exactly n comes first.

    Each batch of a wave may drop its share of what is left (:meth:`shares`), judged by what
    earlier waves dropped and spent plus its own drops and follow-ups, never a sibling's, so
    the requests depend only on earlier answers."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.dropped = 0
        """Records dropped for the rules in earlier waves (and at merges)."""
        self.planner: Planner | None = None

    def shares(self, sizes: Sequence[int]) -> list[int]:
        """What each batch of a wave (``sizes``: the records each owes) may drop for the
        rules: what is left, split in proportion to their sizes."""
        left, total = max(0, self.most - self.dropped), sum(sizes) or 1
        shares = [left * size // total for size in sizes]
        for i in range(left - sum(shares)):  # the remainder, to the first batches
            shares[i % len(shares)] += 1
        return shares

    def allows(self, dropped: int = 0, follow_ups: int = 0, share: int | None = None) -> bool:
        """Whether the rules still apply, after ``dropped`` records of a batch's ``share``
        (``None``: the dataset's, at a merge) and its ``follow_ups``."""
        if dropped >= (self.most - self.dropped if share is None else share):
            return False
        return self.planner is None or self.planner.spare(follow_ups)


def canonical(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_key(text: str) -> bytes:
    """What an exact duplicate is known by: the digest of a record's :func:`canonical` form
    (16 bytes, not the whole text: 10,000 records hold about 2 MiB less per set of keys)."""
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class Judge:
    """Judges a batch's records: valid, and not repeated within the batch nor nearly
    repeating a kept record or an example; counts how many were valid and invalid (what
    the batch's follow-ups scale their request by).

    With ``owed`` set (slots: by the request that was just sent), the k-th item answers the
    k-th owed slot: its sampled values are merged in before validation, and the merged item
    is what is kept (so a replay does not depend on how the values were drawn)."""

    def __init__(
        self,
        model: type[BaseModel],
        usage: Any = None,
        finder: NearDuplicates | None = None,
        written: Sequence[str] = (),
        fallback: set[int] | None = None,
        leeway: Leeway | None = None,
        share: int = 0,
    ) -> None:
        self.model = model
        self.usage = usage
        self.finder = finder
        self.written = written
        self.fallback = fallback if fallback is not None else set()
        self.owed: list[Slot] | None = None
        self.local: set[bytes] = set()
        self.kept: list[dict[str, Any]] = []
        self.valid = self.invalid = 0
        self.leeway = leeway
        self.attempt = 0
        """The request being judged: 0 for the batch's first, then its follow-ups."""
        self.broke = 0
        """Records this batch dropped for breaking a variety rule."""
        self.share = share
        """How many it may drop for them (:meth:`Leeway.shares`)."""
        self.copied: set[str] = set()
        """Fields in which a record of this batch copied an example's value: the examples
        its later requests show leave them out (:func:`.prompts.batch_messages`)."""

    def __call__(self, item: object, position: int) -> Verdict[Accepted]:
        slot = None
        if self.owed is not None:
            if position > len(self.owed):
                self.invalid += 1
                return Verdict(
                    problems=[
                        f"Record {position} was not asked for: write exactly "
                        f"{len(self.owed)} records, one per line of the list."
                    ]
                )
            slot = self.owed[position - 1]
            item = merge_sampled(self.model, item, slot.sampled)
        try:  # as JSON: what the model sent is JSON (strict models accept its dates ...)
            record = self.model.model_validate_json(json.dumps(item))
            problem = nonfinite_problem(record, position)  # JSON cannot carry NaN, Infinity
            # sets in a stable order: keys and prompts as every run writes them
            data = json_form(record) if problem is None else {}
        except ValidationError as exc:
            self.invalid += 1
            if slot is not None and _blames_boundaries(exc, slot.boundary):
                self.fallback.add(slot.index)
            return Verdict(
                problems=[
                    f"Record {position} was invalid and was dropped:\n"
                    + format_validation_error(exc)
                ]
            )
        except Exception as exc:  # a validator or serializer that fails another way
            self.invalid += 1
            if slot is not None and slot.boundary:  # as a check across fields, above
                self.fallback.add(slot.index)
            return Verdict(
                problems=[
                    f"Record {position} was invalid and was dropped: {raised(self.model, exc)}"
                ]
            )
        if problem is not None:
            self.invalid += 1
            return Verdict(problems=[problem])
        self.valid += 1
        key = record_key(canonical(data))
        if key in self.local:
            return Verdict(
                problems=[f"Record {position} repeated an earlier record."], duplicate=True
            )
        if self.finder is not None:
            text = record_text(data, self.written)
            rules = self.leeway is not None and self.leeway.allows(
                self.broke, self.attempt, self.share
            )
            match = self.finder.check(text, data, rules=rules)
            if match is not None:
                if self.usage is not None:
                    self.usage.dropped_near_duplicate += 1
                self.broke += match.field is not None
                if match.field is not None and match.example:
                    self.copied.add(match.field)
                return Verdict(problems=[near_problem(f"Record {position}", match)], duplicate=True)
            self.finder.add(text, data)
        self.local.add(key)
        self.kept.append(data)
        raw = EncodedItem(json.dumps(item, ensure_ascii=False))  # as stored: not the parsed item
        return Verdict((record, data), slot=None if slot is None else slot.index, raw=raw)


def raised(model: type[BaseModel], exc: Exception) -> str:
    """What a validator or serializer of ``model`` raised when it failed other than with a
    validation error (a ``TypeError``, a ``KeyError``, ...): the record is invalid, and the
    exception is named, briefly, with any secret masked."""
    what = "serialization" if isinstance(exc, PydanticSerializationError) else "validation"
    message = " ".join(redact(str(exc)).split())
    if len(message) > 200:
        message = message[:197] + "..."
    name = type(exc).__name__
    return (
        f"{model.__name__}'s {what} raised {name}: {message}"
        if message
        else (f"{model.__name__}'s {what} raised {name}")
    )


def _blames_boundaries(exc: ValidationError, boundary: Sequence[str]) -> bool:
    """Whether a record with edge-case ``boundary`` values failed on them or on a check
    across fields (a model validator), which the boundary values may have caused."""
    if not boundary:
        return False
    return any(not error["loc"] or error["loc"][0] in boundary for error in exc.errors())


class AcceptedRecords:
    """The records kept so far, in order, and what duplicates are judged on."""

    def __init__(self, unique: tuple[str, ...], prefix: list[tuple[Any, object]]) -> None:
        self.unique = unique
        self.records: list[Any] = []
        self.data: list[dict[str, Any]] = []
        self.seen: set[bytes] = set()
        self.values: dict[str, set[str]] = {name: set() for name in unique}
        for record, _ in prefix:
            self.add(record, json_form(record))

    def clash(self, data: dict[str, Any]) -> str | None:
        """Why ``data`` is a duplicate of a kept record (``None``: it is not)."""
        text = canonical(data)
        if record_key(text) in self.seen:
            return f"duplicate record dropped: {text[:200]}"
        clash = [name for name in self.unique if canonical(data.get(name)) in self.values[name]]
        if clash:
            return f"record with an already used {', '.join(clash)} dropped"
        return None

    def add(self, record: Any, data: dict[str, Any]) -> None:
        self.records.append(record)
        self.data.append(data)
        self.seen.add(record_key(canonical(data)))
        for name in self.unique:
            self.values[name].add(canonical(data.get(name)))
