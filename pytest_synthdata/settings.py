"""Every setting, declared once, and the frozen :class:`Settings` built from them.

One :class:`Setting` per option says its name, type, default, bounds, help and whether it
shapes a request; the pytest flags (``--synth-*``), ini keys (``synth_*``), environment
variables (``SYNTHDATA_*``), the ``synthdata`` command's flags, the keywords a marker
accepts, the validation and the README's options table all derive from :data:`SETTINGS` and
:data:`SESSION_SETTINGS`.

One precedence: built-in defaults < ini keys < environment < command line; a mapping of
overrides (``synth_config``) and then the keywords of a marker, a factory call or a library
call apply to that one dataset on top of all of them. The API key is read only from the
``OPENAI_API_KEY`` environment variable (or an explicit ``client=``), never from a file.

Importing this module is cheap (no pydantic, openai, vcrpy or diskcache): the pytest plugin
reads the declarations to add its options.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from .errors import SynthConfigError, did_you_mean
from .llm.modes import structured_values
from .storage.secrets import REGISTRY, redact

Kind = Literal["str", "url", "int", "float", "choice", "bool", "path"]

ENV_PREFIX = "SYNTHDATA_"
DEFAULT_MODEL = "gpt-4o-mini"
RECORD_MODES = ("none", "once", "new_episodes", "all", "rewrite")
SPEC_WORDS = (
    "n",
    "examples",
    "subject",
    "extra",
    "seed",
    "unique",
    "sample",
    "cover",
    "edge_cases",
    "near_duplicates",
)
"""The keywords that describe a dataset rather than how it is produced."""


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


@dataclass(frozen=True)
class Setting:
    """One option: everything else about it derives from this declaration."""

    name: str
    kind: Kind
    default: Any
    help: str
    """What it means (the default is added where it is shown)."""
    shown_default: str = ""
    """The default as a user reads it (``""``: none)."""
    low: float | None = None
    high: float | None = None
    optional: bool = False
    """``None`` is a value (it means: chosen elsewhere)."""
    auto: bool = False
    """The word ``auto`` stands for ``None``."""
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()
    """The accepted values, or a function returning them (a registry that can grow)."""
    shapes_request: bool = False
    """Whether it changes what a request asks for (and so which dataset a cassette holds)."""
    per_dataset: bool = True
    """A field of :class:`Settings` (marker keyword), or else a session-wide option."""
    command: bool = True
    """Whether the ``synthdata`` command has it as a flag (``--name``)."""
    ini: bool = True
    """Whether it has an ini key and an environment variable (else a pytest flag only)."""
    fallback_env: str | None = None
    """Another environment variable read when its own is unset."""
    metavar: str = ""
    see: str = ""
    """A README link appended to the meaning in the options table."""

    @property
    def flag(self) -> str:
        return "--synth-" + self.name.replace("_", "-")

    @property
    def command_flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def ini_key(self) -> str:
        return "synth_" + self.name

    @property
    def env(self) -> str:
        return env_name(self.name)

    @property
    def allowed(self) -> tuple[str, ...]:
        return self.choices() if callable(self.choices) else self.choices

    @property
    def meaning(self) -> str:
        """What it means; ``{choices}`` in the declared help lists the accepted values."""
        if "{choices}" not in self.help:
            return self.help
        values = self.allowed
        return self.help.replace("{choices}", f"{', '.join(values[:-1])} or {values[-1]}")

    @property
    def help_text(self) -> str:
        """The help of the flag: meaning and default."""
        if not self.shown_default:
            return self.meaning
        return f"{self.meaning} (default {self.shown_default})"

    @property
    def switch(self) -> bool:
        return self.kind == "bool"

    def convert(self, raw: object, where: str) -> Any:
        """A value as typed (a string from ini, environment or flag) in its type."""
        if not isinstance(raw, str):
            if self.switch:
                return _boolean(raw, where)
            return raw
        text = raw.strip()
        if self.auto and text.lower() == "auto":
            return None
        if self.kind == "bool":
            return _boolean(text, where)
        if self.kind in ("int", "float"):
            try:
                return int(text) if self.kind == "int" else float(text)
            except ValueError:
                noun = "an integer" if self.kind == "int" else "a number"
                raise SynthConfigError(f"{where}: expected {noun}, got {raw!r}") from None
        if self.name == "record_mode":
            return text.lower()
        return text

    def check(self, value: object) -> None:
        """Raise :class:`SynthConfigError` naming the setting unless ``value`` is valid."""
        if value is None and self.optional:
            return
        name = self.name
        if self.kind in ("str", "url", "path"):
            if not isinstance(value, str) or not value.strip():
                raise SynthConfigError(f"{name} must be a non-empty string, got {value!r}")
            if self.kind == "url" and not is_http_url(value):
                raise SynthConfigError(
                    f"{name} must be an http:// or https:// URL with a host, got {_shown(value)}"
                )
        elif self.kind == "int":
            low = int(self.low or 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SynthConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        elif self.kind == "float":
            _check_number(value, name, float(self.low or 0.0), self.high)
        elif self.kind == "choice":
            if value not in self.allowed:
                what = "record mode" if name == "record_mode" else name
                sep = ", got" if name == "record_mode" else "; got"
                raise SynthConfigError(
                    f"{what} must be one of {', '.join(self.allowed)}{sep} {value!r}"
                )
        elif not isinstance(value, bool):
            raise SynthConfigError(f"{name} must be true or false, got {value!r}")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "model", "str", DEFAULT_MODEL, "LLM model or Azure deployment name",
        DEFAULT_MODEL, shapes_request=True,
    ),
    Setting(
        "base_url", "url", None,
        "OpenAI-compatible endpoint URL", "OPENAI_BASE_URL, else api.openai.com",
        optional=True, fallback_env="OPENAI_BASE_URL", metavar="URL",
    ),
    Setting(
        "temperature", "float", None, "sampling temperature, 0-2", "the endpoint's",
        low=0.0, high=2.0, optional=True, shapes_request=True, metavar="X",
    ),
    Setting(
        "batch_size", "int", None,
        "records asked for per request; auto fits about 60% of max_tokens, at most 20",
        "auto", low=1, optional=True, auto=True, shapes_request=True, metavar="N|auto",
    ),
    Setting(
        "concurrency", "int", 8, "most requests in flight at once", "8", low=1, metavar="N"
    ),
    Setting(
        "structured", "choice", "auto",
        "structured-output mode: {choices}", "auto",
        choices=structured_values, shapes_request=True,
    ),
    Setting(
        "max_retries", "int", 4,
        "follow-up requests per planned batch, pooled for the whole dataset, to replace "
        "invalid, duplicate or missing records",
        "4", low=0, metavar="N", see="[how generation works](#how-generation-works)",
    ),
    Setting(
        "max_tokens", "int", 4096,
        "largest output-token limit of a request; each asks for what its records should "
        "take, with headroom",
        "4096", low=16, shapes_request=True, metavar="N",
    ),
    Setting(
        "timeout", "float", 60.0,
        "seconds one try of a request may take, first byte to last (a deadline, not a read "
        "timeout); a request is abandoned after two tries time out",
        "60", low=0.001, metavar="X",
    ),
    Setting(
        "http_retries", "int", 5,
        "retries of a request after a 429, a 5xx, a lost connection, a timeout or an HTTP 200 "
        "whose body is not JSON, honouring retry-after",
        "5", low=0, metavar="N",
    ),
    Setting(
        "max_n", "int", 5000, "largest n accepted per dataset without raising this limit",
        "5000", low=1, metavar="N",
    ),
)  # fmt: skip
"""The fields of :class:`Settings`, in order: settable per dataset (marker keywords)."""

SESSION_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "record_mode", "choice", "once",
        "cassette record mode: none (replay only), once (record when the cassette is "
        "missing), new_episodes (replay, record what is new), all (always record), rewrite "
        "(delete the cassette, then record)",
        "once", choices=RECORD_MODES, per_dataset=False, see="[record modes](#record-modes)",
    ),
    Setting(
        "cache_dir", "path", None,
        "response cache folder, relative to the rootdir (the command's default is "
        ".synthdata-cache in the current folder)",
        ".pytest_cache/d/synthdata", optional=True, per_dataset=False, metavar="DIR",
    ),
    Setting(
        "no_cache", "bool", False, "neither read nor write the response cache", "off",
        per_dataset=False,
    ),
    Setting(
        "clear_cache", "bool", False, "empty the response cache before the run", "off",
        per_dataset=False, command=False, ini=False,
    ),
    Setting(
        "update", "bool", False,
        "replay what matches and record only what is missing (a larger n records just the new "
        "records); afterwards rewrite each cassette the run used to hold only what it used, "
        "and, when the whole suite was collected, delete the cassette files no test or "
        "fixture uses",
        "off", per_dataset=False, command=False, see="[the update workflow](#the-update-workflow)",
    ),
    Setting(
        "show", "bool", False, "print the first rows of each dataset the run used, as a table",
        "off", per_dataset=False, command=False, see="[a look at the data](#a-look-at-the-data)",
    ),
    Setting(
        "export", "path", None,
        "write each dataset the run used as JSON Lines under this folder (relative to the "
        "current directory), one file per test or fixture",
        optional=True, per_dataset=False, command=False, metavar="DIR",
    ),
    Setting(
        "dry_run", "bool", False,
        "send nothing: print what would be recorded and the requests, tokens and cost that "
        "would take (in pytest: which datasets the collected tests would replay, record or "
        "grow; the session ends after collection, so that no fixture or test body can send "
        "anything)",
        "off", per_dataset=False, ini=False, see="[a dry run](#a-dry-run)",
    ),
    Setting(
        "price_in", "float", None,
        "USD per million prompt tokens, for the dry run's cost",
        optional=True, per_dataset=False, metavar="USD",
    ),
    Setting(
        "price_out", "float", None,
        "USD per million completion tokens, for the dry run's cost",
        optional=True, per_dataset=False, metavar="USD",
    ),
)  # fmt: skip
"""Session-wide cassette, cache and reporting options (not settable per dataset)."""

DECLARED: dict[str, Setting] = {s.name: s for s in (*SETTINGS, *SESSION_SETTINGS)}
SETTING_NAMES: tuple[str, ...] = tuple(s.name for s in SETTINGS)
STORAGE_NAMES: tuple[str, ...] = tuple(s.name for s in SESSION_SETTINGS if s.ini)
BOOLEAN_STORAGE_NAMES: tuple[str, ...] = tuple(s.name for s in SESSION_SETTINGS if s.switch)
HELP: dict[str, str] = {s.name: s.help_text for s in SETTINGS}
STORAGE_HELP: dict[str, str] = {s.name: s.help_text for s in SESSION_SETTINGS}


def _default(name: str) -> Any:
    return DECLARED[name].default


StructuredMode = Literal["auto", "json_schema", "json_object", "tools"]
"""The values of ``structured`` for type checkers; what is accepted at run time comes from the
mode registry (:func:`pytest_synthdata.llm.modes.structured_values`), which a test keeps equal
to this."""


@dataclass(frozen=True)
class Settings:
    """How datasets are produced: one field per declaration of :data:`SETTINGS` (names, order
    and defaults come from there; a test keeps the types equal). Every field can be set per
    dataset as a keyword argument."""

    model: str = _default("model")
    base_url: str | None = _default("base_url")
    temperature: float | None = _default("temperature")
    batch_size: int | None = _default("batch_size")
    concurrency: int = _default("concurrency")
    structured: StructuredMode = _default("structured")  # noqa: RUF009 (a str)
    max_retries: int = _default("max_retries")
    max_tokens: int = _default("max_tokens")
    timeout: float = _default("timeout")
    http_retries: int = _default("http_retries")
    max_n: int = _default("max_n")

    def __post_init__(self) -> None:
        for setting in SETTINGS:
            setting.check(getattr(self, setting.name))
        if self.base_url is not None:
            REGISTRY.add_url(self.base_url)  # its userinfo and credential query values

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed; unknown names are a :class:`SynthConfigError`."""
        unknown = sorted(set(changes) - set(SETTING_NAMES))
        if unknown:
            known = (*SPEC_WORDS, *SETTING_NAMES)
            hints = [f"{name!r}{did_you_mean(name, known)}" for name in unknown]
            raise SynthConfigError(f"unknown keyword {', '.join(hints)}; known: {', '.join(known)}")
        return dataclasses.replace(self, **changes)

    def non_defaults(self) -> dict[str, Any]:
        """The fields whose value differs from the built-in default."""
        return {
            s.name: getattr(self, s.name) for s in SETTINGS if getattr(self, s.name) != s.default
        }


