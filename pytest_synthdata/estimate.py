"""What requests cost before they are sent: output tokens per record, and prompt tokens.

Two uses, one estimate:

* each request's ``max_tokens`` is sized to what its records should take, with headroom
  (:data:`HEADROOM`), so that what a request reserves against an endpoint's tokens-per-minute
  limit matches what it uses (the batch loop doubles it after an answer cut off at the limit);
* ``synthdata generate --dry-run`` adds the estimates up for the requests a run plans.

A record's size is the length of the JSON a model writes for it: the average of the
examples that are records, when there are any and they are larger (nested lists and long
strings are where a schema says least), and otherwise judged from the record's strict
schema: each key, and a typical value for its type (an enum's average choice, a date's
fixed length, a number's few digits, a short phrase for a string, a sentence for a string
whose name says it holds prose). Tokens are characters divided by
:data:`CHARS_PER_TOKEN`, the usual rule of thumb for English and JSON with OpenAI's
tokenizers, and what hosted APIs themselves use to estimate a request before running it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from .schema import record_schema

CHARS_PER_TOKEN = 4
HEADROOM = 1.25
"""``max_tokens`` is this many times the estimated output, plus :data:`WRAPPER_TOKENS`."""
WRAPPER_TOKENS = 24
"""Room for the wrapper object ``{"records": [...]}`` and a model's stray whitespace."""
LIST_ITEMS = 2
"""Items assumed in an array field whose schema does not bound its length."""

_PROSE = ("description", "text", "body", "comment", "summary", "note", "message", "content")
_FORMATS = {"date": 12, "date-time": 27, "time": 10, "email": 28, "uuid": 38, "uri": 34}


def tokens_of(chars: int) -> int:
    """Characters as tokens (at least one)."""
    return max(1, math.ceil(chars / CHARS_PER_TOKEN))


def tokens_per_record(
    model: type[BaseModel], examples: Sequence[object] = (), omit: Collection[str] = ()
) -> int:
    """The output tokens one ``model`` record is expected to take: judged from its schema,
    or from the structured ``examples`` (records as dicts) when they are larger on average,
    as records with nested lists or long strings are. ``omit``: JSON keys of fields code
    sets (sampled fields), which the model does not write."""
    schema = record_schema(model)
    if omit:
        kept = {k: v for k, v in schema["properties"].items() if k not in omit}
        schema = {**schema, "properties": kept}
    estimate = tokens_of(value_chars(schema, schema.get("$defs", {}), "", 0) + 2)  # + ", "
    return max(estimate, example_tokens(examples, omit))


def example_tokens(examples: Sequence[object], omit: Collection[str] = ()) -> int:
    """The average output tokens of the examples that are records (dicts), as a model
    writes them (``json.dumps`` spacing), ``omit`` keys left out; 0 without any."""
    sizes = [
        len(json.dumps({k: v for k, v in e.items() if k not in omit}, ensure_ascii=False)) + 2
        for e in examples
        if isinstance(e, dict)
    ]
    return tokens_of(math.ceil(sum(sizes) / len(sizes))) if sizes else 0


def output_budget(
    model: type[BaseModel],
    count: int,
    examples: Sequence[object] = (),
    omit: Collection[str] = (),
) -> int:
    """``max_tokens`` for a request of ``count`` records: the estimate with headroom."""
    return math.ceil(HEADROOM * count * tokens_per_record(model, examples, omit)) + WRAPPER_TOKENS


def largest_request(
    model: type[BaseModel],
    max_tokens: int,
    examples: Sequence[object] = (),
    omit: Collection[str] = (),
) -> int:
    """The most records one request may ask for: as many as fit in ``max_tokens`` with the
    headroom :func:`output_budget` allows (at least one)."""
    per_record = HEADROOM * tokens_per_record(model, examples, omit)
    return max(1, int((max_tokens - WRAPPER_TOKENS) / per_record))


def value_chars(node: Any, defs: Mapping[str, Any], name: str, depth: int) -> int:
    """The length of the JSON a model typically writes for a value of schema ``node``
    (``name`` is the field it belongs to)."""
    if not isinstance(node, dict) or depth > 8:
        return 8
    ref = node.get("$ref")
    if isinstance(ref, str):
        return value_chars(defs.get(ref.rsplit("/", 1)[-1], {}), defs, name, depth + 1)
    if "const" in node:
        return len(json.dumps(node["const"]))
    if isinstance(node.get("enum"), list) and node["enum"]:
        choices = node["enum"]
        return round(sum(len(json.dumps(choice)) for choice in choices) / len(choices))
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if isinstance(branches, list) and branches:
            # an optional field is as often null (4 characters) as not
            sizes = [value_chars(b, defs, name, depth + 1) for b in branches]
            return round(sum(sizes) / len(sizes))
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in node:
        properties = node.get("properties") or {}
        inner = sum(
            len(json.dumps(key)) + 2 + value_chars(sub, defs, key, depth + 1) + 2
            for key, sub in properties.items()
        )
        return 2 + inner
    if kind == "array":
        count = _bound(node, "minItems") or LIST_ITEMS
        most = _bound(node, "maxItems")
        if most is not None:
            count = min(count, most)
        return 2 + count * (value_chars(node.get("items", {}), defs, name, depth + 1) + 2)
    if kind == "integer":
        return 6
    if kind == "number":
        return 8
    if kind == "boolean":
        return 5
    if kind == "null":
        return 4
    return 2 + _string_chars(node, name)


def _string_chars(node: dict[str, Any], name: str) -> int:
    description = str(node.get("description") or "")
    fmt = node.get("format")
    for key, size in _FORMATS.items():
        if fmt == key or f"format={key}" in description:
            return size
    lowered = name.lower()
    typical = 60 if any(word in lowered for word in _PROSE) else 16
    longest = _bound(node, "maxLength")
    if longest is None and "maxLength=" in description:
        digits = description.split("maxLength=", 1)[1].split(",")[0].split(")")[0].strip()
        longest = int(digits) if digits.isdigit() else None
    return min(typical, longest) if longest is not None else typical


def _bound(node: dict[str, Any], key: str) -> int | None:
    value = node.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def prompt_tokens(messages: list[dict[str, str]], schema: Mapping[str, Any] | None) -> int:
    """The prompt tokens of a request: its messages' text and the schema it sends (which a
    model reads as part of its prompt)."""
    chars = sum(len(message.get("content") or "") for message in messages)
    if schema is not None:
        chars += len(json.dumps(schema))
    return tokens_of(chars)
