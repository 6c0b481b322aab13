"""Texts from fields, text datasets and the extraction round trip, through the real openai
SDK against the loopback server (which writes every value as a ``path: «value»`` phrase)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from fakellm import FakeLLM, Fault
from pydantic import BaseModel, Field, ValidationError, field_validator

from pytest_synthdata import SynthConfigError, SynthGenerationError, UnsupportedModelError, Usage
from pytest_synthdata.llm import SynthDataWarning
from pytest_synthdata.texts import (
    TextRecord,
    aextract,
    agenerate_text,
    extract,
    extract_many,
    generate_dataset,
    generate_text,
    missing_values,
    round_trip,
)

TOM = {"actor": "Tom Hanks", "movies": ["Forrest Gump", "Green Mile"]}
MADS = {"actor": "Mads Mikkelsen", "movies": ["Hannibal", "Another round"]}
HARDY = {"actor": "Tom Hardy", "movies": ["Inception", "Dunkirk"]}
SHAPES: list[Any] = [["blue", "yellow"], TOM, [TOM, MADS]]
SHAPE_IDS = ["list", "dict", "list-of-dicts"]


class Actor(BaseModel):
    Actor: str = Field(description="name of an actor")
    Film: list[str] = Field(description="list of names of films they starred in")


class Person(BaseModel):
    name: str
    born: int


class Movie(BaseModel):
    title: str
    year: int
    rating: float
    tags: list[str]
    director: Person
    sequel: str | None
    released: bool

    @field_validator("year")
    @classmethod
    def talkies(cls, value: int) -> int:
        if value < 1927:
            raise ValueError("the year must be 1927 or later")
        return value


MOVIES = [
    Movie(
        title="Forrest Gump",
        year=1994,
        rating=8.8,
        tags=["drama", "romance"],
        director=Person(name="Robert Zemeckis", born=1951),
        sequel=None,
        released=True,
    ),
    Movie(
        title="Mad Max: Fury Road",
        year=2015,
        rating=8.1,
        tags=["action"],
        director=Person(name="George Miller", born=1945),
        sequel="Furiosa",
        released=True,
    ),
    Movie(
        title="The Revenant",
        year=2015,
        rating=8.0,
        tags=[],
        director=Person(name="Alejandro G. Iñárritu", born=1963),
        sequel=None,
        released=False,
    ),
]


pytestmark = pytest.mark.usefixtures("fresh_endpoints")  # nothing remembered across tests


def prompt(server: FakeLLM, request: int = 0) -> str:
    """The last user message of one chat request."""
    messages = server.chat_requests[request].body["messages"]
    return str([m for m in messages if m["role"] == "user"][-1]["content"])


def leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    return [value]


def assert_mentions_all(text: str, fields: Any) -> None:
    for leaf in leaves(fields):
        if isinstance(leaf, str):
            assert leaf in text, (leaf, text)
    assert missing_values(text, fields) == []


def cut_padding(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**item, "text": item["text"].split(" More details")[0]} for item in items]


# --------------------------------------------------------------------------- generate_text


@pytest.mark.parametrize("fields", SHAPES, ids=SHAPE_IDS)
def test_generate_text_mentions_every_value_of_each_shape(
    llm: FakeLLM, fields: Any, make_client: Callable[..., Any]
) -> None:
    text = generate_text(fields, client=make_client(llm))
    assert_mentions_all(text, fields)
    assert llm.request_count == 1
    body = llm.chat_requests[0].body
    assert "response_format" not in body and "tools" not in body  # plain text
    assert f"Fields (JSON): {json.dumps(fields, ensure_ascii=False)}" in prompt(llm)
    assert "Preferences (JSON)" not in prompt(llm)


def test_preferences_reach_the_prompt_and_length_is_met(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    preferences = {"style": "gossip", "minimum_length": 200}
    text = generate_text(TOM, preferences, client=make_client(llm))
    assert len(text) >= 200
    assert_mentions_all(text, TOM)
    user = prompt(llm)
    assert 'Preferences (JSON): {"style": "gossip", "minimum_length": 200}' in user
    assert "at least 200 characters" in user
    assert llm.request_count == 1


def test_missing_value_is_reasked_by_name(llm: FakeLLM, make_client: Callable[..., Any]) -> None:
    llm.text_omit_values = {"Tom Hanks"}
    llm.text_omit_times = 1
    usage = Usage()
    text = generate_text(TOM, client=make_client(llm), usage=usage)
    assert "Tom Hanks" in text
    assert llm.request_count == 2
    # a fresh request, not the failed conversation: the fields again, and what was wrong
    followup = llm.chat_requests[1].body["messages"]
    assert [m["role"] for m in followup] == ["system", "user"]
    assert 'does not mention "Tom Hanks"' in followup[-1]["content"]
    assert "Fields (JSON): " in followup[-1]["content"] and "attempt 2" in followup[-1]["content"]
    assert (usage.requests, usage.retries, usage.dropped_invalid) == (2, 1, 1)
    assert usage.prompt_tokens == llm.prompt_tokens


def test_missing_value_exhausts_the_budget(llm: FakeLLM, make_client: Callable[..., Any]) -> None:
    llm.text_omit_values = {"Green Mile"}
    with pytest.raises(SynthGenerationError) as info:
        generate_text(TOM, client=make_client(llm), max_retries=2)
    err = info.value
    assert llm.request_count == 3
    assert err.usage.requests == 3 and err.usage.retries == 2
    assert any('does not mention "Green Mile"' in e for e in err.errors)
    assert "Green Mile" not in (err.last_output or "")
    assert "Forrest Gump" in (err.last_output or "")
    text = str(err)
    assert "raise max_retries" in text and 'does not mention "Green Mile"' in text


@pytest.mark.parametrize(
    ("preferences", "mutate", "complaint"),
    [
        ({"minimum_length": 300}, cut_padding, "it must have at least 300"),
        (
            {"maximum_length": 120},
            lambda items: [{**i, "text": i["text"] + " and so on" * 20} for i in items],
            "it must have at most 120",
        ),
        ({"min_words": 40}, cut_padding, "it must have at least 40"),
        (
            {"Max Words": 30},
            lambda items: [{**i, "text": i["text"] + " word" * 40} for i in items],
            "it must have at most 30",
        ),
    ],
    ids=["minimum_length", "maximum_length", "min_words", "max_words"],
)
def test_length_preferences_are_enforced(
    llm: FakeLLM,
    preferences: dict[str, Any],
    mutate: Any,
    complaint: str,
    make_client: Callable[..., Any],
) -> None:
    llm.enqueue(Fault.mutate(mutate))
    text = generate_text(TOM, preferences, client=make_client(llm))
    assert llm.request_count == 2
    assert complaint in prompt(llm, 1)
    chars, words = len(text), len(text.split())
    assert chars >= preferences.get("minimum_length", 0)
    assert chars <= preferences.get("maximum_length", chars)
    assert words >= preferences.get("min_words", 0)
    assert words <= preferences.get("Max Words", words)


def test_async_generate_text(llm: FakeLLM) -> None:
    async def go() -> str:
        async with openai.AsyncOpenAI(base_url=llm.url, api_key="sk-test") as async_client:
            return await agenerate_text(["blue", "yellow"], client=async_client)

    assert_mentions_all(asyncio.run(go()), ["blue", "yellow"])


# --------------------------------------------------------------------------- generate_dataset


def test_generate_dataset_of_each_shape_in_one_request(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    preferences = {"style": "weather forecast"}
    dataset = generate_dataset(SHAPES, preferences, client=make_client(llm))
    assert [record.fields for record in dataset] == SHAPES
    for record in dataset:
        assert isinstance(record, TextRecord)
        assert record.preferences == preferences
        assert_mentions_all(record.text, record.fields)
    assert len({record.text for record in dataset}) == 3
    with pytest.raises(ValidationError):
        dataset[0].text = "changed"  # type: ignore[misc]
    assert llm.request_count == 1 == dataset.usage.requests
    body = llm.chat_requests[0].body
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["required"] == ["texts"]
    user = prompt(llm)
    assert user.count("Preferences (JSON): ") == 1
    for index, fields in enumerate(SHAPES, 1):
        assert f"Fields (JSON) #{index}: {json.dumps(fields, ensure_ascii=False)}" in user
    assert "Return exactly 3 texts" in user


def test_dataset_request_count_is_the_documented_bound(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    entries = [{"actor": f"Actor {chr(65 + i)}", "movies": [f"Film {i}"]} for i in range(25)]
    llm.response_delay = 0.1
    dataset = generate_dataset(entries, client=make_client(llm), batch_size=10, concurrency=2)
    assert [record.fields for record in dataset] == entries  # stable order
    for record in dataset:
        assert_mentions_all(record.text, record.fields)
    assert llm.request_count == 3  # ceil(25 / 10)
    assert dataset.usage.requests == 3 and dataset.usage.retries == 0
    assert llm.max_in_flight == 2
    sizes = sorted(prompt(llm, i).count("Fields (JSON) #") for i in range(3))
    assert sizes == [5, 10, 10]


def test_dataset_never_exceeds_batches_times_one_plus_max_retries(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    entries = [{"actor": "Tom Hanks", "id": i} for i in range(25)]
    llm.text_omit_values = {"Tom Hanks"}
    with pytest.raises(SynthGenerationError, match="per batch") as info:
        generate_dataset(entries, client=make_client(llm), batch_size=10, max_retries=1)
    # 3 batches, then each of the 25 texts alone, each with one re-ask
    assert llm.request_count == 3 * (1 + 1) + 25 * (1 + 1)
    assert info.value.usage.requests == 56
    assert any('does not mention "Tom Hanks"' in e for e in info.value.errors)


def test_dataset_reasks_only_the_failing_entries(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    llm.text_omit_values = {"Tom Hanks"}
    llm.text_omit_times = 1
    dataset = generate_dataset([HARDY, TOM, MADS], client=make_client(llm))
    for record in dataset:
        assert_mentions_all(record.text, record.fields)
    assert llm.request_count == 2
    assert dataset.usage.retries == 1 and dataset.usage.dropped_invalid == 1
    followup = prompt(llm, 1)
    assert 'Text #2 does not mention "Tom Hanks"' in followup
    assert "Return exactly 1 texts" in followup
    assert followup.count("Fields (JSON) #") == 1
    assert f"Fields (JSON) #2: {json.dumps(TOM)}" in followup


@pytest.mark.parametrize("fault", ["fewer", "more", "duplicate", "malformed", "truncated"])
def test_dataset_survives_answer_faults(
    llm: FakeLLM, fault: str, make_client: Callable[..., Any]
) -> None:
    llm.enqueue(fault)
    entries = [HARDY, TOM, MADS, ["blue", "yellow"]]
    dataset = generate_dataset(entries, client=make_client(llm))
    assert [record.fields for record in dataset] == entries
    for record in dataset:
        assert_mentions_all(record.text, record.fields)
    # extra copies of answered entries are ignored; anything else costs one re-ask
    assert llm.request_count == (1 if fault == "more" else 2)


@pytest.mark.parametrize("mode", ["json_object", "tools"])
def test_dataset_falls_back_to_other_structured_modes(
    llm: FakeLLM, mode: str, make_client: Callable[..., Any]
) -> None:
    llm.supported_modes = {mode}
    with pytest.warns(SynthDataWarning):
        dataset = generate_dataset([TOM, MADS], client=make_client(llm))
    for record in dataset:
        assert_mentions_all(record.text, record.fields)
    llm.reset()
    llm.supported_modes = {mode}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = round_trip([Actor(Actor="Tom Hanks", Film=["Big"])], client=make_client(llm))
    assert report.accuracy == 1.0, report


# --------------------------------------------------------------------------- extraction


def test_extract_reads_the_record_from_the_text(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    text = "Note — Actor: «Tom Hardy»; Film[0]: «Inception»; Film[1]: «Mad Max: Fury Road»."
    actor = extract(text, Actor, client=make_client(llm))
    assert actor == Actor(Actor="Tom Hardy", Film=["Inception", "Mad Max: Fury Road"])
    assert llm.request_count == 1
    fmt = llm.chat_requests[0].body["response_format"]
    assert fmt["json_schema"]["name"] == "Actor" and fmt["json_schema"]["strict"] is True
    user = prompt(llm)
    assert "Each record is a Actor with these fields:" in user
    assert "name of an actor" in user
    assert f"Text (JSON) #1: {json.dumps(text, ensure_ascii=False)}" in user


def test_extract_reasks_with_the_validation_error(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    def silent_era(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        items[0]["record"]["year"] = 1900
        return items

    text = generate_text(MOVIES[0].model_dump(mode="json"), client=make_client(llm))
    llm.enqueue(Fault.mutate(silent_era))
    usage = Usage()
    movie = extract(text, Movie, client=make_client(llm), usage=usage)
    assert movie == MOVIES[0]
    assert (usage.requests, usage.retries, usage.dropped_invalid) == (2, 1, 1)
    followup = llm.chat_requests[-1].body["messages"]
    assert [m["role"] for m in followup] == ["system", "user"]
    assert "The record for text #1 was invalid" in followup[-1]["content"]
    assert "the year must be 1927 or later" in followup[-1]["content"]
    assert "Text (JSON) #1: " in followup[-1]["content"]


def test_extract_budget_exhausted(llm: FakeLLM, make_client: Callable[..., Any]) -> None:
    llm.extract_override = {"year": 1800}
    with pytest.raises(SynthGenerationError, match="could not extract 1 valid Movie") as info:
        extract("Note — title: «Metropolis».", Movie, client=make_client(llm), max_retries=1)
    assert llm.request_count == 2
    assert any("the year must be 1927 or later" in e for e in info.value.errors)


def test_extract_many_is_batched_and_ordered(llm: FakeLLM, make_client: Callable[..., Any]) -> None:
    texts = [f"Note — Actor: «Actor {chr(65 + i)}»; Film[0]: «Film {i}»." for i in range(12)]
    actors = extract_many(texts, Actor, client=make_client(llm), batch_size=5)
    assert [a.Actor for a in actors] == [f"Actor {chr(65 + i)}" for i in range(12)]
    assert [a.Film for a in actors] == [[f"Film {i}"] for i in range(12)]
    assert llm.request_count == 3 == actors.usage.requests


def test_async_extract(llm: FakeLLM) -> None:
    text = "Note — Actor: «Tom Hanks»; Film[0]: «Big»."

    async def go() -> Actor:
        async with openai.AsyncOpenAI(base_url=llm.url, api_key="sk-test") as async_client:
            return await aextract(text, Actor, client=async_client)

    assert asyncio.run(go()) == Actor(Actor="Tom Hanks", Film=["Big"])


# --------------------------------------------------------------------------- round trip


def test_round_trip_of_clean_data_is_exact(llm: FakeLLM, make_client: Callable[..., Any]) -> None:
    actors = [Actor(**TOM_ACTOR), Actor(**HARDY_ACTOR)]
    report = round_trip([*MOVIES, *actors], {"style": "informal"}, client=make_client(llm))
    assert report.accuracy == 1.0, report
    assert report.mismatches == []
    assert report.total == 5 and len(report.texts) == 5
    assert report.per_field == {name: 1.0 for name in [*Movie.model_fields, *Actor.model_fields]}
    assert report.extracted == [*MOVIES, *actors]
    for record, text in zip([*MOVIES, *actors], report.texts, strict=True):
        assert_mentions_all(text, record.model_dump(mode="json"))
    # one text batch, then one extraction batch per model class
    assert llm.request_count == 3 == report.usage.requests
    assert "100.0% of fields agree, 0 mismatch(es)" in str(report)


TOM_ACTOR = {"Actor": "Tom Hanks", "Film": ["Forrest Gump", "Saving Private Ryan"]}
HARDY_ACTOR = {"Actor": "Tom Hardy", "Film": ["Inception", "The Dark Knight Rises"]}


def test_round_trip_reports_a_deliberate_mismatch(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    def rename_second(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        items[1]["record"]["title"] = "Mad Max 2"
        return items

    llm.enqueue(Fault.mutate(lambda items: items), Fault.mutate(rename_second))
    report = round_trip(MOVIES, client=make_client(llm))
    fields = len(Movie.model_fields)
    assert report.accuracy == pytest.approx((3 * fields - 1) / (3 * fields))
    assert report.per_field["title"] == pytest.approx(2 / 3)
    assert report.per_field["year"] == 1.0
    (mismatch,) = report.mismatches
    assert (mismatch.index, mismatch.field) == (1, "title")
    assert (mismatch.expected, mismatch.got) == ("Mad Max: Fury Road", "Mad Max 2")
    assert mismatch.text == report.texts[1] and "Mad Max: Fury Road" in mismatch.text
    shown = 'record 1 title: expected "Mad Max: Fury Road", got "Mad Max 2"'
    with pytest.raises(AssertionError) as info:
        assert report.accuracy >= 0.99, report  # what pytest shows, shortened or not
    assert shown in str(info.value)
    assert "title 67%" in repr(report)
    summary = str(report)
    assert "95.2% of fields agree, 1 mismatch(es)" in summary
    assert shown in summary and f"text: {report.texts[1]}" in summary


def test_round_trip_with_an_override_disagrees_everywhere(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    llm.extract_override = {"Actor": "Nobody"}
    report = round_trip([Actor(**TOM_ACTOR), Actor(**HARDY_ACTOR)], client=make_client(llm))
    assert report.per_field == {"Actor": 0.0, "Film": 1.0}
    assert report.accuracy == 0.5
    assert [m.expected for m in report.mismatches] == ["Tom Hanks", "Tom Hardy"]
    assert "2 mismatch(es)" in str(report)


def test_round_trip_comparison_normalises_values(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    def reformat(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        record = items[0]["record"]
        record["title"] = "  FORREST   gump "
        record["rating"] = 8.8000001
        record["tags"] = ["romance", "drama"]
        return items

    llm.enqueue(Fault.mutate(lambda items: items), Fault.mutate(reformat))
    report = round_trip(MOVIES[:1], client=make_client(llm))
    assert report.accuracy == 1.0, report


# --------------------------------------------------------------------------- cassettes


def refuse(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a socket was opened during an offline replay")


def test_text_dataset_records_then_replays_offline(
    llm_env: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cassette = tmp_path / "cassettes" / "texts.synth.yaml"
    entries = [TOM, MADS, HARDY, ["blue", "yellow"]]
    llm_env.text_omit_values = {"Tom Hanks"}
    llm_env.text_omit_times = 1  # the re-ask is recorded and replayed too
    options: dict[str, Any] = {"batch_size": 2, "concurrency": 1}  # batch 1 asks first
    recorded = generate_dataset(entries, {"style": "gossip"}, cassette=cassette, **options)
    assert cassette.is_file()
    assert llm_env.request_count == 3
    assert "Fields (JSON) #1" in cassette.read_text()

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("OPENAI_API_KEY")
    replayed = generate_dataset(
        entries, {"style": "gossip"}, cassette=cassette, record_mode="none", **options
    )
    assert replayed == recorded
    assert replayed.usage.requests == 3 and replayed.usage.retries == 1
    assert llm_env.request_count == 3


def test_round_trip_records_then_replays_offline(
    llm_env: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cassette = tmp_path / "round_trip.synth.yaml"
    recorded = round_trip(MOVIES, cassette=cassette, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("OPENAI_API_KEY")
    replayed = round_trip(MOVIES, cassette=cassette, record_mode="none")
    assert replayed.texts == recorded.texts
    assert replayed.extracted == recorded.extracted == MOVIES
    assert llm_env.request_count == 2


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: generate_text([], client=c), "holds no values"),
        (lambda c: generate_text({}, client=c), "holds no values"),
        (lambda c: generate_text([[], {}], client=c), "holds no values"),
        (lambda c: generate_text("blue", client=c), "must be a list"),
        (lambda c: generate_text(42, client=c), "got int"),
        (
            lambda c: generate_text({"when": dt.date(2020, 1, 1)}, client=c),
            r"fields\['when'\] is a date",
        ),
        (lambda c: generate_text({1: "one"}, client=c), "non-string key 1"),
        (lambda c: generate_text([float("nan")], client=c), "finite number"),
        (lambda c: generate_dataset([], client=c), "non-empty list of fields"),
        (lambda c: generate_dataset(TOM, client=c), "non-empty list of fields"),
        (lambda c: generate_dataset([TOM, "x"], client=c), r"fields_collection\[1\] must be"),
        (lambda c: generate_text(TOM, "gossip", client=c), "preferences must be None or a dict"),
        (
            lambda c: generate_text(TOM, {"minimum_length": "200"}, client=c),
            r"preferences\['minimum_length'\] must be an integer number of characters",
        ),
        (
            lambda c: generate_text(TOM, {"max words": 2.5}, client=c),
            r"preferences\['max words'\] must be an integer number of words",
        ),
        (
            lambda c: generate_text(TOM, {"min_length": -1}, client=c),
            r"preferences\['min_length'\]",
        ),
        (
            lambda c: generate_text(TOM, {"minimum_length": 300, "max_length": 100}, client=c),
            r"preferences\['minimum_length'\]=300 is above preferences\['max_length'\]=100",
        ),
        (
            lambda c: generate_text(TOM, {"min_length": 10, "minimum_length": 20}, client=c),
            "give only one",
        ),
        (lambda c: generate_text(TOM, {"style": object()}, client=c), "must be a JSON value"),
        (lambda c: generate_text(TOM, client=c, seed="x"), "seed must be an integer"),
        (lambda c: generate_text(TOM, client=c, concurency=2), "unknown .*concurency"),
        (lambda c: extract("", Actor, client=c), "text must be a non-empty string"),
        (lambda c: extract_many("one text", Actor, client=c), "non-empty list of strings"),
        (lambda c: round_trip([], client=c), "non-empty list of pydantic model instances"),
        (lambda c: round_trip([TOM], client=c), r"records\[0\] is a dict"),
    ],
)
def test_bad_input_is_a_config_error_before_any_request(
    llm: FakeLLM, call: Any, message: str, make_client: Callable[..., Any]
) -> None:
    with pytest.raises(SynthConfigError, match=message):
        call(make_client(llm))
    assert llm.request_count == 0


class Bag(BaseModel):
    data: dict[str, int]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (dict, "needs a pydantic BaseModel subclass"),
        (BaseModel, "needs a pydantic BaseModel subclass"),
        (Actor(Actor="x", Film=[]), "needs a pydantic BaseModel subclass"),
        (Bag, r"Bag\.data: dict fields cannot be expressed"),
    ],
)
def test_extract_needs_a_supported_model_class(
    llm: FakeLLM, target: Any, message: str, make_client: Callable[..., Any]
) -> None:
    with pytest.raises(UnsupportedModelError, match=message):
        extract("some text", target, client=make_client(llm))
    assert llm.request_count == 0


def test_model_instances_are_accepted_as_fields(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    text = generate_text(MOVIES[1], client=make_client(llm))
    assert_mentions_all(text, MOVIES[1].model_dump(mode="json"))


# --------------------------------------------------------------------------- fidelity check


@pytest.mark.parametrize(
    ("text", "value", "found"),
    [
        ("It cost 1,000 dollars.", 1000, True),
        ("It cost 1000.0 dollars.", 1000, True),
        ("It cost 1000 dollars.", 1000.0, True),
        ("It cost 1000 dollars.", "1,000", True),
        ("A bill of $500, paid.", 500, True),
        ("It weighs 3.50 kg.", 3.5, True),
        ("It weighs 3.5 kg.", "3.50", True),
        ("Paid $1,234.50 in total", 1234.5, True),
        ("It was -5 degrees", -5, True),
        ("TOM   hanks starred", "Tom Hanks", True),
        ("Tom\u2019s film", "Tom's film", True),
        ("Mad Max: Fury Road, again", "Mad Max: Fury Road", True),
        ("It cost 50 dollars.", 5, False),
        ("It cost 500 dollars.", 50, False),
        ("Diagnosis J20.9", 20, False),
        ("Diagnosis J20.9", "J20.9", True),
        ("Version 1.5.3", 1.5, False),
        ("A tomato", "Tom", False),
        ("Forrest Gump only", "Green Mile", False),
        ("Released in 2015.", 2015.0, True),
    ],
)
def test_missing_values_normalises_case_space_and_numbers(
    text: str, value: Any, found: bool
) -> None:
    assert missing_values(text, [value]) == ([] if found else [value])


def test_missing_values_ignores_booleans_nulls_and_keys() -> None:
    fields = {"actor": "Tom Hanks", "active": True, "sequel": None, "films": []}
    assert missing_values("Tom Hanks", fields) == []
    assert missing_values("Someone", fields) == ["Tom Hanks"]
    assert missing_values("x", [{"a": "b"}, {"a": "b"}, 7]) == ["b", 7]
