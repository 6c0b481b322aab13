"""The pytest plugin as users see it: pytester runs against the loopback server."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import textwrap
from typing import Any

import models
import pytest
from fakellm import FakeLLM, Fault

from pytest_synthdata.records import output_budget
from pytest_synthdata.settings import ENV_PREFIX, setting_names

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


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SYNTHDATA_* or OPENAI_BASE_URL leaks in from the developer's shell."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


# --- 1. the marker injects synth_data ------------------------------------------------------


def test_marker_injects_exactly_n_records_in_a_stable_order(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makepyfile(
        test_bills=source(
            f"""
            @pytest.mark.synth(
                MedicalBilling,
                n=10,
                examples=[{EXAMPLE!r}, "Patient ID: 123456, Patient Name: John Doe"],
                subject="emergency-room bills",
                extra="use rare diagnosis codes",
                seed=11,
                unique="patient_id",
                model="gpt-test",
                temperature=0.4,
                batch_size=3,
                concurrency=4,
            )
            def test_bills(synth_data):
                assert isinstance(synth_data, list)
                assert len(synth_data) == 10
                assert all(type(bill) is MedicalBilling for bill in synth_data)
                assert len({{bill.patient_id for bill in synth_data}}) == 10
                dump("bills", synth_data)
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    first = written(pytester, "bills")
    assert len(first) == 10

    requests = llm_env.chat_requests
    assert_one_generation(llm_env)
    assert len(requests) == 4  # ceil(10 / batch_size=3)
    body = requests[0].body
    assert body["model"] == "gpt-test"
    assert body["temperature"] == 0.4
    assert body["seed"] == 11
    text = prompt(requests[0])
    assert "Subject: emergency-room bills" in text
    assert '"patient_name": "Emily Stone"' in text
    assert "Patient ID: 123456, Patient Name: John Doe" in text
    assert "use rare diagnosis codes" in text
    assert "must be unique across all records: patient_id" in text

    # Batches finish in any order, the records come back in batch order.
    by_batch: dict[int, list[dict[str, Any]]] = {}
    for request in requests:
        match = re.search(r"This is batch (\d+) of", prompt(request))
        assert match is not None
        by_batch[int(match.group(1))] = response_records(request)
    assert first == [row for i in sorted(by_batch) for row in by_batch[i]][:10]

    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert written(pytester, "bills") == first


def test_parametrize_marks_give_each_case_its_own_dataset(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makepyfile(
        source(
            """
            @pytest.mark.parametrize(
                "size",
                [
                    pytest.param(2, marks=pytest.mark.synth(MedicalBilling, n=2)),
                    pytest.param(3, marks=pytest.mark.synth(MedicalBilling, n=3)),
                ],
            )
            def test_sizes(size, synth_data):
                assert len(synth_data) == size
            """
        )
    )
    pytester.runpytest().assert_outcomes(passed=2)
    assert llm_env.request_count == 2


# --- 2. each=True: one test per record -----------------------------------------------------


EACH = """
@pytest.mark.synth(MedicalBilling, n=10, seed=5, each=True)
def test_bill(synth_record, request):
    assert type(synth_record) is MedicalBilling
    dump(f"record-{request.node.callspec.params['synth_record']}", [synth_record])
"""


def test_each_makes_one_test_per_record_and_collection_never_calls_the_llm(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makepyfile(test_each=source(EACH))
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [f"test_each.py::test_bill[[]MedicalBilling-{i}[]]" for i in range(10)]
    )
    assert "10 tests collected" in result.stdout.str()
    assert llm_env.request_count == 0

    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=10)
    result.stdout.fnmatch_lines(["*test_each.py::test_bill[[]MedicalBilling-9[]] PASSED*"])
    assert llm_env.request_count == 1  # one generation shared by the ten tests
    expected = response_records(llm_env.chat_requests[0])
    assert [written(pytester, f"record-{i}")[0] for i in range(10)] == expected


