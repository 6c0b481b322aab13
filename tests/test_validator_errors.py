"""A validator or serializer of the user's model that fails with something other than a
validation error (a ``TypeError``, a ``KeyError``, an ``AttributeError`` on a value it did
not expect): the record it failed on is invalid, the model is told why, and the records
already paid for are kept; one that fails on every record ends in the usual clear error."""

from __future__ import annotations

from typing import Any

import pytest
from fakellm import FakeLLM, Fault
from pydantic import BaseModel, field_serializer, field_validator, model_validator

from pytest_synthdata import SynthError, SynthGenerationError, generate
from pytest_synthdata.texts import extract

BAD = "boom"
"""The value the validators below cannot handle."""


class Typed(BaseModel):
    name: str
    qty: int

    @field_validator("name")
    @classmethod
    def no_boom(cls, value: str) -> str:
        if value == BAD:
            raise TypeError("boom type")
        return value


class Keyed(BaseModel):
    name: str
    qty: int

    @model_validator(mode="after")
    def looked_up(self) -> Keyed:
        known: dict[str, Keyed] = {"bolt": self}
        return known["missing"] if self.name == BAD else self


class Attributed(BaseModel):
    name: str | None
    qty: int

    @field_validator("name")
    @classmethod
    def lowered(cls, value: str | None) -> str:
        return value.lower()  # type: ignore[union-attr]  # a None is not expected


class Serialized(BaseModel):
    name: str
    qty: int

    @field_serializer("name")
    def shown(self, value: str) -> str:
        if value == BAD:
            raise RuntimeError("cannot show it")
        return value


def second_is(value: object) -> Any:
    """A fault: the second record of the answer gets ``name=value``."""

    def mutate(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        records[1]["name"] = value
        return records

    return Fault.mutate(mutate)


def every_is(value: object) -> Any:
    def mutate(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for record in records:
            record["name"] = value
        return records

    return Fault.mutate(mutate)


@pytest.mark.parametrize(
    ("model", "value", "reason"),
    [
        (Typed, BAD, "Typed's validation raised TypeError: boom type"),
        (Keyed, BAD, "Keyed's validation raised KeyError: 'missing'"),
        (
            Attributed,
            None,
            "Attributed's validation raised AttributeError: "
            "'NoneType' object has no attribute 'lower'",
        ),
        (
            Serialized,
            BAD,
            "Serialized's serialization raised PydanticSerializationError: "
            "Error calling function `shown`: RuntimeError: cannot show it",
        ),
    ],
    ids=["TypeError", "KeyError", "AttributeError", "serializer"],
)
def test_a_record_its_validator_fails_on_is_dropped_and_asked_again(
    llm_env: FakeLLM, model: type[BaseModel], value: object, reason: str
) -> None:
    llm_env.enqueue(second_is(value))
    records = generate(model, n=4, seed=0, max_retries=2)
    assert len(records) == 4
    assert all(record.name != value for record in records)  # type: ignore[attr-defined]
    assert records.usage.dropped_invalid == 1
    followup = llm_env.chat_requests[1].body["messages"][-1]["content"]
    assert f"Record 2 was invalid and was dropped: {reason}" in followup


def test_the_records_kept_before_it_are_the_ones_returned(llm_env: FakeLLM) -> None:
    expected = [record.name for record in generate(Typed, n=4, seed=0)]
    llm_env.reset()
    llm_env.enqueue(second_is(BAD))
    names = [record.name for record in generate(Typed, n=4, seed=0, max_retries=2)]
    assert names[0] == expected[0] and names[1:3] == expected[2:4]  # kept from the 1st answer
    assert llm_env.request_count == 2


def test_a_validator_that_fails_on_every_record_ends_in_the_retry_budget_error(
    llm_env: FakeLLM,
) -> None:
    llm_env.always(every_is(BAD))
    with pytest.raises(SynthGenerationError, match="could not generate 3 valid Typed") as info:
        generate(Typed, n=3, seed=0, max_retries=1)
    assert (
        "Record 1 was invalid and was dropped: Typed's validation raised TypeError: boom type"
        in (info.value.errors)
    )
    assert "Typed's validation raised TypeError: boom type" in str(info.value)
    assert llm_env.request_count == 2


def test_an_extracted_record_its_validator_fails_on_is_asked_again(llm_env: FakeLLM) -> None:
    def first_is_bad(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        items[0]["record"]["name"] = BAD
        return items

    llm_env.enqueue(Fault.mutate(first_is_bad))
    found = extract("Note — name: «bolt»; qty: «7».", Typed, max_retries=1)
    assert found == Typed(name="bolt", qty=7)
    followup = llm_env.chat_requests[-1].body["messages"][-1]["content"]
    assert "The record for text #1 was invalid: Typed's validation raised TypeError" in followup


def test_an_extraction_its_validator_always_fails_on_is_a_clear_error(llm_env: FakeLLM) -> None:
    llm_env.extract_override = {"name": BAD}
    with pytest.raises(SynthGenerationError, match="could not extract 1 valid Keyed") as info:
        extract("Note — name: «bolt»; qty: «7».", Keyed, max_retries=1)
    assert (
        "The record for text #1 was invalid: Keyed's validation raised KeyError: 'missing'"
        in info.value.errors
    )
    assert llm_env.request_count == 2


class Plain(BaseModel):
    name: str
    qty: int


# ``Plain`` (the same schema, so the same stored dataset) with a validator that now fails on
# every record with a ``TypeError`` (no docstring: it would be the subject of the prompt).
class Refusing(BaseModel):
    name: str
    qty: int

    @field_validator("name")
    @classmethod
    def refused(cls, value: str) -> str:
        raise TypeError("no longer accepted")


def test_a_replay_whose_model_now_fails_another_way_is_a_clear_error(
    llm: FakeLLM, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-validator-errors-0123456789")
    cassette = tmp_path / "plain.synth.yaml"
    assert len(generate(Plain, n=3, seed=2, cassette=cassette)) == 3
    Refusing.__name__ = Refusing.__qualname__ = "Plain"  # the recorded model, changed since
    Refusing.model_rebuild(force=True)
    with pytest.raises(SynthError) as info:  # not the validator's TypeError
        generate(Refusing, n=3, seed=2, cassette=cassette, record_mode="none")
    assert "has no recording of this request" in str(info.value), info.value
