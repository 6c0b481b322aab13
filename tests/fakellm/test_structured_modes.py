"""FakeLLM answers each structured mode (json_schema, json_object, tools) with as many records as
asked, valid for the schema and its constraints, through the real ``openai`` SDK."""

from __future__ import annotations

import json
import re

import openai
import pytest
from pydantic import TypeAdapter

from fakellm import (
    FakeLLM,
    parse_description_constraints,
    string_for_pattern,
)
from fakellm.helpers import (
    PERSON_SCHEMA,
    Constrained,
    Person,
    ask,
    chat,
    json_schema_format,
    records_of,
    records_schema,
    tool_args,
    user,
)

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
