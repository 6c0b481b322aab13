"""The command keeps each record as its output line while it generates (not as a pydantic
instance): what it writes, in every format, is what the instances write."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest
from fakellm import FakeLLM
from models import Ticket
from pydantic import BaseModel, ConfigDict, Field

from pytest_synthdata import Dataset, agenerate
from pytest_synthdata.cli.lines import kept_as_lines, output_line, output_rows
from pytest_synthdata.examples import SynthOutputError, as_rows, render, write_rows

pytestmark = pytest.mark.usefixtures("fresh_endpoints")


class Visit(BaseModel):
    """A clinic visit, written by its aliases."""

    model_config = ConfigDict(populate_by_name=True)

    visit_id: int = Field(alias="visitId")
    patient: str = Field(alias="patientName")
    notes: list[str]
    fee: float


def both(llm: FakeLLM, model: type[BaseModel], n: int, **kw: Any) -> tuple[Dataset[Any], ...]:
    """The same generation twice against the reset server: as the library returns it, and
    keeping output lines as the command does."""
    plain = asyncio.run(agenerate(model, n, seed=5, **kw))
    llm.reset()
    kept = asyncio.run(kept_as_lines(agenerate(model, n, seed=5, **kw)))
    return plain, kept


@pytest.mark.parametrize("model", [Ticket, Visit])
def test_kept_lines_write_what_the_instances_write(
    llm_env: FakeLLM, model: type[BaseModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    plain, kept = both(llm_env, model, 45, batch_size=10)
    assert len(kept) == len(plain) == 45
    assert all(isinstance(record, (bytes, str)) for record in kept)
    assert all(isinstance(record, model) for record in plain)
    assert output_rows(kept) == as_rows(plain)
    for suffix in (".jsonl", ".json", ".csv"):
        assert render(output_rows(kept), suffix) == render(as_rows(plain), suffix)
    assert kept.usage == plain.usage
    assert plain.diversity is not None and kept.diversity is not None
    assert kept.diversity.lines() == plain.diversity.lines()
    if model is Visit:
        first = kept[0] if isinstance(kept[0], str) else kept[0].decode()
        assert '"visitId"' in first and '"patientName"' in first


def test_records_asked_for_per_slot_stay_instances(
    llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    plain, kept = both(llm_env, Ticket, 12, cover={"mood": ["calm", "angry", "curious"]})
    assert all(isinstance(record, Ticket) for record in kept)
    assert output_rows(kept) == as_rows(plain)
    assert kept.coverage == plain.coverage


def test_a_record_json_cannot_carry_is_kept_as_is_and_writing_it_says_why(
    tmp_path: Path,
) -> None:
    broken = Visit.model_construct(visit_id=1, patient="Ann", notes=[], fee=math.nan)
    assert output_line(broken) is broken
    fine = Visit(visitId=2, patientName="Zoë", notes=["a\u2028b"], fee=1.5)
    line = output_line(fine)
    assert isinstance(line, bytes)
    assert output_rows([line]) == as_rows([fine])
    with pytest.raises(SynthOutputError, match="NaN or Infinity"):
        write_rows(output_rows([line, broken]), tmp_path / "out.jsonl", None)  # type: ignore[arg-type]
    assert not (tmp_path / "out.jsonl").exists()
