"""pytest-synthdata: realistic, validated, reproducible synthetic test data from an LLM.

Importing this package is cheap: ``openai``, ``vcrpy`` and ``diskcache`` are imported only
when a dataset is actually produced.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import agenerate, generate
    from .dataset import Dataset
    from .errors import (
        SynthAPIError,
        SynthConfigError,
        SynthDataWarning,
        SynthError,
        SynthGenerationError,
        SynthRecordingError,
        UnsupportedModelError,
    )
    from .plugin.fixtures import synth_fixture
    from .settings import Settings
    from .texts import (
        Mismatch,
        RoundTripReport,
        TextRecord,
        aextract,
        aextract_many,
        agenerate_dataset,
        agenerate_text,
        around_trip,
        extract,
        extract_many,
        generate_dataset,
        generate_text,
        missing_values,
        round_trip,
    )
    from .usage import Usage

__all__ = [
    "Dataset",
    "Mismatch",
    "RoundTripReport",
    "Settings",
    "SynthAPIError",
    "SynthConfigError",
    "SynthDataWarning",
    "SynthError",
    "SynthGenerationError",
    "SynthRecordingError",
    "TextRecord",
    "UnsupportedModelError",
    "Usage",
    "aextract",
    "aextract_many",
    "agenerate",
    "agenerate_dataset",
    "agenerate_text",
    "around_trip",
    "extract",
    "extract_many",
    "generate",
    "generate_dataset",
    "generate_text",
    "missing_values",
    "round_trip",
    "synth_fixture",
]

_WHERE = {
    "generate_text": "texts",
    "agenerate_text": "texts",
    "generate_dataset": "texts",
    "agenerate_dataset": "texts",
    "extract": "texts",
    "aextract": "texts",
    "extract_many": "texts",
    "aextract_many": "texts",
    "round_trip": "texts",
    "around_trip": "texts",
    "TextRecord": "texts",
    "RoundTripReport": "texts",
    "Mismatch": "texts",
    "missing_values": "texts",
    "generate": "api",
    "agenerate": "api",
    "Dataset": "dataset",
    "Settings": "settings",
    "Usage": "usage",
    "SynthAPIError": "errors",
    "SynthConfigError": "errors",
    "SynthDataWarning": "errors",
    "SynthError": "errors",
    "SynthGenerationError": "errors",
    "SynthRecordingError": "errors",
    "UnsupportedModelError": "errors",
    "synth_fixture": "plugin.fixtures",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_synthdata' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
