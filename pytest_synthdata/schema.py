"""Turn a pydantic model into a strict JSON schema for OpenAI structured outputs.

Strict mode (``"strict": true``) accepts only a subset of JSON schema: every object lists
all its properties in ``required`` and sets ``additionalProperties`` to ``false``, ``$ref``
points into the root ``$defs`` and carries no sibling keywords. This module rewrites the
schema pydantic produces accordingly.

Validation keywords that endpoints can enforce while the model writes (OpenAI strict mode,
vLLM's guided decoding, llama.cpp grammars) stay in the schema: :data:`ENFORCED_KEYWORDS`
(``minimum``/``maximum`` and their exclusive forms, ``minItems``/``maxItems``), ``pattern``
when anchored (``^...$``) and ``format`` for :data:`ENFORCED_FORMATS`. The others
(``maxLength``, ``multipleOf``, ``uniqueItems``, other formats ...) stay visible to the model
through a suffix appended to the node's ``description``::

    "The patient's code. (constraints: maxLength=10)"

:func:`relaxed_schema` moves the enforced keywords into that suffix too, for endpoints that
reject them. Pydantic enforces every constraint when the records come back, either way.

Models that strict mode cannot express (``dict`` fields, ``Any``, callables, fixed-size
tuples, ...) raise :class:`~pytest_synthdata.errors.UnsupportedModelError` naming the model,
the field and the fix.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Collection
from typing import Any

from pydantic import BaseModel
from pydantic.errors import PydanticUndefinedAnnotation, PydanticUserError
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from .errors import SynthConfigError, UnsupportedModelError
from .schema_errors import JSON_TYPES_FIX, first_line, json_schema_error

__all__ = [
    "ENFORCED_FORMATS",
    "ENFORCED_KEYWORDS",
    "LENGTH_KEYWORDS",
    "enforced_keywords",
    "raw_schema",
    "record_schema",
    "relaxed_schema",
    "schema_name",
    "with_lengths",
    "without_fields",
    "wrapper_schema",
]

#: Every validation keyword the rewrite knows, in the order it lists them in the description
#: suffix; those not sent as they are (see :data:`ENFORCED_KEYWORDS`) are moved there.
CONSTRAINT_KEYWORDS: tuple[str, ...] = (
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "contentEncoding",
    "contentMediaType",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "propertyNames",
)

#: Validation keywords sent as they are, for endpoints to enforce while the model writes
#: (in :data:`CONSTRAINT_KEYWORDS` order); ``format`` only with a value in
#: :data:`ENFORCED_FORMATS`. :func:`relaxed_schema` moves them into the descriptions.
ENFORCED_KEYWORDS: tuple[str, ...] = (
    *("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"),
    *("pattern", "format", "minItems", "maxItems"),
)

#: String lengths: OpenAI strict mode rejects them, so the strict schema lists them in the
#: descriptions; :func:`with_lengths` sends them as keywords to grammar engines.
LENGTH_KEYWORDS: tuple[str, ...] = ("minLength", "maxLength")

_SENT_KEYWORDS = (*ENFORCED_KEYWORDS, *LENGTH_KEYWORDS)

#: The ``format`` values OpenAI strict mode accepts; others go into the description.
ENFORCED_FORMATS: frozenset[str] = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)

#: Keywords whose meaning strict mode cannot express at all: the model is rejected.
_UNSUPPORTED_KEYWORDS: dict[str, str] = {
    "prefixItems": "fixed-size tuple fields cannot be expressed in strict structured outputs; "
    "use list[X] or a nested model instead",
    "patternProperties": "dict fields cannot be expressed in strict structured outputs; "
    "use a list of key/value models instead",
    "not": "'not' schemas cannot be expressed in strict structured outputs; use a simpler type",
    "if": "conditional schemas cannot be expressed in strict structured outputs; "
    "use a simpler type",
    "contains": "'contains' cannot be expressed in strict structured outputs; use list[X]",
    "unevaluatedProperties": "'unevaluatedProperties' cannot be expressed in strict "
    "structured outputs; use a plain nested model",
    "unevaluatedItems": "'unevaluatedItems' cannot be expressed in strict structured outputs; "
    "use list[X]",
    "dependentSchemas": "'dependentSchemas' cannot be expressed in strict structured outputs; "
    "use a plain nested model",
    "dependentRequired": "'dependentRequired' cannot be expressed in strict structured "
    "outputs; use a plain nested model",
}

#: Output key order of every node (keys not listed here are dropped).
_KEY_ORDER: tuple[str, ...] = (
    "description",
    "type",
    "enum",
    "const",
    *ENFORCED_KEYWORDS,
    "properties",
    "required",
    "additionalProperties",
    "items",
    "anyOf",
    "$ref",
)

_TYPE_KEYS = ("type", "enum", "const", "anyOf", "$ref")
_SUFFIX_START = "(constraints: "
_NAIVE = "x-naive"  # on a date-time or time field that rejects a time zone (raw schema only)
DEFS_PREFIX = "#/$defs/"
_NAME_RE = re.compile(r"[^a-zA-Z0-9_-]+")

_DICT_FIX = (
    "dict fields cannot be expressed in strict structured outputs; "
    "use a list of key/value models instead"
)
_ANY_FIX = (
    "a field without a concrete JSON type (Any, bare list or dict) cannot be expressed in "
    "strict structured outputs; use a concrete type such as str, int, list[str] or a nested model"
)


# --------------------------------------------------------------------------- public API


def record_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Strict-mode JSON schema of one record, with every $defs entry at the top level under "$defs".

    Raises :class:`UnsupportedModelError` if the model cannot be expressed in strict mode.
    """
    raw = raw_schema(model)
    defs: dict[str, Any] = raw.pop("$defs", {})
    root = raw
    ref = raw.get("$ref")
    if isinstance(ref, str):
        # A self-referencing model: pydantic puts the model itself in $defs.
        root = copy.deepcopy(defs[_ref_name(ref, defs, model.__name__, None)])
    if root.get("type") != "object" or "properties" not in root:
        raise UnsupportedModelError(
            f"{model.__name__}: a record must be a JSON object with fields; "
            "use a BaseModel with fields (RootModel is not supported)"
        )
    out = _strict(root, defs, model.__name__, None)
    strict_defs = {
        key: _strict(value, defs, str(value.get("title", key)), None) for key, value in defs.items()
    }
    if strict_defs:
        out["$defs"] = strict_defs
    return out


