"""The prompts of texts and extraction: inputs as one-line JSON after fixed labels."""

from __future__ import annotations

import json

from pydantic import BaseModel

from ..fieldlines import field_lines
from .fidelity import Fields, Rules, dumps, leaves, number_text

_TEXT_SYSTEM = (
    "You write natural, realistic texts for software tests from given field values. "
    "A text must mention every value of its fields (names and words exactly as given; "
    "numbers in any usual format) and follow the preferences and length rules."
)
_SINGLE_SYSTEM = _TEXT_SYSTEM + " Answer with the text only: no title, quotes or comments."
_BATCH_SYSTEM = (
    _TEXT_SYSTEM + ' Answer with one JSON object of the form {"texts": [{"index": <entry '
    'number>, "text": "..."}]} and nothing else.'
)
_EXTRACT_SYSTEM = (
    "You extract structured records from texts. Take every value from the text the record "
    "belongs to and do not invent values it does not state (use null where a field allows "
    'it). Answer with one JSON object of the form {"records": [{"index": <text number>, '
    '"record": {...}}]} and nothing else.'
)


def json_line(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def fields_line(fields: Fields, index: int | None = None) -> str:
    return f"Fields (JSON){'' if index is None else f' #{index}'}: {json_line(fields)}"


def mention_line(fields: Fields, index: int | None = None) -> str:
    """The values a text must contain, spelled out (small models miss them in the JSON)."""
    wanted: list[str] = []
    for leaf in leaves(fields):
        if leaf is None or isinstance(leaf, bool):
            continue
        text = dumps(leaf) if isinstance(leaf, str) else number_text(leaf)
        if text not in wanted:
            wanted.append(text)
    where = "" if index is None else f" #{index}"
    return f"Text{where} must contain, word for word: {', '.join(wanted)}."


def preference_lines(rules: Rules, subject: str) -> list[str]:
    out = []
    if rules.preferences is not None:
        out.append(f"Preferences (JSON): {json_line(rules.preferences)}")
    return out + rules.lines(subject)


def _attempt_line(attempt: int, what: str) -> list[str]:
    return [f"This is attempt {attempt + 1}: write {what} afresh."] if attempt else []


def single_messages(fields: Fields, rules: Rules, attempt: int = 0) -> list[dict[str, str]]:
    parts = [
        "Write one text that uses these fields.",
        fields_line(fields),
        mention_line(fields),
    ]
    parts += preference_lines(rules, "The text")
    parts += _attempt_line(attempt, "the text")
    return [
        {"role": "system", "content": _SINGLE_SYSTEM},
        {"role": "user", "content": "\n".join(parts)},
    ]


def batch_messages(
    entries: list[tuple[int, Fields]], rules: Rules, attempt: int = 0
) -> list[dict[str, str]]:
    parts = ["Write one text for each entry below, using every value of the entry's fields."]
    parts += preference_lines(rules, "Every text")
    for index, fields in entries:
        parts += [fields_line(fields, index), mention_line(fields, index)]
    parts += _attempt_line(attempt, "these texts")
    parts.append(
        f"Return exactly {len(entries)} texts, one per entry, each with the entry's index."
    )
    return [
        {"role": "system", "content": _BATCH_SYSTEM},
        {"role": "user", "content": "\n".join(parts)},
    ]


def extract_messages(
    model: type[BaseModel], texts: list[tuple[int, str]], attempt: int = 0
) -> list[dict[str, str]]:
    parts = [f"Each record is a {model.__name__} with these fields:"]
    parts += field_lines(model)
    parts.append("")
    parts.append("Extract one record from each text below (each text is a JSON string).")
    parts += [f"Text (JSON) #{index}: {json_line(text)}" for index, text in texts]
    parts += _attempt_line(attempt, "these records")
    parts.append(f"Return exactly {len(texts)} records, one per text, each with the text's index.")
    return [
        {"role": "system", "content": _EXTRACT_SYSTEM},
        {"role": "user", "content": "\n".join(parts)},
    ]
