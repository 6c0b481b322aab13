"""The per-request record the transport fills in (kept free of heavy imports)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class Exchange:
    """What the transport saw for the request made while this exchange was current."""

    key: str | None = None
    status: int | None = None
    content_type: str = "application/json"
    body: str | None = None
    source: str = "network"


CURRENT: ContextVar[Exchange | None] = ContextVar("synthdata_exchange", default=None)
