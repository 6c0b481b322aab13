"""The plan of a record dataset as plain arithmetic (no server): waves, batches, the
dataset-wide retry budget, smaller batches after a time-out and how many records a
follow-up asks for; and one check through real HTTP that the dry run's plan is the run's."""

from __future__ import annotations

import json

import openai
import pytest
from fakellm import FakeLLM, Fault
from models import MedicalBilling
from pydantic import BaseModel

from pytest_synthdata import generate
from pytest_synthdata.dryrun import plan_records
from pytest_synthdata.estimate import output_budget, tokens_per_record
from pytest_synthdata.planning import Planner, asking
from pytest_synthdata.settings import Settings
from pytest_synthdata.spec import make_spec


def all_good(planner: Planner, missing: int) -> list[tuple[int, ...]]:
    """The waves' batch sizes when every answer is good."""
    waves = []
    while missing > 0 and (wave := planner.wave(missing)) is not None:
        waves.append(wave.sizes)
        missing -= sum(wave.sizes)
    return waves


def test_batches_are_cut_from_what_is_missing_in_waves_of_concurrency() -> None:
    planner = Planner(100, 20, max_retries=3, concurrency=2)
    assert all_good(planner, 100) == [(20, 20), (20, 20), (20,)]
    assert planner.sent == 5 and planner.budget == 15
    assert all_good(Planner(45, 20, 3, 8), 45) == [(20, 20, 5)]


def test_the_budget_is_shared_evenly_and_top_ups_draw_on_it() -> None:
    planner = Planner(40, 20, max_retries=3, concurrency=8)
    first = planner.wave(40)
    assert first is not None
    assert first.allowances == (3, 3) and first.total == 2
    assert not first.top_up(0) and not first.top_up(1)
    planner.spend(2)  # two follow-ups used; 7 records still missing
    top_up = planner.wave(7)
    assert top_up is not None
    assert top_up.sizes == (7,) and top_up.top_up(0) and top_up.first == 2
    assert planner.left == 3  # 6 - 2 spent - 1 for the top-up itself
    assert top_up.allowances == (3,) and top_up.total == 3
    planner.spend(3)
    assert planner.wave(1) is None  # the budget is spent


def test_a_pooled_wave_leaves_follow_ups_to_top_ups_that_ask_together() -> None:
    planner = Planner(40, 20, max_retries=3, concurrency=8)
    first = planner.wave(40, pool=True)
    assert first is not None
    assert first.sizes == (20, 20) and first.allowances == (0, 0)  # one request each
    # 18 still missing, half the answers invalid: one top-up owes them all (it may ask for
    # 32 / 0.5 = 64 records in one request)
    top_up = planner.wave(18, top_up=32, pool=True)
    assert top_up is not None
    assert top_up.sizes == (18,) and top_up.top_up(0)
    assert top_up.allowances == (3,)  # a lone batch follows up on its own
    assert planner.left == 5


def test_top_ups_share_what_is_missing_evenly_and_each_costs_a_request() -> None:
    planner = Planner(200, 20, max_retries=3, concurrency=8)
    first = planner.wave(200, pool=True)
    assert first is not None and first.sizes == (20,) * 8
    # two planned batches left; 120 missing: 40 for them, 80 over top-ups of at most 32
    second = planner.wave(120, top_up=32, pool=True)
    assert second is not None
    assert second.sizes == (20, 20, 27, 27, 26)
    assert [second.top_up(i) for i in range(5)] == [False, False, True, True, True]
    assert second.allowances == (0,) * 5 and planner.left == 30 - 3
    # a top-up never owes fewer than a batch holds
    assert planner.wave(38, top_up=16, pool=True).sizes == (19, 19)  # type: ignore[union-attr]
    assert planner.left == 30 - 5


def test_without_pooling_the_waves_are_as_planned() -> None:
    pooled, plain = Planner(100, 20, 3, 2), Planner(100, 20, 3, 2)
    assert all_good(plain, 100) == [(20, 20), (20, 20), (20,)]
    waves = []
    while (wave := pooled.wave(100 - sum(map(sum, waves)), pool=True)) is not None:
        waves.append(wave.sizes)
        if sum(map(sum, waves)) >= 100:
            break
    assert waves == [(20, 20), (20, 20), (20,)]  # nothing invalid: the same requests


def test_no_retries_means_no_top_up() -> None:
    planner = Planner(10, 20, max_retries=0, concurrency=8)
    wave = planner.wave(10)
    assert wave is not None and wave.allowances == (0,)
    assert planner.wave(3) is None


def test_a_time_out_halves_the_batches_and_probes_one_at_a_time() -> None:
    planner = Planner(40, 20, max_retries=3, concurrency=8)
    wave = planner.wave(40)
    assert wave is not None
    assert planner.settle(wave, timed_out=True, missing=40)
    assert planner.size == 10 and planner.width == 1
    probe = planner.wave(40)
    assert probe is not None and probe.sizes == (10,) and not probe.top_up(0)
    assert not planner.settle(probe, timed_out=False, missing=30)
    assert planner.width == 2
    assert all_good(planner, 30) == [(10, 10), (10,)]
    assert planner.left == planner.budget  # smaller batches cost nothing of the budget
    # the 40 records missing after two timed-out batches of 20 are four batches of 10, and
    # each brings max_retries follow-ups
    assert planner.budgeted == planner.planned == 6 and planner.budget == 18


