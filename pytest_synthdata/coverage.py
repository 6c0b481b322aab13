"""Record slots: what code chooses for each record before the model writes it.

Each record index (a *slot*) gets

- its sampled values (``sample=``, see :mod:`~pytest_synthdata.samplers`);
- one combination of the coverage axes (``cover=``): dimensions that are not fields, stated
  in the request for that record. The combinations are ordered once, greedily, so that every
  prefix covers every value of every axis as soon as it can and then as many pairs of values
  as fit; slot ``i`` takes combination ``i % combinations``, so with ``n`` at least the
  number of combinations every one appears and counts differ by at most one;
- a first letter for each name the model writes (a free-text field whose examples each
  give a value of their own of two words or more, all in Latin letters: see
  :func:`~.diversity.own_value_fields`), stated in the request: "Its patient_name starts
  with the letter K.". The letters are :data:`INITIALS` but the examples' own first
  letters (a small model asked for a "J" writes the example's "John Doe"), unless that
  leaves fewer than half of them; every run of as many slots as there are letters takes
  each once, in an order from the seed, so names spread over the alphabet instead of
  collapsing onto the few a small model prefers;
- whether it is an edge case (``edge_cases=`` a share of slots, spread evenly by index with
  a phase from the seed): then code picks boundary values of up to two constrained fields
  (min and max, a string at its max length, the earliest or latest allowed date, an empty
  list, ``None`` for an optional field) as sampled values, and the request asks for free
  text that breaks naive code.

Everything depends on the seed and the index alone: a dataset is a stable prefix when ``n``
grows, and a replay plans the very same slots.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import json
import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel, ValidationError

from .diversity import distinctive_values, own_value_fields
from .errors import SynthConfigError, surface
from .fieldlines import wire_name
from .samplers import Sampler, check_samplers, draw, field_adapter, rng_for

__all__ = [
    "EDGE_HINT",
    "INITIALS",
    "MAX_COMBINATIONS",
    "CombinationOrder",
    "Slot",
    "SlotPlan",
    "boundary_values",
    "check_axes",
    "check_edge_cases",
    "combination_order",
    "free_text_fields",
    "make_plan",
    "merge_sampled",
    "wire_values",
]

MAX_COMBINATIONS = 1_000
EDGE_FIELDS = 2  # constrained fields set to a boundary value in one edge-case slot
EDGE_HINT = (
    "Edge case: make {fields} realistic but unusual, the kind of value that breaks naive "
    "code: apostrophes and hyphens in names (O'Brien-Nguyen), non-Latin scripts (李小龙, "
    "Ελένη), a very long or a very short value, leading zeros in codes (007)."
)
INITIALS = "ABCDEFGHIJKLMNOPRSTVWYZ"
"""The first letters a name is given (Q, U and X begin too few names to ask for)."""
INITIAL_HINT = "Its {field} starts with the letter {letter}."
_FILLER = "Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "


@dataclass(frozen=True)
class Slot:
    """What code chose for one record."""

    index: int
    sampled: dict[str, Any] = field(default_factory=dict)
    """Field name -> value (its JSON form), the user's samplers and edge-case boundaries."""
    axes: dict[str, Any] = field(default_factory=dict)
    edge_case: bool = False
    hints: list[str] = field(default_factory=list)
    boundary: tuple[str, ...] = ()
    """The fields of ``sampled`` that hold an edge case's boundary value."""

    def without_boundaries(self) -> Slot:
        """The slot with its boundary values left to the model (for a record the model's
        own validators reject with them: a boundary valid for a field alone may not be for
        the whole record)."""
        kept = {k: v for k, v in self.sampled.items() if k not in self.boundary}
        return Slot(self.index, kept, dict(self.axes), self.edge_case, list(self.hints))

    def coverage(self) -> dict[str, Any]:
        """``{"specialty": "oncology", "payer": "private", "edge_case": False}``."""
        return {**self.axes, "edge_case": self.edge_case}

    def as_dict(self) -> dict[str, Any]:
        return {
            "sampled": dict(self.sampled),
            "axes": dict(self.axes),
            "edge_case": self.edge_case,
            "hints": list(self.hints),
        }