def wrapper_schema(model: type[BaseModel], key: str = "records") -> dict[str, Any]:
    """Strict schema of an object holding a list of records under ``key``.

    ``{"type": "object", "properties": {key: {"type": "array", "items": <record>}},
    "required": [key], "additionalProperties": false, "$defs": {...}}``; the record's
    ``$defs`` move to the wrapper's root and ``$defs`` is present only if non-empty.
    """
    if not isinstance(key, str) or not key:
        raise SynthConfigError(f"the wrapper key must be a non-empty string, got {key!r}")
    record = record_schema(model)
    defs = record.pop("$defs", None)
    out: dict[str, Any] = {
        "type": "object",
        "properties": {key: {"type": "array", "items": record}},
        "required": [key],
        "additionalProperties": False,
    }
    if defs:
        out["$defs"] = defs
    return out


def without_fields(
    wrapper: dict[str, Any], keys: Collection[str], key: str = "records"
) -> dict[str, Any]:
    """A :func:`wrapper_schema` whose records leave out the properties ``keys`` (JSON keys):
    fields code sets, which the model does not write."""
    out = copy.deepcopy(wrapper)
    record = out["properties"][key]["items"]
    record["properties"] = {k: v for k, v in record["properties"].items() if k not in keys}
    record["required"] = [k for k in record["required"] if k not in keys]
    return out


def schema_name(model: type[BaseModel]) -> str:
    """A name matching ``^[a-zA-Z0-9_-]{1,64}$`` derived from the model class name.

    Usable as ``response_format.json_schema.name`` and as a tool name.
    """
    _check_model(model)
    name = _NAME_RE.sub("_", model.__name__).strip("_")[:64]
    return name or "record"


