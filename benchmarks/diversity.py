"""How long near-duplicate detection and the diversity report take at n = 5,000.

Run from the repository root (Faker makes the records; it is the ``faker`` extra)::

    PYTHONPATH=$PWD python benchmarks/diversity.py [--n 5000] [--copies 0.05]

Records are MedicalBilling-like texts written by Faker (names, codes, amounts, a sentence
of notes); a share of them (``--copies``) are near-copies of an earlier record with one
word changed, which the check must find. Each record is checked against every earlier kept
record and the three seed examples, as the generation loop does, then the report is built
over all of them. Prints the wall times (and the check's CPU time: on a busy machine the
wall time says more about the neighbours) and what was found.
"""

from __future__ import annotations

import argparse
import random
import time

from faker import Faker

from pytest_synthdata.diversity import (
    DEFAULT_NEAR_DUPLICATES,
    NearDuplicates,
    diversity_report,
    record_text,
)

EXAMPLES = [
    "Patient ID: 123456, Patient Name: John Doe, Diagnosis Code: J20.9, Procedure Code: 99203, "
    "Total Charge: $500, Insurance Claim Amount: $350",
    record_text(
        {
            "patient_name": "Johnson Smith",
            "diagnosis_code": "M54.5",
            "procedure_code": "99213",
            "total_charge": 150,
            "notes": "Follow-up visit for lower back pain.",
        }
    ),
]


def records(n: int, copies: float, seed: int) -> tuple[list[dict[str, object]], int]:
    fake = Faker()
    fake.seed_instance(seed)
    rng = random.Random(seed)
    out: list[dict[str, object]] = []
    planted = 0
    for _ in range(n):
        if out and rng.random() < copies:
            copy = dict(rng.choice(out))
            copy["notes"] = str(copy["notes"]).replace(" ", " very ", 1)
            out.append(copy)
            planted += 1
            continue
        out.append(
            {
                "patient_name": fake.name(),
                "diagnosis_code": f"{fake.random_uppercase_letter()}{rng.randint(0, 99):02d}."
                f"{rng.randint(0, 9)}",
                "procedure_code": str(rng.randint(99201, 99499)),
                "total_charge": round(rng.uniform(50, 5000), 2),
                "notes": fake.sentence(nb_words=10),
            }
        )
    return out, planted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--copies", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    data, planted = records(args.n, args.copies, args.seed)

    start, cpu = time.perf_counter(), time.process_time()
    finder = NearDuplicates(DEFAULT_NEAR_DUPLICATES, EXAMPLES)
    dropped = 0
    kept: list[dict[str, object]] = []
    for record in data:
        text = record_text(record)
        if finder.check(text) is not None:
            dropped += 1
            continue
        finder.add(text)
        kept.append(record)
    check_time, check_cpu = time.perf_counter() - start, time.process_time() - cpu

    start = time.perf_counter()
    report = diversity_report(kept, examples=EXAMPLES, dropped=dropped)
    report_time = time.perf_counter() - start

    print(f"n={args.n}, near-copies planted: {planted}, dropped: {dropped}")
    print(
        f"near-duplicate check of every record against all earlier ones: {check_time:.2f} s "
        f"({check_cpu:.2f} s CPU)"
    )
    print(f"diversity report over {len(kept)} records: {report_time:.2f} s")
    print("\n".join(report.lines()))


if __name__ == "__main__":
    main()
