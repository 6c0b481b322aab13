"""Every setting is declared once (pytest_synthdata.settings); the pytest flags and ini keys,
the environment variables, the command's flags, the marker's keywords and the validation all
follow the declarations (the options table of the documentation too: see
tests/test_docs_generated.py)."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from pytest_synthdata.errors import SynthConfigError
from pytest_synthdata.plugin.markers import allowed_keywords
from pytest_synthdata.settings import (
    SESSION_SETTINGS,
    SETTING_NAMES,
    SETTINGS,
    SessionSettings,
    Settings,
    settings_from_sources,
    storage_from_sources,
)

KINDS = {"str": str, "url": str, "path": str, "int": int, "float": float, "bool": bool}


@pytest.mark.parametrize(
    ("holder", "declarations"),
    [(Settings, SETTINGS), (SessionSettings, tuple(s for s in SESSION_SETTINGS if s.ini))],
)
def test_the_settings_classes_follow_the_declarations(
    holder: type, declarations: tuple[typing.Any, ...]
) -> None:
    fields = dataclasses.fields(holder)
    hints = typing.get_type_hints(holder)
    assert [f.name for f in fields] == [s.name for s in declarations]
    for field, setting in zip(fields, declarations, strict=True):
        assert field.default == setting.default, setting.name
        allowed = set(typing.get_args(hints[field.name])) or {hints[field.name]}
        if setting.kind in KINDS:
            assert KINDS[setting.kind] in allowed, setting.name
        assert (type(None) in allowed) == setting.optional, setting.name


def test_marker_keywords_are_the_dataset_settings() -> None:
    assert set(SETTING_NAMES) <= set(allowed_keywords())
    assert not {s.name for s in SESSION_SETTINGS} & set(allowed_keywords())


def test_every_declaration_is_a_pytest_flag_and_an_ini_key(pytester: pytest.Pytester) -> None:
    text = pytester.runpytest("--help").stdout.str()
    for setting in (*SETTINGS, *SESSION_SETTINGS):
        assert re.search(rf"^\s+{setting.flag}\b", text, re.M), setting.flag
        if setting.ini:
            assert re.search(rf"^\s+{setting.ini_key} \(", text, re.M), setting.ini_key
            assert setting.env in text
        else:
            assert not re.search(rf"^\s+{setting.ini_key} \(", text, re.M)


def test_every_declaration_the_command_has_is_a_flag(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_synthdata", "generate", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for setting in (*SETTINGS, *SESSION_SETTINGS):
        shown = re.search(rf"^\s+{setting.command_flag}\b", done.stdout, re.M) is not None
        assert shown == setting.command, setting.command_flag


def test_every_declaration_is_read_from_the_environment() -> None:
    values = {
        "model": "m", "base_url": "http://127.0.0.1:9/v1", "temperature": "0.5",
        "batch_size": "auto", "concurrency": "2", "structured": "tools", "max_retries": "0",
        "max_tokens": "100", "timeout": "2.5", "http_retries": "1", "max_n": "9",
    }  # fmt: skip
    env = {setting.env: values[setting.name] for setting in SETTINGS}
    settings = settings_from_sources({}, env, {})
    assert settings.concurrency == 2 and settings.timeout == 2.5 and settings.batch_size is None
    assert settings.structured == "tools" and settings.base_url == "http://127.0.0.1:9/v1"
    session = {"record_mode": "NONE", "cache_dir": "c", "no_cache": "yes", "update": "1",
               "show": "on", "export": "x", "price_in": "0.15", "price_out": "0.6"}  # fmt: skip
    storage = storage_from_sources(
        {}, {s.env: session[s.name] for s in SESSION_SETTINGS if s.ini}, {}
    )
    assert storage == SessionSettings("none", "c", True, True, True, "x", 0.15, 0.6)


def test_overrides_apply_on_top_of_every_source_and_name_themselves() -> None:
    env = {"SYNTHDATA_MODEL": "env-model", "SYNTHDATA_TEMPERATURE": "0.1"}
    cli = {"temperature": "0.2"}
    settings = settings_from_sources({"model": "ini-model"}, env, cli, {"temperature": 0.7})
    assert (settings.model, settings.temperature) == ("env-model", 0.7)
    assert settings_from_sources({}, env, cli, {"temperature": None}).temperature is None
    assert settings_from_sources({}, {}, {}, {"concurrency": "3"}).concurrency == 3
    with pytest.raises(SynthConfigError, match=r"synth_config 'concurrency': concurrency must"):
        settings_from_sources({}, {}, {}, {"concurrency": 0})
    with pytest.raises(SynthConfigError, match=r"unknown setting 'temprature' \(did you mean"):
        settings_from_sources({}, {}, {}, {"temprature": 1.0})