# --------------------------------------------------------------------------- raw schema


def _check_model(model: object) -> None:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise UnsupportedModelError(f"expected a pydantic BaseModel subclass, got {model!r}")


def raw_schema(model: type[BaseModel]) -> dict[str, Any]:
    """pydantic's validation-mode JSON schema, with its errors turned into ours."""
    _check_model(model)
    name = model.__name__
    if not getattr(model, "__pydantic_complete__", True):
        try:
            model.model_rebuild()
        except (PydanticUndefinedAnnotation, PydanticUserError) as exc:
            raise UnsupportedModelError(
                f"{name}: the model is not fully defined ({first_line(exc)}); define every "
                f"type it references, then call {name}.model_rebuild()"
            ) from exc
    try:
        raw = _validation_schema(model)
    except (PydanticUserError, PydanticUndefinedAnnotation) as exc:
        raise UnsupportedModelError(json_schema_error(model, exc)) from exc
    except RecursionError:
        raise UnsupportedModelError(
            f"{model.__name__}: its models nest too deeply for a JSON schema; structured "
            "outputs allow a few levels of nested objects: flatten the model"
        ) from None
    return copy.deepcopy(raw)


@functools.lru_cache(maxsize=256)
def _validation_schema(model: type[BaseModel]) -> dict[str, Any]:
    """pydantic's schema of ``model``, built once per class (callers copy it)."""
    return model.model_json_schema(mode="validation", schema_generator=_Generator)


@functools.lru_cache(maxsize=256)
def plain_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model.model_json_schema()``, built once per class; do not change the result. A
    default holding a set lists it in a stable order (the schema is part of a key)."""
    return model.model_json_schema(schema_generator=_OrderedDefaults)


class _OrderedDefaults(GenerateJsonSchema):
    """pydantic's schema, with the sets of defaults in the order of :mod:`.jsonform`."""

    def encode_default(self, dft: Any) -> Any:
        from .jsonform import ordered

        return ordered(dft, super().encode_default(dft))


class _Generator(GenerateJsonSchema):
    """pydantic's schema, with naive date-times and times marked: endpoints that enforce
    ``format`` write RFC 3339 values, which carry a time zone such fields reject; and
    decimals asked for as JSON numbers only."""

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        """The number branch of pydantic's ``number or string`` decimal: the string branch
        has no pattern, so a model may write ``"5.9K"`` into it, and it escapes the bounds
        the number branch carries. pydantic still reads the number as a Decimal."""
        out = super().decimal_schema(schema)
        numbers = [b for b in out.get("anyOf", ()) if b.get("type") in ("number", "integer")]
        if len(numbers) != 1:
            return out
        rest = {key: value for key, value in out.items() if key != "anyOf"}
        return {**numbers[0], **rest}

    def datetime_schema(self, schema: core_schema.DatetimeSchema) -> JsonSchemaValue:
        return _mark_naive(super().datetime_schema(schema), schema.get("tz_constraint"))

    def time_schema(self, schema: core_schema.TimeSchema) -> JsonSchemaValue:
        return _mark_naive(super().time_schema(schema), schema.get("tz_constraint"))


def _mark_naive(out: JsonSchemaValue, tz_constraint: object) -> JsonSchemaValue:
    return {**out, _NAIVE: True} if tz_constraint == "naive" else out


# --------------------------------------------------------------------------- strict rewrite


def _where(owner: str, field: str | None) -> str:
    return f"{owner}.{field}" if field else owner


def _ref_name(ref: str, defs: dict[str, Any], owner: str, field: str | None) -> str:
    name = ref[len(DEFS_PREFIX) :] if ref.startswith(DEFS_PREFIX) else ""
    if not name or name not in defs:
        raise UnsupportedModelError(
            f"{_where(owner, field)}: reference {ref!r} does not point into the root $defs; "
            f"{JSON_TYPES_FIX}"
        )
    return name


