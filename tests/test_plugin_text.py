"""Text datasets, extraction and the round trip inside pytest, recorded and replayed."""

from __future__ import annotations

import json

import pytest
import yaml
from fakellm import FakeLLM
from stored import only_datasets, strip_datasets

SUITE = """
import json
import pathlib

import pytest
from pydantic import BaseModel

OUT = pathlib.Path(__file__).parent / "out"


class Actor(BaseModel):
    name: str
    films: list[str]


ACTORS = [
    {"name": "Tom Hanks", "films": ["Forrest Gump", "Saving Private Ryan", "The Green Mile"]},
    {"name": "Tom Hardy", "films": ["Inception", "Mad Max: Fury Road", "Dunkirk"]},
]


def save(tag, value):
    OUT.mkdir(exist_ok=True)
    (OUT / f"{tag}.json").write_text(json.dumps(value))


@pytest.mark.synth_text(
    [["blue", "yellow"], {"actor": "Tom Hanks", "movies": ["Forrest Gump"]}, ACTORS],
    preferences={"style": "gossip", "minimum_length": 120},
)
def test_texts(synth_texts):
    assert len(synth_texts) == 3
    for record in synth_texts:
        assert len(record.text) >= 120
    assert "Tom Hanks" in synth_texts[1].text and "Forrest Gump" in synth_texts[1].text
    save("texts", [r.text for r in synth_texts])


def test_factory_and_extract(synth_text_factory, synth_extract):
    text = synth_text_factory(ACTORS[1], {"style": "film review"})
    actor = synth_extract(text, Actor)
    assert actor.name == "Tom Hardy"
    save("extract", {"text": text, "actor": actor.model_dump()})


def test_round_trip(synth_round_trip):
    report = synth_round_trip([Actor(**a) for a in ACTORS])
    assert report.accuracy == 1.0, report
    save("report", report.per_field)
"""

OFFLINE = """
import socket

def _refuse(*args, **kwargs):
    raise AssertionError("a socket was opened during an offline replay")

_saved = {}

def pytest_configure(config):
    _saved["connect"] = socket.socket.connect
    socket.socket.connect = _refuse

def pytest_unconfigure(config):
    socket.socket.connect = _saved["connect"]
"""


def out(pytester: pytest.Pytester, tag: str) -> object:
    return json.loads((pytester.path / "out" / f"{tag}.json").read_text())


@pytest.mark.parametrize("source", ["datasets", "exchanges"])
def test_text_fixtures_record_then_replay_offline(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    pytester.makepyfile(test_actor_texts=SUITE)
    first = pytester.runpytest("--synth-no-cache")
    first.assert_outcomes(passed=3)
    first.stdout.fnmatch_lines(["*synthdata*", "*recorded*"])
    calls = llm_env.request_count
    assert calls >= 4
    texts, extracted = out(pytester, "texts"), out(pytester, "extract")
    folder = pytester.path / "cassettes" / "test_actor_texts"
    assert sorted(p.name for p in folder.iterdir()) == [
        "test_factory_and_extract.synth.yaml",
        "test_round_trip.synth.yaml",
        "test_texts.synth.yaml",
    ]
    report = out(pytester, "report")
    for path in folder.iterdir():
        # texts, extractions and round trips are kept in the dataset store like records
        assert yaml.safe_load(path.read_text())["datasets"], path
        (only_datasets if source == "datasets" else strip_datasets)(path)
    pytester.makeconftest(OFFLINE)
    monkeypatch.delenv("OPENAI_API_KEY")
    (pytester.path / "out").rename(pytester.path / "first")
    second = pytester.runpytest("--synth-record-mode=none", "--synth-no-cache")
    second.assert_outcomes(passed=3)
    assert out(pytester, "texts") == texts
    assert out(pytester, "extract") == extracted
    assert out(pytester, "report") == report
    assert llm_env.request_count == calls


def test_a_missing_value_is_reasked_inside_pytest(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    llm_env.text_omit_values = {"Dunkirk"}
    llm_env.text_omit_times = 1
    pytester.makepyfile(test_actor_texts=SUITE)
    result = pytester.runpytest("-k", "factory")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 retry(ies)*"])
    followups = [r for r in llm_env.chat_requests if "Dunkirk" in json.dumps(r.body)]
    prompts = [m["content"] for r in followups for m in r.body["messages"]]
    assert any('does not mention "Dunkirk"' in p for p in prompts)


def test_text_errors_fail_the_test_cleanly(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    pytester.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.synth_text("not a list")
        def test_not_a_list(synth_texts):
            pass

        @pytest.mark.synth_text([["a"]], preferencs={"style": "x"})
        def test_typo(synth_texts):
            pass

        @pytest.mark.synth_text([["a"]], preferences={"minimum_length": "long"})
        def test_bad_preference(synth_texts):
            pass

        def test_no_marker(synth_texts):
            pass

        def test_extract_not_a_model(synth_extract):
            synth_extract("some text", dict)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1, errors=4)
    text = result.stdout.str()
    assert "Traceback" not in text
    result.stdout.fnmatch_lines(
        [
            "*test_not_a_list: @pytest.mark.synth_text('not a list'): the first argument must "
            "be a list of field sets*",
            "*test_typo: *unknown keyword 'preferencs' (did you mean 'preferences'?)*",
            "*test_bad_preference: *minimum_length*",
            "*test_no_marker: the fixture 'synth_texts' needs a @pytest.mark.synth_text*",
            "*test_extract_not_a_model: synth_extract: *BaseModel*",
        ],
        consecutive=False,
    )
    assert llm_env.request_count == 0
