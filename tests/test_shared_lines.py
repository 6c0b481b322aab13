"""The command keeps one object for a record's output line and for what the model sent for
it (stored with the dataset) when they are the same text, as they usually are: the rows
written are the same either way."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field

from pytest_synthdata.cli.lines import output_line, output_rows
from pytest_synthdata.examples import as_rows
from pytest_synthdata.storage.datasets import EncodedItem


class Visit(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    visit_id: int = Field(alias="visitId")
    patient: str = Field(alias="patientName")
    fee: float


def test_the_stored_answer_is_the_line_when_it_is_the_same_text() -> None:
    visit = Visit(visitId=2, patientName="Zoë \u2028 Ortiz", fee=1.5)
    as_sent = {"visitId": 2, "patientName": "Zoë \u2028 Ortiz", "fee": 1.5}
    sent = EncodedItem(json.dumps(as_sent, ensure_ascii=False))
    line = output_line(visit, sent)
    assert line is sent
    assert output_rows([line]) == as_rows([visit])


def test_an_answer_sent_otherwise_keeps_a_line_of_its_own() -> None:
    visit = Visit(visitId=2, patientName="Ann", fee=500)
    for sent in (
        EncodedItem('{"visitId": 2, "patientName": "Ann", "fee": 500}'),  # 500, not 500.0
        EncodedItem('{"patientName": "Ann", "visitId": 2, "fee": 500.0}'),  # another order
        {"visitId": 2, "patientName": "Ann", "fee": 500.0},  # not text
        None,
    ):
        line = output_line(visit, sent)
        assert isinstance(line, bytes)
        assert output_rows([line]) == as_rows([visit])
