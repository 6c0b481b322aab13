"""Coverage axes (``cover=``) and edge cases (``edge_cases=``): one combination and, for a
share of records, boundary values per record slot, from the seed and the index alone."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import Counter
from typing import Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from pytest_synthdata import Dataset, SynthConfigError, samplers
from pytest_synthdata.coverage import (
    EDGE_HINT,
    boundary_values,
    combination_order,
    merge_sampled,
)
from pytest_synthdata.spec import make_spec

SPECIALTIES = ["cardiology", "oncology", "pediatrics"]
PAYERS = ["medicare", "medicaid", "private", "self-pay"]


class Bill(BaseModel):
    patient_id: int = Field(ge=100000, le=999999)
    patient_name: str
    diagnosis_code: str = Field(pattern=r"^[A-Z]\d\d\.\d$")
    total_charge: float = Field(gt=0, le=10000)


class Visit(BaseModel):
    """Every kind of constrained field an edge case can set."""

    visit_id: int = Field(ge=1)
    reason: str = Field(min_length=3, max_length=40)
    seen_on: dt.date = Field(ge=dt.date(2020, 1, 1), le=dt.date(2025, 12, 31))
    born_on: dt.date
    notes: str | None
    codes: list[str]
    score: float = Field(ge=0, lt=5)
    channel: Literal["phone", "web"]
    doctor: str = Field(alias="doctorName")


VALID_VISIT = {
    "visit_id": 7,
    "reason": "Persistent cough",
    "seen_on": "2023-05-04",
    "born_on": "1980-02-03",
    "notes": "Follow-up in two weeks.",
    "codes": ["J20.9"],
    "score": 2.5,
    "channel": "web",
    "doctorName": "Ana Ruiz",
}


def coverage(n: int, **kwargs: object) -> list[dict[str, object]]:
    spec = make_spec(
        Bill,
        n,
        cover={"specialty": SPECIALTIES[:3], "payer": PAYERS},
        **kwargs,  # type: ignore[arg-type]
    )
    return spec.slots.coverage(n)


def combos(entries: list[dict[str, object]]) -> Counter[tuple[object, object]]:
    return Counter((e["specialty"], e["payer"]) for e in entries)


def test_a_3x4_cover_at_n_24_gives_each_combination_exactly_twice() -> None:
    entries = coverage(24)
    counts = combos(entries)
    assert set(counts) == set(itertools.product(SPECIALTIES, PAYERS))
    assert set(counts.values()) == {2}
    assert all(e["edge_case"] is False for e in entries)
    assert set(entries[3]) == {"specialty", "payer", "edge_case"}


@pytest.mark.parametrize("n", range(12, 41))
def test_with_enough_slots_every_combination_appears_and_counts_differ_by_one(n: int) -> None:
    counts = combos(coverage(n))
    assert len(counts) == 12
    assert max(counts.values()) - min(counts.values()) <= 1


@pytest.mark.parametrize("n", range(4, 12))
def test_with_fewer_slots_every_value_appears_and_no_combination_twice(n: int) -> None:
    entries = coverage(n)
    assert {e["specialty"] for e in entries} == set(SPECIALTIES)
    assert {e["payer"] for e in entries} == set(PAYERS)
    assert len(combos(entries)) == n


def test_coverage_is_a_stable_prefix() -> None:
    assert coverage(30)[:10] == coverage(10)
    assert coverage(30, edge_cases=0.3, seed=5)[:7] == coverage(7, edge_cases=0.3, seed=5)


def pairs(order: list[tuple[int, ...]]) -> set[tuple[int, int, int, int]]:
    return {
        (a, combo[a], b, combo[b])
        for combo in order
        for a, b in itertools.combinations(range(len(combo)), 2)
    }


def test_fewer_slots_than_combinations_cover_as_many_pairs_as_fit() -> None:
    axes = {"a": "xyz", "b": "xyz", "c": "xyz"}  # 27 combinations, 27 pairs of values
    # 9 slots can hold every pair (3 new pairs each): they do
    assert len(pairs(combination_order(axes, 9))) == 27
    for count in range(1, 10):
        assert len(pairs(combination_order(axes, count))) == 3 * count
    wide = {"a": range(5), "b": range(5), "c": range(4), "d": range(2)}  # 93 pairs
    got = [len(pairs(combination_order(wide, count))) for count in (5, 12, 20, 30)]
    assert got == sorted(got) and got[-1] >= 90
    assert {c[0] for c in combination_order(wide, 5)} == set(range(5))  # every value of a


def test_edge_cases_are_the_share_asked_for_and_depend_on_the_seed() -> None:
    entries = coverage(100, edge_cases=0.2, seed=1)
    flags = [e["edge_case"] for e in entries]
    assert sum(flags) == 20
    for k in range(1, 101):  # spread evenly: every prefix holds its share, within one
        assert abs(sum(flags[:k]) - 0.2 * k) <= 1
    by_seed = {
        tuple(i for i, e in enumerate(coverage(50, edge_cases=0.2, seed=seed)) if e["edge_case"])
        for seed in range(6)
    }
    assert len(by_seed) > 1  # the seed moves which records are edge cases
    assert all(len(positions) == 10 for positions in by_seed)
    assert not any(e["edge_case"] for e in coverage(30, edge_cases=0))
    assert all(e["edge_case"] for e in coverage(30, edge_cases=1))


def test_boundary_values_come_from_the_field_constraints() -> None:
    assert boundary_values(Visit, "visit_id") == [1]
    reason = boundary_values(Visit, "reason")
    assert sorted(len(text) for text in reason) == [3, 40]
    assert boundary_values(Visit, "seen_on") == ["2020-01-01", "2025-12-31"]
    assert boundary_values(Visit, "born_on") == ["2024-02-29"]
    assert boundary_values(Visit, "notes") == [None]
    assert boundary_values(Visit, "codes") == [[]]
    score = boundary_values(Visit, "score")
    assert score[0] == 0 and 4.9 < score[1] < 5
    assert boundary_values(Visit, "channel") == []
    assert boundary_values(Bill, "diagnosis_code") == []  # a pattern: left to the model


def test_edge_case_values_are_valid_for_the_model() -> None:
    spec = make_spec(Visit, 60, edge_cases=0.5, seed=9)
    edge = [spec.slots.slot(i) for i in range(60) if spec.slots.slot(i).edge_case]
    assert len(edge) == 30
    seen_fields: set[str] = set()
    for slot in edge:
        assert 1 <= len(slot.sampled) <= 2
        seen_fields.update(slot.sampled)
        assert "doctorName" in slot.hints[0]  # the JSON key the model writes
        record = merge_sampled(Visit, dict(VALID_VISIT), slot.sampled)
        Visit.model_validate_json(json.dumps(record))  # raises if a boundary is invalid
        assert slot.hints == [
            EDGE_HINT.format(
                fields=", ".join(
                    name for name in ("reason", "notes", "doctorName") if name not in slot.sampled
                )
            )
        ]
    assert seen_fields >= {"visit_id", "reason", "seen_on", "notes", "codes", "score"}


def test_edge_cases_leave_sampled_and_unique_fields_alone() -> None:
    spec = make_spec(
        Visit,
        40,
        edge_cases=1,
        unique="visit_id",
        sample={"visit_id": samplers.sequence(start=10), "score": samplers.uniform(1, 4)},
    )
    for i in range(40):
        slot = spec.slots.slot(i)
        assert slot.sampled["visit_id"] == 10 + i
        assert 1 <= slot.sampled["score"] <= 4


def test_merge_puts_sampled_values_under_the_json_keys() -> None:
    answer = {k: v for k, v in VALID_VISIT.items() if k not in ("visit_id", "doctorName")}
    merged = merge_sampled(Visit, answer, {"visit_id": 3, "doctor": "Zoë O'Neil"})
    visit = Visit.model_validate_json(json.dumps(merged))
    assert (visit.visit_id, visit.doctor) == (3, "Zoë O'Neil")
    assert merge_sampled(Visit, ["not", "a", "record"], {"visit_id": 3}) == ["not", "a", "record"]
    with pytest.raises(ValidationError):
        Visit.model_validate_json(json.dumps(merge_sampled(Visit, {}, {"visit_id": 3})))


@pytest.mark.parametrize(
    ("cover", "message"),
    [
        ({"patient_name": ["a", "b"]}, r"'patient_name' is a field of Bill.*samplers.choice"),
        ({"payer": []}, r"cover\['payer'\] must be a non-empty list"),
        ({"payer": "private"}, r"cover\['payer'\] must be a non-empty list"),
        ({"payer": ["private", "private"]}, r"'private' is listed twice"),
        ({"payer": [{"a": 1}]}, r"values must be strings or numbers"),
        ({"edge_case": [True]}, r"other than 'edge_case'"),
        ({f"axis{i}": list(range(10)) for i in range(4)}, r"more than 1000 combinations"),
        (["payer"], r"cover must be a non-empty dict"),
    ],
)
def test_bad_cover_fails_before_any_request(cover: object, message: str) -> None:
    with pytest.raises(SynthConfigError, match=message):
        make_spec(Bill, 10, cover=cover)  # type: ignore[arg-type]


@pytest.mark.parametrize("share", [-0.1, 1.5, "0.2", True])
def test_bad_edge_cases_share_is_named(share: object) -> None:
    with pytest.raises(SynthConfigError, match="edge_cases must be the share"):
        make_spec(Bill, 10, edge_cases=share)  # type: ignore[arg-type]


def test_keys_change_only_when_cover_or_edge_cases_are_given() -> None:
    plain = make_spec(Bill, 10)
    assert make_spec(Bill, 10, cover=None, edge_cases=None, sample=None).key() == plain.key()
    assert make_spec(Bill, 10, edge_cases=0).key() == plain.key()
    covered = make_spec(Bill, 10, cover={"payer": PAYERS})
    reordered = make_spec(Bill, 10, cover={"payer": PAYERS[::-1]})
    edged = make_spec(Bill, 10, edge_cases=0.2)
    assert len({plain.key(), covered.key(), reordered.key(), edged.key()}) == 4
    assert not plain.slotted and covered.slotted and edged.slotted


def test_a_dataset_without_coverage_says_none() -> None:
    data: Dataset[int] = Dataset([1, 2])
    assert data.coverage is None and data.diversity is None
    covered = Dataset([1], coverage=[{"payer": "private", "edge_case": False}])
    assert covered.coverage == [{"payer": "private", "edge_case": False}]


def test_an_edge_case_slot_can_leave_its_boundaries_to_the_model() -> None:
    spec = make_spec(Visit, 10, edge_cases=1, sample={"visit_id": samplers.sequence()})
    slot = spec.slots.slot(4)
    assert slot.edge_case and slot.boundary and set(slot.boundary) <= set(slot.sampled)
    plain = slot.without_boundaries()
    assert plain.sampled == {"visit_id": 5}  # sequence() starts at 1
    assert plain.edge_case and plain.axes == slot.axes and plain.boundary == ()
    assert spec.slots.written_fields == [f for f in Visit.model_fields if f != "visit_id"]
