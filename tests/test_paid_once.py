"""One paid generation per request: processes that share the cache and need the same
request pay for it once (a lock per request key), the others read the cached answer."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fakellm import FakeLLM

SCRIPT = """
import sys
from pydantic import BaseModel
from pytest_synthdata import generate

class Ticket(BaseModel):
    ticket_id: int
    subject: str

tickets = generate(Ticket, 12, batch_size=4, cache_dir=sys.argv[1], seed=5)
print(len(tickets), tickets.usage.requests, tickets.usage.cache_hits)
"""


def test_two_processes_pay_for_each_request_once(llm_env: FakeLLM, tmp_path: Path) -> None:
    llm_env.response_delay = 0.5  # both processes are asking at the same time
    script = tmp_path / "make.py"
    script.write_text(textwrap.dedent(SCRIPT))
    cache = tmp_path / "cache"
    runs = [
        subprocess.Popen(
            [sys.executable, str(script), str(cache)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120)[0].split() for run in runs]
    assert all(run.returncode == 0 for run in runs)
    assert [o[0] for o in outputs] == ["12", "12"]
    # three batches, each asked of the endpoint once; the other process read them back
    assert llm_env.request_count == 3


def test_xdist_workers_pay_for_identical_specs_once(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    llm_env.response_delay = 0.3
    pytester.makeconftest(
        """
        from pydantic import BaseModel

        class Customer(BaseModel):
            customer_id: int
            full_name: str

        class Order(BaseModel):
            order_id: int
            total: float

        class Product(BaseModel):
            sku: str
            price: float

        SPECS = {"a": Customer, "b": Order, "c": Product}
        """
    )
    tests = "\n".join(
        f"@pytest.mark.synth(conftest.SPECS[{'abc'[i % 3]!r}], n=4)\n"
        f"def test_{i}(synth_data):\n    assert len(synth_data) == 4\n"
        for i in range(40)
    )
    pytester.makepyfile(test_many="import pytest\nimport conftest\n\n" + tests)
    result = pytester.runpytest_subprocess("-n", "4")
    result.assert_outcomes(passed=40)
    # 40 cassettes, 3 distinct requests: each paid for once, whatever worker asked first
    assert llm_env.request_count == 3
    assert len(list(pytester.path.rglob("*.synth.yaml"))) == 40
