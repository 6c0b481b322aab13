"""Texts written from field values, and records read back out of them.

:func:`write_text` turns fields into ``Note — actor: «Tom Hanks»; movies[0]: «Forrest
Gump».``: every leaf value as a ``path: «value»`` phrase, padded with filler sentences to a
``minimum_length``/``min_words`` preference. :func:`read_phrases` reads those phrases back and
:func:`fill_record` builds a schema-valid record from them (values the text does not state
come from the :class:`~fakellm.schema_faker.SchemaFaker`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .schema_faker import HARD_DEPTH, SchemaError, SchemaFaker, is_null_schema

__all__ = ["fill_record", "leaf_phrases", "read_phrases", "write_text"]

_PHRASE_RE = re.compile(r"(?:^|— |; )(?P<path>[^;«»—]+?): «(?P<value>[^«»]*)»")
_TEXT_INTRO = "Note — "
_FILLER = " More details follow."
_MIN_CHARS_KEYS = ("minimum_length", "min_length", "minimal_length")
_MIN_WORDS_KEYS = ("min_words", "minimum_words")


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def leaf_phrases(value: Any, path: str = "") -> list[tuple[str, str, Any]]:
    """``(path, shown, leaf)`` for every leaf: ``movies[1]``, ``address.city``, ``[0].actor``;
    an empty list or dict is a leaf shown as ``[]``/``{}`` (with ``None`` as the leaf)."""
    if isinstance(value, dict):
        if not value:
            return [(path or "value", "{}", None)]
        return [
            phrase
            for key, item in value.items()
            for phrase in leaf_phrases(item, f"{path}.{key}" if path else str(key))
        ]
    if isinstance(value, list):
        if not value:
            return [(path or "value", "[]", None)]
        return [
            phrase for i, item in enumerate(value) for phrase in leaf_phrases(item, f"{path}[{i}]")
        ]
    return [(path or "value", _show(value), value)]


def write_text(fields: Any, preferences: Mapping[str, Any], omit: set[str] | int = 0) -> str:
    """``Note — actor: «Tom Hanks»; movies[0]: «Forrest Gump».``, without the values in
    ``omit`` (or the first ``omit`` string/number values), padded with filler sentences to the
    ``minimum_length`` and ``min_words`` preferences."""
    phrases: list[str] = []
    position = 0
    for path, shown, leaf in leaf_phrases(fields):
        if isinstance(leaf, (str, int, float)) and not isinstance(leaf, bool):
            dropped = shown in omit if isinstance(omit, set) else position < omit
            position += 1
            if dropped:
                continue
        phrases.append(f"{path}: «{shown}»")
    text = _TEXT_INTRO + "; ".join(phrases) + "."
    min_chars = next((v for k in _MIN_CHARS_KEYS if isinstance(v := preferences.get(k), int)), 0)
    min_words = next((v for k in _MIN_WORDS_KEYS if isinstance(v := preferences.get(k), int)), 0)
    while len(text) < min_chars or len(text.split()) < min_words:
        text += _FILLER
    return text


def read_phrases(text: str) -> dict[str, str]:
    """The ``path: «value»`` phrases of a text written by :func:`write_text`."""
    return {m.group("path").strip(): m.group("value") for m in _PHRASE_RE.finditer(text)}


def _coerce(raw: str, typ: Any) -> tuple[bool, Any]:
    """``raw`` as a value of JSON type ``typ``, and whether that worked."""
    try:
        if typ == "integer":
            number = float(raw)
            return number.is_integer(), int(number) if number.is_integer() else None
        if typ == "number":
            return True, float(raw)
    except (ValueError, OverflowError):
        return False, None
    if typ == "boolean":
        return raw in ("true", "false"), raw == "true"
    if typ == "null":
        return raw == "null", None
    return typ in (None, "string"), raw


def fill_record(
    faker: SchemaFaker, schema: Any, path: str, found: Mapping[str, str], depth: int = 0
) -> Any:
    """The value at ``path`` read from ``found`` phrases, or a schema-valid one."""
    if depth > HARD_DEPTH:
        raise SchemaError("schema nests too deeply")
    node = faker.resolve(schema)
    raw = found.get(path)
    name = re.split(r"[.\[]", path)[-1] or "value"
    seed_path = f"text|{path}"
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if isinstance(branches, list) and branches:
            non_null = [b for b in branches if not is_null_schema(faker.resolve(b))]
            if not non_null or (raw == "null" and len(non_null) < len(branches)):
                return None
            return fill_record(faker, non_null[0], path, found, depth + 1)
    if "const" in node:
        return node["const"]
    typ = node.get("type")
    if isinstance(typ, list):
        if raw == "null" and "null" in typ:
            return None
        typ = next((t for t in typ if t != "null"), "null")
    if isinstance(node.get("enum"), list) and node["enum"]:
        match = [option for option in node["enum"] if raw is not None and _show(option) == raw]
        return match[0] if match else faker.value(node, seed_path, name, depth)
    if typ == "object" or (typ is None and "properties" in node):
        props = node.get("properties")
        if not isinstance(props, dict) or not props:
            return faker.value(node, seed_path, name, depth)
        return {
            key: fill_record(faker, sub, f"{path}.{key}" if path else key, found, depth + 1)
            for key, sub in props.items()
        }
    if typ == "array" or (typ is None and "items" in node):
        if raw == "[]":
            return []
        prefix = f"{path}["
        indexes = [
            int(m.group(1))
            for p in found
            if p.startswith(prefix) and (m := re.match(r"(\d+)\]", p[len(prefix) :]))
        ]
        if not indexes:
            return faker.value(node, seed_path, name, depth)
        items = node.get("items", {})
        return [
            fill_record(faker, items, f"{path}[{i}]", found, depth + 1)
            for i in range(max(indexes) + 1)
        ]
    if raw is not None:
        ok, value = _coerce(raw, typ)
        if ok:
            return value
    return faker.value(node, seed_path, name, depth)
