"""What the command keeps of each record while it generates: the record's output line (about
200 bytes for a record of six fields; the stored answer's own text when they are the same,
else UTF-8 bytes), instead of the validated pydantic instance (about 1.2 KB). The lines are
exactly what :func:`~..examples.as_rows` makes of the instances, so every output format is
written as before."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Iterable
from typing import Any


def output_line(record: Any, sent: object = None) -> Any:
    """``record``'s JSON form by its aliases, as the JSON Lines output writes it: ``sent``
    itself (what the model sent, as it is stored) when it is that very text, as it usually
    is, so one object serves both; otherwise its UTF-8 bytes. A record JSON cannot carry
    (NaN or Infinity), or one that does not serialize, is kept as it is: writing it says
    what is wrong."""
    try:
        row = record.model_dump(mode="json", by_alias=True)
        line = json.dumps(row, ensure_ascii=False, allow_nan=False)
    except Exception:  # writing the instance fails as it always did, with the same message
        return record
    return sent if isinstance(sent, str) and sent == line else line.encode()


def output_rows(records: Iterable[Any]) -> list[dict[str, Any]]:
    """The rows to write: each kept line read back (the same JSON object), or the record's
    JSON form by its aliases."""
    return [
        json.loads(record)
        if isinstance(record, (bytes, str))
        else record.model_dump(mode="json", by_alias=True)
        for record in records
    ]


async def kept_as_lines(run: Awaitable[Any]) -> Any:
    """Await a record generation that keeps its records as output lines."""
    from ..records import KEPT_FORM

    token = KEPT_FORM.set(output_line)
    try:
        return await run
    finally:
        KEPT_FORM.reset(token)
