"""Requests that state each record's slot: its sampled values and axes; and the prompt of a
spec that uses none of it, unchanged (committed cassettes replay by it)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from pytest_synthdata import samplers
from pytest_synthdata.coverage import merge_sampled
from pytest_synthdata.prompts import avoid_values, batch_messages, slot_schema
from pytest_synthdata.schema import wrapper_schema
from pytest_synthdata.spec import make_spec

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES_DIR))

from domain import BILLING_EXAMPLES, MedicalBilling  # noqa: E402

SAMPLE = {
    "patient_id": samplers.sequence(start=100000),
    "diagnosis_code": samplers.choice(["J20.9", "M54.5", "E11.9"], weights=[2, 1, 1]),
    "total_charge": samplers.uniform(50, 5000),
}
COVER = {"specialty": ["cardiology", "oncology", "pediatrics"], "payer": ["medicare", "private"]}


class Patient(BaseModel):
    patient_id: int = Field(alias="patientId", ge=1)
    full_name: str
    plan: str


def user_prompt(messages: list[dict[str, str]]) -> str:
    return messages[-1]["content"]


def test_the_prompt_without_slots_is_the_one_in_the_committed_cassette() -> None:
    cassette = EXAMPLES_DIR / "cassettes/test_billing/test_large_bills_on_demand.synth.yaml"
    recorded = yaml.safe_load(cassette.read_text())["interactions"][0]["request"]["body"]
    spec = make_spec(
        MedicalBilling, 4, examples=BILLING_EXAMPLES, extra="every total_charge above $1000"
    )
    messages = batch_messages(spec, 4, batch_index=0, batch_total=1, avoid={})
    assert messages == recorded["json"]["messages"]
    assert wrapper_schema(MedicalBilling) == slot_schema(spec)


def test_the_example_suite_replays_offline() -> None:
    """Keys and request bytes of specs without sample/cover/edge_cases are unchanged."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OPENAI_API_KEY", None)
    done = subprocess.run(
        [
            sys.executable,
            *("-m", "pytest", "-q", "-p", "no:cacheprovider", "--synth-record-mode=none"),
            "examples",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"\b10 passed\b", done.stdout)


def slotted_prompt(count: int = 4, **kwargs: object) -> tuple[str, object]:
    spec = make_spec(
        MedicalBilling,
        24,
        examples=BILLING_EXAMPLES,
        unique="patient_id",
        sample=SAMPLE,
        cover=COVER,
        seed=3,
        **kwargs,  # type: ignore[arg-type]
    )
    slots = spec.slots.slots(0, count)
    return user_prompt(
        batch_messages(spec, count, batch_index=0, batch_total=6, avoid={}, slots=slots)
    ), spec


def record_lines(prompt: str) -> list[str]:
    return [line for line in prompt.splitlines() if line.startswith("Record ")]


def test_each_record_line_states_its_values_and_attributes() -> None:
    prompt, spec = slotted_prompt()
    lines = record_lines(prompt)
    assert len(lines) == 4
    for i, line in enumerate(lines):
        slot = spec.slots.slot(i)  # type: ignore[attr-defined]
        values = json.loads(re.search(r"values (\{.*?\});", line).group(1))  # type: ignore[union-attr]
        assert values == slot.sampled
        assert values["patient_id"] == 100000 + i
        for axis, value in slot.axes.items():
            assert f"{axis}: {value}" in line
    assert "Return exactly 4 records, in the order of the list above." in prompt


def test_only_the_fields_the_model_writes_are_listed_and_in_the_schema() -> None:
    prompt, spec = slotted_prompt()
    field_list = prompt.split("\n\n")[0]
    assert "- patient_name (string, required)" in field_list
    assert "- procedure_code" in field_list and "- insurance_claim_amount" in field_list
    for name in SAMPLE:
        assert f"- {name} " not in field_list
    assert "do not write them: patient_id, diagnosis_code, total_charge." in field_list
    # the unique field is sampled: nothing to ask the model about it
    assert "must be unique" not in prompt
    schema = slot_schema(spec)  # type: ignore[arg-type]
    record = schema["properties"]["records"]["items"]
    assert list(record["properties"]) == [
        "patient_name",
        "procedure_code",
        "insurance_claim_amount",
    ]
    assert record["required"] == list(record["properties"])
    assert record["additionalProperties"] is False


def test_edge_case_records_ask_for_text_that_breaks_naive_code() -> None:
    prompt, spec = slotted_prompt(count=24, edge_cases=0.25)
    lines = record_lines(prompt)
    edge = [i for i in range(24) if spec.slots.slot(i).edge_case]  # type: ignore[attr-defined]
    assert len(edge) == 6
    for i, line in enumerate(lines):
        if i in edge:
            assert "Edge case: make patient_name, procedure_code realistic but unusual" in line
            assert "apostrophes" in line and "non-Latin" in line
        else:
            assert "Edge case" not in line


def test_values_use_the_json_keys_and_avoid_lists_skip_sampled_fields() -> None:
    spec = make_spec(
        Patient, 6, unique="patient_id", sample={"patient_id": samplers.sequence(start=7)}
    )
    prompt = user_prompt(
        batch_messages(
            spec,
            2,
            batch_index=0,
            batch_total=1,
            avoid={},
            slots=spec.slots.slots(0, 2),
        )
    )
    assert 'Record 1: values {"patientId": 7}.' in prompt
    assert "do not write them: patientId." in prompt
    schema = slot_schema(spec)
    assert "patientId" not in schema["properties"]["records"]["items"]["properties"]
    taken = avoid_values(spec, [{"patient_id": 7, "full_name": "Ann Lee", "plan": "basic"}])
    assert taken == {"full_name": ["Ann Lee"], "plan": ["basic"]}


def test_cover_alone_keeps_every_field_for_the_model() -> None:
    spec = make_spec(MedicalBilling, 6, cover=COVER)
    prompt = user_prompt(
        batch_messages(
            spec, 6, batch_index=0, batch_total=1, avoid={}, slots=spec.slots.slots(0, 6)
        )
    )
    assert "do not write them" not in prompt
    assert slot_schema(spec) == wrapper_schema(MedicalBilling)
    lines = record_lines(prompt)
    assert lines[0] == "Record 1: attributes specialty: cardiology, payer: medicare."
    assert {line.split("specialty: ")[1] for line in lines} == {
        f"{s}, payer: {p}." for s in COVER["specialty"] for p in COVER["payer"]
    }


def test_a_slot_request_to_an_endpoint_merges_into_valid_records(fake_llm: Any) -> None:
    """Over real HTTP: the model writes only the other fields (fewer output tokens), the
    sampled values go in, and every record validates with its slot's values."""
    import openai

    spec = make_spec(MedicalBilling, 6, examples=BILLING_EXAMPLES, sample=SAMPLE, cover=COVER)
    slots = spec.slots.slots(0, 6)

    def request(schema: dict[str, Any], **slotted: Any) -> Any:
        messages = batch_messages(spec, 6, batch_index=0, batch_total=1, avoid={}, **slotted)
        with openai.OpenAI(base_url=fake_llm.url, api_key="sk-test", max_retries=0) as client:
            create: Any = client.chat.completions.create
            return create(
                model="fake-model",
                messages=messages,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "MedicalBilling", "schema": schema, "strict": True},
                },
            )

    answer = request(slot_schema(spec), slots=slots)
    written = json.loads(answer.choices[0].message.content)["records"]
    assert len(written) == 6
    assert all(
        set(item) == {"patient_name", "procedure_code", "insurance_claim_amount"}
        for item in written
    )
    bills = [
        MedicalBilling.model_validate_json(
            json.dumps(merge_sampled(MedicalBilling, item, slot.sampled))
        )
        for item, slot in zip(written, slots, strict=True)
    ]
    assert [b.patient_id for b in bills] == list(range(100000, 100006))
    assert [b.diagnosis_code for b in bills] == [s.sampled["diagnosis_code"] for s in slots]
    full = request(wrapper_schema(MedicalBilling))
    assert answer.usage.completion_tokens < full.usage.completion_tokens
