"""Data worth testing with, on a real small model: SmolLM2-135M behind llama.cpp's
OpenAI-compatible server (the real-model tier's, prepared by ``.ci/setup-real-llm``).

Run from the repository root; it starts the server itself::

    PYTHONPATH=$PWD python benchmarks/diversity_real.py [--seeds 0 1 2] [--n 40]

For each seed it generates MedicalBilling records (three examples) with default settings,
once with no controls and once with ``sample=`` for ``patient_id``, ``diagnosis_code`` and
``total_charge`` and a 2-axis ``cover=``; then ``unique="ticket_id"`` at n=12 with a
``sequence`` sampler. It prints, per run: records returned, requests, near-duplicates
dropped, records within the near-duplicate threshold of another record or an example, the
mean share of distinct values over the fields the model writes, and the share of records
that reuse an example's id or name. Figures go to benchmarks/RESULTS.md by hand.

LangChain's pipeline, measured the same way on the same server (started by hand, e.g.
``python -m llama_cpp.server --model ... --port 8011 --n_ctx 4096``), from a virtual
environment with ``benchmarks/requirements.txt`` installed::

    PYTHONPATH=$PWD python benchmarks/diversity_real.py --langchain http://127.0.0.1:8011/v1
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import openai  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402
from test_real_llm import LlamaServer  # noqa: E402

from pytest_synthdata import generate, samplers  # noqa: E402
from pytest_synthdata.diversity import (  # noqa: E402
    DEFAULT_NEAR_DUPLICATES,
    NearDuplicates,
    example_texts,
    record_text,
)

EXAMPLES: list[dict[str, Any]] = [
    {
        "patient_id": 123456,
        "patient_name": "John Doe",
        "diagnosis_code": "J20.9",
        "procedure_code": "99203",
        "total_charge": 500,
        "insurance_claim_amount": 350,
    },
    {
        "patient_id": 234567,
        "patient_name": "Maria Lopez",
        "diagnosis_code": "M54.5",
        "procedure_code": "97110",
        "total_charge": 1200,
        "insurance_claim_amount": 900,
    },
    {
        "patient_id": 345678,
        "patient_name": "Emily Stone",
        "diagnosis_code": "E11.9",
        "procedure_code": "99214",
        "total_charge": 300,
        "insurance_claim_amount": 250,
    },
]


class MedicalBilling(BaseModel):
    patient_id: int
    patient_name: str
    diagnosis_code: str
    procedure_code: str
    total_charge: float
    insurance_claim_amount: float


class Ticket(BaseModel):
    ticket_id: int = Field(ge=1)
    title: str
    body: str


SAMPLE = {
    "patient_id": samplers.sequence(start=100000),
    "diagnosis_code": samplers.choice(["J20.9", "M54.5", "E11.9", "I10", "K21.9"]),
    "total_charge": samplers.uniform(50, 5000),
}
COVER = {"specialty": ["cardiology", "oncology", "pediatrics"], "payer": ["medicare", "private"]}


def measure(
    records: list[BaseModel], written: list[str], examples: list[Any] | None = None
) -> dict[str, float]:
    examples = EXAMPLES if examples is None else examples
    data = [r.model_dump(mode="json") for r in records]
    finder = NearDuplicates(DEFAULT_NEAR_DUPLICATES, example_texts(examples, written))
    near = 0
    for item in data:
        text = record_text(item, written)
        near += finder.check(text) is not None
        finder.add(text)
    distinct = [len({str(d[f]) for d in data}) / len(data) for f in written]
    ids = {e["patient_id"] for e in examples}
    names = {e["patient_name"] for e in examples}
    reused = sum(d["patient_id"] in ids or d["patient_name"] in names for d in data)
    return {
        "near": near,
        "distinct": round(sum(distinct) / len(distinct), 3),
        "reused": reused,
        **{f"distinct {f}": round(share, 3) for f, share in zip(written, distinct, strict=True)},
    }


def run(label: str, make: Any, written: list[str]) -> None:
    start = time.monotonic()
    try:
        records = make()
    except Exception as exc:  # a miss is a figure too
        text = " / ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"{label}: FAILED after {time.monotonic() - start:.0f} s: {text[:1500]}")
        return
    usage = records.usage
    m = measure(records, written) if written else {}
    print(
        f"{label}: {len(records)} records, {usage.requests} requests, "
        f"{usage.dropped_near_duplicate} near-duplicates dropped, "
        f"{usage.dropped_invalid} invalid; {m}; {time.monotonic() - start:.0f} s",
        flush=True,
    )


def langchain(base_url: str, n: int) -> None:
    """LangChain's documented pipeline (benchmarks/common.py) on the same server: its three
    seed texts, one record per call; measured like ours (the names and ids of its examples)."""
    from common import LANGCHAIN_EXAMPLES, run_langchain_sync

    start = time.monotonic()
    attempt = run_langchain_sync(base_url, n)
    seeds = [
        {"patient_id": int(m["id"]), "patient_name": m["name"].strip()}
        for item in LANGCHAIN_EXAMPLES
        if (
            m := re.search(
                r"Patient ID: (?P<id>\d+), Patient Name: (?P<name>[^,]+),", item["example"]
            )
        )
    ]
    everything = list(MedicalBilling.model_fields)
    records = [MedicalBilling.model_validate(r.model_dump()) for r in attempt.records]
    m = measure(records, everything, seeds) if records else {}
    print(
        f"LangChain sync: {len(records)} records, error {attempt.error} {attempt.message[:200]}; "
        f"{m}; {time.monotonic() - start:.0f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument(
        "--runs",
        nargs="+",
        choices=("plain", "controls", "tickets"),
        default=["plain", "controls", "tickets"],
        help="which runs to make per seed: no controls, sample+cover, unique ticket_id",
    )
    parser.add_argument(
        "--langchain",
        metavar="BASE_URL",
        help="only run LangChain's pipeline against a server already running at BASE_URL "
        "(from a venv with benchmarks/requirements.txt installed)",
    )
    args = parser.parse_args()
    if args.langchain:
        langchain(args.langchain, args.n)
        return
    server = LlamaServer().start()
    try:
        client = openai.OpenAI(base_url=server.url, api_key="sk-local-not-checked", timeout=600)
        common: dict[str, Any] = {"client": client}  # default settings, 60 s deadline
        everything = list(MedicalBilling.model_fields)
        model_written = [f for f in everything if f not in SAMPLE]
        runs: dict[str, tuple[str, Any, list[str]]] = {
            "plain": ("no controls", {}, everything),
            "controls": ("sample+cover", {"sample": SAMPLE, "cover": COVER}, model_written),
        }
        for seed in args.seeds:
            for key in ("plain", "controls"):
                if key not in args.runs:
                    continue
                label, controls, written = runs[key]
                run(
                    f"seed {seed} {label}",
                    lambda seed=seed, controls=controls: generate(
                        MedicalBilling, args.n, examples=EXAMPLES, seed=seed, **controls, **common
                    ),
                    written,
                )
            if "tickets" in args.runs:
                run(
                    f"seed {seed} unique ticket_id n=12",
                    lambda seed=seed: generate(
                        Ticket,
                        12,
                        seed=seed,
                        unique="ticket_id",
                        sample={"ticket_id": samplers.sequence()},
                        **common,
                    ),
                    [],
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