def _constraint_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def _enforceable(key: str, value: Any) -> bool:
    """Whether ``key: value`` is sent as it is (a value endpoints can enforce)."""
    if key == "format":
        return value in ENFORCED_FORMATS
    if key == "pattern":  # grammar engines (llama.cpp) take only a whole-string pattern
        return isinstance(value, str) and value.startswith("^") and value.endswith("$")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False  # draft-04 boolean exclusive bounds, bounds of dates
    return key not in ("minItems", "maxItems") or (isinstance(value, int) and value >= 0)


def _with_constraints(description: Any, moved: dict[str, Any]) -> str:
    """``description`` with ``moved`` keywords listed in its constraints suffix, which keeps
    the :data:`CONSTRAINT_KEYWORDS` order whatever was listed there before."""
    text = description if isinstance(description, str) else ""
    if not moved:
        return text
    listed: dict[str, str] = {}
    start = text.rfind(_SUFFIX_START)
    if start >= 0 and text.endswith(")"):
        listed = _read_suffix(text[start + len(_SUFFIX_START) : -1])
        text = text[:start].rstrip()
    listed.update({key: _constraint_value(value) for key, value in moved.items()})
    items = [f"{key}={listed[key]}" for key in CONSTRAINT_KEYWORDS if key in listed]
    suffix = f"{_SUFFIX_START}{', '.join(items)})"
    return f"{text} {suffix}" if text else suffix


_SUFFIX_SPLIT = re.compile(r", (?=(?:" + "|".join(CONSTRAINT_KEYWORDS) + r")=)")


def _read_suffix(text: str) -> dict[str, str]:
    """The ``key=value`` items of a constraints suffix this module wrote."""
    items = (part.partition("=") for part in _SUFFIX_SPLIT.split(text))
    return {key: value for key, sep, value in items if sep and key in CONSTRAINT_KEYWORDS}


def enforced_keywords(schema: Any) -> list[str]:
    """The validation keywords a wire schema carries anywhere: :data:`ENFORCED_KEYWORDS`,
    then :data:`LENGTH_KEYWORDS` where :func:`with_lengths` put them."""
    found: set[str] = set()
    for node in _schema_nodes(schema):
        found.update(key for key in _SENT_KEYWORDS if key in node)
    return [key for key in _SENT_KEYWORDS if key in found]


