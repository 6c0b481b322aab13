"""The structured-output mode registry: request shapes, reading answers, the auto ladder."""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any, get_args

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletion

import pytest_synthdata
import pytest_synthdata.llm
from pytest_synthdata.errors import SynthDataWarning
from pytest_synthdata.llm import LLM, modes
from pytest_synthdata.llm.modes import MODES, Mode, ladder, next_mode, structured_values
from pytest_synthdata.settings import HELP, Settings, StructuredMode

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "records": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"a": {"type": "integer"}},
                "required": ["a"],
                "additionalProperties": False,
            },
        },
        "note": {"type": "string"},
    },
    "required": ["records", "note"],
    "additionalProperties": False,
}
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "three"}]
ANSWER = '{"records":[{"a":1}],"note":""}'


def bounded(count: int) -> dict[str, Any]:
    records = {**SCHEMA["properties"]["records"], "minItems": count, "maxItems": count}
    return {**SCHEMA, "properties": {**SCHEMA["properties"], "records": records}}


def completion(content: str | None, arguments: str | None = None) -> ChatCompletion:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if arguments is not None:
        message["tool_calls"] = [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "records", "arguments": arguments},
            }
        ]
    return ChatCompletion.model_validate(
        {
            "id": "chatcmpl-0",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
        }
    )


# --- the registry and what is derived from it ------------------------------------------------


def test_the_ladder_is_the_registry_order() -> None:
    assert ladder() == tuple(MODES) == ("json_schema", "json_object", "tools")
    assert ladder() == pytest_synthdata.llm.LADDER
    assert [next_mode(name) for name in ladder()] == ["json_object", "tools", None]
    assert next_mode("text") is None
    assert all(mode.name == name for name, mode in MODES.items())


def test_settings_and_help_follow_the_registry() -> None:
    assert get_args(StructuredMode) == structured_values() == ("auto", *MODES)
    assert HELP["structured"] == (
        "structured-output mode: auto, json_schema, json_object or tools (default auto)"
    )


def test_synth_data_warning_lives_in_errors_and_is_exported() -> None:
    assert pytest_synthdata.SynthDataWarning is SynthDataWarning
    assert pytest_synthdata.llm.SynthDataWarning is SynthDataWarning
    assert issubclass(SynthDataWarning, UserWarning)


# --- each mode: request shape, count bound, reading the answer --------------------------------


def test_json_schema_sends_a_strict_response_format() -> None:
    built = MODES["json_schema"].request(MESSAGES, "records", SCHEMA, count=3)
    assert built.messages == MESSAGES
    assert built.params == {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "records", "schema": SCHEMA, "strict": True},
        }
    }


def test_json_object_puts_the_bounded_schema_in_the_format_and_the_prompt() -> None:
    built = MODES["json_object"].request(MESSAGES, "records", SCHEMA, count=3)
    note = "The answer must match this JSON schema: " + json.dumps(
        bounded(3), separators=(",", ":")
    )
    assert built.messages == [MESSAGES[0], {"role": "system", "content": note}, MESSAGES[1]]
    assert built.params == {"response_format": {"type": "json_object", "schema": bounded(3)}}


def test_tools_forces_one_function_with_the_bounded_schema() -> None:
    built = MODES["tools"].request(MESSAGES, "records", SCHEMA, count=3)
    assert built.messages == MESSAGES
    assert built.params == {
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "records",
                    "description": "Return the requested records.",
                    "parameters": bounded(3),
                    "strict": True,
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "records"}},
    }


@pytest.mark.parametrize("name", list(MODES))
def test_the_count_is_bounded_only_by_modes_that_declare_it(name: str) -> None:
    mode = MODES[name]
    assert mode.bounds_count == (name in ("json_object", "tools"))
    with_count = mode.request(MESSAGES, "records", SCHEMA, count=4)
    without = mode.request(MESSAGES, "records", SCHEMA)
    sent = json.dumps(with_count.params)
    assert ('"minItems": 4' in sent and '"maxItems": 4' in sent) == mode.bounds_count
    assert "minItems" not in json.dumps(without.params)
    if not mode.bounds_count:
        assert with_count == without
    assert "minItems" not in json.dumps(SCHEMA)  # the caller's schema is never changed


