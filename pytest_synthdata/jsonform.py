"""The one way a value the user gave (a model instance, a field's default or example, a
sampled value) or a validated record becomes JSON data for a prompt, a request or a key.

pydantic writes a ``set`` or ``frozenset`` as a list in the set's iteration order, and the
iteration order of a set of strings (or of anything hashed like a string: bytes, dates,
enums, tuples and frozen models holding them) changes with every Python process
(``PYTHONHASHSEED`` is random by default). The same instance would then give another
prompt in the next process, and a cassette recorded in one process would not replay in the
next. :func:`json_form` writes the elements of every set and frozenset in the order of
their JSON text instead, so the same value gives the same data, and the same bytes, in
every process. Everything else is exactly what pydantic writes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, RootModel
from pydantic_core import to_jsonable_python

__all__ = ["json_form", "ordered"]


def json_form(value: object, *, decimals_as_numbers: bool = False, **options: Any) -> Any:
    """``value`` as JSON data, with the elements of its sets and frozensets in order.

    A pydantic model is written by ``model_dump(mode="json", **options)``, anything else by
    ``pydantic_core.to_jsonable_python(value, **options)``. ``decimals_as_numbers``: the
    decimals a model holds as JSON numbers (an integral one as an integer) rather than the
    strings pydantic writes (a model's Python-mode dump says where they are).
    """
    if isinstance(value, BaseModel):
        data = value.model_dump(mode="json", **options)
        if decimals_as_numbers:
            data = _numbers(value.model_dump(**options), data)
    else:
        data = to_jsonable_python(value, **options)
    return ordered(value, data)


def ordered(value: object, data: Any) -> Any:
    """``data`` (the JSON form of ``value``) with the lists that are sets of ``value`` in
    the order of their elements' JSON text. ``value`` is walked beside ``data``: iterating a
    set twice gives the same order, so its elements pair with the list pydantic wrote."""
    if data is None or isinstance(data, (str, int, float)):
        return data  # a scalar: nothing to order
    if isinstance(value, RootModel):
        return ordered(value.root, data)
    if isinstance(value, (set, frozenset)):
        if not isinstance(data, list) or len(data) != len(value):
            return data  # a serializer gave it another form: written as it is
        items = [ordered(v, d) for v, d in zip(value, data, strict=True)]
        return sorted(items, key=_text)
    if isinstance(data, list) and isinstance(value, (list, tuple)) and len(data) == len(value):
        return [ordered(v, d) for v, d in zip(value, data, strict=True)]
    if not isinstance(data, dict):
        return data
    if isinstance(value, BaseModel):
        return _fields(value, data)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        found = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
        return {k: ordered(found[k], d) if k in found else d for k, d in data.items()}
    if isinstance(value, Mapping):
        if len(value) == len(data):  # written in the mapping's order, keys maybe turned to str
            pairs = zip(value.values(), data.items(), strict=True)
            return {k: ordered(v, d) for v, (k, d) in pairs}
        by_text = {str(k): v for k, v in value.items()}
        return {k: ordered(by_text[k], d) if k in by_text else d for k, d in data.items()}
    return data


def _fields(model: BaseModel, data: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON object with each field's value ordered, the field found under its name
    or one of its aliases (whichever the dump used)."""
    names = _keys(type(model))
    extra = model.model_extra or {}
    out: dict[str, Any] = {}
    for key, item in data.items():
        if key in names:
            out[key] = ordered(getattr(model, names[key], None), item)
        else:
            out[key] = ordered(extra[key], item) if key in extra else item
    return out


@functools.lru_cache(maxsize=512)
def _keys(model: type[BaseModel]) -> dict[str, str]:
    """Each key a dump of ``model`` may write a field under (its name, its aliases) and the
    field's name."""
    keys: dict[str, str] = {}
    for name, info in model.model_fields.items():
        for key in (name, info.serialization_alias, info.alias):
            if isinstance(key, str):
                keys.setdefault(key, name)
    return keys


def _text(item: Any) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"), default=str)


def _numbers(python: Any, data: Any) -> Any:
    """``data`` (a JSON dump) with the numbers ``python`` (the same dump in Python mode)
    holds as decimals written as numbers: an integral one as an integer."""
    if isinstance(python, Decimal):
        if not python.is_finite():
            return data
        return int(python) if python == python.to_integral_value() else float(python)
    if isinstance(python, Mapping) and isinstance(data, dict):
        return {key: _numbers(python.get(key), value) for key, value in data.items()}
    if isinstance(python, (list, tuple, set, frozenset)) and isinstance(data, list):
        return [_numbers(p, d) for p, d in zip(python, data, strict=False)]
    return data
