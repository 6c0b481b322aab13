"""The loopback FakeLLM server, exercised through the real ``openai`` SDK."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import openai
import pytest
from fakellm import (
    CONSTRAINT_KEYS,
    FAULT_KINDS,
    FakeLLM,
    Fault,
    parse_description_constraints,
    string_for_pattern,
)
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

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


@pytest.fixture
def client(llm: FakeLLM) -> Iterator[openai.OpenAI]:
    c = openai.OpenAI(base_url=llm.url, api_key="sk-test", max_retries=0)
    try:
        yield c
    finally:
        c.close()


# --------------------------------------------------------------------------------------------
# Structured modes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Generate exactly 1 record.", 1),
        ("Generate exactly 4 records.", 4),
        ("GENERATE EXACTLY 7 RECORDS", 7),
        ("Generate some people.", 1),
    ],
)
def test_json_schema_mode(client: openai.OpenAI, prompt: str, expected: int) -> None:
    resp = ask(client, prompt)
    choice = resp.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.refusal is None
    records = records_of(choice.message.content)
    assert len(records) == expected
    people = TypeAdapter(list[Person]).validate_python(records)
    assert all(p.kind == "person" for p in people)
    assert all(1 <= len(p.tags) <= 3 for p in people)
    assert len({p.name for p in people}) == expected
    assert resp.object == "chat.completion"
    assert resp.model == "fake-model"
    assert resp.id.startswith("chatcmpl-")


def test_json_object_mode_with_schema(client: openai.OpenAI, llm: FakeLLM) -> None:
    resp = chat(
        client,
        model="fake-model",
        messages=user("Generate exactly 5 records."),
        response_format={"type": "json_object", "schema": PERSON_SCHEMA},
    )
    records = records_of(resp.choices[0].message.content)
    assert len(records) == 5
    TypeAdapter(list[Person]).validate_python(records)
    assert llm.last_request.body["response_format"]["schema"] == PERSON_SCHEMA


def test_json_object_mode_without_schema_is_rejected(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="schema"):
        chat(
            client,
            model="fake-model",
            messages=user("Generate exactly 5 records."),
            response_format={"type": "json_object"},
        )


def test_tools_mode(client: openai.OpenAI) -> None:
    resp = chat(
        client,
        model="fake-model",
        messages=user("Generate exactly 3 records."),
        **tool_args(PERSON_SCHEMA),
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "emit_records"
    people = TypeAdapter(list[Person]).validate_python(records_of(call.function.arguments))
    assert len(people) == 3


def test_tools_mode_picks_the_forced_function(client: openai.OpenAI) -> None:
    args = tool_args(PERSON_SCHEMA, "wanted")
    other = {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}}
    args["tools"].insert(0, other)
    resp = chat(
        client,
        model="fake-model",
        messages=user("Generate exactly 2 records."),
        **args,
    )
    (call,) = resp.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "wanted"
    assert len(records_of(call.function.arguments)) == 2


def test_plain_request_answers_ok_and_hook_can_be_replaced(
    client: openai.OpenAI, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    resp = chat(client, model="m", messages=user("Say something."))
    assert resp.choices[0].message.content == "ok"
    assert resp.choices[0].finish_reason == "stop"

    monkeypatch.setattr(llm, "_plain_text", lambda body: f"echo {len(body['messages'])}")
    resp = chat(client, model="m", messages=user("Say something."))
    assert resp.choices[0].message.content == "echo 2"


def test_count_comes_from_the_last_user_message(client: openai.OpenAI) -> None:
    messages = [
        {"role": "user", "content": "Generate exactly 6 records."},
        {"role": "assistant", "content": "{}"},
        {"role": "user", "content": [{"type": "text", "text": "Now exactly 2 records, please."}]},
    ]
    resp = chat(
        client,
        model="m",
        messages=messages,
        response_format=json_schema_format(PERSON_SCHEMA),
    )
    assert len(records_of(resp.choices[0].message.content)) == 2


def test_answers_are_deterministic(client: openai.OpenAI) -> None:
    first = ask(client, "Generate exactly 4 records. Batch 1.").choices[0].message.content
    again = ask(client, "Generate exactly 4 records. Batch 1.").choices[0].message.content
    other = ask(client, "Generate exactly 4 records. Batch 2.").choices[0].message.content
    assert first == again
    assert first != other
    names_first = {r["name"] for r in records_of(first)}
    names_other = {r["name"] for r in records_of(other)}
    assert not names_first & names_other


def test_schema_features(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "records": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "maybe": {"type": ["integer", "null"]},
                        "color": {"$ref": "#/$defs/Color"},
                        "fixed": {"const": 42},
                        "choice": {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
                        "tree": {"$ref": "#/$defs/Node"},
                        "tuple": {
                            "type": "array",
                            "prefixItems": [{"type": "string"}, {"type": "integer"}],
                        },
                    },
                    "required": ["maybe", "color", "fixed", "choice", "tree", "tuple"],
                    "additionalProperties": False,
                },
            },
            "batch": {"type": "string"},
        },
        "required": ["records", "batch"],
        "additionalProperties": False,
        "$defs": {
            "Color": {"enum": ["red", "green", "blue"], "type": "string"},
            "Node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                    "parent": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
                },
                "required": ["value", "children", "parent"],
                "additionalProperties": False,
            },
        },
    }
    content = ask(client, "Generate exactly 3 records.", schema).choices[0].message.content
    data = json.loads(content or "")
    assert isinstance(data["batch"], str)
    assert len(data["records"]) == 3
    for rec in data["records"]:
        assert isinstance(rec["maybe"], int) and not isinstance(rec["maybe"], bool)
        assert rec["color"] in {"red", "green", "blue"}
        assert rec["fixed"] == 42
        assert isinstance(rec["choice"], bool)
        assert isinstance(rec["tree"]["value"], int)
        assert isinstance(rec["tuple"][0], str) and isinstance(rec["tuple"][1], int)


@pytest.mark.parametrize("wire", [True, False], ids=["description", "keywords"])
def test_constraints_are_honoured(client: openai.OpenAI, wire: bool) -> None:
    schema = records_schema(Constrained, wire=wire)
    props = schema["$defs"]["Constrained"]["properties"]
    if wire:
        assert "minimum" not in props["age"]
        assert props["age"]["description"] == "(constraints: minimum=5)"
        assert "(constraints: maxLength=4)" in props["code"]["description"]
        assert "(constraints: format=date)" in props["born"]["description"]
    resp = ask(client, "Generate exactly 25 records.", schema)
    rows = TypeAdapter(list[Constrained]).validate_python(
        records_of(resp.choices[0].message.content)
    )
    assert len(rows) == 25
    for row in rows:
        assert row.qty in (3, 6, 9)
        assert re.fullmatch(r"[a-z]+-[0-9a-f]{6}@example\.com", row.email)
        assert row.at.tzinfo is not None
    raw = records_of(resp.choices[0].message.content)
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", r["born"]) for r in raw)
    assert all(r["at"].endswith("Z") for r in raw)
    assert len({r["sku"] for r in raw}) > 1


def test_description_constraint_parsing() -> None:
    parsed = parse_description_constraints(
        "A code. (constraints: minimum=0, maximum=2.5, pattern=^[A-Z]{2,3}-\\d+$, format=date)"
    )
    assert parsed == {
        "minimum": 0,
        "maximum": 2.5,
        "pattern": r"^[A-Z]{2,3}-\d+$",
        "format": "date",
    }
    assert parse_description_constraints("Nothing here.") == {}
    assert parse_description_constraints(None) == {}


def test_pattern_strings() -> None:
    for pattern in [
        r"^[A-Z]{3}-\d{2,4}$",
        r"^(foo|bar)_[a-z0-9]+$",
        r"^\w+@\w+\.com$",
        "[^0-9]{5}",
    ]:
        found = string_for_pattern(pattern, "seed")
        assert found is not None and re.search(pattern, found), pattern
    assert string_for_pattern(r"^(?=x)y$", "seed") is None
    assert string_for_pattern("(", "seed") is None


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


def test_rate_limit_fault(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.enqueue("429")
    with pytest.raises(openai.RateLimitError) as info:
        ask(client)
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "0"
    assert info.value.body == {
        "message": "Rate limit reached for requests. Please try again later.",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert records_of(ask(client).choices[0].message.content)


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_faults(client: openai.OpenAI, llm: FakeLLM, status: int) -> None:
    llm.enqueue(str(status))
    with pytest.raises(openai.InternalServerError) as info:
        ask(client)
    assert info.value.status_code == status
    assert isinstance(info.value.body, dict) and info.value.body["type"] == "server_error"


def test_sdk_retries_through_faults(llm: FakeLLM) -> None:
    llm.retry_after_ms = 0
    llm.enqueue(Fault.RATE_LIMIT, 503, "500")
    started = time.monotonic()
    with openai.OpenAI(base_url=llm.url, api_key="sk-test", max_retries=3) as retrying:
        resp = ask(retrying)
    # no SDK backoff, which would wait at least 0.375 + 0.75 + 1.5 s: the server said "retry now"
    assert time.monotonic() - started < 1.5
    assert len(records_of(resp.choices[0].message.content)) == 3
    assert [r.status for r in llm.requests] == [429, 503, 500, 200]
    assert llm.requests[0].fault == Fault("429")


def test_reset_fault_drops_the_connection(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.enqueue("reset")
    with pytest.raises(openai.APIConnectionError) as info:
        ask(client)
    assert not isinstance(info.value, openai.APITimeoutError)
    assert records_of(ask(client).choices[0].message.content)


def test_timeout_fault(llm: FakeLLM) -> None:
    llm.timeout_delay = 1.0
    llm.enqueue("timeout")
    with (
        openai.OpenAI(base_url=llm.url, api_key="k", max_retries=0, timeout=0.5) as impatient,
        pytest.raises(openai.APITimeoutError),
    ):
        ask(impatient)
    llm.enqueue(Fault.timeout(0.05))
    with openai.OpenAI(base_url=llm.url, api_key="k", max_retries=0, timeout=5) as patient:
        assert len(records_of(ask(patient).choices[0].message.content)) == 3


def test_malformed_fault(client: openai.OpenAI, llm: FakeLLM) -> None:
    good = ask(client).choices[0].message.content or ""
    llm.enqueue("malformed")
    bad = ask(client).choices[0].message.content or ""
    assert bad == good[:-7] + "}{oops"
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad)


def test_truncated_fault(client: openai.OpenAI, llm: FakeLLM) -> None:
    good = ask(client).choices[0].message.content or ""
    llm.enqueue("truncated")
    choice = ask(client).choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content == good[: int(len(good) * 0.6)]


def test_refusal_fault(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.enqueue("refusal")
    choice = ask(client).choices[0]
    assert choice.message.content is None
    assert choice.message.refusal == "I can't help with that."
    assert choice.finish_reason == "stop"


def test_empty_choices_fault(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.enqueue("empty_choices")
    resp = ask(client)
    assert resp.choices == []
    assert resp.usage is not None


@pytest.mark.parametrize(("kind", "expected"), [("fewer", 2), ("more", 7)])
def test_wrong_count_faults(client: openai.OpenAI, llm: FakeLLM, kind: str, expected: int) -> None:
    llm.enqueue(kind)
    records = records_of(ask(client, "Generate exactly 5 records.").choices[0].message.content)
    assert len(records) == expected
    TypeAdapter(list[Person]).validate_python(records)


def test_fewer_rounds_down_to_zero(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.enqueue("fewer")
    assert records_of(ask(client, "exactly 1 record").choices[0].message.content) == []


def test_duplicate_fault(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.enqueue("duplicate")
    records = records_of(ask(client, "Generate exactly 4 records.").choices[0].message.content)
    assert len(records) == 4
    assert all(r == records[0] for r in records)


def test_mutate_fault(client: openai.OpenAI, llm: FakeLLM) -> None:
    def break_first(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        records[0]["age"] = "not a number"
        return [*records, copy.deepcopy(records[1])]

    llm.enqueue(Fault.mutate(break_first))
    records = records_of(ask(client, "Generate exactly 3 records.").choices[0].message.content)
    assert len(records) == 4
    assert records[0]["age"] == "not a number"
    assert records[3] == records[1]

    llm.enqueue(lambda records: records[:1])  # a bare callable is a mutate fault
    assert len(records_of(ask(client).choices[0].message.content)) == 1


def test_faults_apply_to_tool_arguments(client: openai.OpenAI, llm: FakeLLM) -> None:
    def call(**extra: Any) -> Any:
        return chat(
            client,
            model="m",
            messages=user("Generate exactly 4 records."),
            **tool_args(PERSON_SCHEMA),
            **extra,
        ).choices[0]

    good = (call().message.tool_calls or [])[0].function.arguments
    llm.enqueue("malformed", "truncated", "fewer", "refusal")
    assert (call().message.tool_calls or [])[0].function.arguments == good[:-7] + "}{oops"
    truncated = call()
    assert truncated.finish_reason == "length"
    assert (truncated.message.tool_calls or [])[0].function.arguments == good[
        : int(len(good) * 0.6)
    ]
    assert len(records_of((call().message.tool_calls or [])[0].function.arguments)) == 2
    refused = call()
    assert refused.message.refusal and not refused.message.tool_calls


def test_faults_are_consumed_in_order(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.enqueue("500", "429", "more")
    assert len(llm.pending_faults) == 3
    with pytest.raises(openai.InternalServerError):
        ask(client)
    with pytest.raises(openai.RateLimitError):
        ask(client)
    assert len(records_of(ask(client).choices[0].message.content)) == 5
    assert len(records_of(ask(client).choices[0].message.content)) == 3
    assert llm.pending_faults == []


def test_always_fault_until_reset(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.always("duplicate")
    llm.enqueue("fewer")
    assert len(records_of(ask(client, "exactly 4 records").choices[0].message.content)) == 2
    for _ in range(2):
        records = records_of(ask(client).choices[0].message.content)
        assert all(r == records[0] for r in records)
    llm.reset()
    records = records_of(ask(client).choices[0].message.content)
    assert len({json.dumps(r) for r in records}) == 3


def test_fault_validation() -> None:
    assert {
        "429",
        "500",
        "503",
        "reset",
        "crash",
        "timeout",
        "malformed",
        "truncated",
        "refusal",
        "empty_choices",
        "fewer",
        "more",
        "html",
        "html_json",
        "trickle",
        "chatty",
        "mutate",
        "duplicate",
        "huge",
        "deep_body",
        "deep_content",
        "echo_key",
    } == FAULT_KINDS
    with pytest.raises(ValueError, match="unknown fault"):
        Fault("explode")
    with pytest.raises(ValueError, match="callable"):
        Fault("mutate")
    assert Fault.coerce(429) == Fault("429")
    with pytest.raises(TypeError):
        Fault.coerce(3.5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Switches
# --------------------------------------------------------------------------------------------


def test_unsupported_modes(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.supported_modes = {"tools"}
    with pytest.raises(openai.BadRequestError) as info:
        ask(client)
    assert info.value.status_code == 400
    assert "response_format type 'json_schema' is not supported by this server" in str(info.value)

    llm.supported_modes = {"json_schema"}
    with pytest.raises(openai.BadRequestError, match="tools are not supported by this server"):
        chat(
            client,
            model="m",
            messages=user("exactly 2 records"),
            **tool_args(PERSON_SCHEMA),
        )

    llm.unsupported_status = 500
    with pytest.raises(openai.InternalServerError, match="json_object' is not supported"):
        chat(
            client,
            model="m",
            messages=user("exactly 2 records"),
            response_format={"type": "json_object", "schema": PERSON_SCHEMA},
        )
    assert records_of(ask(client).choices[0].message.content)


def test_reject_seed(client: openai.OpenAI, llm: FakeLLM) -> None:
    assert records_of(ask(client, seed=7).choices[0].message.content)
    llm.reject_seed = True
    with pytest.raises(
        openai.BadRequestError, match="Unrecognized request argument supplied: seed"
    ):
        ask(client, seed=7)
    assert records_of(ask(client).choices[0].message.content)


def test_streaming_is_rejected(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="stream"):
        chat(client, model="m", messages=user("hi"), stream=True)


def test_azure_deployment_path(llm: FakeLLM) -> None:
    azure = openai.AzureOpenAI(
        azure_endpoint=llm.origin, api_key="azure-key", api_version="2024-06-01", max_retries=0
    )
    try:
        resp = ask(azure, "Generate exactly 2 records.")
    finally:
        azure.close()
    assert len(records_of(resp.choices[0].message.content)) == 2
    req = llm.last_request
    assert req.path == "/openai/deployments/fake-model/chat/completions"
    assert req.query == {"api-version": "2024-06-01"}
    assert req.headers["api-key"] == "azure-key"
    assert resp.model == "fake-model"


def test_usage_is_reported_and_accumulated(client: openai.OpenAI, llm: FakeLLM) -> None:
    messages = [{"role": "system", "content": "x" * 40}, {"role": "user", "content": "y" * 21}]
    resp = chat(client, model="m", messages=messages)
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == 61 // 4
    assert resp.usage.completion_tokens == 1  # "ok" is 2 characters
    assert resp.usage.total_tokens == 16

    resp2 = ask(client, "Generate exactly 3 records.")
    assert resp2.usage is not None
    content = resp2.choices[0].message.content or ""
    assert resp2.usage.completion_tokens == len(content) // 4
    assert llm.prompt_tokens == 15 + resp2.usage.prompt_tokens
    assert llm.completion_tokens == 1 + resp2.usage.completion_tokens
    assert llm.total_tokens == llm.prompt_tokens + llm.completion_tokens

    llm.enqueue("500")
    with pytest.raises(openai.InternalServerError):
        ask(client)
    assert llm.completion_tokens == 1 + resp2.usage.completion_tokens


def test_omit_usage(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.omit_usage = True
    resp = ask(client)
    assert resp.usage is None
    assert "usage" not in llm.last_request.response
    assert llm.prompt_tokens == llm.completion_tokens == 0


def test_extra_response_fields(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.extra_response_fields = {"system_fingerprint": "fp_x", "service_tier": "default"}
    resp = ask(client)
    assert resp.system_fingerprint == "fp_x"
    assert resp.service_tier == "default"


def test_gzip(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.gzip = True
    raw = raw_chat(
        client,
        model="m",
        messages=user("exactly 2 records"),
        response_format=json_schema_format(PERSON_SCHEMA),
    )
    assert raw.headers["content-encoding"] == "gzip"
    assert len(records_of(raw.parse().choices[0].message.content)) == 2

    plain = raw_chat(
        client,
        model="m",
        messages=user("hi"),
        extra_headers={"Accept-Encoding": "identity"},
    )
    assert "content-encoding" not in plain.headers
    assert plain.parse().choices[0].message.content == "ok"


# --------------------------------------------------------------------------------------------
# Bookkeeping
# --------------------------------------------------------------------------------------------


def test_unknown_paths_are_404(client: openai.OpenAI, llm: FakeLLM) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.embeddings.create(model="m", input="hi")  # /v1/models is answered
    assert isinstance(info.value.body, dict)
    assert info.value.body["type"] == "invalid_request_error"
    assert set(info.value.body) == {"message", "type", "param", "code"}
    assert llm.request_count == 1
    assert llm.chat_requests == []


def test_requests_are_recorded(client: openai.OpenAI, llm: FakeLLM) -> None:
    ask(client, "Generate exactly 2 records.", temperature=0.5)
    assert llm.request_count == 1
    req = llm.requests[0]
    assert req.path == "/v1/chat/completions"
    assert req["path"] == req.path
    assert req.method == "POST"
    assert req.headers["authorization"] == "Bearer sk-test"
    assert all(name == name.lower() for name in req.headers)
    assert req.body["model"] == "fake-model"
    assert req.body["temperature"] == 0.5
    assert req.messages[-1] == {"role": "user", "content": "Generate exactly 2 records."}
    assert req.status == 200
    assert req.response["object"] == "chat.completion"


def test_max_in_flight(llm: FakeLLM) -> None:
    llm.response_delay = 0.2
    with (
        openai.OpenAI(base_url=llm.url, api_key="k", max_retries=0) as c,
        ThreadPoolExecutor(max_workers=4) as pool,
    ):
        results = list(pool.map(lambda i: ask(c, f"exactly 1 record, #{i}"), range(4)))
    assert len(results) == 4
    assert 2 <= llm.max_in_flight <= 4
    assert llm.request_count == 4


def test_reset_restores_defaults(llm: FakeLLM, client: openai.OpenAI) -> None:
    ask(client)
    llm.supported_modes.discard("tools")
    llm.unsupported_status = 500
    llm.reject_seed = True
    llm.timeout_delay = 0.1
    llm.gzip = llm.omit_usage = True
    llm.extra_response_fields["x"] = 1
    llm.enqueue("429")
    llm.always("refusal")
    llm.reset()
    assert llm.requests == [] and llm.request_count == 0
    assert llm.prompt_tokens == llm.completion_tokens == llm.max_in_flight == 0
    assert llm.supported_modes == {"json_schema", "json_object", "tools"}
    assert llm.unsupported_status == 400
    assert not (llm.reject_seed or llm.gzip or llm.omit_usage)
    assert llm.timeout_delay == 3.0
    assert llm.extra_response_fields == {}
    assert llm.pending_faults == []
    assert ask(client).choices[0].message.content


def test_llm_env_fixture(llm_env: FakeLLM) -> None:
    with openai.OpenAI(max_retries=0) as c:
        assert str(c.base_url).rstrip("/") == llm_env.url
        assert c.api_key == "sk-test-fake-key-0123456789"
        assert ask(c).choices[0].message.content


def test_standalone_server_lifecycle() -> None:
    with (
        FakeLLM() as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as c,
    ):
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/v1")
        assert server.azure_endpoint == server.origin == server.url.removesuffix("/v1")
        assert ask(c).choices[0].message.content
        server.stop()
        assert not server.running
        with pytest.raises(openai.APIConnectionError):
            ask(c)  # its kept-alive connection was closed too


# --------------------------------------------------------------------------------------------
# Texts from fields and extraction (the prompt format of pytest_synthdata.text)
# --------------------------------------------------------------------------------------------

TOM = {"actor": "Tom Hanks", "movies": ["Forrest Gump", "Green Mile"]}
TEXTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "texts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"index": {"type": "integer"}, "text": {"type": "string"}},
                "required": ["index", "text"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["texts"],
    "additionalProperties": False,
}


def extraction_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``{"records": [{"index": int, "record": <model>}]}`` as pytest_synthdata.text sends it."""
    raw = _make_strict(model.model_json_schema())
    defs = raw.pop("$defs", {})
    defs[model.__name__] = raw
    item = {
        "type": "object",
        "properties": {
            "index": {"type": "integer"},
            "record": {"$ref": f"#/$defs/{model.__name__}"},
        },
        "required": ["index", "record"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"records": {"type": "array", "items": item}},
        "required": ["records"],
        "additionalProperties": False,
        "$defs": defs,
    }


