"""Why pydantic cannot give a model a JSON schema, said about the field that causes it.

pydantic reports such a model with an error about a core schema (``Cannot generate a
JsonSchema for core_schema.CallableSchema``); :func:`json_schema_error` finds the field, in
the model or in a nested one, and says which type to use instead.
"""

from __future__ import annotations

import copy
import typing
import warnings
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model
from pydantic.errors import PydanticUndefinedAnnotation, PydanticUserError
from pydantic.fields import FieldInfo

__all__ = ["JSON_TYPES_FIX", "first_line", "json_schema_error"]

JSON_TYPES_FIX = (
    "use a JSON-compatible type (str, int, float, bool, date, datetime, an Enum, a Literal, "
    "a list or a nested BaseModel)"
)


def json_schema_error(model: type[BaseModel], exc: Exception) -> str:
    """Message for a model pydantic cannot turn into a JSON schema, naming the field."""
    located = _locate_bad_field(model, set())
    if located is None:
        return (
            f"{model.__name__}: cannot be expressed as a JSON schema ({first_line(exc)}); "
            + JSON_TYPES_FIX
        )
    path, field, reason = located
    where = path[0] + (f" (via {' -> '.join(path[1:])})" if len(path) > 1 else "")
    return (
        f"{where}: type {_annotation_repr(field.annotation)} cannot be expressed as a "
        f"JSON schema ({reason}); {JSON_TYPES_FIX}"
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
        return first_line(exc)
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


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
