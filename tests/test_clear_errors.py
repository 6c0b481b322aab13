"""Mistakes pytest would report badly get a message that says what to do, without a
traceback: the marker with the model alone, a conftest ``synth_fixture`` with the plugin
turned off; and ``--fixtures`` shows a fixture where the user defined it."""

from __future__ import annotations

import pytest

MODEL = """
import pytest
from pydantic import BaseModel


class Bill(BaseModel):
    patient_id: int
"""


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("@pytest.mark.synth(Bill)\ndef test_bills(synth_data):\n    pass\n", 9),
        ("pytestmark = pytest.mark.synth(Bill)\n\n\ndef test_bills(synth_data):\n    pass\n", 9),
        (
            "@pytest.mark.synth(Bill)\nclass TestBills:\n    def test_a(self, synth_data):\n"
            "        pass\n",
            9,
        ),
    ],
    ids=["decorator", "pytestmark", "class"],
)
def test_the_marker_with_the_model_alone_says_what_to_write(
    pytester: pytest.Pytester, body: str, line: int
) -> None:
    pytester.makepyfile(test_one=MODEL + "\n\n" + body, test_other="def test_fine():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            f"pytest-synthdata: test_one.py:{line}: @pytest.mark.synth(Bill) gives the model "
            "alone. pytest reads a marker called with a single class as decorating that class, "
            "so pytest cannot collect this module. Give the number of records too: "
            "@pytest.mark.synth(Bill, n=10) (n may also be positional: "
            "@pytest.mark.synth(Bill, 10))",
        ]
    )
    text = result.stdout.str()
    assert "BaseModel.__init__()" not in text and "Traceback" not in text
    source = (pytester.path / "test_one.py").read_text().splitlines()
    assert "pytest.mark.synth(Bill)" in source[line - 1]


def test_other_collection_errors_are_left_as_they_are(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_one=MODEL + "\n\n@pytest.mark.synth(Bill, n=2)\ndef test_bills(synth_data):\n"
        "    pass\n\nBill(1)\n"
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*TypeError: BaseModel.__init__() takes 1 positional argument*"])
    assert "gives the model alone" not in result.stdout.str()


CONFTEST = (
    MODEL
    + """
from pytest_synthdata import synth_fixture

bills = synth_fixture(Bill, n=2)
"""
)


@pytest.mark.parametrize("how", ["-p no:synthdata", "PYTEST_DISABLE_PLUGIN_AUTOLOAD"])
def test_a_conftest_fixture_with_the_plugin_off_fails_its_tests_clearly(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile("def test_uses(bills):\n    pass\n\n\ndef test_does_not():\n    pass\n")
    if how.startswith("-p"):
        result = pytester.runpytest_subprocess(*how.split())
    else:
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "pytest-synthdata: fixture 'bills' (synth_fixture in *conftest.py): the "
            "pytest-synthdata plugin is not active in this run (it was disabled with "
            "-p no:synthdata, or plugin autoloading is off), so synthetic data cannot be "
            "produced. Drop -p no:synthdata (or add -p synthdata), or deselect the tests "
            "that use this fixture",
        ]
    )
    text = result.stdout.str()
    assert "KeyError" not in text and "Traceback" not in text and "stash" not in text


def test_fixtures_point_at_the_users_own_definitions(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_named=MODEL + "\n\n@pytest.mark.synth(Bill, n=2, name='few_bills')\n"
        "def test_few(few_bills):\n    pass\n"
    )
    result = pytester.runpytest("--fixtures", "-v")
    assert result.ret == 0
    shown = {
        line.split(" -- ")[0].split(" [")[0]: line.split(" -- ")[1]
        for line in result.stdout.lines
        if " -- " in line
    }
    conftest = (pytester.path / "conftest.py").read_text().splitlines()
    file, line = shown["bills"].rsplit(":", 1)
    assert file == "conftest.py"
    assert conftest[int(line) - 1] == "bills = synth_fixture(Bill, n=2)"
    test_file = (pytester.path / "test_named.py").read_text().splitlines()
    file, line = shown["few_bills"].rsplit(":", 1)
    assert file == "test_named.py"
    assert test_file[int(line) - 1] == "@pytest.mark.synth(Bill, n=2, name='few_bills')"
    assert "pytest_synthdata" not in shown["bills"] + shown["few_bills"]
