"""Bad input at every entry point: each case, where it is given, and the message expected.

Entry points: the library call, the marker, the factory, a conftest ``synth_fixture``, and
the ini/command-line options and environment. Every message names the input and the fix,
and comes before any request: the loopback server must receive none.
"""

from __future__ import annotations

import fnmatch
import json
import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fakellm import FakeLLM

from pytest_synthdata import SynthConfigError, SynthDataWarning, generate
from pytest_synthdata.spec import EXAMPLES_BUDGET

MODELS = """
import datetime as dt
from collections.abc import Callable
from typing import Literal
from pydantic import BaseModel, Field


class Bill(BaseModel):
    bill_id: int
    amount: float
    paid: bool


class Bag(BaseModel):
    data: dict[str, int]


class Fn(BaseModel):
    compute: Callable[[int], int]


class Empty(BaseModel):
    pass


class Flags(BaseModel):
    urgent: bool


class Slot(BaseModel):
    day: Literal["mon", "tue"]
    hour: int = Field(ge=9, le=11)
    open: bool | None
"""

MODEL_CLASSES: dict[str, Any] = {}
# the same classes, for the library calls (evaluated as in the test files, not as strings)
exec(compile(MODELS, "<models>", "exec", dont_inherit=True), MODEL_CLASSES)
Bill = MODEL_CLASSES["Bill"]


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
    "unique_not_a_name": (
        "n=2, unique=5",
        "*unique must be a field name or a list of field names of Bill, got 5; e.g. "
        "unique='bill_id'*",
    ),
    "nan_temperature": (
        "n=2, temperature=float('nan')",
        "*temperature must be a finite number between 0.0 and 2.0, got nan*",
    ),
    "infinite_timeout": (
        "n=2, timeout=float('inf')",
        "*timeout must be a finite number >= 0.001, got inf*",
    ),
    "callable_field": (
        "n=2",
        "*Fn.compute: type Callable[[][[]int[]], int[]] cannot be expressed as a JSON schema*"
        "use a JSON-compatible type*",
    ),
    "empty_model": (
        "n=2",
        "*n=2 asks for 2 distinct Empty records, but Empty has only 1 possible record(s) (it "
        "has no fields); records are never repeated, so lower n to at most 1*",
    ),
    "bool_model": (
        "n=3",
        "*n=3 asks for 3 distinct Flags records, but Flags has only 2 possible record(s) "
        "(values per field: urgent: 2)*lower n to at most 2, or give Flags a field*",
    ),
    "small_model": (
        "n=19",
        "*n=19 asks for 19 distinct Slot records, but Slot has only 18 possible record(s) "
        "(values per field: day: 2, hour: 3, open: 3)*lower n to at most 18*",
    ),
    "nan_example": (
        "n=2, examples=[{'bill_id': 1, 'amount': float('nan'), 'paid': True}]",
        "*examples[[]0[]].amount is nan: JSON has no NaN or Infinity*use a finite number*",
    ),
    "empty_jsonl": (
        "n=2, examples='empty.jsonl'",
        "*examples file *empty.jsonl holds no examples; add at least one, or drop examples=*",
    ),
    "empty_json": (
        "n=2, examples='empty.json'",
        "*examples file *empty.json holds no examples*",
    ),
    "empty_csv": ("n=2, examples='empty.csv'", "*examples file *empty.csv holds no examples*"),
    "ragged_csv": (
        "n=2, examples='ragged.csv'",
        "*examples file *ragged.csv, line 3: 4 values for 3 columns (bill_id, amount, paid); "
        "give every row one value per column*",
    ),
    "infinity_in_file": (
        "n=2, examples='infinite.json'",
        "*examples file *infinite.json does not parse: Infinity is not a JSON number; use a "
        "finite number*",
    ),
    "nan_in_csv": (
        "n=2, examples='nan.csv'",
        "*examples[[]1[]].amount is nan: JSON has no NaN or Infinity*",
    ),
    "deep_file": (
        "n=2, examples='deep.json'",
        "*examples file *deep.json nests too deeply to read; each example is one record*",
    ),
}

FILE_CASES = {case for case, (args, _) in CASES.items() if "examples='" in args}


def _model(case: str) -> str:
    return {
        "not_a_model": "dict",
        "unsupported_field": "Bag",
        "callable_field": "Fn",
        "empty_model": "Empty",
        "bool_model": "Flags",
        "small_model": "Slot",
    }.get(case, "Bill")


