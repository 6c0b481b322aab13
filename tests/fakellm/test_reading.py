"""The fake reads requests the way a model would: schema, counts in words, quoted JSON lines.

No test here uses the wording of pytest_synthdata's prompts, so the fake keeps working
when that wording changes.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from fakellm import reading
from fakellm.schema_faker import SchemaFaker

TOM = {"actor": "Tom Hanks", "movies": ["Forrest Gump", "Green Mile"]}
PERSON: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def wrapper(key: str, items: dict[str, Any], **array: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {key: {"type": "array", "items": items, **array}},
        "required": [key],
        "additionalProperties": False,
    }


def indexed(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"index": {"type": "integer"}, name: schema},
        "required": ["index", name],
        "additionalProperties": False,
    }


TEXTS = wrapper("texts", indexed("text", {"type": "string"}))


def body(*texts: str, system: str = "Answer in JSON.") -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": system},
            *({"role": "user", "content": text} for text in texts),
        ]
    }


def answer(client: openai.OpenAI, prompt: str, schema: dict[str, Any] | None = None) -> Any:
    kwargs: dict[str, Any] = {}
    if schema is not None:
        kwargs["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": True},
        }
    create: Any = client.chat.completions.create
    content = (
        create(model="m", messages=[{"role": "user", "content": prompt}], **kwargs)
        .choices[0]
        .message.content
    )
    return json.loads(content) if schema is not None else content


# --------------------------------------------------------------------------------------------
# Lines ending in JSON
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('Fields (JSON) #3: {"a": [1, 2]}', ("Fields (JSON) #3: ", {"a": [1, 2]})),
        ('Entry 2 = ["blue", "yellow"]', ("Entry 2 = ", ["blue", "yellow"])),
        ('Input text #7: "He said \\"hi\\": {x}"  ', ("Input text #7: ", 'He said "hi": {x}')),
        ('{"bare": true}', ("", {"bare": True})),
        ('Must mention, word for word: "Tom Hanks", "Forrest Gump"', None),
        ('Must mention, word for word: "Tom Hanks", 1994.', None),
        ("Return exactly 5 records.", None),
        ('Broken: {"a": 1', None),
        ("", None),
    ],
)
def test_trailing_json(line: str, expected: Any) -> None:
    assert reading.trailing_json(line) == expected


def test_inputs_are_numbered_by_their_hash_number_or_else_by_position() -> None:
    numbered = body('Intro.\nPreferences: {"tone": "dry"}\nItem #4: [1]\nItem #9: {"b": 2}\n1. {}')
    assert reading.inputs(numbered, lambda v: isinstance(v, (dict, list))) == [
        (4, [1]),
        (9, {"b": 2}),
    ]
    plain = body('Write about:\n{"a": 1}\nand\n["x"]')
    assert reading.inputs(plain, lambda v: True) == [(1, {"a": 1}), (2, ["x"])]
    # the last user message that quotes any input; strings only where strings are wanted
    later = body('#1: "first text"', "Nothing quoted here.")
    assert reading.inputs(later, lambda v: isinstance(v, str)) == [(1, "first text")]
    assert reading.inputs(later, lambda v: isinstance(v, dict)) == []


def test_preferences_are_any_object_on_a_line_that_mentions_them() -> None:
    first = body('Style PREFERENCES -> {"Minimum Length": 50, "tone": "dry"}\nFields: {"a": 1}')
    assert reading.preferences(first) == {"minimum_length": 50, "tone": "dry"}
    # the latest wins; a value that merely contains the word is not a preference line
    later = body('My preferences: {"min_words": 3}', 'Topic: {"about": "user preferences"}')
    assert reading.preferences(later) == {"min_words": 3}
    assert reading.preferences(body('Fields: {"a": 1}')) == {}


@pytest.mark.parametrize(
    ("prompt", "nouns", "expected"),
    [
        ("Generate exactly 5 records.", (), 5),
        ("Please write 4 more synthetic customer records", (), 4),
        ("Give me twelve rows.", (), 12),
        ("Return exactly 3 texts, one per entry.", (), 3),
        ("Make 1 item.", (), 1),
        ("I need 6 bills, please.", ("bills",), 6),
        ("I need 6 bills, please.", (), None),
        ("3 of the 5 records were valid. Return exactly 2 records.", (), 2),
        ("Return 7 records. Earlier, 9 records were kept.", (), 9),
        ("Return exactly 7 records. Earlier, 9 records were kept.", (), 7),
        ("This is batch 1 of 4: make its records differ.", (), None),
        ("No number here.", (), None),
    ],
)
def test_stated_count(prompt: str, nouns: tuple[str, ...], expected: int | None) -> None:
    assert reading.stated_count(body(prompt), nouns) == expected


def test_only_the_last_user_message_states_the_count() -> None:
    assert reading.stated_count(body("exactly 6 records", "Now the rest, please.")) is None


@pytest.mark.parametrize(
    ("array", "stated", "expected"),
    [
        ({}, None, 1),
        ({}, 4, 4),
        ({"minItems": 3}, None, 3),
        ({"minItems": 3}, 2, 3),
        ({"maxItems": 2}, 5, 2),
        ({"minItems": 4, "maxItems": 4}, 9, 4),
        ({"minItems": 5, "maxItems": 2}, 1, 5),
    ],
)
def test_item_count_keeps_within_min_and_max_items(
    array: dict[str, Any], stated: int | None, expected: int
) -> None:
    assert reading.item_count(array, stated) == expected


def test_the_kind_of_request_comes_from_the_item_schema() -> None:
    def kind(schema: dict[str, Any]) -> tuple[str, str] | None:
        found = reading.batch_of(SchemaFaker(schema, "s"), schema)
        return None if found is None else (found.kind, found.key)

    assert kind(TEXTS) == ("texts", "texts")
    assert kind(wrapper("stories", indexed("text", {"type": "string"}))) == ("texts", "stories")
    assert kind(wrapper("records", indexed("record", PERSON))) == ("extraction", "records")
    assert kind(wrapper("found", indexed("record", PERSON))) == ("extraction", "found")
    assert kind(wrapper("records", PERSON)) is None
    assert kind(wrapper("texts", {"type": "string"})) is None
    with_more = indexed("text", {"type": "string"})
    with_more["properties"]["extra"] = {"type": "string"}
    assert kind(wrapper("texts", with_more)) is None


# --------------------------------------------------------------------------------------------
# Through the SDK, with wording of our own
# --------------------------------------------------------------------------------------------


def test_records_follow_counts_in_words_and_the_schemas_item_bounds(client: openai.OpenAI) -> None:
    assert (
        len(answer(client, "Please produce four people.", wrapper("people", PERSON))["people"]) == 4
    )
    assert len(answer(client, "Make 3 rows.", wrapper("rows", PERSON))["rows"]) == 3
    bounded = wrapper("people", PERSON, minItems=2, maxItems=2)
    assert len(answer(client, "Make 7 people.", bounded)["people"]) == 2
    assert len(answer(client, "Some people.", wrapper("people", PERSON, minItems=3))["people"]) == 3


def test_text_batch_with_other_wording_and_wrapper_key(client: openai.OpenAI) -> None:
    prompt = "\n".join(
        [
            "Compose a story per input.",
            'User preferences = {"min_words": 40}',
            f"Input #2 -> {json.dumps(TOM)}",
            'Input #5 -> ["blue"]',
            "That is all.",
        ]
    )
    schema = wrapper("stories", indexed("text", {"type": "string"}))
    stories = answer(client, prompt, schema)["stories"]
    assert [item["index"] for item in stories] == [2, 5]
    assert "«Tom Hanks»" in stories[0]["text"] and "[0]: «blue»" in stories[1]["text"]
    assert all(len(item["text"].split()) >= 40 for item in stories)


def test_plain_text_from_any_line_ending_in_json(client: openai.OpenAI) -> None:
    text = answer(client, f"Write a paragraph about this:\n{json.dumps(TOM)}\nThanks!")
    assert text == "Note — actor: «Tom Hanks»; movies[0]: «Forrest Gump»; movies[1]: «Green Mile»."
    assert answer(client, "Say hello.") == "ok"


def test_extraction_with_other_wording_and_wrapper_key(client: openai.OpenAI) -> None:
    written = answer(client, 'Data: {"name": "Ada", "age": 36}')
    prompt = f'Read these.\nPassage #4: {json.dumps(written)}\nPassage #6: "nothing"'
    schema = wrapper("found", indexed("record", PERSON))
    found = answer(client, prompt, schema)["found"]
    assert [item["index"] for item in found] == [4, 6]
    assert found[0]["record"] == {"name": "Ada", "age": 36}
    assert set(found[1]["record"]) == {"name", "age"}


def test_a_text_schema_without_quoted_inputs_gets_schema_values(client: openai.OpenAI) -> None:
    texts = answer(client, "Write exactly 2 texts.", TEXTS)["texts"]
    assert len(texts) == 2 and all(isinstance(item["text"], str) for item in texts)