def test_bound_count_touches_only_the_wrapper_array() -> None:
    assert modes.bound_count(SCHEMA, 2) == bounded(2)
    assert modes.bound_count({"type": "object"}, 2) == {"type": "object", "properties": {}}


@pytest.mark.parametrize("name", ["json_schema", "json_object"])
def test_content_modes_read_the_content(name: str) -> None:
    message = completion(ANSWER).choices[0].message
    assert MODES[name].read(message) == ANSWER


def test_tools_reads_the_forced_call_arguments_else_the_content() -> None:
    assert MODES["tools"].read(completion(None, ANSWER).choices[0].message) == ANSWER
    assert MODES["tools"].read(completion("no call").choices[0].message) == "no call"


def test_a_mode_must_say_what_it_sends() -> None:
    with pytest.raises(NotImplementedError, match="'bare' does not say what it sends"):
        Mode("bare").request(MESSAGES, "records", SCHEMA)


# --- a mode added by registering it -----------------------------------------------------------


class GuidedJson(Mode):
    """vLLM-style guided decoding: the schema as an extra body parameter."""

    def params(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"extra_body": {"guided_json": schema}}


def register_guided(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODES, "guided_json", GuidedJson("guided_json", bounds_count=True))


def test_a_registered_mode_joins_the_ladder_settings_and_help() -> None:
    with pytest.MonkeyPatch.context() as patch:
        register_guided(patch)
        assert ladder() == ("json_schema", "json_object", "tools", "guided_json")
        assert ladder() == pytest_synthdata.llm.LADDER
        assert next_mode("tools") == "guided_json"
        registered: Any = "guided_json"  # not in the StructuredMode Literal, yet accepted
        assert Settings(structured=registered).structured == registered
        assert modes.structured_help().endswith("tools or guided_json (default auto)")
    assert ladder() == ("json_schema", "json_object", "tools")
    assert "guided_json" not in structured_values()


def guided_only_server(seen: list[dict[str, Any]]) -> httpx2.MockTransport:
    """An endpoint that knows none of the built-in modes, only ``guided_json``."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        seen.append(body)
        if "guided_json" not in body:
            feature = "tools" if "tools" in body else "response_format"
            message = f"{feature} is not supported"
            return httpx2.Response(400, json={"error": {"message": message}})
        return httpx2.Response(200, json=completion(ANSWER).model_dump(mode="json"))

    return httpx2.MockTransport(handle)


@pytest.mark.usefixtures("fresh_endpoints")
def test_auto_walks_down_to_a_registered_mode_and_remembers_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register_guided(monkeypatch)
    seen: list[dict[str, Any]] = []

    async def run() -> tuple[str | None, str | None, str]:
        http = httpx2.AsyncClient(transport=guided_only_server(seen))
        async with openai.AsyncOpenAI(
            base_url="http://guided.test/v1", api_key="sk-test", http_client=http, max_retries=0
        ) as client:
            llm = LLM(Settings(), client)
            first = await llm.complete(MESSAGES, name="records", schema=SCHEMA, count=2)
            again = LLM(Settings(), client)
            second = await again.complete(MESSAGES, name="records", schema=SCHEMA, count=2)
            return first.text, second.text, again.mode

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second, remembered = asyncio.run(run())
    assert first == second == ANSWER
    assert remembered == "guided_json"
    moves = [str(w.message) for w in caught if issubclass(w.category, SynthDataWarning)]
    assert [m.split("; using ")[1].split(" ")[0] for m in moves] == [
        "'json_object'",
        "'tools'",
        "'guided_json'",
    ]
    assert len(seen) == 5  # three refusals, then one request per call in the remembered mode
    assert seen[3]["guided_json"] == bounded(2) and "response_format" not in seen[3]
    assert seen[3]["messages"] == MESSAGES
