"""Models, schemas and request helpers shared by the fake server's own tests."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any, Literal

import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ConfigDict, Field

from fakellm import (
    CONSTRAINT_KEYS,
)

# --------------------------------------------------------------------------------------------
# Models and schema helpers
# --------------------------------------------------------------------------------------------


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")

    street: str
    city: str
    zip_code: str | None


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    age: int
    score: float
    active: bool
    role: Literal["admin", "user", "guest"]
    kind: Literal["person"]
    tags: list[str]
    address: Address
    nickname: str | None


class Constrained(BaseModel):
    model_config = ConfigDict(extra="forbid")

    age: int = Field(ge=5)
    code: str = Field(max_length=4)
    born: dt.date
    qty: int = Field(gt=0, lt=10, multiple_of=3)
    price: float = Field(gt=0, lt=1)
    big: float = Field(ge=1_000_000)
    negative: int = Field(le=-10)
    sku: str = Field(pattern=r"^[A-Z]{2,3}-\d{4}$")
    label: str = Field(min_length=12, max_length=14)
    at: dt.datetime
    ident: uuid.UUID
    email: str = Field(json_schema_extra={"format": "email"})
    pair: list[int] = Field(min_length=2, max_length=2)
    few: list[str] = Field(min_length=4)


def _make_strict(node: Any) -> Any:
    """Strict structured-output form: every property required, no extra properties."""
    if isinstance(node, dict):
        out = {k: _make_strict(v) for k, v in node.items()}
        out.pop("title", None)
        out.pop("default", None)
        if out.get("type") == "object" and "properties" in out:
            out["required"] = list(out["properties"])
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_make_strict(v) for v in node]
    return node


def _to_wire(node: Any) -> Any:
    """Move validation keywords into a ``(constraints: ...)`` description suffix."""
    if isinstance(node, list):
        return [_to_wire(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    moved: list[str] = []
    for key, value in node.items():
        if key in CONSTRAINT_KEYS and not isinstance(value, (dict, list)):
            moved.append(f"{key}={value}")
        elif key == "properties":
            out[key] = {name: _to_wire(sub) for name, sub in value.items()}
        else:
            out[key] = _to_wire(value)
    if moved:
        prefix = out.get("description", "")
        out["description"] = f"{prefix} (constraints: {', '.join(moved)})".strip()
    return out


def records_schema(model: type[BaseModel], *, wire: bool = False) -> dict[str, Any]:
    """The wrapper object schema ``{"records": [model, ...]}`` the plugin sends."""
    raw = _make_strict(model.model_json_schema())
    defs = raw.pop("$defs", {})
    defs[model.__name__] = raw
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "records": {"type": "array", "items": {"$ref": f"#/$defs/{model.__name__}"}}
        },
        "required": ["records"],
        "additionalProperties": False,
        "$defs": defs,
    }
    return _to_wire(schema) if wire else schema


PERSON_SCHEMA = records_schema(Person)


def user(text: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You generate realistic test data as JSON."},
        {"role": "user", "content": text},
    ]


def json_schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": "records", "schema": schema, "strict": True},
    }


def tool_args(schema: dict[str, Any], name: str = "emit_records") -> dict[str, Any]:
    return {
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": "Emit the records.",
                    "parameters": schema,
                    "strict": True,
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": name}},
    }


def chat(client: openai.OpenAI, **kwargs: Any) -> ChatCompletion:
    """``chat.completions.create`` with untyped keyword arguments (raw dicts on purpose)."""
    kwargs.setdefault("model", "fake-model")
    create: Callable[..., ChatCompletion] = client.chat.completions.create
    return create(**kwargs)


def raw_chat(client: openai.OpenAI, **kwargs: Any) -> Any:
    """``chat.completions.with_raw_response.create``: the response with its HTTP headers."""
    kwargs.setdefault("model", "fake-model")
    create: Callable[..., Any] = client.chat.completions.with_raw_response.create
    return create(**kwargs)


def ask(
    client: openai.OpenAI,
    text: str = "Generate exactly 3 records.",
    schema: dict[str, Any] = PERSON_SCHEMA,
    **kwargs: Any,
) -> ChatCompletion:
    return chat(client, messages=user(text), response_format=json_schema_format(schema), **kwargs)


def records_of(content: str | None) -> list[dict[str, Any]]:
    assert content is not None
    data = json.loads(content)
    assert set(data) == {"records"}
    records = data["records"]
    assert isinstance(records, list)
    return records
