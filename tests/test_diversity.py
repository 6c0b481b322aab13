"""Near-duplicates and the diversity report, on records like those a small model writes."""

from __future__ import annotations

import random

import pytest
from faker import Faker
from pydantic import BaseModel

from pytest_synthdata import SynthConfigError
from pytest_synthdata.diversity import (
    CLOSE_TO_EXAMPLE,
    DEFAULT_NEAR_DUPLICATES,
    NearDuplicates,
    diversity_report,
    example_texts,
    low_variety_fields,
    record_text,
    variety_warning,
)
from pytest_synthdata.spec import make_spec


class DictBill(BaseModel):
    patient_name: str
    total_charge: float


TEXT_EXAMPLE = (
    "Patient ID: 123456, Patient Name: John Doe, Diagnosis Code: J20.9, Procedure Code: 99203, "
    "Total Charge: $500, Insurance Claim Amount: $350"
)
DICT_EXAMPLE = {
    "patient_name": "Johnson Smith",
    "diagnosis_code": "M54.5",
    "procedure_code": "99213",
    "total_charge": 150.0,
    "insurance_claim_amount": 120.0,
}


def bill(name: str, code: str, procedure: str, charge: float, claim: float) -> dict[str, object]:
    return {
        "patient_name": name,
        "diagnosis_code": code,
        "procedure_code": procedure,
        "total_charge": charge,
        "insurance_claim_amount": claim,
    }


# Written independently: similar shapes, shared codes, different people and amounts.
DISTINCT = [
    bill("Maria Garcia", "E11.9", "99214", 320.5, 250.0),
    bill("Liam Chen", "I10", "99204", 410.0, 300.0),
    bill("Ana Lopez", "E11.9", "99214", 300.0, 250.0),
    bill("Ana Lopes", "E11.65", "99215", 720.0, 610.0),
    bill("Siobhan O'Neill", "J45.909", "94010", 180.0, 144.0),
    bill("Kwame Mensah", "M54.5", "97110", 95.0, 76.0),
    bill("Yuki Tanaka", "J20.9", "99213", 150.0, 110.0),
    bill("John Smith", "J20.9", "99203", 350.0, 300.0),
    bill("Olga Petrova", "K21.9", "43235", 1450.0, 1160.0),
    bill("Ahmed Hassan", "N39.0", "81001", 42.5, 30.0),
]


def finder() -> NearDuplicates:
    return NearDuplicates(DEFAULT_NEAR_DUPLICATES, example_texts([TEXT_EXAMPLE, DICT_EXAMPLE]))


def keep(records: list[dict[str, object]]) -> tuple[list[int], list[int]]:
    """The indices kept and dropped, record after record, as the loop does it."""
    near = finder()
    kept, dropped = [], []
    for i, record in enumerate(records):
        text = record_text(record)
        if near.check(text) is None:
            near.add(text)
            kept.append(i)
        else:
            dropped.append(i)
    return kept, dropped


def test_records_written_independently_are_all_kept() -> None:
    kept, dropped = keep(DISTINCT)
    assert dropped == []
    assert kept == list(range(len(DISTINCT)))


def test_near_copies_of_records_and_examples_are_found() -> None:
    records = [
        *DISTINCT,
        bill("Maria Garcia", "E11.9", "99214", 320.0, 250.0),  # one amount changed
        bill("Johnson Smyth", "M54.5", "99213", 150.0, 120.0),  # the dict example, a typo
        bill("John Doe", "J20.9", "99203", 500.0, 350.0),  # the text example's values
        bill("Liam Chen", "I10", "99204", 410.0, 300.0),  # an exact repeat
    ]
    kept, dropped = keep(records)
    assert dropped == [10, 11, 12, 13]
    assert kept == list(range(10))
    near = finder()
    for record in DISTINCT:
        near.add(record_text(record))
    match = near.check(record_text(records[10]))
    assert match is not None and match.index == 0 and not match.example
    example = near.check(record_text(records[11]))
    assert example is not None and example.example and example.index == 1
    assert example.score >= DEFAULT_NEAR_DUPLICATES


def test_a_lower_threshold_is_stricter() -> None:
    near = NearDuplicates(0.6)
    near.add(record_text(DISTINCT[2]))  # Ana Lopez, E11.9, 99214, 300, 250
    assert near.check(record_text(DISTINCT[0])) is not None  # Maria Garcia, same codes
    assert finder().check(record_text(DISTINCT[0])) is None


@pytest.mark.parametrize("value", [0, -0.5, 1.5, "0.9", True])
def test_bad_threshold_is_named(value: object) -> None:
    with pytest.raises(SynthConfigError, match="near_duplicates must be the similarity"):
        make_spec(DictBill, 3, near_duplicates=value)  # type: ignore[arg-type]


