"""What the ``synthdata`` command is given, checked before any request: settings from the
environment and flags, the cache and record mode, prices, the model to import, the output
path and the preferences of a text dataset. Every error names the input and the fix."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import SynthConfigError, did_you_mean
from ..settings import (
    ENV_PREFIX,
    SESSION_SETTINGS,
    SETTING_NAMES,
    SETTINGS,
    Setting,
    Settings,
    resolve,
)

DEFAULT_CACHE = ".synthdata-cache"
"""The response cache of the command, in the current folder (what lets a run resume)."""
PRICE_ENV = {"price_in": ENV_PREFIX + "PRICE_IN", "price_out": ENV_PREFIX + "PRICE_OUT"}


def settings_of(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Defaults < environment (``SYNTHDATA_*``, ``OPENAI_BASE_URL``) < flags."""
    cli = {name: getattr(args, name, None) for name in SETTING_NAMES}
    return Settings(**resolve(SETTINGS, {}, env, cli, flag_of=_flag))


def _flag(setting: Setting) -> str:
    return setting.command_flag


def storage_of(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[str, Path | None]:
    """The record mode and the cache folder (``None``: no cache), flags over environment."""
    if args.no_cache and args.cache_dir:
        raise SynthConfigError("--no-cache and --cache-dir contradict each other; give one of them")
    if args.record_mode and not args.cassette:
        raise SynthConfigError(
            "--record-mode applies to a --cassette recording; add --cassette FILE, or drop it"
        )
    declared = tuple(s for s in SESSION_SETTINGS if s.command)
    cli = {s.name: getattr(args, s.name, None) for s in declared}
    options = resolve(declared, {}, env, cli, flag_of=_flag)
    # A record mode is about a cassette: without one, SYNTHDATA_RECORD_MODE=all (set for the
    # plugin) must not make the command skip its cache, which is what lets it resume.
    mode = options.get("record_mode", "once") if args.cassette else "once"
    if args.no_cache or (options.get("no_cache") and not args.cache_dir):
        return mode, None
    return mode, Path(args.cache_dir or options.get("cache_dir") or DEFAULT_CACHE)


def prices_of(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[float, float] | None:
    """USD per million prompt and completion tokens (flags over environment), if given."""
    found: dict[str, float] = {}
    for name, variable in PRICE_ENV.items():
        flag = f"--{name.replace('_', '-')}"
        value: Any = getattr(args, name)
        where = flag
        if value is None and env.get(variable, "").strip():
            where, value = variable, env[variable]
            try:
                value = float(value)
            except ValueError:
                raise SynthConfigError(f"{variable}: expected a number, got {value!r}") from None
        if value is None:
            continue
        if value < 0:
            raise SynthConfigError(f"{where}: a price cannot be negative, got {value}")
        found[name] = float(value)
    if not found:
        return None
    if len(found) == 1:
        missing = "--price-out" if "price_in" in found else "--price-in"
        raise SynthConfigError(
            f"a cost needs both prices: add {missing} (USD per million tokens), or set "
            f"{PRICE_ENV['price_out' if 'price_in' in found else 'price_in']}"
        )
    return found["price_in"], found["price_out"]


def import_model(target: str) -> type[Any]:
    """The class named by ``MODULE:MODEL``, imported with the current folder on the path."""
    from pydantic import BaseModel

    module_name, colon, attribute = target.rpartition(":")
    if not colon or not module_name or not attribute:
        raise SynthConfigError(
            f"{target!r}: expected MODULE:MODEL, e.g. billing:MedicalBilling or "
            "models/billing.py:MedicalBilling"
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        module = _import_file(Path(module_name))
    else:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                raise SynthConfigError(
                    f"cannot import module {module_name!r} from {cwd}: no such module; run "
                    "synthdata from the folder that holds it, or give the path of its .py file"
                ) from None
            raise SynthConfigError(
                f"module {module_name!r} could not be imported: it needs {exc.name!r}, which "
                "is not installed here"
            ) from None
        except Exception as exc:
            raise SynthConfigError(
                f"module {module_name!r} failed while it was imported: {type(exc).__name__}: {exc}"
            ) from None
    value = getattr(module, attribute, None)
    models = sorted(
        name
        for name, member in vars(module).items()
        if inspect.isclass(member) and issubclass(member, BaseModel) and member is not BaseModel
    )
    if value is None:
        hint = did_you_mean(attribute, models) or did_you_mean(attribute, vars(module))
        listed = f"; its pydantic models: {', '.join(models)}" if models else ""
        raise SynthConfigError(f"module {module_name!r} has no {attribute!r}{hint}{listed}")
    if not (inspect.isclass(value) and issubclass(value, BaseModel)) or value is BaseModel:
        what = type(value).__name__ if not inspect.isclass(value) else "class"
        listed = f" Its pydantic models: {', '.join(models)}." if models else ""
        raise SynthConfigError(
            f"{target} is a {what}, not a pydantic BaseModel subclass; name the record's "
            f"model class.{listed}"
        )
    return value


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise SynthConfigError(f"cannot import {path}: no such file (from {os.getcwd()})")
    name = "synthdata_target_" + path.stem.replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SynthConfigError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise SynthConfigError(
            f"{path} failed while it was imported: {type(exc).__name__}: {exc}"
        ) from None
    return module


def output_of(args: argparse.Namespace) -> Path | None:
    from ..examples import check_writable, output_format

    safe = getattr(args, "spreadsheet_safe", False)
    if args.output is None:
        if safe:
            raise SynthConfigError(
                "--spreadsheet-safe protects CSV files, and without -o the records go to "
                "standard output as JSON Lines; give -o NAME.csv, or leave it out"
            )
        return None
    path = Path(args.output)
    if output_format(path) != ".csv" and safe:
        raise SynthConfigError(
            f"--spreadsheet-safe protects CSV files, and -o {path} is not one; give -o "
            "NAME.csv, or leave it out"
        )
    for flag in ("examples", "fields"):
        source = getattr(args, flag, None)
        if source is not None and _same_file(Path(source), path):
            raise SynthConfigError(
                f"-o {path} is the {flag} file itself, which the output would replace; "
                "choose another output path"
            )
    check_writable(path)
    return path


def _same_file(one: Path, other: Path) -> bool:
    try:
        return one.exists() and other.exists() and os.path.samefile(one, other)
    except OSError:
        return False


def endpoint(settings: Settings, env: Mapping[str, str]) -> str:
    """The endpoint's URL as it may be shown: its userinfo and credential-named query values
    (however short) redacted, control characters escaped."""
    from ..storage.secrets import redact
    from ..terminal_safe import escape_controls

    url = settings.base_url or env.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
    return escape_controls(redact(url))


def check_key(settings: Settings, env: Mapping[str, str], cassette: str | None) -> None:
    """OpenAI's own endpoint needs a key: say so before any request (a local server, or a
    cassette to replay from, may do without)."""
    if env.get("OPENAI_API_KEY") or cassette or "api.openai.com" not in endpoint(settings, env):
        return
    raise SynthConfigError(
        "OPENAI_API_KEY is not set; set it to your key, or point --base-url (OPENAI_BASE_URL) "
        "at another OpenAI-compatible endpoint"
    )


def read_preferences(text: str | None) -> dict[str, Any] | None:
    """``--preferences``: a JSON object, or the path of a .json file that holds one."""
    if text is None:
        return None
    source = "--preferences"
    if not text.lstrip().startswith("{"):
        path = Path(text)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SynthConfigError(
                f"--preferences {path}: neither a JSON object nor a readable file ({exc})"
            ) from None
        source = f"--preferences {path}"
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SynthConfigError(f"{source}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise SynthConfigError(f"{source}: expected a JSON object, got {type(value).__name__}")
    return value