def _write_data(root: Path) -> None:
    (root / "broken.jsonl").write_text('{"bill_id": 1, "amount": 2, "paid": true}\n{"bill_id":\n')
    (root / "empty.jsonl").write_text("\n  \n")
    (root / "empty.json").write_text("[]")
    (root / "empty.csv").write_text("")
    (root / "ragged.csv").write_text("bill_id,amount,paid\n1,2.5,true\n2,3.5,false,extra\n")
    (root / "infinite.json").write_text('[{"bill_id": 1, "amount": Infinity, "paid": true}]')
    (root / "nan.csv").write_text("bill_id,amount,paid\n1,2.5,true\n2,nan,false\n")
    (root / "deep.json").write_text("[" * 100_000 + "]" * 100_000)


def test_library_entry_point(
    llm_env: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {**MODEL_CLASSES, "dict": dict}
    for case, (args, expected) in CASES.items():
        call = f"generate({_model(case)}, {args})"
        if case in FILE_CASES:
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
        mine = [line for line in lines if f"::{test}:" in line or f"'{test}'" in line]
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
        ([], "synth_no_cache = perhaps", "*ini key synth_no_cache: expected true or false*"),
        ([], "synth_update = maybe", "*ini key synth_update: expected true or false*'maybe'*"),
        (["--synth-export=test_x.py"], "", "*--synth-export: *test_x.py is a file, not a folder*"),
        ([], "synth_export = /proc/x", "*ini key synth_export: /proc is not writable*"),
        (["--synth-cache-dir=/proc/x"], "", "*--synth-cache-dir: /proc is not writable*"),
        (["--synth-temperature=9"], "", "*--synth-temperature: temperature must be a finite*"),
        (["--synth-temperature=inf"], "", "*--synth-temperature: temperature must be a finite*"),
        (["--synth-timeout=nan"], "", "*--synth-timeout: timeout must be a finite number*nan*"),
        ([], "synth_timeout = -inf", "*ini key synth_timeout: timeout must be a finite number*"),
        (["--synth-base-url=ftp://x"], "", "*base_url must be an http:// or https:// URL*"),
        (
            ["--synth-base-url=http://"],
            "",
            "*base_url must be an http:// or https:// URL with a host*",
        ),
    ],
)
def test_option_entry_points(
    pytester: pytest.Pytester, args: list[str], ini: str, expected: str
) -> None:
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_x="def test_nothing():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "Traceback" not in result.stderr.str()
    result.stderr.fnmatch_lines([expected])


def test_invalid_record_mode_flag_lists_the_choices(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--synth-record-mode=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--synth-record-mode*invalid choice*'sometimes'*none*once*"])


# --- library calls: where the records would be stored, the endpoint, the key -----------------


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("cassette=FOLDER", "cassette='*': * is a folder; name a cassette file, such as '*'"),
        (
            "cassette=FILE / 'bills.synth.yaml'",
            "cassette='*' cannot be recorded: * is a file, not a folder; choose a path in a "
            "folder you can write to*or replay an existing cassette with record_mode='none'",
        ),
        (
            "cassette=FILE / 'deeper' / 'bills.synth.yaml'",
            "cassette='*' cannot be recorded: * is a file, so * cannot be created*",
        ),
        ("cache_dir=FILE", "cache_dir='*': * is a file, not a folder; name a folder*"),
    ],
)
def test_unusable_cassette_or_cache_paths_fail_before_any_request(
    llm_env: FakeLLM, tmp_path: Path, where: str, expected: str
) -> None:
    folder, file = tmp_path / "folder", tmp_path / "file.txt"
    folder.mkdir()
    file.write_text("not a folder")
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(SynthConfigError) as info:
        eval(
            f"generate(Bill, 3, {where})",
            {"generate": generate, "Bill": Bill, "FOLDER": folder, "FILE": file},
        )
    assert fnmatch.fnmatchcase(str(info.value), expected), str(info.value)
    assert llm_env.request_count == 0
    assert sorted(tmp_path.rglob("*")) == before  # nothing was written, not even a folder


