"""``GET /v1/models`` and ``GET /v1/models/{id}``, in OpenAI's wire format.

The fake answers chat requests for any model name, so it lists the names a client is likely
to ask for (:data:`MODELS`) and describes any other name it is asked about, as a server that
serves every model would.
"""

from __future__ import annotations

import re
from typing import Any

from .wire import Reply

__all__ = ["MODELS", "models_reply"]

#: the models ``GET /v1/models`` lists: the plugin's default model first
MODELS = ("gpt-4o-mini", "fakellm")

_PATH = re.compile(r"^(?:/v1)?/models(?:/(?P<id>[^?#]+?))?/?$")
_CREATED = 1_700_000_000  # a fixed creation time: answers are the same every run


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": "fakellm"}


def models_reply(method: str, path: str) -> Reply | None:
    """The answer to a models request, or ``None`` when it is not one."""
    match = _PATH.match(path)
    if method != "GET" or match is None:
        return None
    if match["id"] is None:
        return Reply(200, {"object": "list", "data": [_model(m) for m in MODELS]})
    return Reply(200, _model(match["id"]))
