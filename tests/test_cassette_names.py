"""Every test and fixture gets a cassette of its own, whatever its name holds: names that
differ only in characters a file name cannot keep (``test_é``, ``test_è``) no longer share
one file (pytester runs against the loopback fake server, then offline)."""

from __future__ import annotations

import json

import pytest
from fakellm import FakeLLM

TESTS = """
import json, pathlib
import pytest
from pydantic import BaseModel


class Bill(BaseModel):
    patient_name: str
    total_charge: float


def keep(name, records):
    out = pathlib.Path(__file__).parent / f"{name}.json"
    out.write_text(json.dumps([r.model_dump() for r in records]))


@pytest.mark.synth(Bill, n=2, extra="bills of a dentist")
def test_é(synth_data):
    keep("e_acute", synth_data)


@pytest.mark.synth(Bill, n=3, extra="bills of a vet")
def test_è(synth_data):
    keep("e_grave", synth_data)


@pytest.mark.synth(Bill, n=2, extra="bills of a pharmacy")
def test_plain(synth_data):
    keep("plain", synth_data)
"""


def test_names_that_clean_to_the_same_file_name_get_files_of_their_own(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makepyfile(test_accents=TESTS)
    pytester.runpytest("--synth-no-cache").assert_outcomes(passed=3)
    folder = pytester.path / "cassettes" / "test_accents"
    names = sorted(path.name for path in folder.iterdir())
    assert len(names) == 3
    assert "test_plain.synth.yaml" in names  # a name a file can keep is kept as it is
    assert all(name.startswith("test") for name in names)
    recorded = {n: (pytester.path / f"{n}.json").read_text() for n in ("e_acute", "e_grave")}

    # offline: each test replays its own records
    pytester.runpytest("--synth-record-mode=none", "--synth-no-cache").assert_outcomes(passed=3)
    for name, text in recorded.items():
        assert (pytester.path / f"{name}.json").read_text() == text
    assert len(json.loads(recorded["e_acute"])) == 2
    assert len(json.loads(recorded["e_grave"])) == 3
