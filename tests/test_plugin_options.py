"""The plugin's options as users see them: every setting from the command line, the ini file
and the environment, their precedence, help and usage errors."""

from __future__ import annotations

import re
from typing import Any

import models
import pytest
from fakellm import FakeLLM
from plugin_helpers import (
    output,
    prompt,
    source,
)

from pytest_synthdata.records import output_budget
from pytest_synthdata.settings import ENV_PREFIX, setting_names

pytestmark = pytest.mark.usefixtures("clean_environment")


# --- 7. options ------------------------------------------------------------------------------

# A valid, non-default value for every setting, as typed on a command line or in an ini file.
OPTION_VALUES = {
    "model": ("opt-model", "'opt-model'"),
    "base_url": ("http://127.0.0.1:9/v1", "'http://127.0.0.1:9/v1'"),
    "temperature": ("0.3", "0.3"),
    "batch_size": ("7", "7"),
    "concurrency": ("3", "3"),
    "structured": ("json_object", "'json_object'"),
    "max_retries": ("1", "1"),
    "max_tokens": ("2000", "2000"),
    "timeout": ("30", "30.0"),
    "http_retries": ("1", "1"),
    "max_n": ("100", "100"),
}


def test_option_table_covers_every_setting() -> None:
    assert set(OPTION_VALUES) == set(setting_names())


@pytest.mark.parametrize("source_kind", ["cli", "ini", "env"])
def test_every_option_is_read_from_each_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source_kind: str
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    args: list[str] = []
    if source_kind == "cli":
        args = [
            f"--synth-{name.replace('_', '-')}={raw}" for name, (raw, _) in OPTION_VALUES.items()
        ]
    elif source_kind == "ini":
        pytester.makeini(
            "[pytest]\n" + "".join(f"synth_{n} = {raw}\n" for n, (raw, _) in OPTION_VALUES.items())
        )
    else:
        for name, (raw, _) in OPTION_VALUES.items():
            monkeypatch.setenv(ENV_PREFIX + name.upper(), raw)
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    expected = ", ".join(f"{name}={shown}" for name, (_, shown) in OPTION_VALUES.items())
    result.stdout.fnmatch_lines([f"synthdata: {expected}"])


def run_and_body(pytester: pytest.Pytester, server: FakeLLM, module: str, *args: str) -> Any:
    """Run ``module`` (one test generating one dataset) and return its first batch's body."""
    before = len(server.chat_requests)
    pytester.runpytest(f"{module}.py", *args).assert_outcomes(passed=1)
    new = server.chat_requests[before:]
    assert new
    firsts = [r for r in new if "This is batch 1 of" in prompt(r)] or new
    return firsts[0].body


def test_precedence_defaults_ini_env_cli_marker(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = """
        @pytest.mark.synth(MedicalBilling, n=10)
        def test_plain(synth_data):
            assert len(synth_data) == 10
        """
    for stage in ("defaults", "ini", "env", "cli"):
        pytester.makepyfile(**{f"test_{stage}": source(plain)})
    pytester.makepyfile(
        test_marker=source(
            """
            @pytest.mark.synth(MedicalBilling, n=10, model="marker-model", temperature=1.5)
            def test_marked(synth_data):
                assert len(synth_data) == 10
            """
        )
    )

    def picked(body: Any) -> tuple[Any, Any, Any]:
        return body["model"], body.get("temperature"), body["max_tokens"]

    # each request asks for at most what its records need, and never more than max_tokens
    body = run_and_body(pytester, llm_env, "test_defaults")
    assert picked(body) == ("gpt-4o-mini", None, output_budget(models.MedicalBilling, 10))
    assert output_budget(models.MedicalBilling, 10) < 4096

    # a max_tokens below one record's budget reaches the body as it is (one record per request)
    assert output_budget(models.MedicalBilling, 1) > 80
    pytester.makeini(
        "[pytest]\nsynth_model = ini-model\nsynth_temperature = 0.1\nsynth_max_tokens = 60\n"
    )
    assert picked(run_and_body(pytester, llm_env, "test_ini")) == ("ini-model", 0.1, 60)

    monkeypatch.setenv("SYNTHDATA_MODEL", "env-model")
    monkeypatch.setenv("SYNTHDATA_TEMPERATURE", "0.2")
    assert picked(run_and_body(pytester, llm_env, "test_env")) == ("env-model", 0.2, 60)

    monkeypatch.setenv("SYNTHDATA_MAX_TOKENS", "70")
    cli = ["--synth-model=cli-model", "--synth-temperature", "0.3"]
    assert picked(run_and_body(pytester, llm_env, "test_cli", *cli)) == ("cli-model", 0.3, 70)

    cli.append("--synth-max-tokens=80")
    marked = run_and_body(pytester, llm_env, "test_marker", *cli)
    assert picked(marked) == ("marker-model", 1.5, 80)


def test_help_lists_every_option_and_ini_key(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == 0
    text = result.stdout.str()
    group = text.index("pytest-synthdata: synthetic test data from an LLM:")
    ini_section = text.index("[pytest] ")  # the ini-options section
    assert group < ini_section
    for name in setting_names():
        flag = "--synth-" + name.replace("_", "-")
        assert re.search(rf"^\s+{flag}={name.upper()}\b", text[group:ini_section], re.M), flag
        assert re.search(rf"^\s+synth_{name} \(string\):", text[ini_section:], re.M), name
    assert "api-key" not in text and "api_key" not in text


@pytest.mark.parametrize(
    ("args", "ini", "env", "message"),
    [
        (["--synth-concurrency=-1"], "", {}, "*--synth-concurrency*concurrency must be*>= 1*-1*"),
        (["--synth-structured=xml"], "", {}, "*--synth-structured*structured must be one of*xml*"),
        ([], "synth_batch_size = abc", {}, "*ini key synth_batch_size*expected an integer*abc*"),
        ([], "", {"SYNTHDATA_TEMPERATURE": "hot"}, "*SYNTHDATA_TEMPERATURE*expected a number*"),
    ],
)
def test_invalid_option_values_are_usage_errors(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    ini: str,
    env: dict[str, str],
    message: str,
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-synthdata: {message}"])
    assert "Traceback" not in output(result)
    # --help still works, so the user can look up the option they got wrong
    assert pytester.runpytest(*args, "--help").ret == 0


def test_there_is_no_api_key_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--synth-api-key=sk-nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --synth-api-key=sk-nope*"])

    pytester.makeini("[pytest]\nsynth_api_key = sk-nope\n")
    result = pytester.runpytest("--strict-config")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*Unknown config option: synth_api_key*"])
    assert "api_key" not in setting_names()


def test_option_names_match_the_settings_fields() -> None:
    from pytest_synthdata.settings import SETTING_NAMES

    assert setting_names() == SETTING_NAMES