# --------------------------------------------------------------------------- checks


def check_axes(model: type[BaseModel], cover: object) -> dict[str, tuple[Any, ...]]:
    """``cover=`` checked: a dict of axis names (not fields) to non-empty lists of distinct
    JSON values, with at most :data:`MAX_COMBINATIONS` combinations."""
    if cover is None:
        return {}
    if not isinstance(cover, Mapping) or not cover:
        raise SynthConfigError(
            "cover must be a non-empty dict of axis names to lists of values, e.g. "
            f"{{'payer': ['medicare', 'private']}}, got {cover!r:.80}"
        )
    axes: dict[str, tuple[Any, ...]] = {}
    total = 1
    for name, items in cover.items():
        if not isinstance(name, str) or not name.strip() or name == "edge_case":
            raise SynthConfigError(
                f"cover: axis names must be non-empty strings other than 'edge_case', got {name!r}"
            )
        if name in model.model_fields:
            raise SynthConfigError(
                f"cover: {name!r} is a field of {model.__name__}; axes are dimensions that are "
                f"not fields. To set a field's values use {_sample_hint(name)}"
            )
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or not items:
            raise SynthConfigError(f"cover[{name!r}] must be a non-empty list, got {items!r:.80}")
        seen: set[str] = set()
        for item in items:
            if isinstance(item, float) and not math.isfinite(item):
                raise SynthConfigError(f"cover[{name!r}]: {item!r} is not a JSON value")
            if not isinstance(item, (str, int, float, bool)):
                raise SynthConfigError(
                    f"cover[{name!r}]: values must be strings or numbers, got {item!r:.80}"
                )
            key = json.dumps(item)
            if key in seen:
                raise SynthConfigError(f"cover[{name!r}]: {item!r} is listed twice")
            seen.add(key)
        axes[name] = tuple(items)
        total *= len(items)
        if total > MAX_COMBINATIONS:
            raise SynthConfigError(
                f"cover has more than {MAX_COMBINATIONS} combinations of values; use fewer "
                "axes or fewer values per axis"
            )
    return axes


def check_edge_cases(edge_cases: object) -> float:
    if edge_cases is None:
        return 0.0
    if (
        isinstance(edge_cases, bool)
        or not isinstance(edge_cases, (int, float))
        or not 0 <= edge_cases <= 1
    ):
        raise SynthConfigError(
            f"edge_cases must be the share of records that are edge cases, a number from 0 to "
            f"1 (e.g. 0.2), got {edge_cases!r}"
        )
    return float(edge_cases)


# --------------------------------------------------------------------------- coverage


def combination_order(axes: Mapping[str, Sequence[Any]], count: int) -> list[tuple[int, ...]]:
    """The first ``count`` (at most all) combinations as value positions per axis, in the
    order slots take them: each next one covers the most values not yet used, then the most
    pairs of values not yet used, ties going to the earliest in product order."""
    order = CombinationOrder([len(values) for values in axes.values()])
    order.extend(count)
    return order.order


