"""The names of the options, for code that only needs them (the declarations live in
:mod:`pytest_synthdata.settings`, which is as cheap to import)."""

from __future__ import annotations

from .settings import (
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
    "env_name",
]
