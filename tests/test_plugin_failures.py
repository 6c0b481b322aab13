"""Bad input and failed generations in pytester runs against the loopback server: each fails
only its own test, with the typed message and no traceback noise."""

from __future__ import annotations

import fnmatch
import textwrap

import pytest
from fakellm import FakeLLM
from plugin_helpers import (
    EXAMPLE,
    HEADER,
    assert_no_traceback_noise,
    failure_line,
    literal,
    source,
)

pytestmark = pytest.mark.usefixtures("clean_environment")


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
