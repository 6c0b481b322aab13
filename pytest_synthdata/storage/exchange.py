"""The per-request record the transport fills in (kept free of heavy imports)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass
class Exchange:
    """What the transport saw for the request made while this exchange was current."""

    key: str | None = None
    status: int | None = None
    content_type: str = "application/json"
    body: str | None = None
    source: str = "network"
    claim: Any = None
    """The lock held on this request's key while its answer is fetched and judged, so other
    processes that need the same request wait and read the cached answer instead."""

    def release(self) -> None:
        """Let other processes have this request's key (idempotent)."""
        claim, self.claim = self.claim, None
        if claim is not None:
            claim.release()


CURRENT: ContextVar[Exchange | None] = ContextVar("synthdata_exchange", default=None)
