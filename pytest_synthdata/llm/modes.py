"""Structured-output modes: how each one asks for JSON and where it finds the answer.

Every mode is one entry of :data:`MODES`, and the order of :data:`MODES` is the ladder that
``structured="auto"`` walks down when an endpoint rejects a mode. A mode says

* how it turns (messages, schema name, schema, count) into the messages and the extra
  request parameters it needs (:meth:`Mode.request`),
* where the JSON text is in the answer: the message content, or the arguments of a forced
  tool call (:meth:`Mode.read`),
* whether the wanted number of records is written into the schema (``bounds_count``): the
  wrapper's array gets ``minItems``/``maxItems``, which servers that turn the schema into a
  grammar (llama.cpp) enforce, so a small model cannot answer with an empty or endless array.

The built-in modes, in ladder order:

* ``json_schema``: ``response_format={"type": "json_schema", ..., "strict": true}``
* ``json_object``: ``response_format={"type": "json_object", "schema": ...}`` with the schema
  also written into the prompt (servers such as llama.cpp enforce the ``schema`` key, string
  lengths included, so this mode sends ``minLength``/``maxLength`` as keywords)
* ``tools``: one forced function call whose ``parameters`` are the schema

This module imports nothing heavy (no openai): the settings read the mode names from it
when the plugin loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

Messages = list[dict[str, str]]
Schema = dict[str, Any]


@dataclass(frozen=True)
class ModeRequest:
    """What a mode contributes to one chat-completion request."""

    messages: Messages
    """The conversation to send (a mode may add to it)."""
    params: dict[str, Any]
    """Keyword arguments of ``chat.completions.create`` that ask for structured output."""


@dataclass(frozen=True)
class Mode:
    """One structured-output mode. Subclasses say what they send; the base reads content."""

    name: str
    """The value of the ``structured`` setting that selects this mode."""
    bounds_count: bool = False
    """Whether the number of records wanted is written into the schema."""
    lengths: bool = False
    """Whether string lengths are sent as ``minLength``/``maxLength`` keywords (for grammar
    engines) rather than only in the descriptions (OpenAI strict mode rejects them)."""

    def request(
        self, messages: Messages, name: str, schema: Schema, count: int | None = None
    ) -> ModeRequest:
        """The messages and parameters that ask for JSON matching ``schema``.

        ``name`` names the schema (or the function); ``count`` is the number of array items
        wanted, applied to the schema only when the mode ``bounds_count``.
        """
        if count is not None and self.bounds_count:
            schema = bound_count(schema, count)
        return ModeRequest(self.messages(messages, schema), self.params(name, schema))

    def messages(self, messages: Messages, schema: Schema) -> Messages:
        """The conversation for this mode; unchanged unless the mode needs the schema in it."""
        return messages

    def params(self, name: str, schema: Schema) -> dict[str, Any]:
        """The request parameters that select this mode."""
        raise NotImplementedError(f"structured mode {self.name!r} does not say what it sends")

    def read(self, message: Any) -> str | None:
        """The JSON text of an answer's message (an openai ``ChatCompletionMessage``)."""
        return read_content(message)


@dataclass(frozen=True)
class JsonSchemaMode(Mode):
    """OpenAI structured outputs: ``response_format`` ``json_schema`` with ``strict``."""

    def params(self, name: str, schema: Schema) -> dict[str, Any]:
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            }
        }


@dataclass(frozen=True)
class JsonObjectMode(Mode):
    """JSON mode with the schema both in ``response_format`` and in a system message."""

    def messages(self, messages: Messages, schema: Schema) -> Messages:
        note = "The answer must match this JSON schema: " + json.dumps(
            schema, separators=(",", ":")
        )
        return [*messages[:1], {"role": "system", "content": note}, *messages[1:]]

    def params(self, name: str, schema: Schema) -> dict[str, Any]:
        return {"response_format": {"type": "json_object", "schema": schema}}


@dataclass(frozen=True)
class ToolsMode(Mode):
    """One function whose parameters are the schema, and a ``tool_choice`` that forces it."""

    def params(self, name: str, schema: Schema) -> dict[str, Any]:
        return {
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": name,
                        "description": "Return the requested records.",
                        "parameters": schema,
                        "strict": True,
                    },
                }
            ],
            "tool_choice": {"type": "function", "function": {"name": name}},
        }

    def read(self, message: Any) -> str | None:
        calls = getattr(message, "tool_calls", None) or []
        if calls:
            arguments: str | None = calls[0].function.arguments
            return arguments
        return read_content(message)


MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        JsonSchemaMode("json_schema"),
        JsonObjectMode("json_object", bounds_count=True, lengths=True),
        ToolsMode("tools", bounds_count=True),
    )
}
"""Every structured-output mode by name; the order is the ``auto`` ladder."""

AUTO = "auto"
"""The ``structured`` value that walks down :func:`ladder` until the endpoint accepts a mode."""


def ladder() -> tuple[str, ...]:
    """The mode names ``auto`` tries, in order."""
    return tuple(MODES)


def next_mode(name: str) -> str | None:
    """The mode ``auto`` tries after ``name``; ``None`` at the end of the ladder."""
    names = ladder()
    if name not in names:
        return None
    index = names.index(name)
    return names[index + 1] if index + 1 < len(names) else None


def structured_values() -> tuple[str, ...]:
    """Every accepted value of the ``structured`` setting: ``auto``, then the ladder."""
    return (AUTO, *ladder())


def structured_help() -> str:
    """The help text of the ``structured`` option."""
    values = structured_values()
    return f"structured-output mode: {', '.join(values[:-1])} or {values[-1]} (default {AUTO})"


def read_content(message: Any) -> str | None:
    """The text content of an answer's message (plain text requests read it the same way):
    a string or ``None``, as :func:`.answers.text_choices` made every message's content."""
    content: str | None = message.content
    return content


def bound_count(schema: Schema, count: int) -> Schema:
    """The wrapper schema with its array bounded to exactly ``count`` items."""
    properties = {
        key: {**value, "minItems": count, "maxItems": count}
        if isinstance(value, dict) and value.get("type") == "array"
        else value
        for key, value in schema.get("properties", {}).items()
    }
    return {**schema, "properties": properties}


def sent_schema(request: dict[str, Any]) -> Any:
    """The JSON schema a structured request sends, whatever its mode (``None``: none)."""
    response_format = request.get("response_format")
    if isinstance(response_format, dict):
        inner = response_format.get("json_schema")
        return inner.get("schema") if isinstance(inner, dict) else response_format.get("schema")
    tools = request.get("tools")
    if isinstance(tools, list) and tools:
        return tools[0].get("function", {}).get("parameters")
    return None
