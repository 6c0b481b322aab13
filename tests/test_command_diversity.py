"""``synthdata generate --sample FIELD=SPEC --cover AXIS=V1,V2``: subprocess runs of the
command against the loopback server; the final lines carry the diversity report, and the
dry run's estimate counts only what the model writes."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from command import records, synthdata
from fakellm import FakeLLM

BILLING = """
from pydantic import BaseModel, Field


class Bill(BaseModel):
    patient_id: int = Field(ge=100000, le=999999)
    patient_name: str
    diagnosis_code: str
    procedure_code: str
    total_charge: float = Field(gt=0)
    insurance_claim_amount: float = Field(ge=0)
"""

SAMPLED = (
    *("--sample", "patient_id=sequence:100000"),
    *("--sample", "diagnosis_code=choice:J20.9,M54.5,E11.9"),
    *("--sample", "total_charge=uniform:50,5000"),
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "billing.py").write_text(BILLING)
    return tmp_path


def test_sample_and_cover_flags_shape_the_records_and_the_report_ends_the_run(
    llm: FakeLLM, project: Path
) -> None:
    run = synthdata(
        llm,
        project,
        *("generate", "billing:Bill", "-n", "12", "--seed", "4", "-o", "bills.jsonl"),
        *SAMPLED,
        *("--sample", "procedure_code=values:99213,99214,99215,99203,99204,99205"),
        *("--cover", "specialty=cardiology,oncology"),
        *("--cover", "payer=medicare,private,self-pay"),
    )
    assert run.code != 0  # values: 6 items for 12 records is an error before any request
    assert "procedure_code" in run.err and llm.request_count == 0
    run = synthdata(
        llm,
        project,
        *("generate", "billing:Bill", "-n", "12", "--seed", "4", "-o", "bills.jsonl"),
        *SAMPLED,
        *("--cover", "specialty=cardiology,oncology"),
        *("--cover", "payer=medicare,private,self-pay"),
    )
    assert run.code == 0, run
    bills = records((project / "bills.jsonl").read_text())
    assert [b["patient_id"] for b in bills] == list(range(100000, 100012))
    assert {b["diagnosis_code"] for b in bills} <= {"J20.9", "M54.5", "E11.9"}
    assert all(50 <= b["total_charge"] <= 5000 for b in bills)
    stated = Counter()
    for request in llm.chat_requests:
        prompt = request.body["messages"][-1]["content"]
        stated.update(re.findall(r"attributes specialty: (\w+), payer: ([\w-]+)\.", prompt))
    assert len(stated) == 6 and set(stated.values()) == {2}
    lines = run.err.strip().splitlines()
    report = [i for i, line in enumerate(lines) if line.startswith("diversity of 12 records")]
    assert report, run
    assert any("patient_id: 100% distinct, entropy 1.00" in line for line in lines[report[0] :])
    assert lines[-1].startswith("synthdata: 12 records -> bills.jsonl;")  # the last line


@pytest.mark.parametrize(
    ("flag", "says"),
    [
        ("--sample=patient_id=sequence", "patient_id"),  # starts at 1: below ge=100000
        ("--sample=patient_id=gaussian:1,2", "unknown sampler"),
        ("--sample=patient_id", "FIELD=SPEC"),
        ("--sample=patient_id=uniform:1", "uniform takes LOW,HIGH"),
        ("--sample=patient_id=uniform:1,5", "patient_id"),  # below the field's bound
        ("--cover=payer", "AXIS=V1,V2"),
        ("--cover=patient_name=a,b", "is a field of Bill"),
        ("--near-duplicates=lots", "give a similarity such as 0.9, or off"),
        ("--near-duplicates=2", "near_duplicates must be the similarity"),
    ],
)
def test_bad_flags_are_clear_errors_before_any_request(
    llm: FakeLLM, project: Path, flag: str, says: str
) -> None:
    run = synthdata(llm, project, "generate", "billing:Bill", "-n", "4", flag, "--dry-run")
    assert run.code != 0, run
    assert says in run.err, run
    assert llm.request_count == 0


def test_the_dry_run_counts_only_what_the_model_writes(llm: FakeLLM, project: Path) -> None:
    def estimate(*flags: str) -> int:
        run = synthdata(llm, project, "generate", "billing:Bill", "-n", "40", "--dry-run", *flags)
        assert run.code == 0, run
        found = re.search(r"estimated tokens: \d+ prompt \+ (\d+) completion", run.out)
        assert found is not None, run
        return int(found.group(1))

    whole = estimate()
    sampled = estimate(*SAMPLED)
    assert sampled < 0.75 * whole
    assert llm.request_count == 0


def test_sample_help_documents_the_spec_syntax(llm: FakeLLM, project: Path) -> None:
    run = synthdata(llm, project, "generate", "--help")
    assert run.code == 0
    text = " ".join(run.out.split())
    for syntax in ("sequence:START[,STEP]", "choice:A,B,C", "uniform:LOW,HIGH", "values:A,B,C"):
        assert syntax in text
    assert "faker:PROVIDER[@LOCALE]" in text and "--cover AXIS=V1,V2" in text
