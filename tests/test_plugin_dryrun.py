"""``pytest --synth-dry-run``: what the collected tests would replay, record or grow, and its
estimate, sending nothing; checked against what the real run then sends (pytester runs
against the loopback fake server)."""

from __future__ import annotations

import re

import pytest
from fakellm import FakeLLM

from pytest_synthdata.settings import Settings

SUITE = """
import pytest
from pydantic import BaseModel


class Bill(BaseModel):
    patient_id: int
    patient_name: str
    total_charge: float

TESTS
"""

TEST = """
@pytest.mark.synth(Bill, n={n}, extra="{name} bills")
def test_{name}(synth_data):
    assert len(synth_data) == {n}
"""


def write_suite(pytester: pytest.Pytester, **sizes: int) -> None:
    tests = "".join(TEST.format(name=name, n=n) for name, n in sizes.items())
    pytester.makepyfile(test_bills=SUITE.replace("TESTS", tests))


def totals(text: str) -> tuple[int, int, int]:
    """The requests, prompt and completion tokens of the dry run's total line."""
    found = re.search(r"total: (\d+) request\(s\), (\d+) prompt \+ (\d+) completion", text)
    assert found is not None, text
    requests, prompt, completion = (int(value) for value in found.groups())
    return requests, prompt, completion