class CombinationOrder:
    """:func:`combination_order`, grown on demand (every prefix is the same)."""

    def __init__(self, sizes: Sequence[int]) -> None:
        self.sizes = list(sizes)
        self.remaining = list(itertools.product(*(range(s) for s in sizes)))
        self.pairs_of = list(itertools.combinations(range(len(sizes)), 2))
        self.seen_values: set[tuple[int, int]] = set()
        self.seen_pairs: set[tuple[int, int, int, int]] = set()
        self.values_left = list(self.sizes)  # per axis, values not used yet
        self.pairs_left = [self.sizes[a] * self.sizes[b] for a, b in self.pairs_of]
        self.order: list[tuple[int, ...]] = []

    def extend(self, count: int) -> None:
        while len(self.order) < count and self.remaining:
            self._take(self._best())

    def _best(self) -> int:
        if not any(self.pairs_left) and not any(self.values_left):
            return 0  # everything is covered: product order
        bound = (sum(1 for left in self.values_left if left), sum(1 for p in self.pairs_left if p))
        best_at, best_score = 0, (-1, -1)
        for at, combo in enumerate(self.remaining):
            score = (
                sum((axis, v) not in self.seen_values for axis, v in enumerate(combo)),
                sum((a, combo[a], b, combo[b]) not in self.seen_pairs for a, b in self.pairs_of),
            )
            if score > best_score:
                best_at, best_score = at, score
                if score == bound:
                    break
        return best_at

    def _take(self, at: int) -> None:
        combo = self.remaining.pop(at)
        self.order.append(combo)
        for axis, value in enumerate(combo):
            if (axis, value) not in self.seen_values:
                self.seen_values.add((axis, value))
                self.values_left[axis] -= 1
        for i, (a, b) in enumerate(self.pairs_of):
            pair = (a, combo[a], b, combo[b])
            if pair not in self.seen_pairs:
                self.seen_pairs.add(pair)
                self.pairs_left[i] -= 1


# --------------------------------------------------------------------------- edge cases


