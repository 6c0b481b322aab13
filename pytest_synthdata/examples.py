"""Examples files in and dataset files out: the one reader and the one writer.

The format follows the extension: ``.jsonl`` (one JSON value a line), ``.json`` (one array)
or ``.csv``. The marker (``examples="seeds.csv"``), ``synth_factory`` and the ``synthdata``
command all read through :func:`read_items`, and the command writes through
:func:`write_rows`, so that what it writes reads back equal.

A CSV file has one column per field, and a nested model's fields get dotted columns
(``address.city``). A cell holds:

* a string as it is, unless it is empty or only white space, starts with ``[``, ``{`` or
  ``"``, or holds a NUL character: then it is written as a JSON string (``""`` for the empty
  string, ``" "`` for a space, ``"[1, 2]"`` for that text, ``\u0000`` for a NUL, which Python
  3.10's csv module cannot write), so it cannot be taken for a list, an object, a missing
  value or a blank line;
* ``None`` as ``null``, and ``true``/``false``, numbers, lists and objects as JSON;
* nothing at all when the field is absent (a nested model that is ``None`` has no dotted
  cells): an empty cell is left out, so the field takes its default.

Reading undoes this: dotted columns nest again, ``null`` is ``None``, a cell that starts with
``[``, ``{`` or ``"`` and parses as JSON is that JSON value, and other cells stay strings
(the model turns ``"42"`` into 42 for an ``int`` field, as it does for a spreadsheet's
cells; a strict model, which takes no string for a number, cannot read its numbers back from
CSV: give it JSON Lines). Every output is strict JSON (no NaN or Infinity), and no output may
hold a secret the run knows.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from .errors import SynthConfigError, SynthError
from .storage.paths import writable_problem

FORMATS = (".jsonl", ".json", ".csv")
MAX_READ = 64 * 1024 * 1024
"""The largest examples or fields file read, in bytes (it is read whole)."""
SPREADSHEET_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""First characters a spreadsheet may run as a formula (OWASP's CSV injection list)."""
_JSON_STARTS = ("[", "{", '"')


class SynthOutputError(SynthError):
    """The dataset cannot be written as asked (a secret, a value JSON cannot hold)."""


# --------------------------------------------------------------------------- reading


def read_items(
    path: str | Path,
    what: str = "examples file",
    *,
    base_dir: Path | None = None,
    item: str = "example",
    items: str = "examples",
    relative_to: str = "the current folder",
    instead: str = "",
) -> list[Any]:
    """The items of a ``.json`` (an array), ``.jsonl`` or ``.csv`` file; errors name the
    file, the line and the fix. A relative path is resolved against ``base_dir``."""
    file = Path(path)
    if not file.is_absolute() and base_dir is not None:
        file = base_dir / file
    suffix = file.suffix.lower()
    if suffix not in FORMATS:
        raise SynthConfigError(f"{what} {path} must end in {', '.join(FORMATS)}")
    try:
        text = _read_text(file, what)
    except FileNotFoundError:
        raise SynthConfigError(
            f"{what} not found: {file} (relative paths are resolved against {relative_to})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SynthConfigError(f"cannot read {what} {file}: {exc}") from None
    try:
        found = _parse(file, suffix, text, what)
    except RecursionError:
        raise SynthConfigError(
            f"{what} {file} nests too deeply to read; each {item} is one record"
        ) from None
    except (ValueError, csv.Error) as exc:
        if isinstance(exc, SynthConfigError):
            raise
        raise SynthConfigError(f"{what} {file} does not parse: {exc}") from None
    if not found:
        raise SynthConfigError(f"{what} {file} holds no {items}; add at least one{instead}")
    return found


def _read_text(file: Path, what: str) -> str:
    """The text of a regular file of at most :data:`MAX_READ` bytes. A pipe or a device
    (``/dev/zero``) is refused before it is opened: reading one could wait or fill memory."""
    if not stat.S_ISREG(os.stat(file).st_mode) and not file.is_dir():
        raise SynthConfigError(
            f"{what} {file} is not a regular file (a pipe, a socket or a device); give a "
            f"{', '.join(FORMATS)} file"
        )
    with open(file, "rb") as stream:
        data = stream.read(MAX_READ + 1)
    if len(data) > MAX_READ:
        raise SynthConfigError(
            f"{what} {file} is larger than {MAX_READ // 2**20} MiB; seed examples and field "
            "sets are a few records each, give a smaller file"
        )
    return data.decode("utf-8-sig")  # a spreadsheet's byte order mark is no header


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number; use a finite number")


def strict_loads(text: str) -> Any:
    """JSON as the standard has it: NaN and Infinity are errors, not numbers."""
    return json.loads(text, parse_constant=_no_constant)


def _parse(file: Path, suffix: str, text: str, what: str) -> list[Any]:
    if suffix == ".json":
        data = strict_loads(text)
        if not isinstance(data, list):
            raise SynthConfigError(
                f"{what} {file} must hold a JSON array, not a {type(data).__name__}"
            )
        return data
    if suffix == ".jsonl":
        items: list[Any] = []
        # "\n" only: U+2028 and friends are valid inside a JSON string on one line
        for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), 1):
            if line.strip():
                try:
                    items.append(strict_loads(line))
                except ValueError as exc:
                    raise SynthConfigError(
                        f"{what} {file}, line {number}: not valid JSON ({exc})"
                    ) from None
        return items
    return _read_csv(file, text, what)


