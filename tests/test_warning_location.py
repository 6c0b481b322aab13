"""A warning names the caller's line: the ``generate(...)`` that made the dataset, not a line
inside the package or the event loop that ran its requests. A marker's dataset, made by
pytest through a fixture, has no such line: its warnings name the package's line, never
pytest's or the interpreter's."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from command import environment
from fakellm import FakeLLM, Fault
from models import MedicalBilling

from pytest_synthdata import generate
from pytest_synthdata.errors import SynthDataWarning


@pytest.fixture(autouse=True)
def _no_faults_left_behind(fake_llm: FakeLLM) -> Any:
    yield
    fake_llm.reset()


def _same_body(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**record, "body": "It does not work."} for record in records]


TICKET = """
from pydantic import BaseModel, Field


class Ticket(BaseModel):
    ticket_id: int = Field(ge=1)
    title: str
    body: str
"""


def test_a_fallback_warning_inside_the_event_loop_names_the_callers_line(
    llm_env: FakeLLM,
) -> None:
    llm_env.supported_modes = {"json_object"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        assert len(generate(MedicalBilling, n=3, max_retries=0)) == 3
    ours = [w for w in caught if issubclass(w.category, SynthDataWarning)]
    assert ours, [str(w.message) for w in caught]
    assert "does not support structured mode" in str(ours[0].message)
    assert (Path(ours[0].filename).resolve(), ours[0].lineno) == (Path(__file__).resolve(), line)


def test_a_script_sees_its_own_line(tmp_path: Path, llm: FakeLLM) -> None:
    llm.always(Fault.mutate(_same_body))
    (tmp_path / "tickets_here.py").write_text(TICKET)
    script = tmp_path / "make.py"
    script.write_text(
        textwrap.dedent(
            """\
            from pytest_synthdata import generate
            from tickets_here import Ticket

            generate(Ticket, 10, near_duplicates=None, cache_dir="cache")
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-W", "always::UserWarning", str(script)],
        cwd=tmp_path,
        env=environment(llm, PYTHONPATH=str(Path(__file__).resolve().parents[1])),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"{script}:4: SynthDataWarning: Ticket dataset: little variety" in done.stderr, (
        done.stderr
    )


def test_in_a_test_the_warning_names_the_test_line_and_a_markers_names_the_package(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    llm_env.always(Fault.mutate(_same_body))
    pytester.makepyfile(tickets_here=TICKET)
    pytester.makepyfile(
        test_tickets=textwrap.dedent(
            """\
            import pytest
            from pytest_synthdata import generate
            from tickets_here import Ticket


            def test_library():
                assert len(generate(Ticket, 10, near_duplicates=None)) == 10


            @pytest.mark.synth(Ticket, n=10, near_duplicates=None)
            def test_marker(synth_data):
                assert len(synth_data) == 10
            """
        )
    )
    pytester.syspathinsert()
    result = pytester.runpytest("--synth-no-cache")
    result.assert_outcomes(passed=2, warnings=2)
    out = result.stdout.str()
    lines = [line for line in out.splitlines() if "SynthDataWarning: Ticket dataset" in line]
    assert len(lines) == 2, out
    library, marker = sorted(lines, key=lambda line: "pytest_synthdata" in line)
    assert "test_tickets.py:7: SynthDataWarning" in library, out
    assert f"pytest_synthdata{'/' if '/' in marker else chr(92)}" in marker, out
    assert "_pytest" not in marker and "runpy" not in marker, out


def test_every_warning_of_the_package_goes_through_errors_warn() -> None:
    # One choke point: a warning raised any other way would name a line inside the package.
    import pytest_synthdata

    package = Path(pytest_synthdata.__file__).parent
    raised_elsewhere = [
        f"{path.relative_to(package)}:{number}"
        for path in sorted(package.rglob("*.py"))
        if path.name != "errors.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "warnings.warn(" in line or "warnings.warn_explicit(" in line
    ]
    assert not raised_elsewhere, f"use pytest_synthdata.errors.warn at {raised_elsewhere}"
