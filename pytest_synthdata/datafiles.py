"""Dataset files for the command line: seed examples in, records out.

The format follows the extension: ``.jsonl`` (one JSON object a line), ``.json`` (one array)
or ``.csv``. A CSV file has one column per field, and a nested model's fields get dotted
columns (``address.city``); a list is one cell holding its JSON text (``["a", "b"]``), and
``None`` is an empty cell. Reading a CSV file undoes this: dotted columns nest again, a cell
that holds a JSON array or object is read as one, and empty cells are left out (so optional
fields take their defaults). Values are written as the records' JSON form
(``model_dump(mode="json", by_alias=True)``), so a written file is valid input again.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from .errors import SynthConfigError

FORMATS = (".jsonl", ".json", ".csv")


def output_format(path: Path) -> str:
    """The format of an output path, from its extension; a clear error for any other."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        shown = f"extension {suffix!r}" if suffix else "no extension"
        raise SynthConfigError(
            f"-o {path}: the output format follows the extension, and {shown} is not one of "
            f"{', '.join(FORMATS)}; name the file e.g. {path.with_suffix('.jsonl').name}, or "
            "leave out -o to write JSON Lines to standard output"
        )
    return suffix


def check_writable(path: Path) -> None:
    """Fail now, before any request, if ``path`` cannot be written."""
    if path.is_dir():
        raise SynthConfigError(f"-o {path}: that is a folder; give a file name inside it")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise SynthConfigError(f"-o {path}: the folder {folder} does not exist; create it first")
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK):
        what = "the file" if path.exists() else "the folder"
        raise SynthConfigError(f"-o {path}: {what} is not writable; choose another path")


def write_rows(rows: list[dict[str, Any]], path: Path | None, stdout: TextIO) -> None:
    """Write ``rows`` to ``path`` in the format its extension names (JSON Lines to
    ``stdout`` without a path), replacing the file in one step once all is written."""
    suffix = output_format(path) if path is not None else ".jsonl"
    buffer = io.StringIO(newline="")
    if suffix == ".jsonl":
        for row in rows:
            buffer.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif suffix == ".json":
        buffer.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
    else:
        flat = [flatten(row) for row in rows]
        columns = list(dict.fromkeys(key for row in flat for key in row))
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(flat)
    if path is None:
        stdout.write(buffer.getvalue())
        stdout.flush()
        return
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    os.replace(partial, path)


def flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """One CSV row: nested objects as dotted columns, lists as JSON, ``None`` empty."""
    out: dict[str, str] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple, Mapping)):
            out[name] = json.dumps(value, ensure_ascii=False)
        elif value is None:
            out[name] = ""
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = str(value)
    return out


def unflatten(row: Mapping[str, str]) -> dict[str, Any]:
    """A CSV row as the record it was written from (see :func:`flatten`)."""
    out: dict[str, Any] = {}
    for column, cell in row.items():
        if column is None or cell is None or cell == "":
            continue
        value: Any = cell
        if cell[:1] in "[{":
            try:
                value = json.loads(cell)
            except ValueError:
                value = cell
        *parents, leaf = column.split(".")
        node = out
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SynthConfigError(f"column {column!r} nests under a column that has a value")
            node = child
        node[leaf] = value
    return out


def read_items(path: Path, what: str) -> list[Any]:
    """The items of a ``.json`` (an array), ``.jsonl`` or ``.csv`` file; errors name the
    file, the line and the fix."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise SynthConfigError(f"{what} {path} must end in {', '.join(FORMATS)}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SynthConfigError(
            f"{what} {path} not found (relative paths start at the current folder)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SynthConfigError(f"cannot read {what} {path}: {exc}") from None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SynthConfigError(f"{what} {path} is not valid JSON: {exc}") from None
        if not isinstance(data, list):
            raise SynthConfigError(
                f"{what} {path} must hold a JSON array, not a {type(data).__name__}"
            )
        return data
    if suffix == ".jsonl":
        items: list[Any] = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except ValueError as exc:
                    raise SynthConfigError(
                        f"{what} {path}, line {number}: not valid JSON ({exc})"
                    ) from None
        return items
    try:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise SynthConfigError(f"{what} {path} does not parse as CSV: {exc}") from None
    if not rows:
        raise SynthConfigError(f"{what} {path} has no rows under its header")
    return [unflatten(row) for row in rows]


def as_rows(records: Iterable[Any]) -> list[dict[str, Any]]:
    """Pydantic records as plain JSON objects, by their aliases (what they validate from)."""
    return [record.model_dump(mode="json", by_alias=True) for record in records]