if tuple(f.name for f in dataclasses.fields(Settings)) != SETTING_NAMES:  # pragma: no cover
    raise AssertionError("Settings must have one field per declaration, in order")


def setting_names() -> tuple[str, ...]:
    return SETTING_NAMES


def shaping_names() -> tuple[str, ...]:
    """The settings that change what a request asks for."""
    return tuple(s.name for s in SETTINGS if s.shapes_request)


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
    if url is not None and not is_http_url(url):
        raise SynthConfigError(
            "environment variable OPENAI_BASE_URL must be an http:// or https:// URL with a "
            f"host, got {_shown(url)}; fix it or unset it (the default is "
            "https://api.openai.com/v1)"
        )
    return url


def is_http_url(value: str) -> bool:
    """Whether ``value`` is an ``http://`` or ``https://`` URL naming a host."""
    if not value.startswith(("http://", "https://")):
        return False
    try:
        return bool(urlsplit(value).hostname)
    except ValueError:  # a port that is not a number, a bracket left open
        return False


def _shown(url: str) -> str:
    """A URL in a message: its userinfo and credential values redacted, however short."""
    return repr(redact(url))


# --- values from ini keys, the environment, the command line and overrides ----------------


def _unset(raw: object) -> bool:
    return raw is None or raw is False or (isinstance(raw, str) and not raw.strip())


