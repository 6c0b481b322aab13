"""The prompt's field list: one line per field of a model, with its type and constraints.

For example ``- patient_id (integer, required): The patient's id. Constraints: >= 0.``; the
name is the key the JSON output must use (the validation alias, if any).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Collection
from typing import Any

from pydantic import AliasChoices, AliasPath, BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .jsonform import json_form
from .schema import CONSTRAINT_KEYWORDS, DEFS_PREFIX, raw_schema

__all__ = ["field_lines", "wire_name"]


def field_lines(model: type[BaseModel], exclude: Collection[str] = ()) -> list[str]:
    """One human-readable line per field of the model (but those named in ``exclude``), for
    the prompt.

    For example ``"- patient_id (integer, required): The patient's id. Constraints: >= 0."``.
    The name is the key expected in the JSON output (the validation alias if any).
    """
    raw = raw_schema(model)
    defs: dict[str, Any] = raw.get("$defs", {})
    root = raw
    ref = raw.get("$ref")
    if isinstance(ref, str):
        root = defs.get(ref[len(DEFS_PREFIX) :], raw)
    props: dict[str, Any] = root.get("properties", {})
    lines: list[str] = []
    for name, field in model.model_fields.items():
        if name in exclude:
            continue
        wire = _wire_name(name, field)
        if wire not in props:
            wire = name
        if wire not in props:  # hidden from the JSON schema (e.g. SkipJsonSchema)
            continue
        lines.append(_field_line(wire, field, props[wire], defs))
    return lines


def wire_name(model: type[BaseModel], name: str) -> str:
    """The key of field ``name`` in the JSON a model writes (its validation alias, if any)."""
    return _wire_name(name, model.model_fields[name])


def _wire_name(name: str, field: FieldInfo) -> str:
    """The key pydantic expects for this field when validating (its JSON schema key)."""
    alias = field.validation_alias
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices):
        for choice in alias.choices:
            if isinstance(choice, str):
                return choice
            if len(choice.path) == 1 and isinstance(choice.path[0], str):
                return choice.path[0]
    if isinstance(alias, AliasPath) and len(alias.path) == 1 and isinstance(alias.path[0], str):
        return alias.path[0]
    if field.alias:
        return field.alias
    return name


_FORMAT_TEXT: dict[str, str] = {
    "date": "date (YYYY-MM-DD)",
    "date-time": "datetime (YYYY-MM-DDTHH:MM:SS)",
    "time": "time (HH:MM:SS)",
    "duration": "duration (ISO 8601, e.g. P1DT2H)",
    "uuid": "UUID",
    "uuid1": "UUID",
    "uuid3": "UUID",
    "uuid4": "UUID",
    "uuid5": "UUID",
    "email": "email address",
    "uri": "URL",
    "binary": "string",
}


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value)


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if len(node.get("allOf", [])) == 1:
            node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(DEFS_PREFIX):
            return defs.get(ref[len(DEFS_PREFIX) :], node)
    return node


def _type_text(node: Any, defs: dict[str, Any]) -> str:
    node = _resolve(node, defs)
    if not isinstance(node, dict) or not node:
        return "any value"
    if "enum" in node:
        return "one of: " + ", ".join(_literal(v) for v in node["enum"])
    if "const" in node:
        return "one of: " + _literal(node["const"])
    branches = node.get("anyOf", node.get("oneOf"))
    if isinstance(branches, list):
        texts = [_type_text(b, defs) for b in branches if _resolve(b, defs) != {"type": "null"}]
        nullable = len(texts) < len(branches)
        return " or ".join([*dict.fromkeys(texts), *(["null"] if nullable else [])])
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(_type_text({**node, "type": k}, defs) for k in kind)
    if kind == "string":
        fmt = node.get("format")
        if isinstance(fmt, str):
            return _FORMAT_TEXT.get(fmt, f"string ({fmt})")
        return "string"
    if kind == "array":
        items = node.get("items")
        return f"list of {_type_text(items, defs)}" if items is not None else "list"
    if kind == "object":
        title = node.get("title")
        return str(title) if title else "object"
    if isinstance(kind, str):
        return kind
    return "any value"


def _plural(count: Any, word: str) -> str:
    return f"{_literal(count)} {word}{'' if count == 1 else 's'}"


_CONSTRAINT_TEXT: dict[str, Callable[[Any], str]] = {
    "minimum": lambda v: f">= {_literal(v)}",
    "maximum": lambda v: f"<= {_literal(v)}",
    "exclusiveMinimum": lambda v: f"> {_literal(v)}",
    "exclusiveMaximum": lambda v: f"< {_literal(v)}",
    "multipleOf": lambda v: f"multiple of {_literal(v)}",
    "minLength": lambda v: f"at least {_plural(v, 'character')}",
    "maxLength": lambda v: f"at most {_plural(v, 'character')}",
    "pattern": lambda v: f"matches the regular expression {v}",
    "minItems": lambda v: f"at least {_plural(v, 'item')}",
    "maxItems": lambda v: f"at most {_plural(v, 'item')}",
    "uniqueItems": lambda v: "items must be unique",
}
"""How each validation keyword reads in the prompt's field list."""


def _constraint_texts(node: Any, defs: dict[str, Any]) -> list[str]:
    if not isinstance(node, dict) or "$ref" in node:
        return []
    texts = [
        _CONSTRAINT_TEXT[key](node[key])
        for key in CONSTRAINT_KEYWORDS
        if key in node and key in _CONSTRAINT_TEXT and (key != "uniqueItems" or node[key] is True)
    ]
    for branch in node.get("anyOf") or node.get("oneOf") or []:
        texts.extend(t for t in _constraint_texts(branch, defs) if t not in texts)
    items = node.get("items")
    if isinstance(items, dict):
        texts.extend(f"each item {t}" for t in _constraint_texts(items, defs))
    return texts


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def _field_line(wire: str, field: FieldInfo, node: dict[str, Any], defs: dict[str, Any]) -> str:
    status = "required"
    if not field.is_required():
        status = "optional"
        if field.default is not PydanticUndefined and field.default is not None:
            # a default without a JSON form is not worth mentioning
            with contextlib.suppress(Exception):
                status += f", default {_literal(json_form(field.default))}"
    kind = _type_text(node, defs)
    head = f"- {wire} ({kind}{'; ' if ',' in kind else ', '}{status})"
    tail: list[str] = []
    if field.description:
        tail.append(_sentence(field.description))
    constraints = _constraint_texts(node, defs)
    if constraints:
        tail.append(f"Constraints: {', '.join(constraints)}.")
    if field.examples:
        try:
            shown = ", ".join(_literal(json_form(e)) for e in field.examples)
        except Exception:
            shown = ""
        if shown:
            tail.append(f"Examples: {shown}.")
    return f"{head}: {' '.join(tail)}" if tail else head
