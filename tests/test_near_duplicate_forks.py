"""A batch's near-duplicate finder reads the dataset's records where they are instead of
copying them: it finds the same matches, with the same scores and the same variety rules, as
a finder holding a copy of every record; the dataset's finder takes no record while a fork of
it judges."""

from __future__ import annotations

import random

import pytest

from pytest_synthdata.diversity import NearDuplicates, record_text

NAMES = ["Ann Lee", "Bo Diaz", "Cy Ng", "Di Park", "Ed Stone", "Flo Ray", "Gus Moe"]
CODES = ["J20.9", "M54.5", "E11.9", "I10", "K21.0"]


def record(rng: random.Random) -> dict[str, object]:
    return {
        "patient_name": rng.choice(NAMES) + rng.choice(["", " Jr", " II"]),
        "diagnosis_code": rng.choice(CODES),
        "total_charge": rng.choice([100, 150.5, 200, 500]),
    }


def finder() -> NearDuplicates:
    return NearDuplicates(
        0.9,
        examples=["Ann Lee | J20.9 | 500", "Zed Quill | M54.5 | 150"],
        copies={"patient_name": {"zed quill": 1}},
        repeats={"patient_name": 3, "diagnosis_code": 40},
    )


def copy_of(dataset: NearDuplicates) -> NearDuplicates:
    """A finder holding a copy of every record of ``dataset`` (what a fork used to be)."""
    copied = finder()
    copied.texts = list(dataset.texts)
    copied.counts = {name: counts.copy() for name, counts in dataset.counts.items()}
    return copied


@pytest.mark.parametrize("seed", range(20))
def test_a_fork_judges_as_a_copy_of_every_record_would(seed: int) -> None:
    rng = random.Random(seed)
    dataset = finder()
    for _ in range(rng.randint(0, 60)):  # the records kept before this wave
        data = record(rng)
        dataset.add(record_text(data), data)
    for _ in range(3):  # each batch of the wave judges and keeps its own records
        fork, copied = dataset.fork(), copy_of(dataset)
        for _ in range(20):
            data = record(rng)
            text = record_text(data)
            rules = rng.random() < 0.7
            assert fork.check(text, data, rules=rules) == copied.check(text, data, rules=rules)
            if fork.check(text, data, rules=True) is None:
                fork.add(text, data)
                copied.add(text, data)


def test_the_dataset_finder_takes_no_record_while_a_fork_judges() -> None:
    dataset = finder()
    dataset.add("ann lee j20 9 500", {"patient_name": "Ann Lee"})
    fork = dataset.fork()
    assert fork.check("ann lee j20 9 500") is not None  # the dataset's record, read in place
    dataset.add("bo diaz m54 5 150", {"patient_name": "Bo Diaz"})
    with pytest.raises(RuntimeError, match="while a fork of it judged"):
        fork.check("bo diaz m54 5 150")