def test_each_with_a_name_and_a_second_dataset(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    pytester.makepyfile(
        source(
            """
            @pytest.mark.synth(MedicalBilling, n=3, name="bill", each=True)
            @pytest.mark.synth(Customer, n=2, name="customers")
            def test_pair(bill, customers):
                assert type(bill) is MedicalBilling
                assert [type(c) for c in customers] == [Customer, Customer]
            """
        )
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_pair[[]MedicalBilling-2[]] PASSED*"])
    assert llm_env.request_count == 2


# --- 3. several named markers ----------------------------------------------------------------


def test_named_markers_inject_their_fixtures_without_clashing(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def customers():
            return "from conftest"
        """
    )
    pytester.makepyfile(
        source(
            """
            @pytest.mark.synth(MedicalBilling, n=4, name="bills")
            @pytest.mark.synth(Customer, n=3, name="customers")
            def test_both(bills, customers):
                assert [type(b) for b in bills] == [MedicalBilling] * 4
                assert [type(c) for c in customers] == [Customer] * 3

            @pytest.mark.synth(Customer, n=2, name="bills")
            def test_same_name_other_spec(bills):
                assert [type(b) for b in bills] == [Customer] * 2

            @pytest.mark.synth(MedicalBilling, n=5, name="bills")
            @pytest.mark.synth(MedicalBilling, n=1)
            def test_named_and_default(bills, synth_data):
                assert len(bills) == 5 and len(synth_data) == 1

            def test_conftest_fixture_is_not_hidden(customers):
                assert customers == "from conftest"

            class TestGrouped:
                pytestmark = pytest.mark.synth(Customer, n=2, name="people")

                def test_people(self, people):
                    assert len(people) == 2
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=5)
    # two tests ask for the very same Customer dataset: the second is a cache hit; and
    # test_named_and_default's two MedicalBilling markers differ only in n, so its n=1
    # dataset is the first record of the n=5 one, read back from the cassette
    result.stdout.fnmatch_lines(
        [
            "*6 dataset(s), 17 record(s)*",
            "*1 replayed from cassettes, 4 recorded, 1 from the cache*",
        ]
    )
    assert llm_env.request_count == 4


def test_module_level_named_marker(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    pytester.makepyfile(
        source(
            """
            from unittest import mock

            pytestmark = pytest.mark.synth(Customer, n=2, name="people")
            not_a_test = mock.Mock()  # collection looks at every module attribute

            def test_people(people):
                assert [type(p) for p in people] == [Customer, Customer]
            """
        )
    )
    pytester.runpytest().assert_outcomes(passed=1)
    assert llm_env.request_count == 1


# --- 4. synth_factory ------------------------------------------------------------------------


def test_synth_factory_inside_a_test(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    pytester.makepyfile(
        source(
            f"""
            def test_factory(synth_factory):
                bills = synth_factory(
                    MedicalBilling, n=5, examples=[{EXAMPLE!r}], model="factory-model",
                    temperature=0.7, seed=3,
                )
                assert [type(b) for b in bills] == [MedicalBilling] * 5
                customers = synth_factory(Customer, 2)
                assert len(customers) == 2
                assert synth_factory(MedicalBilling, n=5, examples=[{EXAMPLE!r}],
                                     model="factory-model", temperature=0.7, seed=3) == bills
            """
        )
    )
    pytester.runpytest().assert_outcomes(passed=1)
    assert llm_env.request_count == 2
    body = llm_env.chat_requests[0].body
    assert (body["model"], body["temperature"], body["seed"]) == ("factory-model", 0.7, 3)
    assert "Emily Stone" in prompt(llm_env.chat_requests[0])
    assert llm_env.chat_requests[1].body["model"] == "gpt-4o-mini"


# --- 5. synth_fixture in a conftest ----------------------------------------------------------


def test_session_synth_fixture_is_generated_once(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makeconftest(
        HEADER
        + textwrap.dedent(
            f"""
            from pytest_synthdata import synth_fixture

            medical_bills = synth_fixture(
                MedicalBilling, n=20, examples=[{EXAMPLE!r}], scope="session"
            )
            """
        )
    )
    for module in ("test_one", "test_two"):
        pytester.makepyfile(
            **{
                module: source(
                    f"""
                    def test_a(medical_bills):
                        assert len(medical_bills) == 20
                        # the conftest's own MedicalBilling class
                        assert {{type(b).__name__ for b in medical_bills}} == {{"MedicalBilling"}}
                        dump("{module}-a", medical_bills)

                    def test_b(medical_bills):
                        dump("{module}-b", medical_bills)
                    """
                )
            }
        )
    result = pytester.runpytest()
    result.assert_outcomes(passed=4)
    assert_one_generation(llm_env)
    assert "Emily Stone" in prompt(llm_env.chat_requests[0])
    result.stdout.fnmatch_lines(["*1 dataset(s), 20 record(s)*"])
    seen = [written(pytester, f"{m}-{t}") for m in ("test_one", "test_two") for t in "ab"]
    assert all(rows == seen[0] for rows in seen)


def test_function_scoped_synth_fixture_gives_each_test_its_own_copy(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makeconftest(
        HEADER
        + textwrap.dedent(
            """
            from pytest_synthdata.plugin import synth_fixture

            bills = synth_fixture(MedicalBilling, n=3)
            """
        )
    )
    pytester.makepyfile(
        source(
            """
            def test_mutates(bills):
                bills[0].patient_name = "MUTATED"
                bills.append(bills[0])

            def test_sees_fresh_records(bills):
                assert len(bills) == 3
                assert all(b.patient_name != "MUTATED" for b in bills)

            def test_sees_fresh_records_too(bills):
                test_sees_fresh_records(bills)
            """
        )
    )
    pytester.runpytest().assert_outcomes(passed=3)
    assert llm_env.request_count == 1  # generated once, copied per test


# --- 6. examples files ----------------------------------------------------------------------


def test_examples_files_are_relative_to_the_test_file(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = pytester.mkdir("suite") / "data"
    data.mkdir()
    json_row = {**EXAMPLE, "patient_name": "Jason Jsonson"}
    (data / "bills.json").write_text(json.dumps([json_row]))
    lines = [{**EXAMPLE, "patient_name": "Lina Linesworth"}, {**EXAMPLE, "patient_id": 7}]
    (data / "bills.jsonl").write_text("\n".join(json.dumps(row) for row in lines) + "\n\n")
    (data / "bills.csv").write_text(
        "patient_id,patient_name,diagnosis_code,procedure_code,total_charge,"
        "insurance_claim_amount\n"
        "42,Cassie Commaford,J20.9,99203,500,350\n"
    )
    (pytester.path / "suite" / "test_files.py").write_text(
        source(
            """
            @pytest.mark.synth(MedicalBilling, n=2, examples="data/bills.json")
            def test_json(synth_data):
                assert pathlib.Path.cwd().name == "elsewhere"
                assert len(synth_data) == 2

            @pytest.mark.synth(MedicalBilling, n=2, examples="data/bills.jsonl")
            def test_jsonl(synth_data):
                assert len(synth_data) == 2

            def test_csv(synth_factory):
                assert len(synth_factory(MedicalBilling, n=2, examples="data/bills.csv")) == 2
            """
        )
    )
    elsewhere = pytester.mkdir("elsewhere")
    monkeypatch.chdir(elsewhere)
    pytester.runpytest(str(pytester.path / "suite")).assert_outcomes(passed=3)
    prompts = [prompt(r) for r in llm_env.chat_requests]
    assert len(prompts) == 3
    assert sum('"patient_name": "Jason Jsonson"' in p for p in prompts) == 1
    assert (
        sum('"patient_name": "Lina Linesworth"' in p and '"patient_id": 7,' in p for p in prompts)
        == 1
    )
    assert (
        sum(
            '"patient_name": "Cassie Commaford"' in p and '"total_charge": 500.0' in p
            for p in prompts
        )
        == 1
    )


# --- 7. options ------------------------------------------------------------------------------

# A valid, non-default value for every setting, as typed on a command line or in an ini file.
OPTION_VALUES = {
    "model": ("opt-model", "'opt-model'"),
    "base_url": ("http://127.0.0.1:9/v1", "'http://127.0.0.1:9/v1'"),
    "temperature": ("0.3", "0.3"),
    "batch_size": ("7", "7"),
    "concurrency": ("3", "3"),
    "structured": ("json_object", "'json_object'"),
    "max_retries": ("1", "1"),
    "max_tokens": ("2000", "2000"),
    "timeout": ("30", "30.0"),
    "http_retries": ("1", "1"),
    "max_n": ("100", "100"),
}


def test_option_table_covers_every_setting() -> None:
    assert set(OPTION_VALUES) == set(setting_names())


@pytest.mark.parametrize("source_kind", ["cli", "ini", "env"])
def test_every_option_is_read_from_each_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source_kind: str
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    args: list[str] = []
    if source_kind == "cli":
        args = [
            f"--synth-{name.replace('_', '-')}={raw}" for name, (raw, _) in OPTION_VALUES.items()
        ]
    elif source_kind == "ini":
        pytester.makeini(
            "[pytest]\n" + "".join(f"synth_{n} = {raw}\n" for n, (raw, _) in OPTION_VALUES.items())
        )
    else:
        for name, (raw, _) in OPTION_VALUES.items():
            monkeypatch.setenv(ENV_PREFIX + name.upper(), raw)
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    expected = ", ".join(f"{name}={shown}" for name, (_, shown) in OPTION_VALUES.items())
    result.stdout.fnmatch_lines([f"synthdata: {expected}"])


def run_and_body(pytester: pytest.Pytester, server: FakeLLM, module: str, *args: str) -> Any:
    """Run ``module`` (one test generating one dataset) and return its first batch's body."""
    before = len(server.chat_requests)
    pytester.runpytest(f"{module}.py", *args).assert_outcomes(passed=1)
    new = server.chat_requests[before:]
    assert new
    firsts = [r for r in new if "This is batch 1 of" in prompt(r)] or new
    return firsts[0].body


def test_precedence_defaults_ini_env_cli_marker(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = """
        @pytest.mark.synth(MedicalBilling, n=10)
        def test_plain(synth_data):
            assert len(synth_data) == 10
        """
    for stage in ("defaults", "ini", "env", "cli"):
        pytester.makepyfile(**{f"test_{stage}": source(plain)})
    pytester.makepyfile(
        test_marker=source(
            """
            @pytest.mark.synth(MedicalBilling, n=10, model="marker-model", temperature=1.5)
            def test_marked(synth_data):
                assert len(synth_data) == 10
            """
        )
    )

    def picked(body: Any) -> tuple[Any, Any, Any]:
        return body["model"], body.get("temperature"), body["max_tokens"]

    # each request asks for at most what its records need, and never more than max_tokens
    body = run_and_body(pytester, llm_env, "test_defaults")
    assert picked(body) == ("gpt-4o-mini", None, output_budget(models.MedicalBilling, 10))
    assert output_budget(models.MedicalBilling, 10) < 4096

    # a max_tokens below one record's budget reaches the body as it is (one record per request)
    assert output_budget(models.MedicalBilling, 1) > 80
    pytester.makeini(
        "[pytest]\nsynth_model = ini-model\nsynth_temperature = 0.1\nsynth_max_tokens = 60\n"
    )
    assert picked(run_and_body(pytester, llm_env, "test_ini")) == ("ini-model", 0.1, 60)

    monkeypatch.setenv("SYNTHDATA_MODEL", "env-model")
    monkeypatch.setenv("SYNTHDATA_TEMPERATURE", "0.2")
    assert picked(run_and_body(pytester, llm_env, "test_env")) == ("env-model", 0.2, 60)

    monkeypatch.setenv("SYNTHDATA_MAX_TOKENS", "70")
    cli = ["--synth-model=cli-model", "--synth-temperature", "0.3"]
    assert picked(run_and_body(pytester, llm_env, "test_cli", *cli)) == ("cli-model", 0.3, 70)

    cli.append("--synth-max-tokens=80")
    marked = run_and_body(pytester, llm_env, "test_marker", *cli)
    assert picked(marked) == ("marker-model", 1.5, 80)


def test_help_lists_every_option_and_ini_key(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == 0
    text = result.stdout.str()
    group = text.index("pytest-synthdata: synthetic test data from an LLM:")
    ini_section = text.index("[pytest] ")  # the ini-options section
    assert group < ini_section
    for name in setting_names():
        flag = "--synth-" + name.replace("_", "-")
        assert re.search(rf"^\s+{flag}={name.upper()}\b", text[group:ini_section], re.M), flag
        assert re.search(rf"^\s+synth_{name} \(string\):", text[ini_section:], re.M), name
    assert "api-key" not in text and "api_key" not in text


@pytest.mark.parametrize(
    ("args", "ini", "env", "message"),
    [
        (["--synth-concurrency=-1"], "", {}, "*--synth-concurrency*concurrency must be*>= 1*-1*"),
        (["--synth-structured=xml"], "", {}, "*--synth-structured*structured must be one of*xml*"),
        ([], "synth_batch_size = abc", {}, "*ini key synth_batch_size*expected an integer*abc*"),
        ([], "", {"SYNTHDATA_TEMPERATURE": "hot"}, "*SYNTHDATA_TEMPERATURE*expected a number*"),
    ],
)
def test_invalid_option_values_are_usage_errors(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    ini: str,
    env: dict[str, str],
    message: str,
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-synthdata: {message}"])
    assert "Traceback" not in output(result)
    # --help still works, so the user can look up the option they got wrong
    assert pytester.runpytest(*args, "--help").ret == 0


def test_there_is_no_api_key_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--synth-api-key=sk-nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --synth-api-key=sk-nope*"])

    pytester.makeini("[pytest]\nsynth_api_key = sk-nope\n")
    result = pytester.runpytest("--strict-config")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*Unknown config option: synth_api_key*"])
    assert "api_key" not in setting_names()


# --- 8. marker registration ------------------------------------------------------------------


def test_marker_is_registered(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    pytester.makepyfile(
        source(
            """
            @pytest.mark.synth(MedicalBilling, n=1)
            def test_marked(synth_data):
                assert len(synth_data) == 1
            """
        )
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)
    result = pytester.runpytest("--markers")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["@pytest.mark.synth(Model, n=10, examples=None, *each=True makes one test per record*"]
    )


# --- 9. reporting ----------------------------------------------------------------------------


def test_report_header_only_when_configured_or_verbose(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "synthdata:" not in result.stdout.str()

    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["synthdata: model='gpt-4o-mini', structured='auto'"])

    result = pytester.runpytest("--synth-model=header-model", "--synth-concurrency=2")
    result.stdout.fnmatch_lines(["synthdata: model='header-model', concurrency=2"])


def test_terminal_summary_reports_the_cost(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    def break_one(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        records[0]["patient_id"] = "not a number"
        return records

    llm_env.enqueue(Fault.mutate(break_one))
    pytester.makepyfile(
        source(
            """
            @pytest.mark.synth(MedicalBilling, n=3)
            def test_bills(synth_data):
                assert len(synth_data) == 3

            @pytest.mark.synth(Customer, n=2, name="customers")
            def test_customers(customers):
                assert len(customers) == 2
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    assert llm_env.request_count == 3
    result.stdout.fnmatch_lines(
        [
            "*-- synthdata --*",
            "2 dataset(s), 5 record(s)",
            "sent to the endpoint: 3 request(s), "
            f"{llm_env.prompt_tokens} prompt + {llm_env.completion_tokens} completion tokens",
            "1 retry(ies) (1 invalid); 1 invalid and 0 duplicate record(s) dropped",
        ]
    )


def test_no_summary_without_datasets(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    pytester.makepyfile(
        source(
            """
            def test_nothing():
                pass

            @pytest.mark.synth(MedicalBilling, n=0)
            def test_broken(synth_data):
                pass
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    assert not re.search(r"^-+ synthdata -+$", result.stdout.str(), re.M)
    assert "dataset(s)" not in result.stdout.str()
    assert llm_env.request_count == 0


# --- 10. bad input fails one test, cleanly ---------------------------------------------------


def test_bad_marker_arguments_fail_only_their_test(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.path.joinpath("broken.json").write_text('[{"patient_id": 1,')
    pytester.makepyfile(
        test_bad=source(
            f"""
            @pytest.mark.synth(MedicalBilling, n=2)
            def test_good(synth_data):
                assert len(synth_data) == 2

            @pytest.mark.synth(dict, n=2)
            def test_not_a_model(synth_data):
                pass

            @pytest.mark.synth(MedicalBilling, n=0)
            def test_n_zero(synth_data):
                pass

            @pytest.mark.synth(MedicalBilling, n="3")
            def test_n_string(synth_data):
                pass

            @pytest.mark.synth(MedicalBilling, n=2, exemples=[{EXAMPLE!r}])
            def test_typo(synth_data):
                pass

            @pytest.mark.synth(MedicalBilling, n=2, examples=[{{"patient_id": "abc"}}])
            def test_invalid_example(synth_data):
                pass

            @pytest.mark.synth(MedicalBilling, n=2, examples="missing/bills.json")
            def test_missing_file(synth_data):
                pass

            @pytest.mark.synth(MedicalBilling, n=2, examples="broken.json")
            def test_unparsable_file(synth_data):
                pass

            @pytest.mark.synth(MedicalBilling, n=2, name="a", each=True)
            @pytest.mark.synth(Customer, n=2, name="b", each=True)
            def test_each_twice(a, b):
                pass

            @pytest.mark.synth(MedicalBilling, n=2, each="yes")
            def test_each_string(synth_record):
                pass

            @pytest.mark.synth(MedicalBilling, n=2, name="bills")
            @pytest.mark.synth(Customer, n=2, name="bills")
            def test_same_name(bills):
                pass

            def test_no_marker(synth_data):
                pass

            @pytest.mark.synth(MedicalBilling, n=2, each=True)
            def test_wrong_fixture(synth_data):
                pass

            @pytest.mark.synth(MedicalBilling, n=2, examples=5)
            def test_examples_not_a_list(synth_data):
                pass

            @pytest.mark.synth(MedicalBilling, n=2, each=True)
            def test_each_unused():
                pass
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=14)
    assert_no_traceback_noise(result)
    marker = "@pytest.mark.synth"
    expected = {
        "test_not_a_model": f"{marker}(dict, n=2): *must be a pydantic BaseModel subclass*",
        "test_n_zero": f"{marker}(MedicalBilling, n=0): n must be a positive integer*got 0",
        "test_n_string": f"{marker}(MedicalBilling, n='3'): n must be a positive integer*got '3'",
        "test_typo": f"{marker}(MedicalBilling, n=2, exemples=*): unknown keyword 'exemples' "
        "(did you mean 'examples'?)*",
        "test_invalid_example": f"{marker}(MedicalBilling, n=2): examples[[]0[]] does not "
        "validate against MedicalBilling; fix the example or the model:",
        "test_missing_file": f"{marker}(MedicalBilling, n=2, examples='missing/bills.json'): "
        "examples file not found: *missing*bills.json (relative paths are resolved against "
        "the test file's folder)",
        "test_unparsable_file": f"{marker}(MedicalBilling, n=2, examples='broken.json'): "
        "examples file *broken.json does not parse: *",
        "test_each_twice": f"{marker}: only one synth marker per test may use each=True; "
        "drop each=True from the others",
        "test_each_string": f"{marker}(MedicalBilling, n=2, each='yes'): each must be True or "
        "False, got 'yes'",
        "test_same_name": f"{marker}: several synth markers inject under the name 'bills'; "
        "give each marker its own name=...*",
        "test_no_marker": f"the fixture 'synth_data' needs a {marker}(Model, n=...) marker on "
        "the test (or use the synth_factory fixture)",
        "test_wrong_fixture": f"{marker}(MedicalBilling, n=2, each=True) gives one record per "
        "test through the 'synth_record' fixture, but the test does not ask for it; add a "
        "synth_record argument or drop each=True",
        "test_examples_not_a_list": f"{marker}(MedicalBilling, n=2): examples must be a list "
        "*got int: 5",
        "test_each_unused": f"{marker}(MedicalBilling, n=2, each=True) gives one record per "
        "test through the 'synth_record' fixture, but the test does not ask for it*",
    }
    for test, message in expected.items():
        nodeid = f"test_bad.py::{test}"
        line = failure_line(result, nodeid)
        pattern = f"pytest-synthdata: {nodeid}: {message}"
        assert fnmatch.fnmatchcase(line, pattern), (line, pattern)
        result.stdout.fnmatch_lines([f"ERROR test_bad.py::{test} - Failed: pytest-synthdata*"])
    assert llm_env.request_count == 1  # only test_good reached the server


def test_bad_factory_arguments_fail_only_their_test(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.path.joinpath("broken.jsonl").write_text('{"patient_id": 1}\n{oops\n')
    calls = {
        "not_a_model": "dict, n=2",
        "n_zero": "MedicalBilling, n=0",
        "n_string": "MedicalBilling, n='3'",
        "typo": "MedicalBilling, n=2, exemples=[]",
        "invalid_example": "MedicalBilling, n=2, examples=[{'patient_id': 'abc'}]",
        "missing_file": "MedicalBilling, n=2, examples='nope.csv'",
        "unparsable_file": "MedicalBilling, n=2, examples='broken.jsonl'",
        "each_string": "MedicalBilling, n=2, each='yes'",
        "each_true": "MedicalBilling, n=2, each=True",
    }
    body = "def test_good(synth_factory):\n    assert len(synth_factory(Customer, n=2)) == 2\n"
    for name, call in calls.items():
        body += f"\ndef test_{name}(synth_factory):\n    synth_factory({call})\n"
    pytester.makepyfile(test_factory=source(body))
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=len(calls))
    assert_no_traceback_noise(result)
    expected = {
        "not_a_model": "must be a pydantic BaseModel subclass",
        "n_zero": "n must be a positive integer (the number of records), got 0",
        "n_string": "n must be a positive integer (the number of records), got '3'",
        "typo": "unknown keyword 'exemples' (did you mean 'examples'?)",
        "invalid_example": "examples[0] does not validate against MedicalBilling",
        "missing_file": "examples file not found:",
        "unparsable_file": "line 2: not valid JSON",
        "each_string": "each must be True or False, got 'yes'",
        "each_true": "each=True only applies to markers; use the returned list",
    }
    for name, message in expected.items():
        nodeid = f"test_factory.py::test_{name}"
        line = failure_line(result, nodeid)
        assert line.startswith(f"pytest-synthdata: {nodeid}: synth_factory: ")
        assert message in line, line
    assert llm_env.request_count == 1


def test_bad_synth_fixture_fails_only_the_tests_using_it(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makeconftest(
        HEADER
        + textwrap.dedent(
            """
            from pytest_synthdata import synth_fixture

            good = synth_fixture(Customer, n=2, scope="session")
            not_a_model = synth_fixture(dict, n=2)
            n_zero = synth_fixture(MedicalBilling, n=0, scope="session")
            n_string = synth_fixture(MedicalBilling, n="3")
            typo = synth_fixture(MedicalBilling, n=2, exemples=[])
            invalid_example = synth_fixture(
                MedicalBilling, n=2, examples=[{"patient_id": "abc"}], scope="module"
            )
            missing_file = synth_fixture(MedicalBilling, n=2, examples="nope.json")
            each_true = synth_fixture(MedicalBilling, n=2, each=True)
            bad_scope = synth_fixture(MedicalBilling, n=2, scope="galaxy")
            """
        )
    )
    names = [
        "not_a_model",
        "n_zero",
        "n_string",
        "typo",
        "invalid_example",
        "missing_file",
        "each_true",
        "bad_scope",
    ]
    body = "def test_good(good):\n    assert len(good) == 2\n"
    body += "\ndef test_good_again(good):\n    assert len(good) == 2\n"
    body += "\ndef test_n_zero_again(n_zero):\n    pass\n"
    for name in names:
        body += f"\ndef test_{name}({name}):\n    pass\n"
    pytester.makepyfile(test_fixtures=source(body))
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=len(names) + 1)
    assert_no_traceback_noise(result)
    text = result.stdout.str()
    expected = {
        "not_a_model": "must be a pydantic BaseModel subclass",
        "n_zero": "n must be a positive integer (the number of records), got 0",
        "n_string": "n must be a positive integer (the number of records), got '3'",
        "typo": "unknown keyword 'exemples' (did you mean 'examples'?)",
        "invalid_example": "examples[0] does not validate against MedicalBilling",
        "missing_file": "examples file not found:",
        "each_true": "each= and name= only apply to markers",
        "bad_scope": "scope must be function, class, module, package or session, got 'galaxy'",
    }
    for name, message in expected.items():
        result.stdout.fnmatch_lines([f"pytest-synthdata: fixture '{name}' *: *{literal(message)}*"])
    # both users of the session fixture fail (counted in the error sections, whose lines
    # start with the message; the short summary repeats it at a terminal-width-dependent length)
    n_zero_errors = [
        line for line in text.splitlines() if line.startswith("pytest-synthdata: fixture 'n_zero'")
    ]
    assert len(n_zero_errors) == 2, text
    assert llm_env.request_count == 1


# --- 11. fixture documentation ---------------------------------------------------------------


def test_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        HEADER + "\nfrom pytest_synthdata import synth_fixture\n"
        "bills = synth_fixture(MedicalBilling, n=20)\n"
    )
    result = pytester.runpytest("--fixtures")
    assert result.ret == 0
    for name, doc in [
        ("synth_data", "The records of the test's @pytest.mark.synth(Model, n=...) marker:*"),
        ("synth_record", "One record of a @pytest.mark.synth(Model, n=..., each=True) marker*"),
        ("synth_factory", "Call synth_factory(Model, n=5, **options) inside a test*"),
    ]:
        result.stdout.fnmatch_lines(
            [f"{name} -- *pytest_synthdata/plugin/fixtures.py:*", f"    {doc}"]
        )
    # a synth_fixture is shown where the user wrote it, not inside the plugin
    result.stdout.fnmatch_lines(
        [
            "*fixtures defined from conftest*",
            "bills -- conftest.py:*",
            "    20 synthetic MedicalBilling records*",
        ]
    )
    (shown,) = [line for line in result.stdout.lines if line.startswith("bills -- ")]
    line = int(shown.rsplit(":", 1)[1])
    conftest = (pytester.path / "conftest.py").read_text().splitlines()
    assert conftest[line - 1] == "bills = synth_fixture(MedicalBilling, n=20)"
    lines = result.stdout.lines
    every = (
        "synth_data",
        "synth_record",
        "synth_factory",
        "synth_texts",
        "synth_text_factory",
        "synth_extract",
        "synth_round_trip",
    )
    for name in every:
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{name} -- "))
        assert lines[at + 1].startswith("    ") and lines[at + 2] == ""


# --- 12. import cost -------------------------------------------------------------------------


def test_a_suite_without_the_marker_does_not_import_the_heavy_dependencies(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_light():
            heavy = sorted(m for m in ("openai", "vcr", "diskcache") if m in sys.modules)
            print("HEAVY", heavy)
            assert heavy == []
        """
    )
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*plugins:*synthdata*", "*HEAVY " + literal("[]") + "*"])


# --- 13. generation failures -----------------------------------------------------------------


def test_exhausted_budget_fails_the_test_with_the_typed_message(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    llm_env.always("malformed")
    pytester.makepyfile(
        test_budget=source(
            """
            def test_unaffected():
                pass

            @pytest.mark.synth(MedicalBilling, n=2, max_retries=0)
            def test_bills(synth_data):
                pass

            def test_factory(synth_factory):
                synth_factory(Customer, n=2, max_retries=0)
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1, failed=1)
    assert_no_traceback_noise(result)
    result.stdout.fnmatch_lines(
        [
            "pytest-synthdata: test_budget.py::test_bills: @pytest.mark.synth(MedicalBilling, "
            "n=2): could not generate 2 valid MedicalBilling records: the retry budget "
            "(0 follow-up requests for this dataset*) ran out*raise max_retries",
            "*not valid JSON*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "pytest-synthdata: test_budget.py::test_factory: synth_factory: could not generate "
            "2 valid Customer records*",
        ]
    )
    assert llm_env.request_count == 2


def test_api_error_fails_the_test_with_the_typed_message(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    llm_env.always("500")
    pytester.makepyfile(
        test_api=source(
            """
            def test_unaffected():
                pass

            @pytest.mark.synth(MedicalBilling, n=2, http_retries=0, structured="json_schema")
            def test_bills(synth_data):
                pass
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    assert_no_traceback_noise(result)
    result.stdout.fnmatch_lines(
        [
            "pytest-synthdata: test_api.py::test_bills: "
            "@pytest.mark.synth(MedicalBilling, n=2): *HTTP 500*"
        ]
    )
    # http_retries=0: one try per request; a round where every request failed gets one
    # more round before the endpoint is taken for down
    assert llm_env.request_count == 2
    result.stdout.fnmatch_lines(["*HTTP 500*(after 1 try)*"])


def test_option_names_match_the_settings_fields() -> None:
    from pytest_synthdata.settings import SETTING_NAMES

    assert setting_names() == SETTING_NAMES
