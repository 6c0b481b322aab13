"""The fake as an endpoint whose structured outputs take no validation keywords.

OpenAI's strict mode once rejected every validation keyword of a schema (``minimum``,
``pattern``, ``format`` ...), and some OpenAI-compatible servers still do. With
``reject_constraints = True`` the server answers such a schema the way OpenAI did, with an
HTTP 400 (or ``constraints_status``) naming the keyword and where it is::

    Invalid schema for response_format 'Bill': In context=('properties', 'records',
    'items', 'properties', 'amount'), 'minimum' is not permitted.

The same constraints written into the descriptions, ``(constraints: minimum=0)``, are
accepted and honoured (:mod:`fakellm.schema_faker` reads them from either place).
:class:`FakeLLM` is the server of :mod:`fakellm.server` with this switch.
"""

from __future__ import annotations

from typing import Any

from . import reading
from .faults import Fault
from .schema_faker import CONSTRAINT_KEYS
from .server import FakeLLM as _Server
from .wire import HTTPError

__all__ = ["FakeLLM", "find_constraint"]

JSONDict = dict[str, Any]


def find_constraint(schema: Any) -> tuple[tuple[str, ...], str] | None:
    """The first validation keyword of ``schema`` and the path of the node holding it
    (property names and ``$defs`` names are not keywords)."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), schema)]
    while stack:
        path, node = stack.pop(0)
        if not isinstance(node, dict):
            continue
        for key in CONSTRAINT_KEYS:
            if key in node:
                return path, key
        for container in ("properties", "$defs"):
            children = node.get(container)
            if isinstance(children, dict):
                stack.extend(((*path, container, name), sub) for name, sub in children.items())
        if "items" in node:
            stack.append(((*path, "items"), node["items"]))
        for key in ("anyOf", "oneOf", "allOf"):
            branches = node.get(key)
            if isinstance(branches, list):
                stack.extend(((*path, key, str(i)), sub) for i, sub in enumerate(branches))
    return None


class FakeLLM(_Server):
    """:class:`fakellm.server.FakeLLM` with the switches ``reject_constraints`` (default
    ``False``) and ``constraints_status`` (default 400), restored by :meth:`reset`."""

    def _set_defaults(self) -> None:
        super()._set_defaults()
        # Answer a schema holding a validation keyword with an error, as OpenAI did (400),
        # or with ``constraints_status`` (a 500, as servers that fail converting it do).
        self.reject_constraints: bool = False
        self.constraints_status: int = 400

    def generate(self, schema: JSONDict, body: JSONDict, fault: Fault | None = None) -> Any:
        if self.reject_constraints:
            found = find_constraint(schema)
            if found is not None:
                path, keyword = found
                output = reading.output_of(body)
                what = "function" if output.mode in ("tools", "functions") else "response_format"
                name = output.name or _schema_name(body)
                raise HTTPError(
                    self.constraints_status,
                    f"Invalid schema for {what} '{name}': In context={path!r}, "
                    f"'{keyword}' is not permitted.",
                )
        return super().generate(schema, body, fault)


def _schema_name(body: JSONDict) -> str:
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        spec = response_format.get("json_schema")
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            return str(spec["name"])
    return "schema"