def test_halving_starts_from_the_largest_batch_and_stops_at_one_record() -> None:
    planner = Planner(3, 20, max_retries=3, concurrency=8)
    sizes = []
    while (wave := planner.wave(3)) is not None:
        sizes.append(wave.sizes)
        if not planner.settle(wave, timed_out=True, missing=3):
            break
    assert sizes == [(3,), (2,), (1,)]


@pytest.mark.parametrize(
    ("missing", "valid", "invalid", "most", "expected"),
    [
        (10, 0, 0, 49, 10),  # nothing seen yet: exactly the missing ones
        (10, 30, 0, 49, 10),  # nothing invalid: exactly the missing ones
        (10, 10, 10, 49, 20),  # half invalid: twice as many
        (1, 3, 1, 20, 1),  # 1 / 0.75 rounds to 1
        (2, 3, 1, 20, 3),  # 2 / 0.75 = 2.67
        (16, 4, 16, 65, 64),  # 80% invalid: 80 wanted, four times the missing at most
        (16, 4, 16, 50, 50),  # ... and at most what one request may hold
        (5, 0, 5, 3, 5),  # never fewer than the missing ones
        (3, 0, 9, 100, 12),  # nothing valid yet: four times the missing
        (0, 1, 1, 20, 0),
    ],
)
def test_a_follow_up_asks_for_the_missing_records_over_the_valid_share(
    missing: int, valid: int, invalid: int, most: int, expected: int
) -> None:
    assert asking(missing, valid, invalid, most) == expected


@pytest.mark.usefixtures("fresh_endpoints")
@pytest.mark.parametrize(("n", "concurrency"), [(100, 2), (45, 8), (7, 1)])
def test_the_dry_run_plans_what_the_run_sends(llm: FakeLLM, n: int, concurrency: int) -> None:
    plan = plan_records(make_spec(MedicalBilling, n), Settings(concurrency=concurrency))
    client = openai.OpenAI(base_url=llm.url, api_key="sk-test-planning-0000000")
    bills = generate(MedicalBilling, n, client=client, concurrency=concurrency)
    assert len(bills) == n
    assert plan.requests == llm.request_count == bills.usage.requests
    sizes = sorted(
        FakeLLM.requested_count(r.body, r.body["response_format"]["json_schema"]["schema"])
        for r in llm.chat_requests
    )
    assert sum(sizes) == n and max(sizes) == min(n, plan.batch_size)


class LineItem(BaseModel):
    sku: str
    description: str
    quantity: int
    unit_price: float


class Order(BaseModel):
    order_id: str
    customer: str
    items: list[LineItem]


def line_items(count: int) -> list[dict[str, object]]:
    return [
        {
            "sku": f"SKU-{i:05d}-BLUE-XL",
            "description": "Hand-stitched waxed canvas weekender bag with leather trim",
            "quantity": i + 1,
            "unit_price": 129.95,
        }
        for i in range(count)
    ]


ORDERS = [
    {
        "order_id": f"ORD-2026-{i:06d}",
        "customer": "Margaret Okonkwo-Lindqvist",
        "items": line_items(5),
    }
    for i in range(3)
]


def test_a_record_is_estimated_from_its_examples_when_they_are_larger() -> None:
    schema_only = tokens_per_record(Order)
    with_examples = tokens_per_record(Order, ORDERS)
    assert with_examples > 2 * schema_only  # five long line items, where the schema says two
    example = len(json.dumps(ORDERS[0])) / 4
    assert with_examples >= example
    assert output_budget(Order, 10, ORDERS) >= 10 * example
    # smaller examples do not lower the schema's estimate
    assert tokens_per_record(MedicalBilling, [{"patient_id": 1}]) == tokens_per_record(
        MedicalBilling
    )


@pytest.mark.usefixtures("fresh_endpoints")
def test_answers_as_large_as_the_examples_fit_their_output_budget(llm: FakeLLM) -> None:
    # the model writes orders like the examples: five long line items each
    def like_the_examples(records: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{**record, "items": line_items(5)} for record in records]

    llm.always(Fault.mutate(like_the_examples))
    client = openai.OpenAI(base_url=llm.url, api_key="sk-test-planning-0000000")
    # (the orders copy the examples' line items on purpose: no near-duplicate check)
    orders = generate(Order, 10, examples=ORDERS, client=client, near_duplicates=None)
    assert len(orders) == 10 and all(len(order.items) == 5 for order in orders)
    finishes = [r.response["choices"][0]["finish_reason"] for r in llm.chat_requests]
    assert finishes == ["stop"] * len(finishes)  # nothing cut off at max_tokens
    assert orders.usage.retries == 0