def plain(client: openai.OpenAI, *messages: dict[str, str]) -> str:
    content = chat(client, model="m", messages=list(messages)).choices[0].message.content
    assert content is not None
    return content


def fields_message(fields: Any, preferences: Any = None) -> dict[str, str]:
    lines = ["Write one text.", f"Fields (JSON): {json.dumps(fields)}"]
    if preferences is not None:
        lines.append(f"Preferences (JSON): {json.dumps(preferences)}")
    return {"role": "user", "content": "\n".join(lines)}


def test_plain_text_is_written_from_the_fields_line(client: openai.OpenAI) -> None:
    text = plain(client, fields_message(TOM))
    assert text == "Note — actor: «Tom Hanks»; movies[0]: «Forrest Gump»; movies[1]: «Green Mile»."
    nested = plain(client, fields_message([{"a": {"b": 1.5}}, [], True, None]))
    assert nested == "Note — [0].a.b: «1.5»; [1]: «[]»; [2]: «true»; [3]: «null»."
    # the last user message with a Fields line wins; other messages do not matter
    later = plain(
        client,
        fields_message(TOM),
        {"role": "assistant", "content": "Note."},
        {"role": "user", "content": 'Again.\nFields (JSON): ["blue"]'},
    )
    assert later == "Note — [0]: «blue»."
    assert plain(client, {"role": "user", "content": "Fields: none here"}) == "ok"


