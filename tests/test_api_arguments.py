"""Arguments of the library calls that are of the wrong kind, or that nothing would follow:
each is a clear :class:`SynthConfigError` naming the argument, before any request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakellm import FakeLLM
from models import MedicalBilling
from plugin_helpers import source

from pytest_synthdata import Settings, SynthConfigError, generate
from pytest_synthdata.texts import extract, generate_text


def _refused(llm: FakeLLM, call: Any, **arguments: Any) -> str:
    with pytest.raises(SynthConfigError) as info:
        call(**arguments)
    assert llm.request_count == 0  # refused before anything was sent
    return str(info.value)


CALLS = {
    "generate": lambda **kw: generate(MedicalBilling, 2, **kw),
    "generate_text": lambda **kw: generate_text({"actor": "Tom Hanks"}, **kw),
    "extract": lambda **kw: extract("Tom Hanks, 67", MedicalBilling, **kw),
}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("cassette", [None, "data.synth.yaml"])
def test_an_unknown_record_mode_is_refused_with_or_without_a_cassette(
    llm_env: FakeLLM, tmp_path: Path, call: str, cassette: str | None
) -> None:
    where = {"cassette": tmp_path / cassette} if cassette else {}
    message = _refused(llm_env, CALLS[call], record_mode="nonne", **where)
    assert "record_mode must be one of none, once, new_episodes, all, rewrite" in message
    assert "got 'nonne' (did you mean 'none'?)" in message


@pytest.mark.parametrize("mode", ["none", "new_episodes", "all", "rewrite"])
@pytest.mark.parametrize("call", CALLS)
def test_a_record_mode_without_a_cassette_is_refused(
    llm_env: FakeLLM, call: str, mode: str
) -> None:
    message = _refused(llm_env, CALLS[call], record_mode=mode)
    assert f"record_mode={mode!r} applies to the call's own cassette, and it names none" in message
    assert "add cassette='data.synth.yaml', or drop record_mode" in message


@pytest.mark.parametrize("mode", ["none", "new_episodes"])
def test_a_replaying_mode_with_only_a_cache_folder_is_refused(
    llm_env: FakeLLM, tmp_path: Path, mode: str
) -> None:
    """``none`` with a cache folder would still go to the endpoint on a cache miss."""
    message = _refused(llm_env, CALLS["generate"], record_mode=mode, cache_dir=tmp_path)
    assert f"record_mode={mode!r} applies to the call's own cassette" in message
    assert not any(tmp_path.iterdir())


def test_rewrite_with_a_cache_folder_skips_what_the_cache_holds(
    llm_env: FakeLLM, tmp_path: Path
) -> None:
    """What the cache documents: ``all`` and ``rewrite`` skip its reads, cassette or not."""
    first = generate(MedicalBilling, 2, seed=1, cache_dir=tmp_path)
    sent = llm_env.request_count
    assert generate(MedicalBilling, 2, seed=1, cache_dir=tmp_path) == first
    assert llm_env.request_count == sent  # read back from the cache
    generate(MedicalBilling, 2, seed=1, cache_dir=tmp_path, record_mode="rewrite")
    assert llm_env.request_count > sent  # asked again
    # the default record mode, given or not, needs no cassette
    assert generate(MedicalBilling, 2, seed=1, record_mode="once") is not None


@pytest.mark.parametrize("call", CALLS)
def test_settings_that_are_a_dict_are_refused(llm_env: FakeLLM, call: str) -> None:
    message = _refused(llm_env, CALLS[call], settings={"model": "x"})
    assert "settings must be a pytest_synthdata.Settings, got a dict with keys ['model']" in message
    assert "pass Settings(model=...), or give each setting as a keyword" in message


def test_settings_that_are_settings_are_used(llm_env: FakeLLM) -> None:
    generate(MedicalBilling, 2, settings=Settings(model="chosen-model"))
    assert llm_env.chat_requests[0].body["model"] == "chosen-model"


@pytest.mark.parametrize("name", ["cassette", "cache_dir"])
@pytest.mark.parametrize("call", CALLS)
def test_a_path_given_as_bytes_is_refused(
    llm_env: FakeLLM, tmp_path: Path, call: str, name: str
) -> None:
    path = str(tmp_path / "data.synth.yaml").encode()
    message = _refused(llm_env, CALLS[call], **{name: path})
    assert f"{name} must be a path (a str or a pathlib.Path), got bytes; decode it first" in message
    assert not any(tmp_path.iterdir())


def test_a_path_of_another_kind_is_refused(llm_env: FakeLLM) -> None:
    message = _refused(llm_env, CALLS["generate"], cassette=3)
    assert "cassette must be a path (a str or a pathlib.Path), got int" in message


def test_a_record_mode_without_a_cassette_inside_a_test_is_refused(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    """Inside a test, such a call would follow the session's record mode, not the one given."""
    pytester.makepyfile(
        source(
            """
            from pytest_synthdata import SynthConfigError, generate

            def test_call():
                with pytest.raises(SynthConfigError, match="follows the session's"):
                    generate(MedicalBilling, 2, record_mode="none")
            """
        )
    )
    pytester.runpytest("--synth-record-mode=once").assert_outcomes(passed=1)
    assert llm_env.request_count == 0
