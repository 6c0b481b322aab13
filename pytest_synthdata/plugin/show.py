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


MIN_CELL = 10
"""A table is laid out only if every column gets this much (or its whole width);
otherwise each record is shown as ``field: value`` lines."""


def _cell(value: object) -> str:
    """One line of text, its control characters escaped (a model's ``\x1b[2J`` or OSC 52
    is shown, never acted on); newlines and tabs become spaces."""
    from ..terminal_safe import escape_controls

    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return escape_controls(" ".join(text.split()))


def preview(title: str, records: Sequence[Any]) -> dict[str, Any]:
    """What a table of ``records`` shows: the title, the count, the fields (the union of
    the records' JSON keys, in order, a nested model's fields as dotted columns such as
    ``address.city``) and the first :data:`ROWS` rows."""
    from ..examples import flatten

    dumped = [flatten(_dump(record)) for record in records[:ROWS]]
    fields: list[str] = []
    for row in dumped:
        fields += [name for name in row if name not in fields]
    rows = [[_cell(row.get(name, "")) for name in fields] for row in dumped]
    model = type(records[0]).__name__ if records else ""
    shown = {"title": title, "model": model, "n": len(records), "fields": fields, "rows": rows}
    report = getattr(records, "diversity", None)
    if report is not None:  # a Dataset's diversity report
        shown["diversity"] = [_cell(line) for line in report.lines()]
    return shown


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
    """The lines of one preview, at most ``width`` characters wide: a table, or (when its
    columns do not fit) each record as ``field: value`` lines."""
    fields: list[str] = preview["fields"]
    rows: list[list[str]] = preview["rows"]
    n = int(preview["n"])
    shown = len(rows)
    head = f"{_cell(preview['title'])}: {n} {preview['model']} record(s)"
    if shown < n:
        head += f", the first {shown}"
    diversity = [
        ("    " if i else "  ") + _cut(line, width - (4 if i else 2))
        for i, line in enumerate(preview.get("diversity", []))
    ]
    if not fields:
        return [head, *diversity]
    widths = [
        min(CELL, max(len(name), *(len(row[i]) for row in rows))) for i, name in enumerate(fields)
    ]
    room = width - 2 - 3 * (len(fields) - 1)
    if sum(min(w, MIN_CELL) for w in widths) > room:
        return [head, *_vertical(fields, rows, width), *diversity]
    while sum(widths) > room and max(widths) > MIN_CELL:  # narrow the widest until it fits
        widths[widths.index(max(widths))] -= 1

    def line(cells: Sequence[str]) -> str:
        text = " | ".join(_cut(cell, w).ljust(w) for cell, w in zip(cells, widths, strict=True))
        return ("  " + text).rstrip()[:width]

    return [
        head,
        line(fields),
        line(["-" * w for w in widths]),
        *(line(row) for row in rows),
        *diversity,
    ]


def _vertical(fields: list[str], rows: list[list[str]], width: int) -> list[str]:
    """Each record as ``#i`` and one ``field: value`` line per field, cut to ``width``."""
    label = min(max(len(name) for name in fields), width // 2)
    lines: list[str] = []
    for number, row in enumerate(rows, 1):
        lines.append(f"  #{number}")
        for name, cell in zip(fields, row, strict=True):
            start = f"    {_cut(name, label).ljust(label)}: "
            lines.append((start + _cut(cell, max(4, width - len(start)))).rstrip())
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
