"""Typed, frozen settings shared by the library and the pytest plugin.

One precedence, documented in the README: built-in defaults < ini keys (``synth_*`` in
``[tool.pytest.ini_options]``) < environment (``SYNTHDATA_*``, plus ``OPENAI_BASE_URL``)
< command line (``--synth-*``); keyword arguments of a marker, a factory call or a library
call apply to that one dataset on top of all of them. The API key is read only from the
``OPENAI_API_KEY`` environment variable (or an explicit ``client=``), never from a file.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .errors import SynthConfigError, did_you_mean
from .llm.modes import structured_values
from .options import (
    BOOLEAN_STORAGE_NAMES,
    DEFAULT_MODEL,
    ENV_PREFIX,
    HELP,
    RECORD_MODES,
    SETTING_NAMES,
    SPEC_WORDS,
    STORAGE_HELP,
    STORAGE_NAMES,
    env_name,
)
from .storage.secrets import REGISTRY

__all__ = [
    "BOOLEAN_STORAGE_NAMES",
    "DEFAULT_MODEL",
    "ENV_PREFIX",
    "HELP",
    "RECORD_MODES",
    "SETTING_NAMES",
    "SPEC_WORDS",
    "STORAGE_HELP",
    "STORAGE_NAMES",
    "Settings",
    "StorageOptions",
    "env_name",
    "environment_base_url",
    "setting_names",
    "settings_from_sources",
    "storage_from_sources",
]

StructuredMode = Literal["auto", "json_schema", "json_object", "tools"]
"""The values of ``structured`` for type checkers; what is accepted at run time comes from the
mode registry (:func:`pytest_synthdata.llm.modes.structured_values`), which a test keeps equal
to this."""


@dataclass(frozen=True)
class Settings:
    """How datasets are produced. Every field can be set per dataset as a keyword argument."""

    model: str = DEFAULT_MODEL
    """LLM model (or Azure deployment) name."""
    base_url: str | None = None
    """OpenAI-compatible endpoint; ``None`` means ``OPENAI_BASE_URL`` or api.openai.com."""
    temperature: float | None = None
    """Sampling temperature; ``None`` leaves it to the endpoint's default."""
    batch_size: int | None = None
    """Records asked for per request; ``None`` picks one from the schema and ``max_tokens``."""
    concurrency: int = 8
    """Most requests in flight at once."""
    structured: StructuredMode = "auto"
    """Structured-output mode; ``auto`` tries the registered modes in order (json_schema, then
    json_object, then tools) and keeps the first one the endpoint accepts."""
    max_retries: int = 3
    """Follow-up requests per planned batch, pooled for the whole dataset, to replace
    invalid, duplicate or missing records (a batch uses at most this many in a row)."""
    max_tokens: int = 4096
    """Output-token limit sent with every request (bounds the batch size too)."""
    timeout: float = 60.0
    """Seconds one try of a request may take, first byte to last (a deadline, not a read
    timeout); a request is abandoned after two tries time out."""
    http_retries: int = 5
    """Retries of a request that failed transiently: 429, 5xx, a lost connection, a timeout,
    an HTTP 200 whose body is not JSON (waiting as ``retry-after`` says, else backing off)."""
    max_n: int = 5000
    """Largest ``n`` accepted without raising this limit explicitly."""

    def __post_init__(self) -> None:
        _check_str(self.model, "model")
        if self.base_url is not None:
            _check_str(self.base_url, "base_url")
            REGISTRY.add_url(self.base_url)  # its userinfo and credential query values
            if not self.base_url.startswith(("http://", "https://")):
                raise SynthConfigError(
                    f"base_url must start with http:// or https://, got {self.base_url!r}"
                )
        if self.temperature is not None:
            _check_number(self.temperature, "temperature", 0.0, 2.0)
        if self.batch_size is not None:
            _check_int(self.batch_size, "batch_size", 1)
        _check_int(self.concurrency, "concurrency", 1)
        accepted = structured_values()
        if self.structured not in accepted:
            raise SynthConfigError(
                f"structured must be one of {', '.join(accepted)}; got {self.structured!r}"
            )
        _check_int(self.max_retries, "max_retries", 0)
        _check_int(self.max_tokens, "max_tokens", 16)
        _check_number(self.timeout, "timeout", 0.001, None)
        _check_int(self.http_retries, "http_retries", 0)
        _check_int(self.max_n, "max_n", 1)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed; unknown names are a :class:`SynthConfigError`."""
        unknown = sorted(set(changes) - set(setting_names()))
        if unknown:
            known = (*SPEC_WORDS, *setting_names())
            hints = [f"{name!r}{did_you_mean(name, known)}" for name in unknown]
            raise SynthConfigError(f"unknown keyword {', '.join(hints)}; known: {', '.join(known)}")
        return dataclasses.replace(self, **changes)

    def non_defaults(self) -> dict[str, Any]:
        """The fields whose value differs from the built-in default."""
        default = Settings()
        return {
            name: getattr(self, name)
            for name in setting_names()
            if getattr(self, name) != getattr(default, name)
        }


def setting_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(Settings))


def _check_str(value: object, name: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise SynthConfigError(f"{name} must be a non-empty string, got {value!r}")


def _check_int(value: object, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SynthConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_number(value: object, name: str, low: float, high: float | None) -> None:
    """Every float setting: a finite number in range (NaN compares false with any bound)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise SynthConfigError(f"{name} must be a finite number {bound}, got {value!r}")


