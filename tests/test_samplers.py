"""Samplers (``sample=``): values drawn by code from (seed, field, index), checked before any
request against the model."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from pytest_synthdata import SynthConfigError, samplers
from pytest_synthdata.spec import make_spec

ROOT = Path(__file__).resolve().parent.parent


class Bill(BaseModel):
    patient_id: int = Field(ge=100000, le=999999)
    patient_name: str
    diagnosis_code: str
    total_charge: float = Field(gt=0, le=10000)
    visits: int = Field(ge=1, le=20)


class Ticket(BaseModel):
    ticket_id: int = Field(ge=1)
    title: str


def bill_sample() -> dict[str, samplers.Sampler]:
    return {
        "patient_id": samplers.sequence(start=100000),
        "diagnosis_code": samplers.choice(["J20.9", "M54.5", "E11.9"], weights=[2, 1, 1]),
        "total_charge": samplers.uniform(50, 5000),
        "visits": samplers.uniform(1, 20),
    }


def drawn(spec_n: int, seed: int | None = 3) -> list[dict[str, object]]:
    spec = make_spec(Bill, spec_n, seed=seed, sample=bill_sample())
    return [spec.slots.slot(i).sampled for i in range(spec_n)]


def test_values_are_a_stable_prefix_when_n_grows_and_depend_on_the_seed() -> None:
    small, large = drawn(10), drawn(40)
    assert small == large[:10]
    assert drawn(10) == small  # the same again
    other = drawn(10, seed=4)
    assert [r["diagnosis_code"] for r in other] != [r["diagnosis_code"] for r in small] or [
        r["total_charge"] for r in other
    ] != [r["total_charge"] for r in small]
    assert [r["patient_id"] for r in small] == list(range(100000, 100010))


def test_values_are_the_same_in_another_process() -> None:
    """No global RNG and no Python hash randomisation: a fresh interpreter draws the same."""
    code = (
        "import json, sys; sys.path.insert(0, 'tests');"
        "from test_samplers import drawn; print(json.dumps(drawn(12)))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == drawn(12)


def test_uniform_follows_the_field_type_and_stays_in_range() -> None:
    records = drawn(200)
    charges = [r["total_charge"] for r in records]
    visits = [r["visits"] for r in records]
    assert all(isinstance(c, float) and 50 <= c <= 5000 for c in charges)
    assert all(round(c, 2) == c for c in charges)
    assert len(set(charges)) > 150
    assert all(isinstance(v, int) and 1 <= v <= 20 for v in visits)
    assert set(visits) == set(range(1, 21))


def test_choice_follows_its_weights() -> None:
    spec = make_spec(Bill, 3000, sample=bill_sample())
    counts = Counter(spec.slots.slot(i).sampled["diagnosis_code"] for i in range(3000))
    assert set(counts) == {"J20.9", "M54.5", "E11.9"}
    assert 1350 <= counts["J20.9"] <= 1650  # half of them
    assert 600 <= counts["M54.5"] <= 900


def test_values_are_taken_in_order() -> None:
    spec = make_spec(Ticket, 3, sample={"title": samplers.values(["a", "b", "c"])})
    assert [spec.slots.slot(i).sampled["title"] for i in range(3)] == ["a", "b", "c"]
    with pytest.raises(SynthConfigError, match=r"3 value\(s\) for n=5 .*cycle=True"):
        make_spec(Ticket, 5, sample={"title": samplers.values(["a", "b", "c"])})
    cycled = make_spec(Ticket, 5, sample={"title": samplers.values(["a", "b"], cycle=True)})
    assert [cycled.slots.slot(i).sampled["title"] for i in range(5)] == ["a", "b", "a", "b", "a"]


def test_unique_on_a_sequence_field_holds() -> None:
    spec = make_spec(Ticket, 12, unique="ticket_id", sample={"ticket_id": samplers.sequence()})
    ids = [spec.slots.slot(i).sampled["ticket_id"] for i in range(12)]
    assert len(set(ids)) == 12


def test_unique_on_a_sampler_that_repeats_is_an_error() -> None:
    with pytest.raises(SynthConfigError, match=r"unique='ticket_id'.*samplers.sequence\(\)"):
        make_spec(Ticket, 12, unique="ticket_id", sample={"ticket_id": samplers.choice([1, 2, 3])})


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        (
            {"total_charge": samplers.uniform(0, 5000)},
            r"range end 0 is not a valid value of Bill.total_charge \(Input should be greater "
            r"than 0\)",
        ),
        (
            {"visits": samplers.uniform(1, 50)},
            r"range end 50 is not a valid value of Bill.visits .*less than or equal to 20",
        ),
        (
            {"patient_id": samplers.sequence(start=1)},
            r"sequence\(start=1, step=1\) starts at 1, which is not a valid value",
        ),
        (
            {"patient_id": samplers.sequence(start=999910, step=5)},
            r"reaches 1000005 at record 19, which is not a valid value of Bill.patient_id "
            r"\(Input should be less than or equal to 999999\)",
        ),
        (
            {"patient_id": samplers.sequence(start=100005, step=-1)},
            r"reaches 99986 at record 19, which is not a valid value of Bill.patient_id",
        ),
        (
            {"visits": samplers.choice(["often", 3])},
            r"option 'often' is not a valid value of Bill.visits",
        ),
        ({"patient_nam": samplers.sequence()}, r"'patient_nam' is not a field of Bill.*"),
        ({"visits": 3}, r"sample\['visits'\] must be a sampler"),
    ],
)
def test_a_sampler_that_cannot_give_a_valid_value_fails_before_any_request(
    sample: dict[str, object], message: str
) -> None:
    with pytest.raises(SynthConfigError, match=message):
        make_spec(Bill, 20, sample=sample)  # type: ignore[arg-type]


def test_unknown_field_suggests_the_closest() -> None:
    with pytest.raises(SynthConfigError, match=r"did you mean 'patient_name'"):
        make_spec(Bill, 5, sample={"patient_nam": samplers.sequence()})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: samplers.choice([]), "non-empty list of options"),
        (lambda: samplers.choice(["a", "b"], weights=[1]), "1 weights for 2 options"),
        (lambda: samplers.choice(["a", "b"], weights=[0, 0]), "at least one weight"),
        (lambda: samplers.choice(["a"], weights=[-1]), "finite numbers >= 0"),
        (lambda: samplers.uniform(5, 1), "low=5 is above high=1"),
        (lambda: samplers.uniform(0, float("inf")), "high must be finite"),
        (lambda: samplers.sequence(step=0), "step must not be 0"),
        (lambda: samplers.values("abc"), "non-empty list"),
        (lambda: samplers.choice([object()]), "cannot be written as JSON"),
    ],
)
def test_bad_sampler_arguments_are_named(make: object, message: str) -> None:
    with pytest.raises(SynthConfigError, match=message):
        make()  # type: ignore[operator]


def test_sampling_every_field_leaves_nothing_to_write() -> None:
    with pytest.raises(SynthConfigError, match="the model would write nothing"):
        make_spec(
            Ticket,
            3,
            sample={"ticket_id": samplers.sequence(), "title": samplers.values(["a", "b", "c"])},
        )


def test_faker_draws_in_a_locale_and_replays() -> None:
    spec = make_spec(Ticket, 20, seed=1, sample={"title": samplers.faker("name", locale="ja_JP")})
    names = [spec.slots.slot(i).sampled["title"] for i in range(20)]
    again = make_spec(Ticket, 20, seed=1, sample={"title": samplers.faker("name", locale="ja_JP")})
    assert names == [again.slots.slot(i).sampled["title"] for i in range(20)]
    assert all(any(ord(ch) > 0x3000 for ch in name) for name in names)  # Japanese script
    assert len(set(names)) > 15


def test_faker_values_become_json() -> None:
    class Person(BaseModel):
        born: __import__("datetime").date
        note: str

    spec = make_spec(Person, 3, sample={"born": samplers.faker("date_of_birth", minimum_age=20)})
    born = spec.slots.slot(0).sampled["born"]
    assert isinstance(born, str) and len(born) == 10  # an ISO date, as JSON has it
    Person.model_validate({"born": born, "note": "x"})


def test_faker_errors_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SynthConfigError, match=r"no provider 'nmae' \(did you mean 'name'\?\)"):
        samplers.faker("nmae")
    with pytest.raises(SynthConfigError, match="no locale 'xx_YY'"):
        samplers.faker("name", locale="xx_YY")
    monkeypatch.setitem(sys.modules, "faker", None)  # Faker not installed
    with pytest.raises(SynthConfigError, match=r"pip install 'pytest-synthdata\[faker\]'"):
        samplers.faker("name")


def test_descriptions_are_stable_json_and_go_into_the_key() -> None:
    sample = bill_sample()
    for sampler in sample.values():
        text = json.dumps(sampler.describe(), sort_keys=True)
        assert json.loads(text) == sampler.describe()
    assert sample["diagnosis_code"].describe() == {
        "sampler": "choice",
        "options": ["J20.9", "M54.5", "E11.9"],
        "weights": [2, 1, 1],
    }
    plain = make_spec(Bill, 10)
    with_sample = make_spec(Bill, 10, sample=bill_sample())
    changed = make_spec(Bill, 10, sample={**bill_sample(), "visits": samplers.uniform(2, 20)})
    assert len({plain.key(), with_sample.key(), changed.key()}) == 3
    assert make_spec(Bill, 10, sample=bill_sample()).key() == with_sample.key()
    # the store's key leaves n out: a larger n grows the same dataset
    larger = make_spec(Bill, 30, sample=bill_sample())
    assert dataclasses.replace(larger, n=0).key() == dataclasses.replace(with_sample, n=0).key()
    assert hash(with_sample) == hash(make_spec(Bill, 10, sample=bill_sample()))
