"""Prompt text of record batches: the few-shot request, and the values already taken."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from .coverage import Slot, wire_values
from .fieldlines import field_lines, wire_name
from .schema import without_fields, wrapper_schema
from .spec import SynthSpec

SYSTEM = (
    "You generate realistic, varied synthetic data records for software tests. "
    'Answer with one JSON object of the form {"records": [...]} and nothing else. '
    "Every record must have every listed field and respect every constraint."
)


def batch_messages(
    spec: SynthSpec,
    count: int,
    *,
    batch_index: int,
    batch_total: int,
    avoid: dict[str, list[str]],
    attempt: int = 0,
    stored: int = 0,
    slots: Sequence[Slot] | None = None,
    hide: Collection[str] = (),
) -> list[dict[str, str]]:
    """A request for ``count`` records of a batch (``attempt`` > 0: a fresh request for what
    an earlier attempt did not deliver; ``stored`` > 0: the dataset already holds that many
    records, and this batch adds to it; ``slots``: what code chose for each of the ``count``
    records, in order, when the spec samples fields, covers axes or asks for edge cases;
    ``hide``: fields whose values the examples leave out, once the model copied them)."""
    if slots is not None and len(slots) != count:
        raise ValueError(f"{len(slots)} slots for {count} records")
    sampled = [name for name, _ in spec.sample] if slots is not None else []
    parts = _what_to_write(spec, sampled, hide)
    if avoid:
        parts.append("")
        parts.append("Values already used by earlier records; do not repeat them:")
        for field, values in avoid.items():
            parts.append(f"- {field}: {', '.join(values)}")
    parts.append("")
    if slots is not None:
        parts.extend(slot_lines(spec, slots))
        parts.append("")
    if stored:
        parts.append(
            f"The dataset already holds {stored} records; these are more records for it: "
            "make them differ from the records already there."
        )
    if batch_total > 1:
        parts.append(
            f"This is batch {batch_index + 1} of {batch_total}: make its records differ from "
            "the other batches' and from one another."
        )
    else:
        parts.append("Make the records differ from one another.")
    if spec.seed is not None:
        parts.append(f"Variation seed: {spec.seed}.")
    if attempt:
        parts.append(f"This is attempt {attempt + 1} for this batch: write new records.")
    if slots is not None:
        parts.append(f"Return exactly {count} records, in the order of the list above.")
    else:
        parts.append(f"Return exactly {count} records.")
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "\n".join(parts)},
    ]


def _what_to_write(
    spec: SynthSpec, sampled: Sequence[str], hide: Collection[str] = ()
) -> list[str]:
    """The prompt's first lines: the subject, the fields to write (and those the test sets),
    the examples (without the values of the fields in ``hide``), the extra instructions and
    the unique fields the model writes."""
    parts = [f"Subject: {spec.subject}"]
    parts.append(f"Each record is a {spec.model_name} with these fields:")
    parts.extend(field_lines(spec.model, exclude=sampled))
    if sampled:
        keys = ", ".join(wire_name(spec.model, name) for name in sampled)
        parts.append(f"The test sets these fields itself; do not write them: {keys}.")
    parts.extend(_examples(spec, hide))
    if spec.extra:
        parts.append("")
        parts.append(f"Additional instructions: {spec.extra}")
    written_unique = [name for name in spec.unique if name not in sampled]
    if written_unique:
        parts.append("")
        parts.append(
            f"These fields must be unique across all records: {', '.join(written_unique)}."
        )
    return parts


def _examples(spec: SynthSpec, hide: Collection[str]) -> list[str]:
    """The examples block (after a blank line), without the values of the fields in
    ``hide``; nothing when there are no examples or nothing of them is left to show."""
    hidden = sorted(name for name in hide if name in spec.model.model_fields)
    left_out = set(hidden) | {wire_name(spec.model, name) for name in hidden}
    shown: list[str] = []
    for example in spec.examples:
        if isinstance(example, dict) and left_out:
            rest = {k: v for k, v in example.items() if k not in left_out}
            if rest:
                shown.append(_compact(rest))
        else:
            shown.append(example if isinstance(example, str) else _compact(example))
    if not shown:
        return []
    heading = "Examples of records (follow their style, do not copy them):"
    if hidden:
        keys = ", ".join(wire_name(spec.model, name) for name in hidden)
        heading = (
            "Examples of records (follow their style, do not copy them; their "
            f"{keys} values are left out: write your own):"
        )
    return ["", heading, *(f"{i}. {text}" for i, text in enumerate(shown, 1))]


def avoid_values(spec: SynthSpec, records: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """A short list of values already produced, so later batches are steered elsewhere.

    The unique fields get up to 40 of their most recent values; otherwise the first two
    text fields get 12 each. Deterministic: it depends only on the records, in order.
    """
    if not records:
        return {}
    sampled = {name for name, _ in spec.sample}
    unique = [name for name in spec.unique if name not in sampled]
    if unique:
        fields, limit = unique, 40
    else:
        fields = [
            name
            for name, info in spec.model.model_fields.items()
            if info.annotation is str and name not in sampled
        ][:2]
        limit = 12
    avoid: dict[str, list[str]] = {}
    for field in fields:
        seen: list[str] = []
        for record in reversed(records):
            value = record.get(field)
            if value is None:
                continue
            text = value if isinstance(value, str) else _compact(value)
            if text not in seen:
                seen.append(text)
            if len(seen) >= limit:
                break
        if seen:
            avoid[field] = list(reversed(seen))
    return avoid


def slot_lines(spec: SynthSpec, slots: Sequence[Slot]) -> list[str]:
    """One line per record of the batch: its given values and its attributes (coverage
    axes), and what an edge case asks for."""
    lines = [
        "Write one record for each line below, in this order. Each record must keep the "
        "values given for it and be written to fit them and its attributes:"
    ]
    for i, slot in enumerate(slots, 1):
        bits: list[str] = []
        if slot.sampled:
            bits.append(f"values {_compact(wire_values(spec.model, slot.sampled))}")
        if slot.axes:
            bits.append("attributes " + ", ".join(f"{k}: {v}" for k, v in slot.axes.items()))
        text = "; ".join(bits) if bits else "no given values"
        hints = " ".join(slot.hints)
        lines.append(f"Record {i}: {text}." + (f" {hints}" if hints else ""))
    return lines


def slot_schema(spec: SynthSpec) -> dict[str, Any]:
    """The request's schema when the spec samples fields: the records without them (the
    model writes only the other fields, so sampled fields cost no output tokens)."""
    wrapper = wrapper_schema(spec.model)
    if not spec.sample:
        return wrapper
    return without_fields(wrapper, {wire_name(spec.model, name) for name, _ in spec.sample})


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