def _read_csv(file: Path, text: str, what: str) -> list[Any]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return []
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise SynthConfigError(
            f"{what} {file}: the column(s) {', '.join(map(repr, twice))} appear more than once "
            "in the header; give each field one column"
        )
    rows: list[Any] = []
    for values in reader:
        if not any(value.strip() for value in values):
            continue  # a blank line
        if len(values) != len(header):
            raise SynthConfigError(
                f"{what} {file}, line {reader.line_num}: {len(values)} values for "
                f"{len(header)} columns ({', '.join(header)}); give every row one value per "
                "column (quote values that hold commas)"
            )
        try:
            rows.append(unflatten(dict(zip(header, values, strict=True))))
        except SynthConfigError as exc:
            raise SynthConfigError(f"{what} {file}, line {reader.line_num}: {exc}") from None
    return rows


def decode_cell(cell: str) -> Any:
    """A CSV cell's value (see the module docstring); the caller leaves out empty cells."""
    if cell == "null":
        return None
    if cell.startswith(_JSON_STARTS):
        try:
            return strict_loads(cell)
        except ValueError:
            return cell
    return cell


def unflatten(row: Mapping[str, str]) -> dict[str, Any]:
    """A CSV row as the record it was written from (see :func:`flatten`)."""
    out: dict[str, Any] = {}
    for column, cell in row.items():
        if column is None or cell is None or cell == "":
            continue
        *parents, leaf = column.split(".")
        node = out
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SynthConfigError(f"column {column!r} nests under a column that has a value")
            node = child
        if leaf in node:
            raise SynthConfigError(f"column {column!r} has a value and nested columns too")
        node[leaf] = decode_cell(cell)
    return out


# --------------------------------------------------------------------------- writing


