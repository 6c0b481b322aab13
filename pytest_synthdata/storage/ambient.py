"""The ambient storage: where library calls made inside a test record, and what they replay.

The pytest plugin sets :data:`AMBIENT` around the code of a test (see
``pytest_synthdata.plugin.state``); :func:`pytest_synthdata.api.run_with_llm` reads it when
a call names no ``cassette=`` or ``cache_dir=`` of its own. Outside a test it is ``None``
and library calls touch no storage. Importing this module loads neither vcrpy nor diskcache.
"""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .recorder import Storage

AMBIENT: ContextVar[tuple[Storage, Path | None, str] | None] = ContextVar(
    "synthdata_ambient_storage", default=None
)
"""Storage, cassette and re-record hint that library calls made inside a test use."""
