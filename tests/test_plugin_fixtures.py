"""The plugin's fixtures as users see them, in pytester runs against the loopback server:
synth_factory, synth_fixture in a conftest, examples files next to the test file, and the
fixtures' documentation."""

from __future__ import annotations

import json
import textwrap

import pytest
from fakellm import FakeLLM
from plugin_helpers import (
    EXAMPLE,
    HEADER,
    assert_one_generation,
    prompt,
    source,
    written,
)

pytestmark = pytest.mark.usefixtures("clean_environment")


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