def _bounds(metadata: Sequence[object]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in metadata:
        for kind in (Ge, Gt, Le, Lt, MaxLen, MinLen):
            if isinstance(item, kind):
                name = {Ge: "ge", Gt: "gt", Le: "le", Lt: "lt"}.get(kind)
                if name:
                    out[name] = getattr(item, name)
                else:
                    out["max_length" if kind is MaxLen else "min_length"] = getattr(
                        item, "max_length" if kind is MaxLen else "min_length"
                    )
        for name in ("ge", "gt", "le", "lt", "max_length", "min_length"):
            value = getattr(item, name, None)
            if value is not None and name not in out:
                out[name] = value
    return out


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The type inside ``X | None`` and whether ``None`` is allowed."""
    args = typing.get_args(annotation)
    if args and type(None) in args:
        rest = [arg for arg in args if arg is not type(None)]
        return (rest[0] if len(rest) == 1 else annotation), True
    return annotation, False


def _step(base: Any, value: Any, up: bool) -> Any:
    """The nearest value past an exclusive bound."""
    sign = 1 if up else -1
    if base is int:
        return value + sign
    if base is dt.date:
        return value + sign * dt.timedelta(days=1)
    if base is dt.datetime:
        return value + sign * dt.timedelta(seconds=1)
    if base is decimal.Decimal:
        return decimal.Decimal(value) + sign * decimal.Decimal("0.01")
    return float(value) + sign * max(abs(float(value)) * 1e-6, 0.01)


def _text(length: int) -> str:
    text = (_FILLER * (length // len(_FILLER) + 1))[:length]
    return text[:-1] + "x" if text.endswith(" ") else text


def boundary_values(model: type[BaseModel], name: str) -> list[Any]:
    """The field's boundary values that validate, as JSON forms: min and max, a string at
    its length limits, the earliest or latest allowed date, an empty list, ``None``."""
    info = model.model_fields[name]
    base, optional = _unwrap(info.annotation)
    bounds = _bounds(info.metadata)
    found: list[Any] = []
    if optional:
        found.append(None)
    origin = typing.get_origin(base)
    if base in (int, float, decimal.Decimal, dt.date, dt.datetime):
        if "ge" in bounds:
            found.append(bounds["ge"])
        if "gt" in bounds:
            found.append(_step(base, bounds["gt"], up=True))
        if "le" in bounds:
            found.append(bounds["le"])
        if "lt" in bounds:
            found.append(_step(base, bounds["lt"], up=False))
        if base is dt.date and not bounds:
            found.append(dt.date(2024, 2, 29))
    elif base is str and not any(hasattr(m, "pattern") and m.pattern for m in info.metadata):
        if "max_length" in bounds:
            found.append(_text(bounds["max_length"]))
        if bounds.get("min_length"):
            found.append(_text(bounds["min_length"]))
    elif origin in (list, set, frozenset, tuple) and not bounds.get("min_length"):
        found.append([])
    adapter = field_adapter(model, name)
    valid: list[Any] = []
    for value in found:
        jsonable = value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value
        jsonable = float(jsonable) if isinstance(jsonable, decimal.Decimal) else jsonable
        try:
            adapter.validate_json(json.dumps(jsonable))
        except (ValidationError, TypeError, ValueError):
            continue
        if jsonable not in valid:
            valid.append(jsonable)
    return valid


def free_text_fields(model: type[BaseModel], exclude: Sequence[str] = ()) -> list[str]:
    """Fields of plain text (``str`` or ``str | None`` with no pattern), not in ``exclude``."""
    out = []
    for name, info in model.model_fields.items():
        base, _ = _unwrap(info.annotation)
        patterned = any(getattr(m, "pattern", None) for m in info.metadata)
        if base is str and not patterned and name not in exclude:
            out.append(name)
    return out


# --------------------------------------------------------------------------- the plan


class SlotPlan:
    """Every record slot of a dataset, each planned from the seed and its index alone."""

    def __init__(
        self,
        model: type[BaseModel],
        *,
        seed: int | None = None,
        sample: Mapping[str, Sampler] | None = None,
        cover: Mapping[str, Sequence[Any]] | None = None,
        edge_cases: float = 0.0,
        unique: Sequence[str] = (),
        examples: Sequence[object] = (),
    ) -> None:
        self.model = model
        self.seed = seed
        self.sample = dict(sample or {})
        self.axes = {name: tuple(values) for name, values in (cover or {}).items()}
        self.edge_cases = edge_cases
        self.combinations = math.prod(len(v) for v in self.axes.values()) if self.axes else 0
        self._order = CombinationOrder([len(v) for v in self.axes.values()])
        taken = set(self.sample) | set(unique)
        self.boundaries = {
            name: values
            for name in model.model_fields
            if name not in taken and (values := boundary_values(model, name))
        }
        self.text_fields = free_text_fields(model, exclude=list(self.sample))
        self.named = _latin_names(examples, self.text_fields)
        """Fields each slot is given a first letter for (names the model writes)."""
        self.letters = {name: _letters(examples, name) for name in self.named}
        """The first letters each of them is given."""
        # phase of the edge-case spread, from the seed: which slots of each run of
        # 1/edge_cases slots are the edge cases
        self._phase = rng_for(seed, "edge-phase").random()

    @property
    def sampled_fields(self) -> list[str]:
        """Fields code sets in every record: the model never writes them."""
        return list(self.sample)

    @property
    def written_fields(self) -> list[str]:
        """Fields the model writes: what near-duplicates are judged on."""
        return [name for name in self.model.model_fields if name not in self.sample]

    def is_edge_case(self, index: int) -> bool:
        """About ``edge_cases`` of every run of slots, evenly spread: exact to one slot."""
        share = self.edge_cases
        phase = self._phase
        return share > 0 and math.floor((index + 1) * share + phase) > math.floor(
            index * share + phase
        )

    def combination(self, index: int) -> dict[str, Any]:
        if not self.axes:
            return {}
        self._order.extend(min(index + 1, self.combinations))
        combo = self._order.order[index % self.combinations]
        return {name: values[combo[a]] for a, (name, values) in enumerate(self.axes.items())}

    def slot(self, index: int) -> Slot:
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"a slot index is an int >= 0, got {index!r}")
        sampled = draw(self.sample, self.seed, index)
        edge = self.is_edge_case(index)
        hints: list[str] = []
        boundary: list[str] = []
        if edge:
            rng = rng_for(self.seed, "edge", index)
            names = sorted(self.boundaries)
            boundary = sorted(rng.sample(names, min(EDGE_FIELDS, len(names))))
            for name in boundary:
                sampled[name] = rng.choice(self.boundaries[name])
            texts = [
                wire_name(self.model, name) for name in self.text_fields if name not in sampled
            ]
            if texts:
                hints.append(EDGE_HINT.format(fields=", ".join(texts)))
        else:  # an edge case asks for names that break code, in any script
            hints.extend(
                INITIAL_HINT.format(
                    field=wire_name(self.model, name), letter=self.initial(name, index)
                )
                for name in self.named
                if name not in sampled
            )
        return Slot(index, sampled, self.combination(index), edge, hints, tuple(boundary))

    def initial(self, name: str, index: int) -> str:
        """The first letter slot ``index`` asks for in field ``name``: each run of as many
        slots as there are letters takes every letter once, in an order from the seed."""
        letters = list(self.letters[name])
        cycle, at = divmod(index, len(letters))
        rng_for(self.seed, "initial", name, cycle).shuffle(letters)
        return letters[at]

    def slots(self, start: int, stop: int) -> list[Slot]:
        return [self.slot(i) for i in range(start, stop)]

    def coverage(self, n: int) -> list[dict[str, Any]]:
        """``coverage[i]`` of a dataset of ``n`` records."""
        return [slot.coverage() for slot in self.slots(0, n)]


def _latin_names(examples: Sequence[object], fields: Sequence[str]) -> list[str]:
    """The :func:`~.diversity.own_value_fields` among ``fields`` whose example values all
    start with a Latin letter (a letter to start with means nothing to other scripts)."""
    copies = distinctive_values(examples, fields)
    return [
        name
        for name in own_value_fields(examples, copies)
        if _initials(examples, name) - {""} <= set(INITIALS + "QUX")
    ]


def _letters(examples: Sequence[object], name: str) -> str:
    """:data:`INITIALS` without the first letters of the examples' values of ``name``,
    unless that leaves fewer than half of them."""
    taken = _initials(examples, name)
    kept = "".join(letter for letter in INITIALS if letter not in taken)
    return kept if 2 * len(kept) >= len(INITIALS) else INITIALS


def _initials(examples: Sequence[object], name: str) -> set[str]:
    """The first letters (upper case; "" for none) of the examples' values of ``name``."""
    return {str(e.get(name, "")).strip()[:1].upper() for e in examples if isinstance(e, Mapping)}


def make_plan(
    model: type[BaseModel],
    n: int,
    *,
    seed: int | None = None,
    sample: object = None,
    cover: object = None,
    edge_cases: object = None,
    unique: Sequence[str] = (),
) -> SlotPlan:
    """Check ``sample=``, ``cover=`` and ``edge_cases=`` and plan the slots."""
    samplers = check_samplers(model, sample, n=n, seed=seed, unique=unique)
    if samplers and len(samplers) == len(model.model_fields):
        raise SynthConfigError(
            f"sample sets every field of {model.__name__}, so the model would write nothing; "
            "leave at least one field for it to write"
        )
    return SlotPlan(
        model,
        seed=seed,
        sample=samplers,
        cover=check_axes(model, cover),
        edge_cases=check_edge_cases(edge_cases),
        unique=unique,
    )


def wire_values(model: type[BaseModel], sampled: Mapping[str, Any]) -> dict[str, Any]:
    """Sampled values keyed as the model's JSON has them (validation aliases)."""
    return {wire_name(model, name): value for name, value in sampled.items()}


def merge_sampled(model: type[BaseModel], item: object, sampled: Mapping[str, Any]) -> object:
    """The model's answer for one record with the slot's sampled values put in (replacing
    what it wrote for those fields, if anything), ready for validation. An answer that is not
    a JSON object is returned as it is, for validation to reject."""
    if not isinstance(item, dict) or not sampled:
        return item
    merged = dict(item)
    for name, value in sampled.items():
        merged[wire_name(model, name)] = value
    return merged


def _sample_hint(name: str) -> str:
    """How the caller sets a field's values (the command's ``--sample`` or ``sample=``)."""
    if surface() == "command":
        return f"--sample {name}=choice:V1,V2 or --sample {name}=values:V1,V2"
    return f"sample={{{name!r}: samplers.choice([...])}} or samplers.values([...])"
