"""Examples reach the prompt as the schema asks for records: the schema's fields only (no
computed fields) and numbers as numbers, wherever they came from (a CSV the command wrote)."""

from __future__ import annotations

from pathlib import Path

from command import synthdata
from fakellm import FakeLLM

MODELS = """
from decimal import Decimal

from pydantic import BaseModel, computed_field


class Line(BaseModel):
    sku: str
    unit_price: Decimal
    quantity: int

    @computed_field
    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


class Order(BaseModel):
    order_id: int
    lines: list[Line]
    discount: Decimal = Decimal("0")
    tags: set[str] = set()

    @computed_field
    @property
    def line_count(self) -> int:
        return len(self.lines)
"""

SEEDS = (
    "order_id,lines,discount,tags,line_count\r\n"
    '7,"[{""sku"": ""A-1"", ""unit_price"": ""2665.26"", ""quantity"": 2, ""total"": '
    '""5330.52""}]",10,"[""x""]",1\r\n'
)


def test_a_fed_back_csv_shows_numbers_and_no_computed_fields(llm: FakeLLM, tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(MODELS)
    (tmp_path / "seeds.csv").write_text(SEEDS, newline="")
    run = synthdata(
        llm, tmp_path, "generate", "shop:Order", "-n", "2", "--examples", "seeds.csv", "--no-cache"
    )
    assert run.code == 0, run
    prompt = llm.chat_requests[-1].messages[-1]["content"]
    shown = [line for line in prompt.splitlines() if line.startswith("1. ")]
    assert shown == [
        '1. {"order_id": 7, "lines": [{"sku": "A-1", "unit_price": 2665.26, "quantity": 2}], '
        '"discount": 10, "tags": ["x"]}'
    ]


def test_written_output_keeps_computed_fields(llm: FakeLLM, tmp_path: Path) -> None:
    """What the command writes is the records' JSON form, computed fields included."""
    (tmp_path / "shop.py").write_text(MODELS)
    run = synthdata(llm, tmp_path, "generate", "shop:Order", "-n", "2", "--no-cache")
    assert run.code == 0, run
    assert '"line_count": ' in run.out
