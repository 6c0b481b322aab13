"""Bad input at every entry point: each case, where it is given, and the message expected.

Entry points: the library call, the marker, the factory, a conftest ``synth_fixture``, and
the ini/command-line options. Every message names the argument and the fix; no request is
ever made for bad input.
"""

from __future__ import annotations

import fnmatch
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fakellm import FakeLLM
from pydantic import BaseModel

from pytest_synthdata import SynthConfigError, generate

MODELS = """
import datetime as dt
from typing import Literal
from pydantic import BaseModel


class Bill(BaseModel):
    bill_id: int
    amount: float
    paid: bool


class Bag(BaseModel):
    data: dict[str, int]
"""


class Bill(BaseModel):
    bill_id: int
    amount: float
    paid: bool


class Bag(BaseModel):
    data: dict[str, int]


# case -> (arguments after the model, as Python source; the expected message, fnmatch-style)
CASES: dict[str, tuple[str, str]] = {
    "not_a_model": ("n=2", "*must be a pydantic BaseModel subclass*got <class 'dict'>*"),
    "unsupported_field": ("n=2", "*Bag.data: dict fields cannot be expressed*list of key/value*"),
    "n_zero": ("n=0", "*n must be a positive integer*got 0*"),
    "n_negative": ("n=-3", "*n must be a positive integer*got -3*"),
    "n_huge": ("n=100000", "*n=100000 is above the limit of 5000*max_n=100000*"),
    "batch_vs_tokens": (
        "n=5, batch_size=100, max_tokens=500",
        "*batch_size=100 needs about * output tokens*max_tokens=500; lower batch_size*",
    ),
    "unique_impossible": (
        "n=3, unique='paid'",
        "*unique='paid' asks for 3 different values*only 2 possible value(s)*",
    ),
    "unknown_keyword": (
        "n=2, exemples=[]",
        "*unknown keyword 'exemples' (did you mean 'examples'?)*",
    ),
    "invalid_example": (
        "n=2, examples=[{'bill_id': 'x'}]",
        "*examples[[]0[]] does not validate against Bill; fix the example or the model:*",
    ),
    "missing_file": (
        "n=2, examples='nope/bills.json'",
        "*examples file not found*nope*bills.json*",
    ),
    "broken_file": ("n=2, examples='broken.jsonl'", "*broken.jsonl, line 2: not valid JSON*"),
    "negative_concurrency": (
        "n=2, concurrency=-1",
        "*concurrency must be an integer >= 1, got -1*",
    ),
    "negative_batch": ("n=2, batch_size=-4", "*batch_size must be an integer >= 1, got -4*"),
    "bad_mode": (
        "n=2, structured='xml'",
        "*structured must be one of auto, json_schema*got 'xml'*",
    ),
}


def _model(case: str) -> str:
    return {"not_a_model": "dict", "unsupported_field": "Bag"}.get(case, "Bill")


def _write_data(root: Path) -> None:
    (root / "broken.jsonl").write_text('{"bill_id": 1, "amount": 2, "paid": true}\n{"bill_id":\n')


def test_library_entry_point(
    llm_env: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"Bill": Bill, "Bag": Bag, "dict": dict}
    for case, (args, expected) in CASES.items():
        call = f"generate({_model(case)}, {args})"
        if case == "missing_file" or case == "broken_file":
            continue  # the library takes lists; files are a pytest convenience
        with pytest.raises(SynthConfigError) as info:
            eval(call, {"generate": generate, **namespace})
        assert fnmatch.fnmatchcase(str(info.value), expected), (case, str(info.value))
    assert llm_env.request_count == 0


def _run(pytester: pytest.Pytester, body: str, conftest: str = "") -> pytest.RunResult:
    _write_data(pytester.path)
    pytester.makeconftest(MODELS + textwrap.dedent(conftest))
    pytester.makepyfile(test_cases=MODELS + textwrap.dedent(body))
    return pytester.runpytest("-p", "no:cacheprovider")


def _check(result: pytest.RunResult, expected_for: dict[str, str]) -> None:
    text = result.stdout.str()
    assert "Traceback" not in text
    for test, expected in expected_for.items():
        lines = [line for line in text.splitlines() if line.startswith("pytest-synthdata:")]
        mine = [line for line in lines if f"::{test}" in line or f"'{test}'" in line]
        assert mine, (test, text[-3000:])
        assert fnmatch.fnmatchcase(mine[0], expected), (test, mine[0], expected)


def test_marker_entry_point(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    body = "import pytest\n" + "".join(
        f"\n@pytest.mark.synth({_model(case)}, {args})\ndef test_{case}(synth_data):\n    pass\n"
        for case, (args, _) in CASES.items()
    )
    result = _run(pytester, body)
    result.assert_outcomes(errors=len(CASES))
    _check(result, {f"test_{case}": expected for case, (_, expected) in CASES.items()})
    assert llm_env.request_count == 0


def test_factory_entry_point(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    body = "".join(
        f"\ndef test_{case}(synth_factory):\n    synth_factory({_model(case)}, {args})\n"
        for case, (args, _) in CASES.items()
    )
    result = _run(pytester, body)
    result.assert_outcomes(failed=len(CASES))
    _check(result, {f"test_{case}": expected for case, (_, expected) in CASES.items()})
    assert llm_env.request_count == 0


def test_conftest_fixture_entry_point(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    conftest = "from pytest_synthdata import synth_fixture\n" + "".join(
        f"fx_{case} = synth_fixture({_model(case)}, {args})\n" for case, (args, _) in CASES.items()
    )
    body = "".join(f"\ndef test_{case}(fx_{case}):\n    pass\n" for case in CASES)
    result = _run(pytester, body, conftest)
    result.assert_outcomes(errors=len(CASES))
    _check(result, {f"fx_{case}": expected for case, (_, expected) in CASES.items()})
    assert llm_env.request_count == 0


@pytest.mark.parametrize(
    ("args", "ini", "expected"),
    [
        (["--synth-concurrency=-1"], "", "*--synth-concurrency: concurrency must be*>= 1*"),
        ([], "synth_concurrency = -1", "*ini key synth_concurrency: concurrency must be*"),
        (["--synth-batch-size=0"], "", "*--synth-batch-size: batch_size must be*>= 1*"),
        ([], "synth_batch_size = many", "*ini key synth_batch_size: expected an integer*"),
        (["--synth-max-n=0"], "", "*--synth-max-n: max_n must be an integer >= 1*"),
        (["--synth-structured=xml"], "", "*--synth-structured: structured must be one of*"),
        ([], "synth_record_mode = sometimes", "*synth_record_mode: record mode must be one of*"),
        ([], "synth_no_cache = perhaps", "*"),
        (["--synth-temperature=9"], "", "*--synth-temperature: temperature must be a number*"),
        (["--synth-base-url=ftp://x"], "", "*base_url must start with http:// or https://*"),
    ],
)
def test_option_entry_points(
    pytester: pytest.Pytester, args: list[str], ini: str, expected: str
) -> None:
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "Traceback" not in result.stderr.str()
    result.stderr.fnmatch_lines([expected])


def test_invalid_record_mode_flag_lists_the_choices(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--synth-record-mode=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--synth-record-mode*invalid choice*'sometimes'*none*once*"])
