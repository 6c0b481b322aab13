"""Prompt text of record batches: the few-shot request, and the values already taken."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .fieldlines import field_lines
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
) -> list[dict[str, str]]:
    """A request for ``count`` records of a batch (``attempt`` > 0: a fresh request for what
    an earlier attempt did not deliver; ``stored`` > 0: the dataset already holds that many
    records, and this batch adds to it)."""
    parts = [f"Subject: {spec.subject}"]
    parts.append(f"Each record is a {spec.model_name} with these fields:")
    parts.extend(field_lines(spec.model))
    if spec.examples:
        parts.append("")
        parts.append("Examples of records (follow their style, do not copy them):")
        for i, example in enumerate(spec.examples, 1):
            text = example if isinstance(example, str) else _compact(example)
            parts.append(f"{i}. {text}")
    if spec.extra:
        parts.append("")
        parts.append(f"Additional instructions: {spec.extra}")
    if spec.unique:
        parts.append("")
        parts.append(f"These fields must be unique across all records: {', '.join(spec.unique)}.")
    if avoid:
        parts.append("")
        parts.append("Values already used by earlier records; do not repeat them:")
        for field, values in avoid.items():
            parts.append(f"- {field}: {', '.join(values)}")
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
    parts.append(f"Return exactly {count} records.")
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "\n".join(parts)},
    ]


def avoid_values(spec: SynthSpec, records: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """A short list of values already produced, so later batches are steered elsewhere.

    The unique fields get up to 40 of their most recent values; otherwise the first two
    text fields get 12 each. Deterministic: it depends only on the records, in order.
    """
    if not records:
        return {}
    if spec.unique:
        fields, limit = list(spec.unique), 40
    else:
        fields = [name for name, info in spec.model.model_fields.items() if info.annotation is str][
            :2
        ]
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


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