def resolve(
    declarations: tuple[Setting, ...],
    ini: Mapping[str, object],
    env: Mapping[str, str],
    cli: Mapping[str, object],
    *,
    overrides: Mapping[str, object] | None = None,
    overrides_from: str = "synth_config",
    flag_of: Any = None,
) -> dict[str, Any]:
    """The values set for ``declarations``: defaults < ini < environment < command line <
    ``overrides``. ``None``/empty/``False`` values are "not set". ``ini``, ``cli`` and
    ``overrides`` are keyed by setting name, ``env`` is the process environment; errors name
    the source (``ini key synth_x``, ``SYNTHDATA_X``, ``--synth-x``) and the fix."""
    values: dict[str, Any] = {}
    for setting in declarations:
        variable = setting.env
        if setting.fallback_env and not env.get(variable) and env.get(setting.fallback_env):
            variable = setting.fallback_env
        flag = flag_of(setting) if flag_of is not None else setting.flag
        sources: list[tuple[str, object]] = [
            (f"ini key {setting.ini_key}", ini.get(setting.name)),
            (f"environment variable {variable}", env.get(variable) if setting.ini else None),
            (flag, cli.get(setting.name)),
        ]
        if overrides is not None and setting.name in overrides:
            sources.append((f"{overrides_from} {setting.name!r}", overrides[setting.name]))
        for where, raw in sources:
            if _unset(raw) and not where.startswith(overrides_from):
                continue
            value = setting.convert(raw, where)
            try:
                setting.check(value)
            except SynthConfigError as exc:
                raise SynthConfigError(f"{where}: {exc}") from None
            values[setting.name] = value
    return values


