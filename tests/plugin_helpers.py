"""What the plugin's tests share: the models every inner test file defines, and reading what
its pytester runs wrote, sent and printed."""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

import pytest
from fakellm import FakeLLM

# The inner test files define their models here, so they need nothing on sys.path.
HEADER = '''
import json
import pathlib

import pytest
from pydantic import BaseModel


class MedicalBilling(BaseModel):
    patient_id: int
    patient_name: str
    diagnosis_code: str
    procedure_code: str
    total_charge: float
    insurance_claim_amount: float


class Customer(BaseModel):
    customer_id: int
    full_name: str
    email: str


OUT = pathlib.Path(__file__).parent / "out"


def dump(tag, records):
    """Write the records the test received, for the outer test to inspect."""
    OUT.mkdir(exist_ok=True)
    rows = [record.model_dump(mode="json") for record in records]
    (OUT / f"{tag}.json").write_text(json.dumps(rows))
'''

EXAMPLE = {
    "patient_id": 345678,
    "patient_name": "Emily Stone",
    "diagnosis_code": "E11.9",
    "procedure_code": "99214",
    "total_charge": 300,
    "insurance_claim_amount": 250,
}


def source(body: str) -> str:
    return HEADER + textwrap.dedent(body)


def written(pytester: pytest.Pytester, tag: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((pytester.path / "out" / f"{tag}.json").read_text())
    return rows


def prompt(request: Any) -> str:
    text: str = request.body["messages"][-1]["content"]
    return text


def response_records(request: Any) -> list[dict[str, Any]]:
    content = request.response["choices"][0]["message"]["content"]
    rows: list[dict[str, Any]] = json.loads(content)["records"]
    return rows


def assert_one_generation(server: FakeLLM) -> None:
    """The server's requests are the batches of one single generation, each asked once."""
    requests = server.chat_requests
    assert requests, "no request reached the server"
    if len(requests) == 1:
        assert "Make the records differ from one another." in prompt(requests[0])
        return
    batches = sorted(
        int(m.group(1))
        for m in (re.search(r"This is batch (\d+) of (\d+)", prompt(r)) for r in requests)
        if m is not None and int(m.group(2)) == len(requests)
    )
    assert batches == list(range(1, len(requests) + 1))


def literal(text: str) -> str:
    """``text`` as an fnmatch pattern matching only itself."""
    return re.sub(r"([\[\]*?])", r"[\1]", text)


def output(result: pytest.RunResult) -> str:
    return result.stdout.str() + "\n" + result.stderr.str()


def assert_no_traceback_noise(result: pytest.RunResult) -> None:
    text = output(result)
    assert "Traceback" not in text
    assert "traceback entries are hidden" not in text
    assert "During handling of the above exception" not in text
    assert "pytest_synthdata/" not in text
    assert "pytest_synthdata\\" not in text
    assert "@pytest.mark.synth: @pytest.mark.synth" not in text
    assert "synth_factory: synth_factory" not in text


def failure_line(result: pytest.RunResult, nodeid: str) -> str:
    """The single report line of the plugin's message for ``nodeid``."""
    lines = [
        line for line in result.stdout.lines if line.startswith(f"pytest-synthdata: {nodeid}:")
    ]
    assert len(lines) == 1, (nodeid, result.stdout.str())
    assert lines[0].count(nodeid) == 1
    return lines[0]
