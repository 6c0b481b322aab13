"""``synthdata generate --batch`` with fields code chooses (``--sample``) and coverage axes
(``--cover``): the records of a batch run are those of the same run sent as ordinary
requests, slot for slot (subprocesses against the loopback batch server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from command import records, synthdata
from fakellm import FakeLLM

MODELS = '''
from pydantic import BaseModel


class Claim(BaseModel):
    """A medical claim."""

    claim_id: int
    patient_name: str
    amount: float
    diagnosis: str
'''

SLOTS = (
    "--sample", "claim_id=sequence:5000",
    "--sample", "diagnosis=choice:J20.9,M54.5,E11.9",
    "--cover", "payer=medicare,private,self-pay",
    "--cover", "age=child,adult",
)  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "claims.py").write_text(MODELS)
    return tmp_path


def test_a_batch_run_with_sampled_fields_and_axes_gives_the_sync_runs_records(
    llm: FakeLLM, project: Path
) -> None:
    common = ("generate", "claims:Claim", "-n", "18", "--seed", "4", "--batch-size", "4", *SLOTS)
    batch = synthdata(
        llm, project, *common, "--batch", "--poll-interval", "0.05", "-o", "batch.jsonl",
        "--cache-dir", "batch-cache",
    )  # fmt: skip
    assert batch.code == 0, batch
    assert llm.batches.creations >= 1
    assert not any(r.path.endswith("/chat/completions") for r in llm.requests)
    rows = records((project / "batch.jsonl").read_text())
    assert [row["claim_id"] for row in rows] == list(range(5000, 5018))
    assert {row["diagnosis"] for row in rows} <= {"J20.9", "M54.5", "E11.9"}
    # each batch line asked for its slots' combinations, as an ordinary request does
    asked = [
        json.loads(line)["body"]["messages"][-1]["content"]
        for stored in llm.batches.files.values()
        if stored.purpose == "batch"
        for line in stored.data.decode().splitlines()
    ]
    for value in ("medicare", "private", "self-pay", "child", "adult"):
        assert any(value in text for text in asked)

    llm.reset()
    sync = synthdata(llm, project, *common, "-o", "sync.jsonl", "--cache-dir", "sync-cache")
    assert sync.code == 0, sync
    assert llm.batches.creations == 0
    assert records((project / "sync.jsonl").read_text()) == rows
    assert len({json.dumps(r, sort_keys=True) for r in rows}) == 18