def test_an_invalid_openai_base_url_is_named_in_a_library_call(
    llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-bad-input-0000")
    monkeypatch.setenv("OPENAI_BASE_URL", "localhost:8000/v1")
    with pytest.raises(SynthConfigError) as info:
        generate(Bill, 3)
    assert str(info.value).startswith(
        "environment variable OPENAI_BASE_URL must be an http:// or https:// URL with a host, "
        "got 'localhost:8000/v1'; fix it or unset it"
    )
    assert llm.request_count == 0


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """No connection may be opened (a DNS lookup or a connect would be a request tried)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize("cassette", [False, True])
def test_a_missing_key_for_openai_is_said_before_any_request(
    llm: FakeLLM,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_sockets: None,
    cassette: bool,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    path = tmp_path / "bills.synth.yaml"
    with pytest.raises(SynthConfigError) as info:
        generate(Bill, 3, cassette=path if cassette else None)
    message = str(info.value)
    assert message.startswith("OPENAI_API_KEY is not set, and ")
    assert "would go to https://api.openai.com without a key" in message
    assert "Set OPENAI_API_KEY to record it" in message and "record_mode='none'" in message
    assert not path.exists()
    assert llm.request_count == 0


def test_a_local_server_needs_no_key(llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
    assert len(generate(Bill, 3)) == 3
    assert llm.request_count == 1


def test_a_missing_key_in_pytest_names_the_variable_and_the_replay(
    pytester: pytest.Pytester, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    pytester.makeconftest(
        """
        import socket

        def _refuse(*args, **kwargs):
            raise AssertionError("a connection was attempted")

        socket.socket.connect = socket.create_connection = socket.getaddrinfo = _refuse
        """
    )
    pytester.makepyfile(
        MODELS + "\nimport pytest\n\n@pytest.mark.synth(Bill, n=3)\ndef test_bills(synth_data):\n"
        "    pass\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "pytest-synthdata: *::test_bills: @pytest.mark.synth(Bill, n=3): OPENAI_API_KEY is "
            "not set, and this request (not in the cassette or the cache) would go to "
            "https://api.openai.com without a key. Set OPENAI_API_KEY to record it; or replay "
            "instead: run with the committed cassettes (--synth-record-mode=none*"
        ]
    )
    assert "a connection was attempted" not in result.stdout.str()
    assert llm.request_count == 0


# --- markers: each=True, name=, huge and odd examples ----------------------------------------


def test_an_oversized_each_marker_is_one_error(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    pytester.makepyfile(
        MODELS
        + """
import pytest

@pytest.mark.synth(Bill, n=6000, each=True)
def test_each_bill(synth_record):
    pass

@pytest.mark.synth(Flags, n=3, each=True)
def test_each_flag(synth_record):
    pass
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)  # not 6003 error items
    result.stdout.fnmatch_lines(
        [
            "pytest-synthdata: *::test_each_bill: *n=6000 is above the limit of 5000 records per "
            "dataset; split it, or raise the limit with max_n=6000*",
            "pytest-synthdata: *::test_each_flag: *n=3 asks for 3 distinct Flags records*",
        ],
        consecutive=False,
    )
    assert llm_env.request_count == 0


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "request",
            "*the name 'request' is already pytest's own request object, so the records "
            "could never reach the test; choose a name no fixture uses, e.g. "
            "name='request_records'*",
        ),
        ("tmp_path", "*the name 'tmp_path' is already a fixture of pytest*"),
        ("synth_factory", "*the name 'synth_factory' is already a fixture of pytest_synthdata*"),
        ("worker_id", "*the name 'worker_id' is already a fixture of the plugin xdist.plugin*"),
        ("class", "*name must be a valid Python identifier*got 'class'*"),
    ],
)
@pytest.mark.parametrize("each", [False, True])
def test_a_name_that_is_taken_is_an_error(
    pytester: pytest.Pytester, llm_env: FakeLLM, name: str, expected: str, each: bool
) -> None:
    pytester.makepyfile(
        MODELS
        + f"""
import pytest

@pytest.mark.synth(Bill, n=3, name={name!r}, each={each})
def test_named(request, tmp_path, synth_factory):
    pass

def test_untouched(tmp_path, synth_factory):
    assert tmp_path.is_dir() and callable(synth_factory)
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"pytest-synthdata: *::test_named: {expected}"])
    assert llm_env.request_count == 0


def big_examples(count: int) -> list[dict[str, Any]]:
    return [
        {"bill_id": i, "amount": i + 0.5, "paid": i % 2 == 0, "note": "x" * 150}
        for i in range(count)
    ]


def prompt_examples(body: dict[str, Any]) -> list[str]:
    prompt = body["messages"][-1]["content"]
    block = prompt.split("(follow their style, do not copy them):\n", 1)[1].split("\n\n", 1)[0]
    return block.splitlines()


def test_huge_examples_are_sampled_the_same_way_every_time(llm_env: FakeLLM) -> None:
    examples = big_examples(3000)  # about 600 KB
    for _ in range(2):
        with pytest.warns(SynthDataWarning) as caught:
            assert len(generate(Bill, 2, examples=examples)) == 2
        (warning,) = [str(w.message) for w in caught]
        assert fnmatch.fnmatchcase(
            warning,
            f"examples: 3000 examples (* characters) are more than a prompt carries "
            f"({EXAMPLES_BUDGET} characters); every request uses the same sample of * of them "
            "(* characters). Pass fewer examples to choose them yourself.",
        ), warning
    first, second = (prompt_examples(r.body) for r in llm_env.chat_requests)
    assert first == second  # the same sample, in the same order
    assert 10 < len(first) < 3000
    assert sum(len(line) for line in first) <= EXAMPLES_BUDGET + 10 * len(first)
    ids = [json.loads(line.split(". ", 1)[1])["bill_id"] for line in first]
    assert ids == sorted(ids) and ids[-1] > 1000  # the files' order, from all over it


def test_a_huge_examples_file_warns_in_the_test_and_is_sampled(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    with (pytester.path / "bills.jsonl").open("w") as out:
        for example in big_examples(20_000):  # about 3.6 MB
            out.write(json.dumps(example) + "\n")
    pytester.makepyfile(
        MODELS
        + """
import pytest

@pytest.mark.synth(Bill, n=2, examples="bills.jsonl")
def test_bills(synth_data):
    assert len(synth_data) == 2
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*SynthDataWarning: examples: 20000 examples*sample of *"])
    (request,) = llm_env.chat_requests
    assert len(request.raw_body) < 3 * EXAMPLES_BUDGET


def test_a_csv_with_a_byte_order_mark_is_read(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    (pytester.path / "bills.csv").write_bytes(
        "\ufeffbill_id,amount,paid\n777001,12.5,true\n".encode()
    )
    pytester.makepyfile(
        MODELS
        + """
import pytest

@pytest.mark.synth(Bill, n=2, examples="bills.csv")
def test_bills(synth_data):
    assert len(synth_data) == 2
"""
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    (request,) = llm_env.chat_requests
    assert prompt_examples(request.body) == ['1. {"bill_id": 777001, "amount": 12.5, "paid": true}']


# --- options and environment ---------------------------------------------------------------


@pytest.mark.parametrize("clear", [False, True])
@pytest.mark.parametrize("source", ["flag", "environment", "ini"])
def test_a_cache_dir_that_is_a_file_is_a_usage_error(
    pytester: pytest.Pytester,
    llm_env: FakeLLM,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    clear: bool,
) -> None:
    (pytester.path / "cache.txt").write_text("a file")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    args = ["--synth-clear-cache"] if clear else []
    where = {
        "flag": "--synth-cache-dir",
        "environment": "environment variable SYNTHDATA_CACHE_DIR",
        "ini": "ini key synth_cache_dir",
    }[source]
    if source == "flag":
        args.append("--synth-cache-dir=cache.txt")
    elif source == "environment":
        monkeypatch.setenv("SYNTHDATA_CACHE_DIR", "cache.txt")
    else:
        pytester.makeini("[pytest]\nsynth_cache_dir = cache.txt\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(
        [f"*pytest-synthdata: {where}: */cache.txt is a file, not a folder; point it at a folder*"]
    )
    assert llm_env.request_count == 0


def test_an_invalid_openai_base_url_is_named_as_itself(
    pytester: pytest.Pytester, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "localhost:8000/v1")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*pytest-synthdata: environment variable OPENAI_BASE_URL: base_url must be an "
            "http:// or https:// URL with a host, got 'localhost:8000/v1'*"
        ]
    )
    assert "SYNTHDATA_BASE_URL" not in result.stderr.str()
    assert llm.request_count == 0
