"""Validation keywords in the wire schema, and the fallback for endpoints that reject them.

Over real HTTP with the loopback server: by default the schema carries ``minimum``,
``pattern``, ``format`` and the rest for the endpoint to enforce; an endpoint that answers
them with a 400 (``FakeLLM.reject_constraints``, as OpenAI's strict mode once did) gets the
same request again with the keywords moved into the descriptions, after one warning, and so
does every later request to it, including a replay from a cassette in a fresh process.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from fakellm import FakeLLM
from pydantic import BaseModel, Field
from stored import strip_datasets

from pytest_synthdata import SynthDataWarning, generate
from pytest_synthdata.errors import names_constraint
from pytest_synthdata.llm import forget_endpoints
from pytest_synthdata.settings import StructuredMode

pytestmark = pytest.mark.usefixtures("fresh_endpoints")  # nothing remembered across tests

ENFORCED = {"minimum", "exclusiveMinimum", "maximum", "pattern", "format", "minItems", "maxItems"}


class Visit(BaseModel):
    """A clinic visit."""

    visit_id: int = Field(ge=100000, le=999999)
    fee: float = Field(gt=0, le=400)
    room: str = Field(pattern=r"^[A-D]-\d{3}$")
    on: dt.date
    codes: list[str] = Field(min_length=2, max_length=3)


def sent_schema(body: dict[str, Any]) -> dict[str, Any]:
    if "tools" in body:
        schema: dict[str, Any] = body["tools"][0]["function"]["parameters"]
    elif body["response_format"]["type"] == "json_schema":
        schema = body["response_format"]["json_schema"]["schema"]
    else:
        schema = body["response_format"]["schema"]
    return schema


def keywords_in(node: Any) -> set[str]:
    """The enforceable validation keywords a schema uses as keywords (not in descriptions,
    not as property names)."""
    if isinstance(node, list):
        return set().union(*map(keywords_in, node))
    if not isinstance(node, dict):
        return set()
    found = ENFORCED & set(node)
    for key, value in node.items():
        children = value.values() if key in ("properties", "$defs") else [value]
        found |= set().union(*map(keywords_in, children))
    return found


def record_node(schema: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = schema["properties"]["records"]["items"]["properties"]
    return node


def assert_valid(visits: list[Visit]) -> None:
    for visit in visits:
        assert 100000 <= visit.visit_id <= 999999
        assert 0 < visit.fee <= 400
        assert re.fullmatch(r"[A-D]-\d{3}", visit.room)
        assert 2 <= len(visit.codes) <= 3


def constraint_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [
        str(w.message)
        for w in caught
        if issubclass(w.category, SynthDataWarning) and "validation keywords" in str(w.message)
    ]


def test_the_schema_carries_the_constraints_and_the_answers_keep_them(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    visits = generate(Visit, 8, client=make_client(llm))
    assert_valid(visits)
    assert visits.usage.dropped_invalid == 0
    (request,) = llm.chat_requests
    fields = record_node(sent_schema(request.body))
    assert fields["visit_id"] == {"type": "integer", "minimum": 100000, "maximum": 999999}
    assert fields["room"] == {"type": "string", "pattern": r"^[A-D]-\d{3}$"}
    assert fields["on"] == {"type": "string", "format": "date"}
    assert (fields["codes"]["minItems"], fields["codes"]["maxItems"]) == (2, 3)
    assert "(constraints:" not in json.dumps(fields)


class Store(BaseModel):
    store_code: str = Field(min_length=4, max_length=4)
    city: str = Field(max_length=12, description="Where it is.")


@pytest.mark.parametrize("structured", ["json_schema", "json_object", "tools"])
def test_string_lengths_are_keywords_only_for_grammar_engines(
    llm: FakeLLM, structured: StructuredMode, make_client: Callable[..., Any]
) -> None:
    stores = generate(Store, 5, client=make_client(llm), structured=structured)
    assert all(len(s.store_code) == 4 and len(s.city) <= 12 for s in stores)
    (request,) = llm.chat_requests
    fields = record_node(sent_schema(request.body))
    if structured == "json_object":  # llama.cpp turns the schema into a grammar
        assert fields["store_code"] == {"type": "string", "minLength": 4, "maxLength": 4}
        assert fields["city"] == {
            "description": "Where it is.",
            "type": "string",
            "maxLength": 12,
        }
    else:  # OpenAI strict mode rejects them: they stay in the descriptions
        assert fields["store_code"] == {
            "description": "(constraints: minLength=4, maxLength=4)",
            "type": "string",
        }
        assert fields["city"]["description"] == "Where it is. (constraints: maxLength=12)"


def test_a_rejected_length_keyword_moves_back_into_the_descriptions(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    llm.reject_constraints = True
    with pytest.warns(SynthDataWarning, match="'(minItems|minLength)' is not permitted"):
        stores = generate(Store, 3, client=make_client(llm), structured="json_object")
    assert len(stores) == 3
    rejected, accepted = (sent_schema(r.body) for r in llm.chat_requests)
    assert record_node(rejected)["store_code"]["minLength"] == 4
    assert record_node(accepted)["store_code"] == {
        "description": "(constraints: minLength=4, maxLength=4)",
        "type": "string",
    }


@pytest.mark.parametrize("structured", ["auto", "json_schema", "json_object", "tools"])
def test_a_rejected_keyword_moves_into_descriptions_once_and_is_remembered(
    llm: FakeLLM, structured: StructuredMode, make_client: Callable[..., Any]
) -> None:
    llm.reject_constraints = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = generate(Visit, 6, client=make_client(llm), structured=structured)
        second = generate(Visit, 4, client=make_client(llm), structured=structured, seed=3)
    assert_valid([*first, *second])
    (warning,) = constraint_warnings(caught)
    assert re.search(r"'(minimum|minItems)' is not permitted", warning)
    assert "field descriptions" in warning
    statuses = [r.status for r in llm.chat_requests]
    assert statuses[0] == 400 and set(statuses[1:]) == {200}  # one probe, never again
    rejected, *later = [r.body for r in llm.chat_requests]
    assert keywords_in(sent_schema(rejected)) >= {"minimum", "pattern", "format"}
    for body in later:
        schema = sent_schema(body)
        assert keywords_in(schema) == set()  # the count bound too, in json_object and tools
        fields = record_node(schema)
        assert fields["visit_id"]["description"] == (
            "(constraints: minimum=100000, maximum=999999)"
        )
        assert fields["on"]["description"] == "(constraints: format=date)"
    # the same mode as asked for: constraints are not a reason to change modes
    assert {r.mode for r in llm.chat_requests} == (
        {"json_schema"} if structured == "auto" else {structured}
    )


def test_a_relaxed_count_bound_is_still_read_from_the_description(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    llm.reject_constraints = True
    with pytest.warns(SynthDataWarning, match="validation keywords"):
        visits = generate(Visit, 5, client=make_client(llm), structured="tools")
    assert len(visits) == 5
    records = sent_schema(llm.chat_requests[-1].body)["properties"]["records"]
    assert records["description"] == "(constraints: minItems=5, maxItems=5)"
    assert "minItems" not in records


@pytest.mark.parametrize("status", [400, 500])
def test_the_relaxed_path_replays_from_a_fresh_process_state(
    llm_env: FakeLLM, tmp_path: Path, status: int
) -> None:
    llm_env.reject_constraints, llm_env.constraints_status = True, status
    cassette = tmp_path / "visits.synth.yaml"
    with pytest.warns(SynthDataWarning, match="validation keywords"):
        recorded = generate(Visit, 6, cassette=cassette, seed=2)
    assert [r.status for r in llm_env.chat_requests] == [status, 200]
    strip_datasets(cassette)  # replay the exchanges, the rejection included
    forget_endpoints()  # as in a new process
    llm_env.reset()  # and an endpoint that would now accept the keywords
    with pytest.warns(SynthDataWarning, match="validation keywords"):
        replayed = generate(Visit, 6, cassette=cassette, seed=2, record_mode="none")
    assert replayed == recorded
    assert llm_env.request_count == 0


def test_a_marked_test_records_and_replays_against_an_endpoint_that_rejects_them(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_visits="""
        import pytest
        from pydantic import BaseModel, Field


        class Visit(BaseModel):
            visit_id: int = Field(ge=100000, le=999999)
            room: str = Field(pattern=r"^[A-D]-[0-9]{3}$")


        @pytest.mark.synth(Visit, n=4)
        def test_visits(synth_data):
            assert all(100000 <= v.visit_id <= 999999 for v in synth_data)
        """
    )
    llm_env.reject_constraints = True
    first = pytester.runpytest("--synth-no-cache", "-W", "always::UserWarning")
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["*SynthDataWarning*rejected validation keywords*"])
    assert [r.status for r in llm_env.chat_requests] == [400, 200]
    cassette = pytester.path / "cassettes" / "test_visits" / "test_visits.synth.yaml"
    strip_datasets(cassette)
    forget_endpoints()
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    second = pytester.runpytest("--synth-no-cache", "--synth-record-mode=none")
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(["*2 replayed from cassettes, 0 recorded*"])
    assert llm_env.request_count == 2


@pytest.mark.parametrize(
    ("message", "keywords", "expected"),
    [
        (
            "Invalid schema for response_format 'Visit': In context=('properties', 'fee'), "
            "'minimum' is not permitted.",
            ["minimum"],
            True,
        ),
        ("Unsupported JSON schema keyword: pattern", ["pattern", "format"], True),
        ("format 'date' is not supported in grammar conversion", ["format"], True),
        # the keyword is named, but the request did not carry it
        ("'pattern' is not permitted in this schema", ["minimum"], False),
        # words that merely contain or resemble a keyword
        (
            "This model's maximum context length is 8192 tokens. However, you requested 9000.",
            ["maximum"],
            False,
        ),
        ("Invalid 'max_tokens': integer above maximum value.", ["maximum"], False),
        ("response_format type 'json_schema' is not supported", ["format"], False),
        ("'minimum' is not permitted", [], False),
    ],
)
def test_which_errors_reject_a_keyword(message: str, keywords: list[str], expected: bool) -> None:
    assert names_constraint(message, keywords) is expected


def test_the_fake_rejects_keywords_like_openai_and_reads_them_from_descriptions(
    llm: FakeLLM,
    make_client: Callable[..., Any],
) -> None:
    sdk = make_client(llm)
    schema = {
        "type": "object",
        "properties": {
            "records": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"n": {"type": "integer", "minimum": 5, "maximum": 7}},
                    "required": ["n"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["records"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "Nums", "schema": schema}}
    ask = [{"role": "user", "content": "Return exactly 4 records."}]
    llm.reject_constraints = True
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(model="m", messages=ask, response_format=fmt)
    assert info.value.status_code == 400
    assert str(info.value.body["message"]) == (  # type: ignore[index]
        "Invalid schema for response_format 'Nums': In context=('properties', 'records', "
        "'items', 'properties', 'n'), 'minimum' is not permitted."
    )
    node = schema["properties"]["records"]["items"]["properties"]  # type: ignore[index]
    node["n"] = {"type": "integer", "description": "(constraints: minimum=5, maximum=7)"}
    answer = sdk.chat.completions.create(model="m", messages=ask, response_format=fmt)
    numbers = [r["n"] for r in json.loads(answer.choices[0].message.content or "")["records"]]
    assert len(numbers) == 4 and all(5 <= n <= 7 for n in numbers)
    llm.reset()
    assert llm.reject_constraints is False and llm.constraints_status == 400
