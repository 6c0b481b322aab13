"""Turn a pydantic model into a strict JSON schema for OpenAI structured outputs.

Strict mode (``"strict": true``) accepts only a subset of JSON schema: every object lists
all its properties in ``required`` and sets ``additionalProperties`` to ``false``, ``$ref``
points into the root ``$defs`` and carries no sibling keywords, and validation keywords such
as ``minimum`` or ``maxLength`` are not allowed. This module rewrites the schema pydantic
produces accordingly. Removed validation keywords stay visible to the model through a
suffix appended to the node's ``description``::

    "The patient's id. (constraints: minimum=0, maxLength=10, format=date)"

Pydantic still enforces every constraint when the records come back, so nothing is lost.

Models that strict mode cannot express (``dict`` fields, ``Any``, callables, fixed-size
tuples, ...) raise :class:`~pytest_synthdata.errors.UnsupportedModelError` naming the model,
the field and the fix.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import typing
import warnings
from collections.abc import Callable
from typing import Any

from pydantic import AliasChoices, AliasPath, BaseModel, ConfigDict, create_model
from pydantic.errors import PydanticUndefinedAnnotation, PydanticUserError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

from .errors import SynthConfigError, UnsupportedModelError

__all__ = ["field_lines", "record_schema", "schema_name", "wrapper_schema"]

#: Validation keywords strict mode rejects, in the order they are listed in the description
#: suffix that replaces them.
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
    "properties",
    "required",
    "additionalProperties",
    "items",
    "anyOf",
    "$ref",
)

_TYPE_KEYS = ("type", "enum", "const", "anyOf", "$ref")
_DEFS_PREFIX = "#/$defs/"
_NAME_RE = re.compile(r"[^a-zA-Z0-9_-]+")

_DICT_FIX = (
    "dict fields cannot be expressed in strict structured outputs; "
    "use a list of key/value models instead"
)
_ANY_FIX = (
    "a field without a concrete JSON type (Any, bare list or dict) cannot be expressed in "
    "strict structured outputs; use a concrete type such as str, int, list[str] or a nested model"
)
_JSON_TYPES_FIX = (
    "use a JSON-compatible type (str, int, float, bool, date, datetime, an Enum, a Literal, "
    "a list or a nested BaseModel)"
)


# --------------------------------------------------------------------------- public API


def record_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Strict-mode JSON schema of one record, with every $defs entry at the top level under "$defs".

    Raises :class:`UnsupportedModelError` if the model cannot be expressed in strict mode.
    """
    raw = _raw_schema(model)
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


def field_lines(model: type[BaseModel]) -> list[str]:
    """One human-readable line per field of the model, for the prompt.

    For example ``"- patient_id (integer, required): The patient's id. Constraints: >= 0."``.
    The name is the key expected in the JSON output (the validation alias if any).
    """
    raw = _raw_schema(model)
    defs: dict[str, Any] = raw.get("$defs", {})
    root = raw
    ref = raw.get("$ref")
    if isinstance(ref, str):
        root = defs.get(ref[len(_DEFS_PREFIX) :], raw)
    props: dict[str, Any] = root.get("properties", {})
    lines: list[str] = []
    for name, field in model.model_fields.items():
        wire = _wire_name(name, field)
        if wire not in props:
            wire = name
        if wire not in props:  # hidden from the JSON schema (e.g. SkipJsonSchema)
            continue
        lines.append(_field_line(wire, field, props[wire], defs))
    return lines


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


def _raw_schema(model: type[BaseModel]) -> dict[str, Any]:
    """pydantic's validation-mode JSON schema, with its errors turned into ours."""
    _check_model(model)
    name = model.__name__
    if not getattr(model, "__pydantic_complete__", True):
        try:
            model.model_rebuild()
        except (PydanticUndefinedAnnotation, PydanticUserError) as exc:
            raise UnsupportedModelError(
                f"{name}: the model is not fully defined ({_first_line(exc)}); define every "
                f"type it references, then call {name}.model_rebuild()"
            ) from exc
    try:
        raw = model.model_json_schema(mode="validation")
    except (PydanticUserError, PydanticUndefinedAnnotation) as exc:
        raise UnsupportedModelError(_json_schema_error(model, exc)) from exc
    return copy.deepcopy(raw)


