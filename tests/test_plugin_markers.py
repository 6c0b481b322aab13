"""The synth marker as users see it, in pytester runs against the loopback server: the records
it injects, one test per record, several named markers, its registration, and what a suite
without it imports."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fakellm import FakeLLM
from plugin_helpers import (
    EXAMPLE,
    assert_one_generation,
    literal,
    prompt,
    response_records,
    source,
    written,
)

pytestmark = pytest.mark.usefixtures("clean_environment")


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
