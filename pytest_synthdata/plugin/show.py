"""A look at the data: ``--synth-show`` tables and ``--synth-export`` JSON Lines files.

Both see each dataset exactly as the tests got it, the records validated by the model (a
replay from cassettes works offline, as always). A preview is plain data (the title, the
field names, the first rows as short strings) so an xdist worker can send it to the
controller, which lays the tables out for its terminal.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROWS = 5
"""How many records a table shows."""
CELL = 24
"""The widest a column gets before its values are cut (narrower on a narrow terminal)."""


def _cell(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return " ".join(text.split())  # one line: newlines and tabs become spaces


def preview(title: str, records: Sequence[Any]) -> dict[str, Any]:
    """What a table of ``records`` shows: the title, the count, the fields (the union of
    the records' JSON keys, in order) and the first :data:`ROWS` rows."""
    dumped = [_dump(record) for record in records]
    fields: list[str] = []
    for row in dumped[:ROWS]:
        fields += [name for name in row if name not in fields]
    rows = [[_cell(row.get(name, "")) for name in fields] for row in dumped[:ROWS]]
    model = type(records[0]).__name__ if records else ""
    return {"title": title, "model": model, "n": len(records), "fields": fields, "rows": rows}


def _dump(record: Any) -> dict[str, Any]:
    """A record as its JSON form (what the model's serializers make of it; secrets stay
    masked as pydantic masks them)."""
    dump = getattr(record, "model_dump", None)
    if dump is not None:
        data = dump(mode="json")
        if isinstance(data, dict):
            return data
    return {"value": record}


def table(preview: dict[str, Any], width: int) -> list[str]:
    """The lines of one preview's table, at most ``width`` characters wide."""
    fields: list[str] = preview["fields"]
    rows: list[list[str]] = preview["rows"]
    n = int(preview["n"])
    shown = len(rows)
    head = f"{preview['title']}: {n} {preview['model']} record(s)"
    if shown < n:
        head += f", the first {shown}"
    lines = [head]
    if not fields:
        return lines
    widths = [
        min(CELL, max(len(name), *(len(row[i]) for row in rows))) for i, name in enumerate(fields)
    ]
    room = width - 2 - 3 * (len(fields) - 1)
    while sum(widths) > room and max(widths) > 6:  # narrow the widest until the table fits
        widest = widths.index(max(widths))
        widths[widest] -= 1

    def line(cells: Sequence[str]) -> str:
        text = " | ".join(_cut(cell, w).ljust(w) for cell, w in zip(cells, widths, strict=True))
        return ("  " + text).rstrip()[:width]

    lines.append(line(fields))
    lines.append(line(["-" * w for w in widths]))
    lines += [line(row) for row in rows]
    return lines


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 3)] + "..."


def export(path: Path, records: Sequence[Any]) -> None:
    """Write ``records`` to ``path`` as JSON Lines (one record per line, as the model
    serializes it), replacing the file at once."""
    lines = []
    for record in records:
        to_json = getattr(record, "model_dump_json", None)
        lines.append(to_json() if to_json is not None else json.dumps(record, default=str))
    from ..errors import refuse_secret

    refuse_secret("".join(lines), str(path))  # an endpoint that echoed a key: not written
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("".join(f"{line}\n" for line in lines))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