def environment_base_url() -> str | None:
    """``OPENAI_BASE_URL``, checked as ``--synth-base-url`` would be."""
    url = os.environ.get("OPENAI_BASE_URL") or None
    if url is not None and not url.startswith(("http://", "https://")):
        raise SynthConfigError(
            f"environment variable OPENAI_BASE_URL must start with http:// or https://, got "
            f"{url!r}; fix it or unset it (the default is https://api.openai.com/v1)"
        )
    return url


# --- building Settings from ini keys, the environment and the command line ---------------


def settings_from_sources(
    ini: Mapping[str, object],
    env: Mapping[str, str],
    cli: Mapping[str, object],
) -> Settings:
    """Defaults < ini < environment < command line. ``None``/empty values are "not set".

    ``ini`` and ``cli`` are keyed by setting name; ``env`` is the process environment.
    Errors name the source (``ini synth_x``, ``SYNTHDATA_X``, ``--synth-x``) and the fix.
    """
    values: dict[str, Any] = {}
    for name in setting_names():
        sources: list[tuple[str, object]] = [(f"ini key synth_{name}", ini.get(name))]
        variable = env_name(name)
        if name == "base_url" and not env.get(variable) and env.get("OPENAI_BASE_URL"):
            variable = "OPENAI_BASE_URL"
        sources.append((f"environment variable {variable}", env.get(variable)))
        sources.append((f"--synth-{name.replace('_', '-')}", cli.get(name)))
        for where, raw in sources:
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            value = _convert(name, raw, where)
            try:
                Settings(**{name: value})
            except SynthConfigError as exc:
                raise SynthConfigError(f"{where}: {exc}") from None
            values[name] = value
    return Settings(**values)


def _convert(name: str, raw: object, where: str) -> Any:
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    kind = {
        "temperature": float,
        "timeout": float,
        "batch_size": int,
        "concurrency": int,
        "max_retries": int,
        "max_tokens": int,
        "http_retries": int,
        "max_n": int,
    }.get(name)
    if kind is None:
        return text
    if name == "batch_size" and text.lower() == "auto":
        return None
    try:
        return kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise SynthConfigError(f"{where}: expected {noun}, got {raw!r}") from None


# --- cassettes and cache (session-wide; not overridable per dataset) ----------------------


@dataclass(frozen=True)
class StorageOptions:
    """Where recordings and cached responses live, whether the network may be used, and
    what the session does with its cassettes and datasets at the end."""

    record_mode: str = "once"
    cache_dir: str | None = None
    no_cache: bool = False
    update: bool = False
    """``--synth-update``: record what is missing, then prune and delete unused cassettes."""
    show: bool = False
    """``--synth-show``: print the datasets the run used."""
    export: str | None = None
    """``--synth-export DIR``: write the datasets the run used as JSON Lines there."""


def storage_from_sources(
    ini: Mapping[str, object],
    env: Mapping[str, str],
    cli: Mapping[str, object],
) -> StorageOptions:
    """Same precedence as :func:`settings_from_sources`: defaults < ini < env < CLI."""
    values: dict[str, Any] = {}
    for name in STORAGE_NAMES:
        sources = [
            (f"ini key synth_{name}", ini.get(name)),
            (f"environment variable {env_name(name)}", env.get(env_name(name))),
            (f"--synth-{name.replace('_', '-')}", cli.get(name)),
        ]
        for where, raw in sources:
            if raw is None or raw is False or (isinstance(raw, str) and not raw.strip()):
                continue
            if name in BOOLEAN_STORAGE_NAMES:
                values[name] = _boolean(raw, where)
            elif name == "record_mode":
                mode = str(raw).strip().lower()
                if mode not in RECORD_MODES:
                    raise SynthConfigError(
                        f"{where}: record mode must be one of {', '.join(RECORD_MODES)}, "
                        f"got {raw!r}"
                    )
                values[name] = mode
            else:
                values[name] = str(raw).strip()
    return StorageOptions(**values)


def _boolean(raw: object, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SynthConfigError(f"{where}: expected true or false, got {raw!r}")
