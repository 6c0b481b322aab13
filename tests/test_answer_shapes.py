"""Answers of the shapes OpenAI-compatible servers send besides the plain one: a message
whose content is a list of content parts (some gateways), a reasoning block before the JSON
(reasoning models served by Ollama, vLLM or llama.cpp), and bodies no completion has (a
choice without a message, content of another type).

A loopback server in front of the fake one passes each request on (the fake reads the
schema and the counts as a model does) and reshapes its answer: what the package gets is a
real answer, in the shape under test."""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from fakellm import FakeLLM
from loopback import JsonHandler, Loopback, serving
from pydantic import BaseModel

from pytest_synthdata import SynthAPIError, SynthGenerationError, generate
from pytest_synthdata.texts import extract, generate_text

Body = dict[str, Any]
Shape = Callable[[Body, int], Body]
"""Reshapes the ``n``-th answer (from 0)."""


class Item(BaseModel):
    name: str
    qty: int


class Reshaping(Loopback):
    """Passes chat requests on to ``upstream`` and sends its answers on as ``shape`` says."""

    def __init__(self, upstream: str, shape: Shape) -> None:
        super().__init__(Handler)
        self.upstream = upstream
        self.shape = shape
        self.answered = 0
        self.lock = threading.Lock()


class Handler(JsonHandler):
    server: Reshaping

    def do_POST(self) -> None:
        sent = self.rfile.read(int(self.headers.get("content-length") or 0))
        request = urllib.request.Request(
            self.server.upstream + self.path,
            data=sent,
            headers={
                "content-type": "application/json",
                "authorization": self.headers.get("authorization", ""),
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as upstream:
            answer = json.loads(upstream.read())
        with self.server.lock:
            number = self.server.answered
            self.server.answered += 1
        self.send(self.server.shape(answer, number))


def reshaping(llm: FakeLLM, shape: Shape) -> contextlib.AbstractContextManager[Reshaping]:
    return serving(Reshaping(llm.origin, shape))


def content_of(answer: Body) -> str:
    content = answer["choices"][0]["message"]["content"]
    assert isinstance(content, str), answer
    return content


def with_content(answer: Body, content: object) -> Body:
    """``answer`` with the content of its (first) message replaced."""
    choice = answer["choices"][0]
    return {**answer, "choices": [{**choice, "message": {**choice["message"], "content": content}}]}


def in_parts(answer: Body, number: int) -> Body:
    """The content as content parts: split in two text parts around an image part."""
    text = content_of(answer)
    half = len(text) // 2
    parts = [
        {"type": "text", "text": text[:half]},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": text[half:]},
    ]
    return with_content(answer, parts)


DRAFT = '{"records": [{"name": "DRAFT", "qty": 0}]}'
"""The JSON a reasoning model drafts while it thinks: never its answer."""


def thinking(before: str, after: str = "\n") -> Shape:
    def shape(answer: Body, number: int) -> Body:
        return with_content(answer, before + after + content_of(answer))

    return shape


THINK_BLOCKS = {
    "think": f"<think>The user wants records like {DRAFT}. Let me think {{ about it.</think>",
    "thinking": f"\n  <thinking>\nA draft: {DRAFT}\n</thinking>",
    "upper": f"<THINK>{DRAFT}</THINK>",
    "mixed": f"<Think >{DRAFT}</think >",
    "two": f"<think>{DRAFT}</think>\n<think>and again {DRAFT}</think>",
}


def direct(llm: FakeLLM, n: int = 3, **options: Any) -> list[Item]:
    """What the fake server's own answers give (the reference)."""
    return list(generate(Item, n=n, seed=0, base_url=llm.url, **options))


# --------------------------------------------------------------------------- content parts


def test_content_parts_are_joined_into_the_records(llm_env: FakeLLM) -> None:
    expected = direct(llm_env)
    with reshaping(llm_env, in_parts) as server:
        records = generate(Item, n=3, seed=0, base_url=server.url, max_retries=0)
    assert list(records) == expected
    assert records.usage.retries == 0


def test_content_parts_of_a_text_and_an_extraction(llm_env: FakeLLM) -> None:
    fields = {"color": "blue", "size": 42}
    text = generate_text(fields, seed=0, base_url=llm_env.url)
    with reshaping(llm_env, in_parts) as server:
        assert generate_text(fields, seed=0, base_url=server.url, max_retries=0) == text
        found = extract("Note — name: «bolt»; qty: «7».", Item, base_url=server.url, max_retries=0)
    assert found == Item(name="bolt", qty=7)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (42, "int, not text or a list of text parts"),
        ({"type": "text", "text": "{}"}, "dict, not text or a list of text parts"),
        (["{}"], "a list holding a str, not a content part"),
        ([{"type": "text", "text": 7}], "a list holding a text part whose text is not a string"),
    ],
    ids=["number", "one-part", "strings", "text-not-string"],
)
def test_content_of_another_type_is_a_clear_api_error(
    llm_env: FakeLLM, content: object, named: str
) -> None:
    with (
        reshaping(llm_env, lambda answer, number: with_content(answer, content)) as server,
        pytest.raises(SynthAPIError) as info,
    ):
        generate(Item, n=3, seed=0, base_url=server.url, http_retries=0)
    message = str(info.value)
    assert "answered HTTP 200 with a body that is not a JSON completion" in message
    assert f"the content of its choice 1 is {named}" in message


