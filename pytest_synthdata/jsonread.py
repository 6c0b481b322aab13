"""The one JSON reader for what an endpoint sends, and the check of strict JSON out.

An endpoint's body and the JSON its model wrote (the message content, a tool call's
arguments) are read by :func:`loads`: JSON nested deeper than :data:`MAX_DEPTH` is
invalid (a :class:`ValueError`, never a ``RecursionError``), however deep it goes.
``NaN``, ``Infinity`` and numbers too large for a float (``1e999``) are read as the
non-finite floats they spell, so that a field which allows them (``allow_inf_nan=True``)
gets them; every other field refuses them (:func:`nonfinite_fields`), since JSON cannot
carry them. What this package writes as JSON is strict JSON: :func:`strict_dumps`, and
:func:`check_strict` for a text about to be written.
"""

from __future__ import annotations

import json
import math
import typing
from typing import Any

MAX_DEPTH = 100
"""The deepest nesting of arrays and objects an answer may have."""


class TooDeep(ValueError):
    """The JSON is nested deeper than :data:`MAX_DEPTH`."""


def _too_deep() -> TooDeep:
    return TooDeep(f"it is nested more than {MAX_DEPTH} arrays or objects deep")


def loads(text: str | bytes) -> Any:
    """``text`` as JSON, no deeper than :data:`MAX_DEPTH`; a :class:`ValueError` otherwise."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise _too_deep() from None
    check_depth(value)
    return value


def raw_decode(text: str, start: int) -> tuple[Any, int]:
    """The first JSON value of ``text`` from ``start`` (as ``JSONDecoder.raw_decode``),
    no deeper than :data:`MAX_DEPTH`."""
    try:
        value, end = json.JSONDecoder().raw_decode(text, start)
    except RecursionError:
        raise _too_deep() from None
    check_depth(value)
    return value, end


def check_depth(value: object) -> None:
    """Raise :class:`TooDeep` if ``value`` nests deeper than :data:`MAX_DEPTH` (iterative,
    so a structure of any depth is measured without recursion)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth >= MAX_DEPTH:
            raise _too_deep()
        stack.extend((child, depth + 1) for child in children)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON; write a finite number (or null)")


def check_strict(text: str) -> None:
    """Raise :class:`ValueError` unless ``text`` (JSON, or JSON Lines) is strict JSON: no
    ``NaN``, ``Infinity`` or number too large for a float, which strict parsers reject."""
    lines = text.splitlines() if "\n" in text.strip() else [text]
    for line in lines:
        if not line.strip():
            continue
        value = json.loads(line, parse_constant=_refuse_constant)
        if _has_nonfinite(value):
            raise ValueError("a number is too large for JSON (it reads as infinity)")


def strict_dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` that refuses ``NaN`` and infinities (``ValueError``)."""
    return json.dumps(value, allow_nan=False, **options)


def _has_nonfinite(value: object) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return True
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _is_nonfinite(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if type(value).__name__ == "Decimal":
        return not bool(getattr(value, "is_finite", lambda: True)())
    return False


def _allows(annotation: object, metadata: list[Any]) -> bool:
    """Whether a field's metadata, or any ``Annotated`` inside its type, says
    ``allow_inf_nan=True``."""
    if any(_says_allowed(item) for item in metadata):
        return True
    stack = [annotation]
    while stack:
        node = stack.pop()
        if any(_says_allowed(item) for item in getattr(node, "__metadata__", ())):
            return True
        stack.extend(typing.get_args(node))
    return False


def _says_allowed(item: object) -> bool:
    """``allow_inf_nan=True`` on ``item`` (a constraint, or a ``Field`` and its metadata)."""
    if getattr(item, "allow_inf_nan", None) is True:
        return True
    inner = getattr(item, "metadata", None)
    return isinstance(inner, list) and any(_says_allowed(m) for m in inner)


def nonfinite_fields(record: Any, path: str = "") -> list[str]:
    """The dotted names of the fields of a validated pydantic ``record`` (nested models,
    lists and dicts included) that hold ``NaN`` or an infinity although the field does not
    explicitly allow them (``Field(allow_inf_nan=True)``, ``confloat(allow_inf_nan=True)``,
    or ``allow_inf_nan=True`` in the model's config)."""
    found: list[str] = []
    fields = getattr(type(record), "model_fields", None)
    if not isinstance(fields, dict):
        return found
    config = getattr(type(record), "model_config", {}) or {}
    for name, info in fields.items():
        value = getattr(record, name, None)
        where = f"{path}{name}"
        allowed = config.get("allow_inf_nan") is True or _allows(info.annotation, info.metadata)
        found += _walk(value, where, allowed)
    return found


def _walk(value: object, where: str, allowed: bool, depth: int = 0) -> list[str]:
    if depth > MAX_DEPTH:
        return []
    if _is_nonfinite(value):
        return [] if allowed else [where]
    if hasattr(type(value), "model_fields"):
        return nonfinite_fields(value, where + ".")
    if isinstance(value, dict):
        items: list[tuple[str, object]] = [(f"{where}.{k}", v) for k, v in value.items()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = [(f"{where}[{i}]", v) for i, v in enumerate(value)]
    else:
        return []
    return [bad for key, inner in items for bad in _walk(inner, key, allowed, depth + 1)]


def nonfinite_problem(record: Any, position: int) -> str | None:
    """What to tell the model about a record with a non-finite number where its field does
    not allow one (``None``: there is none)."""
    bad = nonfinite_fields(record)
    if not bad:
        return None
    return (
        f"Record {position} was invalid and was dropped: {', '.join(bad[:5])} held NaN or "
        "Infinity (or a number too large), which JSON cannot carry; write a finite number"
    )
