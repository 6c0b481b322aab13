"""What the plugin prints in a pytester run against the loopback server: the report header and
the cost summary."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fakellm import FakeLLM, Fault
from plugin_helpers import (
    source,
)

pytestmark = pytest.mark.usefixtures("clean_environment")


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
