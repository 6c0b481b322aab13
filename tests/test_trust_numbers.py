"""Numbers JSON cannot carry: ``NaN``, ``Infinity`` and ``1e999`` in an answer.

A non-finite number is an invalid record, asked for again, unless its field explicitly
allows one (``allow_inf_nan=True``); what this package writes as JSON is strict JSON.
Real runs against the loopback fake server, whose answers spell the numbers as a model may.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fakellm import FakeLLM, Fault
from pydantic import BaseModel, ConfigDict, Field

from pytest_synthdata import SynthGenerationError, generate
from pytest_synthdata.batching import parse_items
from pytest_synthdata.jsonread import check_strict, nonfinite_fields, strict_dumps
from pytest_synthdata.llm.client import Completion

pytestmark = pytest.mark.usefixtures("fresh_endpoints")


class Reading(BaseModel):
    label: str
    value: float


class Tolerant(BaseModel):
    label: str
    value: float = Field(allow_inf_nan=True)


class Nested(BaseModel):
    label: str
    readings: list[Reading]


SPELLINGS: dict[str, Any] = {
    "NaN": math.nan,
    "Infinity": math.inf,
    "-Infinity": -math.inf,
    "string nan": "nan",
    "string -inf": "-inf",
    "string 1e999": "1e999",
    "string Infinity": "Infinity",
}


def set_value(value: Any) -> Fault:
    return Fault.mutate(lambda records: [{**r, "value": value} for r in records])


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_a_non_finite_number_is_an_invalid_record_asked_again(
    llm: FakeLLM, spelling: str, make_client: Callable[..., Any]
) -> None:
    llm.enqueue(set_value(SPELLINGS[spelling]))
    readings = generate(Reading, 3, client=make_client(llm))
    assert len(readings) == 3 and all(math.isfinite(r.value) for r in readings)
    assert readings.usage.dropped_invalid >= 1 and llm.request_count >= 2


def test_non_finite_numbers_every_time_spend_the_budget_with_a_clear_error(
    llm: FakeLLM,
    make_client: Callable[..., Any],
) -> None:
    llm.always(set_value(math.inf))
    with pytest.raises(SynthGenerationError) as info:
        generate(Reading, 2, client=make_client(llm), max_retries=1)
    assert any("value held NaN or Infinity" in error for error in info.value.errors)


def test_a_nested_non_finite_number_is_named_by_its_path(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    def nan_inside(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**r, "readings": [{"label": "x", "value": math.nan}]} for r in records]

    llm.always(Fault.mutate(nan_inside))
    with pytest.raises(SynthGenerationError) as info:
        generate(Nested, 2, client=make_client(llm), max_retries=1)
    assert any("readings[0].value" in error for error in info.value.errors)


def test_a_field_that_allows_non_finite_numbers_gets_them(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    llm.always(set_value(math.nan))
    tolerant = generate(Tolerant, 2, client=make_client(llm))
    assert all(math.isnan(t.value) for t in tolerant) and tolerant.usage.dropped_invalid == 0


def test_other_ways_of_allowing_them_are_honoured() -> None:
    class ByConfig(BaseModel):
        model_config = ConfigDict(allow_inf_nan=True)
        value: float

    class ByAnnotation(BaseModel):
        values: list[Annotated[float, Field(allow_inf_nan=True)]]

    class Strict(BaseModel):
        values: list[float]

    assert nonfinite_fields(ByConfig(value=math.inf)) == []
    assert nonfinite_fields(ByAnnotation(values=[1.0, math.nan])) == []
    assert nonfinite_fields(Strict(values=[1.0, -math.inf])) == ["values[1]"]


def test_a_number_too_large_for_a_float_reads_as_infinity() -> None:
    answer = '{"records": [{"label": "a", "value": 1e999}, {"label": "b", "value": -1E400}]}'
    completion = Completion(answer, "stop", None, 1, 1)
    items, problems = parse_items(completion, 2)
    assert not problems and [item["value"] for item in items] == [math.inf, -math.inf]  # type: ignore[index]


@pytest.mark.parametrize(
    "text", ['{"a": NaN}', "[Infinity]", '{"a": -Infinity}', "[1e999]", '{"a": 1}\n{"b": NaN}']
)
def test_strict_json_refuses_what_strict_parsers_reject(text: str) -> None:
    with pytest.raises(ValueError):
        check_strict(text)


def test_strict_json_accepts_json_and_json_lines() -> None:
    check_strict('{"a": 1.5, "b": "NaN"}')
    check_strict('{"a": 1}\n{"a": 2}\n')
    assert json.loads(strict_dumps({"a": 1.0})) == {"a": 1.0}
    with pytest.raises(ValueError):
        strict_dumps({"a": math.nan})


def test_an_extracted_record_with_a_non_finite_number_is_invalid(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    from pytest_synthdata import extract

    llm.extract_override = {"value": math.inf}
    with pytest.raises(SynthGenerationError) as info:
        extract("Reading A: 3.5 volts.", Reading, client=make_client(llm), max_retries=1)
    assert any("held NaN or Infinity" in error for error in info.value.errors)
    llm.extract_override = {"value": math.nan}
    assert math.isnan(extract("Reading A: 3.5.", Tolerant, client=make_client(llm)).value)
