"""The plugin's options, from the declarations of :mod:`pytest_synthdata.settings`, and the
settings a session (or a ``synth_config`` mapping) resolves to."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..settings import ENV_PREFIX, SESSION_SETTINGS, SETTINGS, Setting, env_name

if TYPE_CHECKING:
    from ..settings import SessionSettings, Settings

GROUP = ("synthdata", "pytest-synthdata: synthetic test data from an LLM")


def add_options(parser: pytest.Parser) -> None:
    """``--synth-*`` flags and ``synth_*`` ini keys, one per declared setting."""
    group = parser.getgroup(*GROUP)
    for setting in SETTINGS:
        group.addoption(
            setting.flag,
            dest=f"synth_{setting.name}",
            default=None,
            metavar=setting.name.upper(),
            help=_escaped(f"{setting.help_text}. {_sources(setting)}"),
        )
        parser.addini(setting.ini_key, f"pytest-synthdata: {setting.help_text}", default=None)
    for setting in SESSION_SETTINGS:
        keywords: dict[str, Any] = {"dest": f"synth_{setting.name}"}
        if setting.switch:
            keywords.update(action="store_true", default=False)
        else:
            keywords.update(default=None, metavar=setting.metavar or setting.name.upper())
        if setting.allowed:
            keywords.update(choices=setting.allowed)
            keywords.pop("metavar", None)
        help_text = f"{setting.help_text}. {_sources(setting)}" if setting.ini else setting.meaning
        group.addoption(setting.flag, help=_escaped(help_text), **keywords)
        if not setting.ini:
            continue
        # every ini value is read as text and checked by the settings (a switch too), so
        # that a bad one is an error naming its key, not pytest's bare "invalid truth value"
        parser.addini(setting.ini_key, f"pytest-synthdata: {setting.help_text}", default=None)


def _escaped(text: str) -> str:
    """Help for argparse, which formats ``%``."""
    return text.replace("%", "%%")


def _sources(setting: Setting) -> str:
    return f"ini: {setting.ini_key}, env: {setting.env}"


def raw_values(config: pytest.Config) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the ini file and the command line say, keyed by setting name."""
    declared = [s for s in (*SETTINGS, *SESSION_SETTINGS) if s.ini]
    ini = {s.name: config.getini(s.ini_key) for s in declared}
    cli = {s.name: config.getoption(f"synth_{s.name}") for s in declared}
    return ini, cli


def configured(ini: Mapping[str, Any], cli: Mapping[str, Any]) -> bool:
    """Whether anything sets an option (otherwise the defaults need no parsing at all)."""
    return (
        any(value not in (None, "", False) for value in (*ini.values(), *cli.values()))
        or any(key.startswith(ENV_PREFIX) for key in os.environ)
        or "OPENAI_BASE_URL" in os.environ
    )


def resolve_settings(
    config: pytest.Config, overrides: Mapping[str, object] | None = None
) -> Settings:
    """The session's settings (defaults < ini < environment < command line) with
    ``overrides`` (a ``synth_config`` mapping) on top; a bad value raises
    :class:`~pytest_synthdata.errors.SynthConfigError` naming where it came from."""
    from ..settings import settings_from_sources

    ini, cli = raw_values(config)
    return settings_from_sources(ini, os.environ, cli, overrides)


def resolve_storage(config: pytest.Config) -> SessionSettings:
    """The session-wide cassette, cache and report options (defaults < ini < env < CLI)."""
    from ..settings import storage_from_sources

    ini, cli = raw_values(config)
    return storage_from_sources(ini, os.environ, cli)


def session_settings(config: pytest.Config) -> tuple[Settings | None, SessionSettings | None]:
    """The session's settings and session-wide settings from the ini file, the environment
    and the command line (``None`` when nothing configures the plugin); a bad value is a
    usage error (except under ``--help``, which works whatever the settings say)."""
    from ..errors import SynthError
    from ..settings import SessionSettings, Settings, settings_from_sources, storage_from_sources

    ini, cli = raw_values(config)
    if not configured(ini, cli):
        return None, None
    try:
        settings = settings_from_sources(ini=ini, env=os.environ, cli=cli)
        storage = _updating(storage_from_sources(ini=ini, env=os.environ, cli=cli), cli)
    except SynthError as exc:
        if not config.getoption("help", False):
            raise pytest.UsageError(f"pytest-synthdata: {exc}") from None
        return Settings(), SessionSettings()
    if storage.cache_dir and not storage.no_cache:
        from .state import cache_dir_of

        _check_folder(config, "cache_dir", cache_dir_of(config, storage), ini, cli)
    if storage.export:
        folder = Path(config.invocation_params.dir) / storage.export
        _check_folder(config, "export", folder, ini, cli)
    return settings, storage


def _check_folder(
    config: pytest.Config, name: str, folder: Path, ini: dict[str, Any], cli: dict[str, Any]
) -> None:
    """A folder setting (the cache, the exports) that cannot be written is a usage error,
    before any test, that names where it was set."""
    from ..storage.paths import writable_problem

    problem = writable_problem(folder)
    if problem is None or config.getoption("help", False):
        return
    if cli.get(name):
        where = f"--synth-{name.replace('_', '-')}"
    elif os.environ.get(env_name(name)):
        where = f"environment variable {env_name(name)}"
    else:
        where = f"ini key synth_{name}"
    raise pytest.UsageError(
        f"pytest-synthdata: {where}: {problem}; point it at a folder you can write to (it is "
        "created if missing)"
    )


def _updating(storage: SessionSettings, cli: dict[str, Any]) -> SessionSettings:
    """``--synth-update`` records what is missing: the record mode ``new_episodes``, unless
    ``all`` or ``rewrite`` asks for everything afresh. A record mode of ``none`` from an ini
    file or the environment (a CI setting) gives way; one on the command line contradicts it."""
    if not storage.update:
        return storage
    if cli.get("record_mode") == "none":
        from ..errors import SynthConfigError

        raise SynthConfigError(
            "--synth-update records what is missing, but --synth-record-mode=none forbids "
            "recording; drop one of them"
        )
    if storage.record_mode in ("all", "rewrite"):
        return storage
    return dataclasses.replace(storage, record_mode="new_episodes")
