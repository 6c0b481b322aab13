"""What every benchmark section shares: the workload (LangChain's documented MedicalBilling
example, its three seed texts, the subject and the extra instruction), the three tools run
on it and their names, what one run produced and how its records are counted.

``benchmarks/run.py`` is the entry point; the section modules next to it
(``ratelimit.py``, ``convergence.py``) import from here, never from it. Importing this
module puts ``tests/`` on ``sys.path`` so that the fake OpenAI server (``fakellm``) can be
started, but it does not import the server: the memory-measuring child processes must not
load it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The fake OpenAI server lives with the tests; it is imported only where it is started, so
# the memory-measuring child processes do not load it.
sys.path.insert(0, str(ROOT / "tests"))

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*LangChain.*")


# ---------------------------------------------------------------------------------------
# The workload: LangChain's documented MedicalBilling example
# ---------------------------------------------------------------------------------------


class MedicalBilling(BaseModel):
    patient_id: int
    patient_name: str
    diagnosis_code: str
    procedure_code: str
    total_charge: float
    insurance_claim_amount: float


SUBJECT = "medical_billing"
EXTRA = "the name must be chosen at random. Make it something you wouldn't normally choose."
LANGCHAIN_EXAMPLES = [
    {
        "example": """Patient ID: 123456, Patient Name: John Doe, Diagnosis Code:
        J20.9, Procedure Code: 99203, Total Charge: $500, Insurance Claim Amount: $350"""
    },
    {
        "example": """Patient ID: 789012, Patient Name: Johnson Smith, Diagnosis
        Code: M54.5, Procedure Code: 99213, Total Charge: $150, Insurance Claim Amount: $120"""
    },
    {
        "example": """Patient ID: 345678, Patient Name: Emily Stone, Diagnosis Code:
        E11.9, Procedure Code: 99214, Total Charge: $300, Insurance Claim Amount: $250"""
    },
]
# pytest-synthdata gets the very same three seed texts.
EXAMPLES = [item["example"] for item in LANGCHAIN_EXAMPLES]

API_KEY = "sk-benchmark-not-a-real-key"
BILLS = TypeAdapter(list[MedicalBilling])

LC_SYNC = "LangChain generate (sync)"
LC_ASYNC = "LangChain agenerate (async)"
OURS = "pytest-synthdata generate"
TOOLS = (LC_SYNC, LC_ASYNC, OURS)


def langchain_generator(base_url: str) -> Any:
    """The generator exactly as LangChain's documentation builds it (fresh examples each
    time: ``generate`` rewrites the few-shot list while it runs)."""
    from langchain_core.prompts import FewShotPromptTemplate
    from langchain_experimental.tabular_synthetic_data.openai import (
        OPENAI_TEMPLATE,
        create_openai_data_generator,
    )
    from langchain_experimental.tabular_synthetic_data.prompts import (
        SYNTHETIC_FEW_SHOT_PREFIX,
        SYNTHETIC_FEW_SHOT_SUFFIX,
    )
    from langchain_openai import ChatOpenAI

    prompt_template = FewShotPromptTemplate(
        prefix=SYNTHETIC_FEW_SHOT_PREFIX,
        examples=copy.deepcopy(LANGCHAIN_EXAMPLES),
        suffix=SYNTHETIC_FEW_SHOT_SUFFIX,
        input_variables=["subject", "extra"],
        example_prompt=OPENAI_TEMPLATE,
    )
    return create_openai_data_generator(
        output_schema=MedicalBilling,
        llm=ChatOpenAI(base_url=base_url, api_key=API_KEY, temperature=1),
        prompt=prompt_template,
    )


@dataclass
class Attempt:
    records: list[Any]
    error: str | None = None
    left_behind: int = 0  # records parsed before the failure, kept only inside the generator
    message: str = ""


def run_langchain_sync(base_url: str, n: int) -> Attempt:
    generator = langchain_generator(base_url)
    try:
        return Attempt(list(generator.generate(subject=SUBJECT, extra=EXTRA, runs=n)))
    except Exception as exc:
        return Attempt([], type(exc).__name__, len(generator.results), str(exc)[:300])


_LOOP: asyncio.AbstractEventLoop | None = None


def in_one_loop(coro: Any) -> Any:
    """Run ``coro`` in one event loop kept for the whole process, as in a notebook:
    ``langchain_openai`` shares one HTTP client between its models, and that client cannot
    move from one event loop to the next (a second ``asyncio.run`` fails with "Event loop is
    closed"). Tasks left running by a failed ``gather`` are cancelled afterwards, so they
    cannot spill into the next measurement."""
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
    try:
        return _LOOP.run_until_complete(coro)
    finally:
        pending = [task for task in asyncio.all_tasks(_LOOP) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            _LOOP.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def run_langchain_async(base_url: str, n: int) -> Attempt:
    generator = langchain_generator(base_url)
    try:
        return Attempt(list(in_one_loop(generator.agenerate(subject=SUBJECT, extra=EXTRA, runs=n))))
    except Exception as exc:
        return Attempt([], type(exc).__name__, len(generator.results), str(exc)[:300])


def run_ours(base_url: str, n: int, **options: Any) -> Attempt:
    from pytest_synthdata import generate

    try:
        return Attempt(
            list(
                generate(
                    MedicalBilling, n, examples=EXAMPLES, subject=SUBJECT, extra=EXTRA, **options
                )
            )
        )
    except Exception as exc:
        return Attempt([], type(exc).__name__, 0, str(exc)[:300])


RUNNERS: dict[str, Callable[..., Attempt]] = {
    LC_SYNC: run_langchain_sync,
    LC_ASYNC: run_langchain_async,
    OURS: run_ours,
}


# ---------------------------------------------------------------------------------------
# What a run produced, and the words the report uses
# ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    tool: str
    n: int
    scale: float
    wall: float
    requests: int
    answered: int
    prompt_tokens: int
    completion_tokens: int
    peak: int
    valid: int
    distinct: int
    error: str | None
    left_behind: int
    message: str
    http_errors: int
    broken: int
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def per_record(self, tokens: int) -> float:
        return tokens / self.n

    @property
    def total_per_record(self) -> float:
        return (self.prompt_tokens + self.completion_tokens) / self.n


def count_valid(records: Sequence[Any]) -> tuple[int, int]:
    valid = []
    for record in records:
        try:
            data = record.model_dump() if isinstance(record, BaseModel) else record
            valid.append(MedicalBilling.model_validate(data))
        except Exception:
            continue
    distinct = {json.dumps(r.model_dump(), sort_keys=True) for r in valid}
    return len(valid), len(distinct)


def say(text: str = "") -> None:
    print(text, flush=True)


def status(ok: bool) -> str:
    return "**met**" if ok else "**not met**"