def test_none_turns_it_off_and_only_a_given_threshold_changes_the_key() -> None:
    default = make_spec(DictBill, 3)
    off = make_spec(DictBill, 3, near_duplicates=None)
    assert default.near_duplicates == DEFAULT_NEAR_DUPLICATES and off.near_duplicates is None
    assert make_spec(DictBill, 3, near_duplicates=DEFAULT_NEAR_DUPLICATES).key() == default.key()
    assert len({default.key(), off.key(), make_spec(DictBill, 3, near_duplicates=0.8).key()}) == 3


def generated(n: int, seed: int = 11) -> tuple[list[dict[str, object]], set[int]]:
    """``n`` varied records, about 5% of them an earlier one with a word added."""
    fake = Faker()
    fake.seed_instance(seed)
    rng = random.Random(seed)
    records: list[dict[str, object]] = []
    copies: set[int] = set()
    for i in range(n):
        if records and rng.random() < 0.05:
            copy = dict(rng.choice(records))
            copy["notes"] = str(copy["notes"]).replace(" ", " really ", 1)
            records.append(copy)
            copies.add(i)
            continue
        records.append(
            {
                **bill(
                    fake.name(),
                    f"{fake.random_uppercase_letter()}{rng.randint(0, 99):02d}.{rng.randint(0, 9)}",
                    str(rng.randint(99201, 99499)),
                    round(rng.uniform(50, 5000), 2),
                    round(rng.uniform(0, 50), 2),
                ),
                "notes": fake.sentence(nb_words=10),
            }
        )
    return records, copies


def test_at_n_5000_every_planted_copy_and_nothing_else_is_dropped() -> None:
    records, copies = generated(5000)
    kept, dropped = keep(records)
    assert set(dropped) == copies
    assert len(kept) + len(dropped) == 5000
    report = diversity_report([records[i] for i in kept], dropped=len(dropped))
    assert report.n == len(kept) and report.near_duplicates_dropped == len(copies)
    assert report.fields["notes"].distinct == 1.0


def test_the_report_per_field() -> None:
    records = [
        {"name": f"person {i}", "plan": "basic" if i < 8 else "premium", "country": "NZ"}
        for i in range(10)
    ]
    report = diversity_report(records, dropped=2)
    assert report.n == 10 and report.near_duplicates_dropped == 2
    name, plan, country = (report.fields[f] for f in ("name", "plan", "country"))
    assert (name.distinct, name.entropy) == (1.0, 1.0)
    assert (country.distinct, country.entropy) == (0.1, 0.0)
    assert plan.distinct == 0.2 and 0 < plan.entropy < 0.5
    assert plan.most_common == [("basic", 8), ("premium", 2)]
    lines = report.lines()
    assert lines[0] == "diversity of 10 records: 2 near-duplicate(s) dropped, 0 close to an example"
    assert "  plan: 20% distinct, entropy 0.22; top: 'basic' x8, 'premium' x2" in lines
    assert report.to_dict()["fields"]["plan"]["most_common"] == [["basic", 8], ["premium", 2]]


def test_the_report_lists_records_close_to_an_example() -> None:
    records = [
        *DISTINCT[:3],
        bill("Johnson Smith", "M54.5", "99213", 160.0, 120.0),  # the dict example, nearly
    ]
    report = diversity_report(records, examples=example_texts([TEXT_EXAMPLE, DICT_EXAMPLE]))
    assert [(c.record, c.example) for c in report.close_to_examples] == [(3, 1)]
    assert report.close_to_examples[0].score >= CLOSE_TO_EXAMPLE


def test_low_variety_of_free_text_is_flagged_from_ten_records() -> None:
    names = ["Ann", "Bob", "Ann", "Ann", "Bob", "Ann", "Bob", "Ann", "Ann", "Eve"]
    records = [{"name": name, "code": "A1", "id": i} for i, name in enumerate(names)]
    report = diversity_report(records)
    assert low_variety_fields(report, ["name"]) == ["name"]
    assert low_variety_fields(report, ["id"]) == []
    assert low_variety_fields(diversity_report(records[:9]), ["name"]) == []
    message = variety_warning(report, ["name"], "Bill dataset")
    assert message is not None and "name (30% distinct)" in message and "10 records" in message
    assert variety_warning(diversity_report(records[:9]), ["name"], "Bill dataset") is None


def test_a_field_with_one_value_has_entropy_zero_not_minus_zero() -> None:
    report = diversity_report([{"kind": "a"}, {"kind": "a"}, {"kind": "a"}])
    assert str(report.fields["kind"].entropy) == "0.0"
    assert "entropy 0.00" in "\n".join(report.lines())