def _json_schema_error(model: type[BaseModel], exc: Exception) -> str:
    """Message for a model pydantic cannot turn into a JSON schema, naming the field."""
    located = _locate_bad_field(model, set())
    if located is None:
        return (
            f"{model.__name__}: cannot be expressed as a JSON schema ({_first_line(exc)}); "
            + _JSON_TYPES_FIX
        )
    path, field, reason = located
    where = path[0] + (f" (via {' -> '.join(path[1:])})" if len(path) > 1 else "")
    return (
        f"{where}: type {_annotation_repr(field.annotation)} cannot be expressed as a "
        f"JSON schema ({reason}); {_JSON_TYPES_FIX}"
    )


def _locate_bad_field(
    model: type[BaseModel], seen: set[type[BaseModel]]
) -> tuple[list[str], FieldInfo, str] | None:
    """Find the field whose type has no JSON schema: (["Outer.f", "Inner.g"], info, reason)."""
    seen.add(model)
    for name, field in model.model_fields.items():
        error = _probe_field(name, field)
        if error is None:
            continue
        here = f"{model.__name__}.{name}"
        for nested in _nested_models(field.annotation):
            if nested in seen:
                continue
            deeper = _locate_bad_field(nested, seen)
            if deeper is not None:
                return [here, *deeper[0]], deeper[1], deeper[2]
        return [here], field, error
    return None


def _probe_field(name: str, field: FieldInfo) -> str | None:
    """The reason this single field has no JSON schema, or None if it has one."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            definitions: dict[str, Any] = {name: (field.annotation, copy.copy(field))}
            probe: type[BaseModel] = create_model(
                "Probe",
                __config__=ConfigDict(arbitrary_types_allowed=True, protected_namespaces=()),
                **definitions,
            )
    except Exception:  # the field cannot be rebuilt on its own: cannot tell
        return None
    try:
        probe.model_json_schema(mode="validation")
    except (PydanticUserError, PydanticUndefinedAnnotation) as exc:
        return _first_line(exc)
    return None


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    """BaseModel subclasses appearing anywhere in a type annotation."""
    found: list[type[BaseModel]] = []
    stack = [annotation]
    while stack:
        item = stack.pop(0)
        if isinstance(item, type) and issubclass(item, BaseModel):
            if item not in found:
                found.append(item)
            continue
        stack.extend(typing.get_args(item))
    return found


def _annotation_repr(annotation: Any) -> str:
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return repr(annotation).replace("typing.", "").replace("collections.abc.", "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- strict rewrite


def _where(owner: str, field: str | None) -> str:
    return f"{owner}.{field}" if field else owner


def _ref_name(ref: str, defs: dict[str, Any], owner: str, field: str | None) -> str:
    name = ref[len(_DEFS_PREFIX) :] if ref.startswith(_DEFS_PREFIX) else ""
    if not name or name not in defs:
        raise UnsupportedModelError(
            f"{_where(owner, field)}: reference {ref!r} does not point into the root $defs; "
            f"{_JSON_TYPES_FIX}"
        )
    return name


def _constraint_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def _strict(node: Any, defs: dict[str, Any], owner: str, field: str | None) -> dict[str, Any]:
    """Rewrite one schema node (and everything below it) for strict mode."""
    where = _where(owner, field)
    if not isinstance(node, dict):
        if node is True:
            raise UnsupportedModelError(f"{where}: {_ANY_FIX}")
        raise UnsupportedModelError(f"{where}: schema {node!r} is not supported; {_JSON_TYPES_FIX}")
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

    constraints = [
        f"{key}={_constraint_value(node[key])}" for key in CONSTRAINT_KEYWORDS if key in node
    ]
    out: dict[str, Any] = {}
    description = node.get("description")
    if constraints:
        suffix = f"(constraints: {', '.join(constraints)})"
        description = f"{description} {suffix}" if description else suffix
    if isinstance(description, str) and description:
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
            raise UnsupportedModelError(f"{where}: empty 'anyOf'; {_JSON_TYPES_FIX}")
        out["anyOf"] = [_strict(branch, defs, owner, field) for branch in branches]

    if not any(key in out for key in _TYPE_KEYS):
        raise UnsupportedModelError(f"{where}: {_ANY_FIX}")
    return {key: out[key] for key in _KEY_ORDER if key in out}


# --------------------------------------------------------------------------- field lines


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
        if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
            return defs.get(ref[len(_DEFS_PREFIX) :], node)
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
                status += f", default {_literal(to_jsonable_python(field.default))}"
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
            shown = ", ".join(_literal(to_jsonable_python(e)) for e in field.examples)
        except Exception:
            shown = ""
        if shown:
            tail.append(f"Examples: {shown}.")
    return f"{head}: {' '.join(tail)}" if tail else head