def output_format(path: Path) -> str:
    """The format of an output path, from its extension; a clear error for any other."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        shown = f"extension {suffix!r}" if suffix else "no extension"
        raise SynthConfigError(
            f"-o {path}: the output format follows the extension, and {shown} is not one of "
            f"{', '.join(FORMATS)}; name the file e.g. {(path.stem or 'records') + '.jsonl'}, or "
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
    if path.exists() and not os.access(path, os.W_OK):
        raise SynthConfigError(f"-o {path}: the file is not writable; choose another path")
    partial = _partial(path)
    if partial.is_dir():
        raise SynthConfigError(
            f"-o {path}: {partial} is a folder, and the file is written through that name "
            "first; remove it or choose another path"
        )
    problem = writable_problem(partial.parent)  # the file is written there, then renamed
    if problem is not None:
        raise SynthConfigError(f"-o {path}: {problem}; choose another path")


def _partial(path: Path) -> Path:
    """Where ``path`` is written before it replaces the file in one step: beside the file a
    symbolic link points to (the link stays a link)."""
    target = Path(os.path.realpath(path))
    return target.with_name(f".{target.name}.partial")


def render(rows: list[dict[str, Any]], suffix: str, *, spreadsheet_safe: bool = False) -> str:
    """``rows`` as the text of a ``suffix`` file; a value JSON cannot hold is an error."""
    try:
        if suffix == ".jsonl":
            return "".join(_dumps(row) + "\n" for row in rows)
        if suffix == ".json":
            return json.dumps(rows, ensure_ascii=False, indent=2, allow_nan=False) + "\n"
        return _csv_text(rows, spreadsheet_safe)
    except ValueError as exc:
        raise SynthOutputError(
            f"a record holds a value JSON cannot carry ({exc}: NaN or Infinity); nothing was "
            "written. Give the field a finite number (pydantic: allow_inf_nan=False)"
        ) from None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _csv_text(rows: list[dict[str, Any]], spreadsheet_safe: bool) -> str:
    flat = [flatten(row) for row in rows]
    if spreadsheet_safe:
        flat = [{key: neutralised(cell) for key, cell in row.items()} for row in flat]
    columns = list(dict.fromkeys(key for row in flat for key in row))
    buffer = io.StringIO(newline="")
    # CRLF, as RFC 4180 has it: then every cell holding "\r" or "\n" is quoted
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(flat)
    return buffer.getvalue()


def write_rows(
    rows: list[dict[str, Any]],
    path: Path | None,
    stdout: TextIO,
    *,
    spreadsheet_safe: bool = False,
) -> None:
    """Write ``rows`` to ``path`` in the format its extension names (JSON Lines to
    ``stdout`` without a path), replacing the file in one step once all is written. A
    dataset that holds a secret this run knows (an echoed API key) is not written."""
    from .storage.secrets import found_in

    suffix = output_format(path) if path is not None else ".jsonl"
    text = render(rows, suffix, spreadsheet_safe=spreadsheet_safe)
    if found_in(text):
        where = str(path) if path is not None else "standard output"
        raise SynthOutputError(
            f"the dataset holds a secret this run uses (an API key or another credential the "
            f"endpoint echoed back), so it was not written to {where}; nothing was cached "
            "either. Rotate the key if the endpoint is not yours, and run again"
        )
    if path is None:
        stdout.write(text)
        stdout.flush()
        return
    partial = _partial(path)
    target = partial.with_name(partial.name[1 : -len(".partial")])
    try:
        with open(partial, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        if target.exists():
            shutil.copymode(target, partial)  # a file kept private stays private
        os.replace(partial, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise SynthOutputError(
            f"cannot write {path} ({exc.strerror or exc}); nothing was written to it"
        ) from exc


def encode_cell(value: Any) -> str:
    """One scalar, list or object as a CSV cell (see the module docstring)."""
    if isinstance(value, str):
        special = value == "null" or value.startswith(_JSON_STARTS) or "\x00" in value
        if special or not value.strip():
            return _dumps(value)
        return value
    if value is None:
        return "null"
    return _dumps(value)


def flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """One CSV row: nested objects as dotted columns, everything else as one cell."""
    out: dict[str, str] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and all(_column_part(k) for k in value):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = encode_cell(value)
    return out


def _column_part(key: object) -> bool:
    """Whether a key can be a part of a dotted column name (else its object is one cell)."""
    return isinstance(key, str) and key != "" and "." not in key


def neutralised(cell: str) -> str:
    """A cell a spreadsheet shows as text rather than runs as a formula (OWASP): a leading
    ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a ``'`` in front. This changes
    the data (``-5`` becomes the text ``'-5``), so it is only done when asked for."""
    return "'" + cell if cell.startswith(SPREADSHEET_TRIGGERS) else cell


def as_example(record: Any) -> Any:
    """A validated record as a prompt shows it, the way its schema asks for records: the
    schema's fields only (no computed fields), decimals as JSON numbers (pydantic writes
    them as strings) and sets in a stable order (see :mod:`.jsonform`)."""
    from .jsonform import json_form

    return json_form(record, decimals_as_numbers=True, exclude_computed_fields=True)


def as_rows(records: Iterable[Any]) -> list[dict[str, Any]]:
    """Pydantic records as plain JSON objects, by their aliases (what they validate from)."""
    return [record.model_dump(mode="json", by_alias=True) for record in records]