def test_a_choice_without_a_message_is_a_clear_api_error(llm_env: FakeLLM) -> None:
    def no_message(answer: Body, number: int) -> Body:
        choice = {k: v for k, v in answer["choices"][0].items() if k != "message"}
        return {**answer, "choices": [choice]}

    with reshaping(llm_env, no_message) as server, pytest.raises(SynthAPIError) as info:
        generate(Item, n=3, seed=0, base_url=server.url, http_retries=1)
    message = str(info.value)
    assert "not a JSON completion (its choice 1 has no message)" in message
    assert "(after 2 tries)" in message


def test_a_malformed_answer_is_asked_again_and_the_next_one_is_kept(llm_env: FakeLLM) -> None:
    expected = direct(llm_env)

    def first_broken(answer: Body, number: int) -> Body:
        return with_content(answer, {"oops": True}) if number == 0 else answer

    with reshaping(llm_env, first_broken) as server:
        records = generate(Item, n=3, seed=0, base_url=server.url, http_retries=1)
    assert list(records) == expected
    assert server.answered == 2


# --------------------------------------------------------------------------- reasoning blocks


@pytest.mark.parametrize("block", list(THINK_BLOCKS.values()), ids=list(THINK_BLOCKS))
def test_a_reasoning_block_before_the_json_is_skipped(llm_env: FakeLLM, block: str) -> None:
    expected = direct(llm_env)
    with reshaping(llm_env, thinking(block)) as server:
        records = generate(Item, n=3, seed=0, base_url=server.url, max_retries=0)
    assert list(records) == expected
    assert "DRAFT" not in {record.name for record in records}
    assert records.usage.retries == 0


def test_a_reasoning_block_in_json_object_mode_and_content_parts(llm_env: FakeLLM) -> None:
    expected = direct(llm_env, structured="json_object")

    def both(answer: Body, number: int) -> Body:
        return in_parts(thinking(THINK_BLOCKS["think"])(answer, number), number)

    with reshaping(llm_env, both) as server:
        records = generate(
            Item, n=3, seed=0, base_url=server.url, structured="json_object", max_retries=0
        )
    assert list(records) == expected


def test_a_reasoning_block_before_a_text_and_an_extraction(llm_env: FakeLLM) -> None:
    fields = {"color": "blue", "size": 42}
    text = generate_text(fields, seed=0, base_url=llm_env.url)
    item = {"index": 1, "record": {"name": "DRAFT", "qty": 0}}
    draft = f"<think>Maybe {json.dumps({'records': [item]})}</think>"
    with reshaping(llm_env, thinking(draft)) as server:
        assert generate_text(fields, seed=0, base_url=server.url, max_retries=0) == text
        found = extract("Note — name: «bolt»; qty: «7».", Item, base_url=server.url, max_retries=0)
    assert found == Item(name="bolt", qty=7)


def test_an_answer_that_only_reasons_is_asked_again(llm_env: FakeLLM) -> None:
    def only_thinking(answer: Body, number: int) -> Body:
        return with_content(answer, f"<think>{DRAFT}</think>")

    with (
        reshaping(llm_env, only_thinking) as server,
        pytest.raises(SynthGenerationError) as info,
    ):
        generate(Item, n=3, seed=0, base_url=server.url, max_retries=1)
    assert "The response was empty." in info.value.errors
    assert server.answered == 2


@pytest.mark.parametrize(
    ("calls", "named"),
    [
        ("call", "are not a list"),
        (["call"], "do not start with a function call"),
        (
            [{"type": "function", "function": {"name": "x", "arguments": {"records": []}}}],
            "have arguments that are not text (a dict)",
        ),
    ],
    ids=["string", "strings", "arguments-object"],
)
def test_tool_calls_of_another_shape_are_a_clear_api_error(
    llm_env: FakeLLM, calls: object, named: str
) -> None:
    def shape(answer: Body, number: int) -> Body:
        choice = answer["choices"][0]
        message = {**choice["message"], "tool_calls": calls}
        return {**answer, "choices": [{**choice, "message": message}]}

    with reshaping(llm_env, shape) as server, pytest.raises(SynthAPIError) as info:
        generate(Item, n=3, seed=0, base_url=server.url, structured="tools", http_retries=0)
    assert "the tool calls of its choice 1 " + named in str(info.value)