@pytest.mark.parametrize(
    ("preferences", "chars", "words"),
    [
        ({"minimum_length": 300}, 300, 0),
        ({"Minimum Length": 250, "style": "gossip"}, 250, 0),
        ({"min_words": 60}, 0, 60),
        ({"style": "gossip"}, 0, 0),
    ],
)
def test_plain_text_is_padded_to_minimum_length_preferences(
    client: openai.OpenAI, preferences: dict[str, Any], chars: int, words: int
) -> None:
    text = plain(client, fields_message(TOM, preferences))
    assert text.startswith("Note — actor: «Tom Hanks»;")
    assert len(text) >= chars and len(text.split()) >= words
    if not chars and not words:
        assert "More details follow." not in text


@pytest.mark.parametrize("mode", ["json_schema", "tools"])
def test_text_batch_answers_every_entry(client: openai.OpenAI, mode: str) -> None:
    prompt = "\n".join(
        [
            "Write texts.",
            'Preferences (JSON): {"min_length": 120}',
            f"Fields (JSON) #3: {json.dumps(TOM)}",
            'Fields (JSON) #4: ["blue", "yellow"]',
        ]
    )
    kwargs: dict[str, Any] = (
        {"response_format": json_schema_format(TEXTS_SCHEMA)}
        if mode == "json_schema"
        else tool_args(TEXTS_SCHEMA, "texts")
    )
    message = chat(client, messages=user(prompt), **kwargs).choices[0].message
    raw = message.content
    if mode == "tools":
        (call,) = message.tool_calls or []
        assert call.type == "function"
        raw = call.function.arguments
    texts = json.loads(raw or "")["texts"]
    assert [item["index"] for item in texts] == [3, 4]
    assert "actor: «Tom Hanks»" in texts[0]["text"] and "«Green Mile»" in texts[0]["text"]
    assert "[0]: «blue»; [1]: «yellow»" in texts[1]["text"]
    assert all(len(item["text"]) >= 120 for item in texts)