def test_replay_grow_and_record_are_planned_and_nothing_is_sent(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    write_suite(pytester, old=4, grown=3)
    pytester.runpytest("--synth-no-cache").assert_outcomes(passed=2)
    write_suite(pytester, old=4, grown=8, new=25)
    llm_env.reset()

    dry = pytester.runpytest("--synth-dry-run", "--synth-update", "--synth-no-cache")
    assert dry.ret == pytest.ExitCode.OK
    assert llm_env.request_count == 0  # nothing was sent
    dry.assert_outcomes()  # and no test ran
    dry.stdout.fnmatch_lines(
        [
            "*synthdata dry run*",
            "dry run: no test ran and nothing was sent (record mode 'new_episodes')",
            "test_bills.py::test_old (synth_data): 4 Bill record(s): replay (the cassette "
            "holds them): nothing to send",
            "test_bills.py::test_grown (synth_data): 8 Bill record(s): grow by 5 (the "
            "cassette holds 3): 1 request(s), * prompt + * completion tokens",
            "test_bills.py::test_new (synth_data): 25 Bill record(s): record 25: 2 "
            "request(s), * prompt + * completion tokens",
            "total: 3 request(s), * prompt + * completion = * tokens (plus at most "
            f"{3 * Settings().max_retries} re-ask(s) if answers are invalid)",
        ]
    )
    requests, prompt, completion = totals(dry.stdout.str())
    # the cassettes are as they were: the dry run neither recorded nor pruned
    cassettes = sorted(p.name for p in (pytester.path / "cassettes" / "test_bills").iterdir())
    assert cassettes == ["test_grown.synth.yaml", "test_old.synth.yaml"]

    real = pytester.runpytest("--synth-update", "--synth-no-cache")
    real.assert_outcomes(passed=3)
    assert llm_env.request_count == requests
    assert 0.5 * llm_env.prompt_tokens <= prompt <= 1.5 * llm_env.prompt_tokens
    assert 0.5 * llm_env.completion_tokens <= completion <= 1.5 * llm_env.completion_tokens

    llm_env.reset()
    again = pytester.runpytest("--synth-dry-run", "--synth-update")
    again.stdout.fnmatch_lines(["*test_new (synth_data): 25 Bill record(s): replay*"])
    assert totals(again.stdout.str()) == (0, 0, 0)
    assert llm_env.request_count == 0


def test_prices_give_a_cost(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    write_suite(pytester, new=5)
    result = pytester.runpytest(
        "--synth-dry-run", "--synth-price-in=0.15", "--synth-price-out=0.60"
    )
    _, prompt, completion = totals(result.stdout.str())
    expected = (prompt * 0.15 + completion * 0.60) / 1_000_000
    result.stdout.fnmatch_lines(
        [
            f"*record 5: 1 request(s), {prompt} prompt + {completion} completion tokens, "
            f"${expected:.6f}",
            f"estimated cost: * = ${expected:.6f} (at $0.15 / $0.6 per million tokens)",
        ]
    )
    assert llm_env.request_count == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--synth-price-in=cheap", "--synth-price-out=1"], "--synth-price-in: expected a number"),
        (["--synth-price-in=1", "--synth-price-out=-2"], "--synth-price-out: price_out must be"),
        (["--synth-price-in=1"], "--synth-price-in is given but not --synth-price-out"),
        (["-n", "2"], "add -n 0"),
    ],
)
def test_bad_prices_and_xdist_are_usage_errors(
    pytester: pytest.Pytester, llm_env: FakeLLM, args: list[str], message: str
) -> None:
    write_suite(pytester, new=5)
    result = pytester.runpytest("--synth-dry-run", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert "Traceback" not in result.stderr.str()
    assert llm_env.request_count == 0


CONFTEST = """
from pydantic import BaseModel
from pytest_synthdata import synth_fixture


class Person(BaseModel):
    name: str
    age: int


people = synth_fixture(Person, n=6)
"""

MIXED = """
import pytest
from conftest import Person


def test_people(people):
    assert len(people) == 6


def test_more_people(people):
    assert people


@pytest.mark.synth(Person, n=3, each=True)
def test_each(synth_record):
    assert synth_record.name


def test_ad_hoc(synth_factory):
    assert synth_factory(Person, n=2)


@pytest.mark.synth_text([["blue", "yellow"]])
def test_texts(synth_texts):
    assert synth_texts
"""


def test_fixtures_each_and_factories(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_people=MIXED)
    result = pytester.runpytest("--synth-dry-run")
    result.stdout.fnmatch_lines(
        [
            "fixture people (conftest.py): 6 Person record(s): record 6: 1 request(s)*",
            "test_people.py::test_each (synth_record, each=True): 3 Person record(s): record 3*",
            "total: 2 request(s)*",
            "not estimated: test_people.py::test_ad_hoc: synth_factory calls inside the test "
            "body are only known when it runs",
            "not estimated: test_people.py::test_texts: synth_text texts are not estimated",
        ]
    )
    assert result.stdout.str().count("fixture people") == 1  # shared, as a run shares it
    assert llm_env.request_count == 0


def test_a_record_mode_that_cannot_record_says_the_run_would_fail(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    write_suite(pytester, grown=3)
    pytester.runpytest().assert_outcomes(passed=1)
    write_suite(pytester, grown=5)
    llm_env.reset()
    result = pytester.runpytest("--synth-dry-run")  # record mode once
    result.stdout.fnmatch_lines(
        [
            "*test_grown (synth_data): 5 Bill record(s): a run would fail: the cassette holds "
            "3 of the 5 records and record mode 'once' does not record the 2 missing one(s); "
            "record with: pytest test_bills.py::test_grown --synth-record-mode=rewrite*",
            "total: 0 request(s)*",
        ]
    )
    assert llm_env.request_count == 0


def test_rewrite_records_what_is_stored_and_unknown_fixtures_are_said(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    write_suite(pytester, grown=3)
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.makeconftest(
        "import pytest\n\n@pytest.fixture\ndef synth_config():\n    return {'temperature': 0.3}\n"
    )
    llm_env.reset()
    result = pytester.runpytest("--synth-dry-run", "--synth-record-mode=rewrite")
    result.stdout.fnmatch_lines(
        [
            "*test_grown (synth_data): 3 Bill record(s): record 3: 1 request(s), * prompt + * "
            "completion tokens; its synth_config fixture is only known when it runs: "
            "estimated without it",
            "total: 1 request(s)*",
        ]
    )
    assert llm_env.request_count == 0
    assert (pytester.path / "cassettes" / "test_bills" / "test_grown.synth.yaml").is_file()
