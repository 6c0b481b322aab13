"""A cassette is what pytest-synthdata wrote, or an error that names it: the tamper matrix."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakellm import FakeLLM
from models import EXAMPLES, MedicalBilling

from pytest_synthdata import SynthRecordingError, generate
from pytest_synthdata.storage.integrity import Tampered, seal, verify

pytestmark = pytest.mark.usefixtures("fresh_endpoints")

MODES = ["none", "once", "new_episodes", "all"]


def bills(path: Path, **kwargs: Any) -> list[MedicalBilling]:
    return list(generate(MedicalBilling, 4, examples=EXAMPLES, seed=3, cassette=path, **kwargs))


def edit_record(text: str) -> str:
    """Change one stored record so that it still validates."""
    return re.sub(r'"patient_name": "[^"]*"', '"patient_name": "Edited By Hand"', text, count=1)


def duplicate_record(text: str) -> str:
    lines = text.split("\n")
    first = next(i for i, line in enumerate(lines) if line.strip().startswith('{"patient_id"'))
    lines.insert(first + 1, lines[first])
    return "\n".join(lines)


def edit_answer(text: str) -> str:
    """Change a value inside a recorded answer (the exchanges), not the stored dataset."""
    head, _, tail = text.partition("\ninteractions:")
    tail, count = re.subn(r'"patient_id": ?\d+', '"patient_id": 111111', tail, count=1)
    assert count == 1
    return f"{head}\ninteractions:{tail}"


TAMPERS: dict[str, Callable[[str], str]] = {
    "edited record": edit_record,
    "duplicated record": duplicate_record,
    "edited answer": edit_answer,
    "truncated": lambda text: text[: len(text) // 2],
    "appended": lambda text: text + "extra: appended by hand\n",
    "empty": lambda text: "",
    "checksum removed": lambda text: text.split("\n", 1)[1],
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_a_tampered_cassette_is_an_error_in_every_mode(
    llm_env: FakeLLM, tmp_path: Path, tamper: str, mode: str
) -> None:
    path = tmp_path / "bills.synth.yaml"
    bills(path)
    calls = llm_env.request_count
    changed = TAMPERS[tamper](path.read_text())
    assert changed != path.read_text()
    path.write_text(changed)
    with pytest.raises(SynthRecordingError) as info:
        bills(path, record_mode=mode)
    message = str(info.value)
    assert str(path) in message
    assert "is not what pytest-synthdata recorded" in message
    assert "record_mode='rewrite'" in message
    # nothing was asked, served or re-recorded over the file
    assert llm_env.request_count == calls
    assert path.read_text() == changed


def test_rewrite_re_records_a_tampered_cassette(llm_env: FakeLLM, tmp_path: Path) -> None:
    path = tmp_path / "bills.synth.yaml"
    bills(path)
    path.write_text(edit_record(path.read_text()))
    fresh = bills(path, record_mode="rewrite")
    assert bills(path, record_mode="none") == fresh


FIXERS: dict[str, Callable[[str], str]] = {
    "CRLF line endings": lambda text: text.replace("\n", "\r\n"),
    "no newline at the end": lambda text: text.rstrip("\n"),
    "extra blank lines at the end": lambda text: text + "\n\n\n",
    "trailing white space": lambda text: text.replace("\n", "  \n"),
    "byte-order mark": lambda text: "\ufeff" + text,
}


@pytest.mark.parametrize("fixer", list(FIXERS))
def test_line_ending_and_whitespace_fixers_keep_a_cassette_valid(
    llm_env: FakeLLM, tmp_path: Path, fixer: str
) -> None:
    path = tmp_path / "bills.synth.yaml"
    recorded = bills(path)
    path.write_bytes(FIXERS[fixer](path.read_text()).encode("utf-8"))
    assert bills(path, record_mode="none") == recorded
    assert llm_env.request_count == 1


@pytest.mark.parametrize(
    "value",
    [
        "trailing space ",
        "two lines \nwith a space before the break",
        "tab\t\nbreak",
        "carriage\r\nreturn",
        "lone\rcarriage",
        " leading and trailing \n ",
        "unicode\u2028separator",
        "x" * 150 + " " + "y" * 150,
    ],
)
def test_whitespace_fixers_cannot_change_what_a_cassette_holds(value: str) -> None:
    """The serializer never writes a line whose trailing white space means something, so
    normalising it (what the checksum allows) leaves every value as it was."""
    import yaml

    from pytest_synthdata.storage.cassettes import YamlSerializer

    data = {"interactions": [], "version": 1, "metadata": {"note": value, "list": [value]}}
    text = YamlSerializer.serialize(data)
    fixed = "\r\n".join(line.rstrip() for line in text.split("\n")) + "\n\n"
    assert yaml.safe_load(verify(fixed))["metadata"] == {"note": value, "list": [value]}


def test_seal_and_verify() -> None:
    body = "interactions: []\nversion: 1\n"
    sealed = seal(body)
    assert sealed.startswith("checksum: sha256:")
    assert verify(sealed) == body
    with pytest.raises(Tampered, match="does not match its checksum"):
        verify(sealed.replace("version: 1", "version: 2"))
    with pytest.raises(Tampered, match="no checksum line"):
        verify(body)
    with pytest.raises(Tampered, match="empty"):
        verify("  \n")


PLUGIN_SUITE = """
import pytest
from pydantic import BaseModel


class Bill(BaseModel):
    patient_id: int
    patient_name: str


@pytest.mark.synth(Bill, n=3)
def test_bills(synth_data):
    assert len(synth_data) == 3
"""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tamper", ["edited record", "appended", "empty"])
def test_a_tampered_cassette_fails_its_test_in_every_mode(
    pytester: pytest.Pytester, llm_env: FakeLLM, tamper: str, mode: str
) -> None:
    pytester.makepyfile(test_bills=PLUGIN_SUITE)
    pytester.runpytest("--synth-no-cache").assert_outcomes(passed=1)
    path = pytester.path / "cassettes" / "test_bills" / "test_bills.synth.yaml"
    changed = TAMPERS[tamper](path.read_text())
    path.write_text(changed)
    calls = llm_env.request_count
    result = pytester.runpytest("--synth-no-cache", f"--synth-record-mode={mode}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*cassette {path} is not what pytest-synthdata recorded*"
            "test_bills.py::test_bills --synth-record-mode=rewrite*"
        ]
    )
    assert llm_env.request_count == calls
    assert path.read_text() == changed


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        'quo"te',
        "tab\there",
        "Åsa Ñúñez 日本",
        "line\u2028sep",
        "c1\x85",
        "bom\ufeff",
        "x" * 300,
    ],
)
def test_the_quick_datasets_reader_agrees_with_yaml(value: str) -> None:
    """The replay fast path reads a stored dataset without parsing its records as YAML;
    whatever a value forces the serializer to write, it reads the same entry (or leaves the
    section to the YAML parser)."""
    import yaml

    from pytest_synthdata.storage.cassettes import YamlSerializer, _quick_entry
    from pytest_synthdata.storage.datasets import encode

    entries = {
        f"dataset:{i:032x}": encode(
            "Bill", [{"name": value, "i": i}, {"name": "b"}], {"requests": 1}
        )
        for i in range(3)
    }
    text = verify(YamlSerializer.serialize({"interactions": [], "version": 1, "metadata": entries}))
    head = text[: text.index("\ninteractions:") + 1]
    parsed = yaml.safe_load(head)["datasets"]
    for key in entries:
        quick = _quick_entry(head, key)
        assert quick is None or quick == parsed[key]
    assert _quick_entry(head, "dataset:missing") is None
