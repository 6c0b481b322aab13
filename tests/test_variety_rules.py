"""The variety rules, against the loopback server over HTTP: a record may not repeat one
example's name (a free-text value of two words or more no other example shares), and one
name may appear in at most 2.5% of the records (at least once). They are asked again only
while the dataset can afford it, so a model that writes nothing else still gets exactly n,
and a replay makes the same requests."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fakellm import FakeLLM, Fault
from pydantic import BaseModel, Field

from pytest_synthdata import generate, samplers
from pytest_synthdata.coverage import INITIALS
from pytest_synthdata.diversity import NearDuplicates, distinctive_values, repeat_limits
from pytest_synthdata.judging import Leeway
from pytest_synthdata.planning import Planner
from pytest_synthdata.spec import make_spec

FAKE_KEY = "sk-test-variety-0123456789"

EXAMPLES = [
    {"ticket_id": 9, "title": "Printer on floor 3 jams", "body": "Paper jams daily."},
    {"ticket_id": 8, "title": "VPN drops at noon", "body": "It reconnects after a minute."},
]


class Ticket(BaseModel):
    ticket_id: int = Field(ge=1)
    title: str
    body: str


@pytest.fixture(autouse=True)
def _no_faults_left_behind(fake_llm: FakeLLM) -> Iterator[None]:
    yield
    fake_llm.reset()


WORDS = (  # noqa: SIM905
    "amber basin cobalt dune ember fjord garnet harbor indigo jasper kelp lagoon meadow "
    "nickel orchid prairie quartz ridge saffron tundra umber valley willow xenon yarrow zinc"
).split()


def sentence(seed: str) -> str:
    """Six words drawn from ``seed``: bodies that differ as written ones do (the fake's
    bodies differ in six characters only, which the near-duplicate check would catch)."""
    return " ".join(random.Random(seed).sample(WORDS, 6))


def said(llm: FakeLLM, text: str) -> bool:
    return any(text in r.body["messages"][-1]["content"] for r in llm.chat_requests)


def test_a_record_that_reuses_an_examples_title_is_asked_again(llm: FakeLLM) -> None:
    # A small model copies one field of an example into records that are otherwise new: no
    # record is close to a whole example, yet the example's title recurs.
    reused = {"count": 0}

    def reuse_a_title(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if reused["count"] >= 3 or not records:
            return records
        reused["count"] += 1
        return [{**records[0], "title": EXAMPLES[1]["title"].upper()}, *records[1:]]

    llm.always(Fault.mutate(reuse_a_title))
    client = openai.OpenAI(base_url=llm.url, api_key=FAKE_KEY)
    tickets = generate(Ticket, 8, examples=EXAMPLES, seed=2, client=client, batch_size=4)
    assert reused["count"] == 3
    assert len(tickets) == 8
    assert all(t.title.lower() != str(EXAMPLES[1]["title"]).lower() for t in tickets)
    assert tickets.usage.dropped_near_duplicate == 3
    assert said(llm, "copied the title of example 2")


def test_titles_that_collapse_onto_one_are_asked_again(llm: FakeLLM) -> None:
    collapsed = {"answers": 0}

    def one_title(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if collapsed["answers"] >= 2:
            return records
        collapsed["answers"] += 1
        return [{**record, "title": "Laptop will not boot"} for record in records]

    llm.always(Fault.mutate(one_title))
    client = openai.OpenAI(base_url=llm.url, api_key=FAKE_KEY)
    tickets = generate(Ticket, 8, examples=EXAMPLES, seed=3, client=client, batch_size=4)
    titles = [t.title for t in tickets]
    assert len(titles) == 8
    assert titles.count("Laptop will not boot") == 1  # below 80 records, each value once
    assert len(set(titles)) == 8
    assert said(llm, "repeated the title of earlier records")


@pytest.mark.parametrize("sampled", [False, True], ids=["written", "slots"])
def test_a_model_that_only_copies_still_gives_exactly_n_and_replays(
    llm: FakeLLM, tmp_path: Path, sampled: bool
) -> None:
    # Every record of every answer carries the first example's title: the rules ask again
    # while the dataset can afford it, then keep such records.
    def always_the_example(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**record, "title": EXAMPLES[0]["title"], "body": sentence(record["body"])}
            for record in records
        ]

    llm.always(Fault.mutate(always_the_example))
    client = openai.OpenAI(base_url=llm.url, api_key=FAKE_KEY)
    sample = {"ticket_id": samplers.sequence(start=100)} if sampled else None
    cassette = tmp_path / "copies.yaml"

    def make(mode: str = "once") -> Any:
        return generate(
            Ticket,
            8,
            examples=EXAMPLES,
            seed=4,
            client=client,
            batch_size=4,
            sample=sample,
            cassette=cassette,
            record_mode=mode,
        )

    tickets = make()
    assert len(tickets) == 8
    # asked again at least once, never more than n records dropped for the rules
    assert 1 <= tickets.usage.dropped_near_duplicate <= 8
    assert said(llm, "copied the title of example 1")
    assert [t.title for t in tickets].count(str(EXAMPLES[0]["title"])) >= 1
    asked = llm.request_count
    assert asked <= 2 + 6  # the two planned requests and at most the budget of follow-ups
    again = make("none")
    assert again == tickets and llm.request_count == asked


def test_the_rules_and_their_leeway() -> None:
    copies = distinctive_values(EXAMPLES, ["title", "body"])
    assert copies == {
        "title": {"printer on floor 3 jams": 0, "vpn drops at noon": 1},
        "body": {"paper jams daily": 0, "it reconnects after a minute": 1},
    }
    # a value the examples share is a category of theirs; one word is not distinctive
    shared = [{**example, "body": "Same body for all."} for example in EXAMPLES]
    assert distinctive_values([*shared, {"title": "VPN"}], ["title", "body"]) == {
        "title": {"printer on floor 3 jams": 0, "vpn drops at noon": 1}
    }
    # the limit grows with the dataset: 2.5% of its records, at least one; a field that
    # only one example gives, or whose examples share a value, has none
    assert repeat_limits(EXAMPLES, copies, 40) == {"title": 1, "body": 1}
    assert repeat_limits(EXAMPLES, copies, 200) == {"title": 5, "body": 5}
    assert repeat_limits(EXAMPLES[:1], distinctive_values(EXAMPLES[:1], ["title"]), 40) == {}
    assert "body" not in repeat_limits(shared, distinctive_values(shared, ["body"]), 40)

    finder = NearDuplicates(0.9, (), copies, repeat_limits(EXAMPLES, copies, 40))
    record = {"ticket_id": 3, "title": "VPN drops at noon", "body": "New words entirely here"}
    match = finder.check("x", record, rules=True)
    assert match is not None and match.example and match.field == "title" and match.index == 1
    assert finder.check("x", record) is None  # without the rules, only near-copies count
    fresh = {"ticket_id": 4, "title": "Badge reader dead", "body": "Door stays shut"}
    assert finder.check("y", fresh, rules=True) is None
    finder.add("y", fresh)
    repeat = finder.check("z", {**fresh, "body": "Other words"}, rules=True)
    assert repeat is not None and repeat.field == "title" and not repeat.example

    # n = 8 in batches of 4: 6 follow-ups; the rules hold while fewer than 3 are spent and
    # fewer than 8 records were dropped for them
    leeway = Leeway(8)
    leeway.planner = Planner(8, 4, 3, 2)
    assert leeway.allows() and leeway.allows(dropped=7, follow_ups=2)
    assert not leeway.allows(follow_ups=3) and not leeway.allows(dropped=8)
    leeway.planner.spend(2)
    assert leeway.allows() and not leeway.allows(follow_ups=1)
    # a wave's batches split what is left in proportion to what they owe
    leeway.dropped = 3
    assert leeway.shares([4, 4]) == [3, 2] and leeway.shares([6, 2]) == [4, 1]
    leeway.dropped = 9
    assert leeway.shares([4, 4]) == [0, 0] and not leeway.allows()


NAMED = [
    {"ticket_id": 9, "title": "Printer on floor 3 jams", "body": "Paper jams daily."},
    {"ticket_id": 8, "title": "VPN drops at noon", "body": "It reconnects after a minute."},
]


def test_each_slot_gives_the_names_a_first_letter_in_the_request(llm: FakeLLM) -> None:
    client = openai.OpenAI(base_url=llm.url, api_key=FAKE_KEY)
    tickets = generate(
        Ticket,
        30,
        examples=NAMED,
        seed=5,
        client=client,
        sample={"ticket_id": samplers.sequence(start=1000)},
    )
    assert len(tickets) == 30
    asked = re.findall(
        r'Record \d+: values \{"ticket_id": (\d+)\}\. '
        r"Its title starts with the letter ([A-Z])\. Its body starts with the letter ([A-Z])\.",
        "\n".join(r.body["messages"][-1]["content"] for r in llm.chat_requests),
    )
    letters = {int(ticket_id) - 1000: (title, body) for ticket_id, title, body in asked}
    assert sorted(letters) == list(range(30))  # every record was given its letters
    assert len(set(asked)) == 30  # a record asked again is given the same ones
    titles = [letters[i][0] for i in range(30)]
    # every run of 21 slots takes each letter once: Q, U and X are left out, and so are the
    # examples' own first letters, P and V, which would steer a small model to copy them
    allowed = sorted(set(INITIALS) - {"P", "V"})
    assert sorted(titles[:21]) == allowed and set(titles[21:]) <= set(allowed)
    assert titles != [letters[i][1] for i in range(30)]  # a shuffle of its own per field


def test_which_fields_get_a_first_letter_and_when() -> None:
    plan = make_spec(Ticket, 40, examples=NAMED, seed=1).slots
    assert plan.named == ["title", "body"]
    # the letters depend on the seed and the index alone: a stable prefix when n grows
    grown = make_spec(Ticket, 80, examples=NAMED, seed=1).slots
    assert [plan.initial("title", i) for i in range(40)] == [
        grown.initial("title", i) for i in range(40)
    ]
    assert [plan.initial("title", i) for i in range(46)] != [
        make_spec(Ticket, 40, examples=NAMED, seed=2).slots.initial("title", i) for i in range(46)
    ]
    # the examples' first letters are left out, unless that leaves fewer than half
    assert plan.letters == {
        "title": INITIALS.replace("P", "").replace("V", ""),
        "body": INITIALS.replace("P", "").replace("I", ""),
    }
    many = [{"ticket_id": 1, "title": f"{c}x name", "body": f"{c}y body"} for c in INITIALS[:12]]
    assert make_spec(Ticket, 4, examples=many).slots.letters["title"] == INITIALS
    # not for names in other scripts, one example's value, shared values, sampled fields
    kanji = [{**e, "title": t} for e, t in zip(NAMED, ["山田 太郎", "佐藤 花子"], strict=True)]
    assert make_spec(Ticket, 4, examples=kanji).slots.named == ["body"]
    assert make_spec(Ticket, 4, examples=NAMED[:1]).slots.named == []
    shared = [{**e, "body": "Same body for all."} for e in NAMED]
    assert make_spec(Ticket, 4, examples=shared).slots.named == ["title"]
    sampled = make_spec(
        Ticket, 4, examples=NAMED, sample={"title": samplers.values(["a b", "c d", "e f", "g h"])}
    ).slots
    assert sampled.named == ["body"]
    assert not any("title starts" in hint for hint in sampled.slot(0).hints)
    # an edge case asks for names that break code instead
    edgy = make_spec(Ticket, 4, examples=NAMED, edge_cases=1.0).slots.slot(0)
    assert edgy.edge_case and not any("starts with the letter" in h for h in edgy.hints)


@pytest.mark.parametrize("slotted", [False, True], ids=["plain", "slots"])
def test_once_a_record_copies_an_examples_title_the_examples_leave_titles_out(
    llm: FakeLLM, slotted: bool
) -> None:
    # A small model copies what its prompt shows: whenever an example's title is in the
    # prompt, the first record of the answer takes it.
    title = str(EXAMPLES[1]["title"])
    copied = {"count": 0}

    def copy_what_is_shown(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        prompt = llm.chat_requests[-1].body["messages"][-1]["content"]
        records = [{**record, "body": sentence(record["body"])} for record in records]
        if title not in prompt or not records:
            return records
        copied["count"] += 1
        return [{**records[0], "title": title}, *records[1:]]

    llm.always(Fault.mutate(copy_what_is_shown))
    client = openai.OpenAI(base_url=llm.url, api_key=FAKE_KEY)
    controls: dict[str, Any] = {"sample": {"ticket_id": samplers.sequence(start=40)}}
    tickets = generate(
        Ticket,
        8,
        examples=EXAMPLES,
        seed=2,
        client=client,
        batch_size=4,
        concurrency=1,
        **(controls if slotted else {}),
    )
    assert len(tickets) == 8
    assert all(t.title != title for t in tickets)
    assert copied["count"] == 1  # the title was shown once: in the first request only
    assert tickets.usage.dropped_near_duplicate >= 1
    prompts = [r.body["messages"][-1]["content"] for r in llm.chat_requests]
    assert title in prompts[0]
    assert len(prompts) >= 3  # the first batch, its follow-up, the second batch
    for later in prompts[1:]:
        assert title not in later
        assert "their title values are left out: write your own" in later
        assert str(EXAMPLES[1]["body"]) in later  # the rest of each example is still shown


class Person(BaseModel):
    full_name: str = Field(alias="fullName")


class Patient(BaseModel):
    full_name: str = Field(alias="fullName")
    ward: str


def test_left_out_values_follow_aliases_and_an_emptied_example_is_not_shown() -> None:
    from pytest_synthdata.prompts import batch_messages

    def prompt(model: type[BaseModel], examples: list[dict[str, Any]]) -> str:
        spec = make_spec(model, 4, examples=examples)
        messages = batch_messages(
            spec, 4, batch_index=0, batch_total=1, avoid={}, hide={"full_name"}
        )
        return messages[-1]["content"]

    both = prompt(Patient, [{"fullName": "Ada Lovelace", "ward": "East"}])
    assert "Ada Lovelace" not in both
    assert '1. {"ward": "East"}' in both
    assert "their fullName values are left out" in both
    alone = prompt(Person, [{"fullName": "Ada Lovelace"}, {"fullName": "Alan Turing"}])
    assert "Ada" not in alone and "Alan" not in alone
    assert "Examples of records" not in alone  # nothing of them is left to show