def settings_from_sources(
    ini: Mapping[str, object],
    env: Mapping[str, str],
    cli: Mapping[str, object],
    overrides: Mapping[str, object] | None = None,
    *,
    overrides_from: str = "synth_config",
) -> Settings:
    """Defaults < ini < environment < command line < ``overrides`` (a mapping of settings
    such as ``synth_config`` gives; unknown names are an error that suggests the right one)."""
    if overrides:
        unknown = [key for key in overrides if key not in SETTING_NAMES]
        if unknown:
            hints = [f"{key!r}{did_you_mean(key, SETTING_NAMES)}" for key in unknown]
            raise SynthConfigError(
                f"{overrides_from}: unknown setting {', '.join(hints)}; known: "
                f"{', '.join(SETTING_NAMES)}"
            )
    values = resolve(SETTINGS, ini, env, cli, overrides=overrides, overrides_from=overrides_from)
    return Settings(**values)


@dataclass(frozen=True)
class SessionSettings:
    """Where recordings and cached responses live, whether the network may be used, and
    what the session does with its cassettes and datasets at the end (one field per
    session-wide declaration with an ini key)."""

    record_mode: str = _default("record_mode")
    cache_dir: str | None = _default("cache_dir")
    no_cache: bool = _default("no_cache")
    update: bool = _default("update")
    """``--synth-update``: record what is missing, then prune and delete unused cassettes."""
    show: bool = _default("show")
    """``--synth-show``: print the datasets the run used."""
    export: str | None = _default("export")
    """``--synth-export DIR``: write the datasets the run used as JSON Lines there."""
    price_in: float | None = _default("price_in")
    """USD per million prompt tokens (the dry run's cost)."""
    price_out: float | None = _default("price_out")
    """USD per million completion tokens (the dry run's cost)."""


if tuple(f.name for f in dataclasses.fields(SessionSettings)) != STORAGE_NAMES:  # pragma: no cover
    raise AssertionError("SessionSettings must have one field per session declaration")


def storage_from_sources(
    ini: Mapping[str, object],
    env: Mapping[str, str],
    cli: Mapping[str, object],
) -> SessionSettings:
    """Same precedence as :func:`settings_from_sources`: defaults < ini < env < CLI."""
    declarations = tuple(s for s in SESSION_SETTINGS if s.ini)
    return SessionSettings(**resolve(declarations, ini, env, cli))


def _boolean(raw: object, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SynthConfigError(f"{where}: expected true or false, got {raw!r}")
