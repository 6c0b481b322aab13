"""A conftest sets this plugin's defaults for the tests below it, as pytest-recording's
``vcr_config`` and ``vcr_cassette_dir`` do: ``synth_config`` (settings) and
``synth_cassette_dir`` (where the cassettes live)."""

from __future__ import annotations

import json

import pytest
from fakellm import FakeLLM

MODELS = """
from pydantic import BaseModel


class Inside(BaseModel):
    inside_id: int
    label: str


class Marked(BaseModel):
    marked_id: int
    label: str


class Outside(BaseModel):
    outside_id: int
    label: str
"""

INSIDE = """
import pytest
from models_here import Inside, Marked


@pytest.mark.synth(Inside, n=2)
def test_inside(synth_data):
    assert len(synth_data) == 2


@pytest.mark.synth(Marked, n=2, model="marker-model")
def test_marked(synth_data):
    assert len(synth_data) == 2


def test_factory(synth_factory):
    assert len(synth_factory(Inside, n=1, extra="from the factory")) == 1
"""

OUTSIDE = """
import pytest
from models_here import Outside


@pytest.mark.synth(Outside, n=2)
def test_outside(synth_data):
    assert len(synth_data) == 2
"""


def suite(pytester: pytest.Pytester, conftest: str) -> None:
    pytester.makepyfile(models_here=MODELS)
    pytester.makepyfile(test_outside=OUTSIDE)
    sub = pytester.mkpydir("sub")
    (sub / "conftest.py").write_text(conftest)
    (sub / "test_inside.py").write_text(INSIDE)
    pytester.syspathinsert()


def models_asked(llm: FakeLLM, name: str) -> set[str]:
    """The ``model`` of every chat request whose schema is the pydantic model ``name``."""
    return {
        str(request.body["model"])
        for request in llm.chat_requests
        if isinstance(request.body, dict) and f'"{name.lower()}_id"' in json.dumps(request.body)
    }


def test_synth_config_sits_between_the_command_line_and_the_marker(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    suite(
        pytester,
        "import pytest\n\n\n@pytest.fixture\ndef synth_config():\n"
        "    return {'model': 'folder-model', 'temperature': 0.2}\n",
    )
    result = pytester.runpytest("--synth-model=cli-model", "--synth-no-cache")
    result.assert_outcomes(passed=4)
    assert models_asked(llm_env, "Inside") == {"folder-model"}  # marker and factory
    assert models_asked(llm_env, "Marked") == {"marker-model"}  # the marker's keyword wins
    assert models_asked(llm_env, "Outside") == {"cli-model"}  # not below the conftest
    temperatures = {
        request.body.get("temperature")
        for request in llm_env.chat_requests
        if '"inside_id"' in json.dumps(request.body)
    }
    assert temperatures == {0.2}


def test_a_synth_config_that_is_not_settings_fails_its_tests_clearly(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    suite(
        pytester,
        "import pytest\n\n\n@pytest.fixture\ndef synth_config():\n"
        "    return {'n': 3, 'modle': 'x'}\n",
    )
    result = pytester.runpytest("--synth-no-cache")
    result.assert_outcomes(passed=1, failed=1, errors=2)  # markers fail at setup
    result.stdout.fnmatch_lines(
        [
            "*pytest-synthdata: sub/test_inside.py::test_inside: *the synth_config fixture "
            "sets 'modle', 'n', which are not settings; settings: model, *"
        ]
    )
    assert models_asked(llm_env, "Inside") == set()  # nothing was asked for


def test_synth_cassette_dir_moves_the_cassettes_and_replays_them_offline(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite(
        pytester,
        "import pathlib\nimport pytest\n\n\n@pytest.fixture\ndef synth_cassette_dir():\n"
        "    return pathlib.Path(__file__).parent / 'recorded'\n",
    )
    pytester.runpytest("--synth-no-cache").assert_outcomes(passed=4)
    root = pytester.path
    moved = sorted(p.relative_to(root).as_posix() for p in (root / "sub").rglob("*.synth.yaml"))
    assert moved == [
        "sub/recorded/test_inside/test_factory.synth.yaml",
        "sub/recorded/test_inside/test_inside.synth.yaml",
        "sub/recorded/test_inside/test_marked.synth.yaml",
    ]
    assert (root / "cassettes" / "test_outside" / "test_outside.synth.yaml").is_file()
    asked = llm_env.request_count
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    again = pytester.runpytest("--synth-record-mode=none", "--synth-no-cache")
    again.assert_outcomes(passed=4)
    again.stdout.fnmatch_lines(["sent to the endpoint: nothing"])
    assert llm_env.request_count == asked
    assert "cassette file(s) that no collected test" not in again.stdout.str()


def test_a_relative_synth_cassette_dir_is_under_the_rootdir(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    suite(
        pytester,
        "import pytest\n\n\n@pytest.fixture\ndef synth_cassette_dir():\n"
        "    return 'data/cassettes'\n",
    )
    pytester.runpytest("--synth-no-cache").assert_outcomes(passed=4)
    folder = pytester.path / "data" / "cassettes" / "test_inside"
    assert sorted(p.name for p in folder.iterdir()) == [
        "test_factory.synth.yaml",
        "test_inside.synth.yaml",
        "test_marked.synth.yaml",
    ]
    assert not (pytester.path / "sub" / "cassettes").exists()


def test_the_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures")
    text = result.stdout.str()
    for name in ("synth_config", "synth_cassette_dir"):
        assert f"\n{name}" in text, name
    assert "Default: {}" in text


def test_update_prunes_a_moved_cassette_only_when_its_test_passed(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    suite(
        pytester,
        "import pathlib\nimport pytest\n\n\n@pytest.fixture\ndef synth_cassette_dir():\n"
        "    return pathlib.Path(__file__).parent / 'recorded'\n",
    )
    pytester.runpytest("--synth-no-cache").assert_outcomes(passed=4)
    test_file = pytester.path / "sub" / "test_inside.py"
    test_file.write_text(
        test_file.read_text().replace(
            "def test_marked(synth_data):\n    assert len(synth_data) == 2",
            "def test_marked(synth_data):\n    assert False",
        )
    )
    result = pytester.runpytest("--synth-no-cache", "--synth-update")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        ["  not pruned sub/recorded/test_inside/test_marked.synth.yaml: a test that uses it*"]
    )
    kept = pytester.path / "sub" / "recorded" / "test_inside"
    assert sorted(p.name for p in kept.iterdir()) == [
        "test_factory.synth.yaml",
        "test_inside.synth.yaml",
        "test_marked.synth.yaml",
    ]


def test_synth_config_reaches_the_text_fixtures(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makeconftest(
        "import pytest\n\n\n@pytest.fixture\ndef synth_config():\n"
        "    return {'model': 'text-model'}\n"
    )
    pytester.makepyfile(
        test_town="""
        def test_town(synth_text_factory):
            assert "Lyon" in synth_text_factory({"city": "Lyon"})
        """
    )
    pytester.runpytest("--synth-no-cache").assert_outcomes(passed=1)
    assert llm_env.chat_requests
    assert {request.body["model"] for request in llm_env.chat_requests} == {"text-model"}
