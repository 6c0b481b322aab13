"""Everything that talks to the openai SDK; nothing outside this package imports openai.

* :mod:`.modes`: the structured-output modes, one registry whose order is the ``auto``
  ladder. Cheap to import (no openai): the settings read the mode names from it.
* :mod:`.client`: :class:`LLM`, which sends requests, walks the ladder and turns SDK
  errors into :class:`~pytest_synthdata.errors.SynthAPIError`.

Importing this package imports neither openai nor the client; the client's names are loaded
on first use. ``LADDER`` is read from the registry each time, so it always matches it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import SynthDataWarning
from .modes import MODES, Mode, ModeRequest, ladder

if TYPE_CHECKING:
    from ..storage.credentials import MISSING_KEY
    from .client import LLM, Completion, forget_endpoints
    from .wiring import LOOP_OF_ITS_OWN

    LADDER: tuple[str, ...]

__all__ = [
    "LADDER",
    "LLM",
    "LOOP_OF_ITS_OWN",
    "MISSING_KEY",
    "MODES",
    "Completion",
    "Mode",
    "ModeRequest",
    "SynthDataWarning",
    "forget_endpoints",
    "ladder",
]

_HOMES = {
    "LLM": ".client",
    "MISSING_KEY": ".client",
    "Completion": ".client",
    "forget_endpoints": ".client",
    "LOOP_OF_ITS_OWN": ".wiring",
}


def __getattr__(name: str) -> Any:
    if name == "LADDER":
        return ladder()
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
