"""FakeLLM writes texts from fields and reads records back out of them, through the real
``openai`` SDK."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from fakellm import (
    FakeLLM,
    Fault,
)
from fakellm.helpers import (
    Address,
    Person,
    _make_strict,
    ask,
    chat,
    json_schema_format,
    tool_args,
    user,
)

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