def test_text_omit_values(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.text_omit_values = {"Tom Hanks"}
    for _ in range(2):  # persistent until reset
        text = plain(client, fields_message(TOM))
        assert "Tom Hanks" not in text and "«Forrest Gump»" in text
    llm.text_omit_values = 2  # the first two string/number values
    text = plain(client, fields_message(TOM))
    assert text == "Note — movies[1]: «Green Mile»."
    llm.text_omit_values = {"Green Mile", "7"}
    llm.text_omit_times = 1
    first = plain(client, fields_message({**TOM, "rank": 7}))
    assert "Green Mile" not in first and "«7»" not in first and "Tom Hanks" in first
    assert "«Green Mile»" in plain(client, fields_message(TOM))
    assert llm.text_omit_times == 0


def test_text_batch_omits_in_every_entry_of_one_answer(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.text_omit_values = {"Tom Hanks"}
    llm.text_omit_times = 1
    prompt = f"Fields (JSON) #1: {json.dumps(TOM)}\nFields (JSON) #2: {json.dumps(TOM)}"
    first = records_of_key(ask(client, prompt, TEXTS_SCHEMA).choices[0].message.content, "texts")
    again = records_of_key(ask(client, prompt, TEXTS_SCHEMA).choices[0].message.content, "texts")
    assert all("Tom Hanks" not in item["text"] for item in first)
    assert all("Tom Hanks" in item["text"] for item in again)


def records_of_key(content: str | None, key: str) -> list[dict[str, Any]]:
    assert content is not None
    data = json.loads(content)
    assert set(data) == {key}
    return list(data[key])


PERSON = Person(
    name="Grace Hopper",
    age=85,
    score=9.75,
    active=False,
    role="admin",
    kind="person",
    tags=["navy", "cobol"],
    address=Address(street="1 Main St: Suite 2", city="Arlington", zip_code=None),
    nickname=None,
)


def test_extraction_reads_its_own_texts_back(client: openai.OpenAI, llm: FakeLLM) -> None:
    text = plain(client, fields_message(PERSON.model_dump(mode="json")))
    schema = extraction_schema(Person)
    prompt = f'Extract.\nText (JSON) #7: {json.dumps(text)}\nText (JSON) #8: "no phrases"'
    (first, second) = records_of_key(
        ask(client, prompt, schema).choices[0].message.content, "records"
    )
    assert first["index"] == 7 and second["index"] == 8
    assert Person.model_validate(first["record"]) == PERSON
    other = Person.model_validate(second["record"])  # schema-valid values where none are found
    assert other.kind == "person"

    llm.extract_override = {"name": "Ada Lovelace", "age": 36}
    (only,) = records_of_key(
        ask(client, f"Text (JSON) #1: {json.dumps(text)}", schema).choices[0].message.content,
        "records",
    )
    assert Person.model_validate(only["record"]) == PERSON.model_copy(
        update={"name": "Ada Lovelace", "age": 36}
    )


def test_faults_apply_to_texts_and_extractions(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.enqueue(Fault.mutate(lambda items: [{"text": items[0]["text"].upper()}]))
    assert plain(client, fields_message(["blue"])) == "NOTE — [0]: «BLUE»."
    prompt = "\n".join(f"Fields (JSON) #{i}: [{i}]" for i in range(1, 5))
    llm.enqueue("fewer", "more", Fault.mutate(lambda items: items[::-1]))
    answers = [
        records_of_key(ask(client, prompt, TEXTS_SCHEMA).choices[0].message.content, "texts")
        for _ in range(3)
    ]
    assert [[item["index"] for item in texts] for texts in answers] == [
        [1, 2],
        [1, 2, 3, 4, 1, 2],
        [4, 3, 2, 1],
    ]
    llm.enqueue(Fault.mutate(lambda items: [{**i, "record": {"name": 1}} for i in items]))
    text_prompt = f"Text (JSON) #1: {json.dumps('Note — name: «x».')}"
    content = ask(client, text_prompt, extraction_schema(Person)).choices[0].message.content
    assert records_of_key(content, "records") == [{"index": 1, "record": {"name": 1}}]


def test_reset_restores_text_switches(llm: FakeLLM) -> None:
    llm.text_omit_values = {"x"}
    llm.text_omit_times = 3
    llm.extract_override["name"] = "y"
    llm.reset()
    assert llm.text_omit_values == set()
    assert llm.text_omit_times is None
    assert llm.extract_override == {}