def with_lengths(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of a wire schema with ``minLength``/``maxLength`` taken out of the description
    suffixes and sent as keywords: grammar engines (llama.cpp) enforce them while the model
    writes, where OpenAI strict mode rejects them (so the strict schema lists them in the
    descriptions)."""
    out = copy.deepcopy(schema)
    for node in _schema_nodes(out):
        text = node.get("description")
        if not isinstance(text, str):
            continue
        start = text.rfind(_SUFFIX_START)
        if start < 0 or not text.endswith(")"):
            continue
        listed = _read_suffix(text[start + len(_SUFFIX_START) : -1])
        lengths = {
            key: int(listed.pop(key))
            for key in LENGTH_KEYWORDS
            if key in listed and listed[key].isdigit()
        }
        if not lengths:
            continue
        description = _with_constraints(text[:start].rstrip(), listed)
        if description:
            node["description"] = description
        else:
            del node["description"]
        node.update(lengths)
    return out


def relaxed_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of a wire schema with every enforced keyword moved into its node's description
    suffix: the schema for an endpoint that rejects them (pydantic still checks them)."""
    relaxed = copy.deepcopy(schema)
    for node in _schema_nodes(relaxed):
        moved = {key: node.pop(key) for key in ENFORCED_KEYWORDS if key in node}
        if moved:
            node["description"] = _with_constraints(node.get("description"), moved)
            ordered = {**{key: node[key] for key in _KEY_ORDER if key in node}, **node}
            node.clear()
            node.update(ordered)  # the description first, as _strict writes it
    return relaxed


def _schema_nodes(schema: Any) -> list[dict[str, Any]]:
    """Every schema object of a wire schema (not property names or enum values)."""
    nodes: list[dict[str, Any]] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        nodes.append(node)
        for key in ("properties", "$defs"):
            if isinstance(node.get(key), dict):
                stack.extend(node[key].values())
        stack.append(node.get("items"))
        if isinstance(node.get("anyOf"), list):
            stack.extend(node["anyOf"])
    return nodes


def _strict(node: Any, defs: dict[str, Any], owner: str, field: str | None) -> dict[str, Any]:
    """Rewrite one schema node (and everything below it) for strict mode."""
    where = _where(owner, field)
    if not isinstance(node, dict):
        if node is True:
            raise UnsupportedModelError(f"{where}: {_ANY_FIX}")
        raise UnsupportedModelError(f"{where}: schema {node!r} is not supported; {JSON_TYPES_FIX}")
    node = dict(node)

    all_of = node.pop("allOf", None)
    if all_of is not None:
        if not isinstance(all_of, list) or len(all_of) != 1:
            raise UnsupportedModelError(
                f"{where}: 'allOf' with several schemas cannot be expressed in strict "
                "structured outputs; use a single nested model"
            )
        node = {**all_of[0], **node}
    if "oneOf" in node:
        if "anyOf" in node:
            raise UnsupportedModelError(
                f"{where}: 'oneOf' next to 'anyOf' cannot be expressed in strict structured "
                "outputs; use a plain union"
            )
        node["anyOf"] = node.pop("oneOf")
    for keyword, fix in _UNSUPPORTED_KEYWORDS.items():
        if keyword in node:
            raise UnsupportedModelError(f"{where}: {fix}")

    ref = node.get("$ref")
    if ref is not None:
        if not isinstance(ref, str):
            raise UnsupportedModelError(f"{where}: invalid $ref {ref!r}")
        _ref_name(ref, defs, owner, field)
        return {"$ref": ref}  # strict mode allows no sibling keywords next to $ref

    out: dict[str, Any] = {
        key: copy.deepcopy(node[key])
        for key in ENFORCED_KEYWORDS
        if key in node and _enforceable(key, node[key]) and not (key == "format" and _NAIVE in node)
    }
    description = _with_constraints(
        node.get("description"),
        {key: node[key] for key in CONSTRAINT_KEYWORDS if key in node and key not in out},
    )
    if description:
        out["description"] = description

    types = node.get("type")
    type_list = types if isinstance(types, list) else [types]
    if "type" in node:
        out["type"] = copy.deepcopy(types)
    if "enum" in node:
        out["enum"] = copy.deepcopy(node["enum"])
    if "const" in node:
        out["const"] = copy.deepcopy(node["const"])

    if "object" in type_list or "properties" in node:
        extra = node.get("additionalProperties", False)
        if "properties" not in node or (extra is not False and extra is not True):
            raise UnsupportedModelError(f"{where}: {_DICT_FIX}")
        # extra="allow" models: extras are accepted but never asked for.
        properties: dict[str, Any] = node["properties"]
        out["properties"] = {
            name: _strict(sub, defs, owner, f"{field}.{name}" if field else name)
            for name, sub in properties.items()
        }
        out["required"] = list(properties)
        out["additionalProperties"] = False
    elif "additionalProperties" in node and node["additionalProperties"] is not False:
        raise UnsupportedModelError(f"{where}: {_DICT_FIX}")

    if "array" in type_list or "items" in node:
        items = node.get("items")
        if items is None or items == {} or items is True:
            raise UnsupportedModelError(f"{where}: {_ANY_FIX}")
        out["items"] = _strict(items, defs, owner, field)

    if "anyOf" in node:
        branches = node["anyOf"]
        if not isinstance(branches, list) or not branches:
            raise UnsupportedModelError(f"{where}: empty 'anyOf'; {JSON_TYPES_FIX}")
        out["anyOf"] = [_strict(branch, defs, owner, field) for branch in branches]

    if not any(key in out for key in _TYPE_KEYS):
        raise UnsupportedModelError(f"{where}: {_ANY_FIX}")
    return {key: out[key] for key in _KEY_ORDER if key in out}
