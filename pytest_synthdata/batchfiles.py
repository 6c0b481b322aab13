"""Batch files: the request files a Batch API or an offline runner reads, and the output
files they write back.

A request file holds one JSON object a line, as OpenAI's Batch API, ``vllm run-batch`` and
Ray Data's LLM processor read them::

    {"custom_id": "claims-w1-b3", "method": "POST", "url": "/v1/chat/completions", "body": {...}}

:func:`write_request_files` writes them from chat-completion request bodies, split into
several files at :data:`MAX_REQUESTS` requests or :data:`MAX_BYTES` bytes a file (both limits
of OpenAI's Batch API). A ``custom_id`` (:func:`custom_id`) names the dataset, the wave and
the batch of the loop, so a result finds its way back to the request that asked for it.

:func:`read_results` reads an output file (or an error file) line by line, in OpenAI's
format ``{id, custom_id, response: {status_code, request_id, body}, error}`` and in vLLM's,
where a failed line has ``error`` set and no body: each line is a :class:`LineResult`, the
chat-completion body or the reason it failed. :func:`collect_results` gathers several files
into one result per ``custom_id``; :func:`stream_results` yields them without holding the
answers in memory.

Costs at batch prices: :func:`batch_prices` and :func:`batch_cost`.

Files are read and written one line at a time: a request file of 200 MB never sits in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import jsonread
from .errors import SynthConfigError

MAX_REQUESTS = 50_000
"""Requests a Batch API input file may hold (OpenAI's limit)."""
MAX_BYTES = 200 * 1024 * 1024
"""Bytes a Batch API input file may take (OpenAI's limit, 200 MB)."""
CHAT_URL = "/v1/chat/completions"
"""The endpoint every request line names."""
BATCH_DISCOUNT = 0.5
"""What batch prices are, as a fraction of the sync prices (half price, as hosted APIs)."""
MAX_LINE = 16 * 1024 * 1024
"""The longest line a request or results file may hold, in bytes (far above any request or
answer: a line is refused before it is read whole)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_.:\-]+")
_ID = re.compile(r"^(?P<dataset>.+)-w(?P<wave>\d+)-b(?P<batch>\d+)$")


# -- custom ids ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchKey:
    """What a ``custom_id`` names: the dataset, the wave of the loop, the batch in the wave."""

    dataset: str
    wave: int
    batch: int

    @property
    def custom_id(self) -> str:
        return custom_id(self.dataset, self.wave, self.batch)


def custom_id(dataset: str, wave: int, batch: int) -> str:
    """``<dataset>-w<wave>-b<batch>``: a stable id for one request of the loop. The dataset
    name keeps letters, digits and ``_.:-`` (anything else becomes ``_``), and at most 64
    characters, so that OpenAI's limit on ``custom_id`` holds."""
    if wave < 0 or batch < 0:
        raise SynthConfigError(f"custom_id: wave and batch must be >= 0, got {wave} and {batch}")
    name = _UNSAFE.sub("_", dataset).strip("_") or "dataset"
    if len(name) > 64:
        name = name[:52] + "-" + hashlib.sha256(dataset.encode()).hexdigest()[:11]
    return f"{name}-w{wave}-b{batch}"


def parse_custom_id(value: str) -> BatchKey | None:
    """The dataset, wave and batch a ``custom_id`` of :func:`custom_id` names, or None for an
    id written by someone else."""
    found = _ID.match(value)
    if found is None:
        return None
    return BatchKey(found["dataset"], int(found["wave"]), int(found["batch"]))


# -- request files ------------------------------------------------------------------------


def request_line(custom_id: str, body: Mapping[str, Any], url: str = CHAT_URL) -> bytes:
    """One line of a request file (compact JSON and a newline)."""
    line = {"custom_id": custom_id, "method": "POST", "url": url, "body": body}
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


@dataclass
class RequestFile:
    """A request file written by :func:`write_request_files`: where, how many requests,
    how many bytes, the sha256 of its content and the ``custom_id`` of each line."""

    path: Path
    requests: int = 0
    size: int = 0
    digest: str = ""
    custom_ids: list[str] = field(default_factory=list)


def part_path(path: Path, index: int) -> Path:
    """The ``index``-th file (0-based) of a split request file: ``path`` itself first, then
    ``requests.2.jsonl``, ``requests.3.jsonl``..."""
    return path if index == 0 else path.with_name(f"{path.stem}.{index + 1}{path.suffix}")


def write_request_files(
    requests: Iterable[tuple[str, Mapping[str, Any]]],
    path: str | Path,
    *,
    max_requests: int = MAX_REQUESTS,
    max_bytes: int = MAX_BYTES,
    url: str = CHAT_URL,
) -> list[RequestFile]:
    """Write ``(custom_id, body)`` pairs as request files: ``path``, and when a file would
    pass ``max_requests`` lines or ``max_bytes`` bytes, the next ones beside it
    (:func:`part_path`). Each file is written to a temporary name and renamed when whole, so
    a file that exists is complete. A ``custom_id`` given twice, or a line larger than
    ``max_bytes`` alone, is refused before anything else is written."""
    if max_requests < 1 or max_bytes < 1:
        raise SynthConfigError(
            f"a batch file needs room for one request: got max_requests={max_requests}, "
            f"max_bytes={max_bytes}"
        )
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    written: list[RequestFile] = []
    seen: set[str] = set()
    current: _Part | None = None
    try:
        for cid, body in requests:
            if cid in seen:
                raise SynthConfigError(f"custom_id {cid!r} is given twice; each must be unique")
            seen.add(cid)
            line = request_line(cid, body, url)
            if len(line) > max_bytes:
                raise SynthConfigError(
                    f"request {cid!r} takes {len(line)} bytes, more than a batch file may "
                    f"hold ({max_bytes}): ask for fewer records a request"
                )
            if current is not None and (
                current.file.requests >= max_requests or current.file.size + len(line) > max_bytes
            ):
                written.append(current.close())
                current = None
            if current is None:
                current = _Part(part_path(base, len(written)))
            current.add(cid, line)
        if current is not None:
            written.append(current.close())
            current = None
    finally:
        if current is not None:
            current.discard()
    return written


class _Part:
    """One request file being written, under a temporary name until it is whole."""

    def __init__(self, path: Path) -> None:
        self.file = RequestFile(path)
        self._hash = hashlib.sha256()
        fd, self._tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self._handle = os.fdopen(fd, "wb")

    def add(self, cid: str, line: bytes) -> None:
        self._handle.write(line)
        self._hash.update(line)
        self.file.requests += 1
        self.file.size += len(line)
        self.file.custom_ids.append(cid)

    def close(self) -> RequestFile:
        self._handle.close()
        os.replace(self._tmp, self.file.path)
        self.file.digest = self._hash.hexdigest()
        return self.file

    def discard(self) -> None:
        self._handle.close()
        Path(self._tmp).unlink(missing_ok=True)


def read_requests(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """The ``(custom_id, body)`` of each line of a request file, one line at a time."""
    for number, item in _json_lines(Path(path)):
        cid, body = item.get("custom_id"), item.get("body")
        if not isinstance(cid, str) or not isinstance(body, dict):
            raise SynthConfigError(
                f"{path}:{number}: not a batch request line (it needs a 'custom_id' string "
                "and a 'body' object)"
            )
        yield cid, body


def file_digest(path: str | Path) -> str:
    """The sha256 of a file's content, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- output files -------------------------------------------------------------------------


@dataclass(frozen=True)
class LineResult:
    """The result of one request: the chat-completion ``body`` when it was answered, else
    the ``error`` saying why not. ``status_code`` is the HTTP status the request got, when
    the file says it."""

    custom_id: str
    body: dict[str, Any] | None = None
    error: str | None = None
    status_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.body is not None and self.error is None


def read_results(path: str | Path) -> Iterator[LineResult]:
    """Each line of a Batch output or error file as a :class:`LineResult`, one line at a
    time: OpenAI's format and vLLM's (``error`` set and no body for a failed line). A line
    that is neither is refused with its file and line number."""
    source = Path(path)
    for number, item in _json_lines(source):
        cid = item.get("custom_id")
        if not isinstance(cid, str):
            raise SynthConfigError(
                f"{source}:{number}: not a batch result line: it has no 'custom_id' string "
                "(expected OpenAI's or vLLM's batch output format)"
            )
        yield result_of(cid, item)


def result_of(cid: str, item: Mapping[str, Any]) -> LineResult:
    """The :class:`LineResult` of one output or error line."""
    response = item.get("response")
    response = response if isinstance(response, dict) else {}
    status = response.get("status_code")
    status = status if isinstance(status, int) and not isinstance(status, bool) else None
    body = response.get("body")
    error = item.get("error")
    if error:
        return LineResult(cid, None, _reason(error, status), status)
    if status is not None and not 200 <= status < 300:
        return LineResult(cid, None, _reason(body, status), status)
    if not isinstance(body, dict):
        return LineResult(cid, None, "the line has no response body", status)
    return LineResult(cid, body, None, status)


def _reason(error: Any, status: int | None) -> str:
    """A failure as one line: ``HTTP 400: code: message``."""
    if isinstance(error, dict) and isinstance(error.get("error"), dict):
        error = error["error"]
    if isinstance(error, dict):
        message = str(error.get("message") or "").strip()
        code = error.get("code") or error.get("type")
        text = f"{code}: {message}" if code and message else message or str(code or error)
    else:
        text = str(error).strip() or "failed"
    return f"HTTP {status}: {text}" if status is not None and status >= 300 else text


def collect_results(paths: Iterable[str | Path]) -> dict[str, LineResult]:
    """One result per ``custom_id`` from output and error files (in any order): an answer
    wins over a failure of the same id, and the first answer over a later one."""
    results: dict[str, LineResult] = {}
    for path in paths:
        for result in read_results(path):
            known = results.get(result.custom_id)
            if known is None or (result.ok and not known.ok):
                results[result.custom_id] = result
    return results


def stream_results(paths: Iterable[str | Path]) -> Iterator[LineResult]:
    """The results of output and error files with only ids and failure reasons held in
    memory: each answer as it is read (the first one of each ``custom_id``), then the
    failure of each id that got no answer. What a large dataset is validated from, one
    answer at a time (:func:`collect_results` holds every body at once)."""
    answered: set[str] = set()
    failed: dict[str, LineResult] = {}
    for path in list(paths):
        for result in read_results(path):
            if result.custom_id in answered:
                continue
            if result.ok:
                answered.add(result.custom_id)
                failed.pop(result.custom_id, None)
                yield result
            else:
                failed.setdefault(result.custom_id, result)
    yield from failed.values()


def missing_ids(requested: Iterable[str], results: Mapping[str, LineResult]) -> list[str]:
    """The ``custom_id`` of each request without an answer (failed, or not in any file), in
    the order requested."""
    return [cid for cid in requested if not (cid in results and results[cid].ok)]


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line; a line that is not a JSON object is
    refused with its place."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below; only opening is guarded)
    except OSError as exc:
        raise SynthConfigError(f"cannot read batch file {str(path)!r}: {exc.strerror}") from None
    with handle:
        for number, raw in enumerate(iter(lambda: handle.readline(MAX_LINE + 1), b""), 1):
            if len(raw) > MAX_LINE:  # never read whole: a line may not hold a gigabyte
                raise SynthConfigError(
                    f"{path}:{number}: a line of more than {MAX_LINE // 2**20} MiB; a batch "
                    "file's line holds one request or one answer"
                )
            if not raw.strip():
                continue
            try:
                item = jsonread.loads(raw)
            except ValueError as exc:  # a JSONDecodeError, too deep, or bad UTF-8
                reason = _why_not_json(exc)
                raise SynthConfigError(
                    f"{path}:{number}: not a JSON line ({reason}); a batch file holds one "
                    "JSON object a line"
                ) from None
            if not isinstance(item, dict):
                raise SynthConfigError(f"{path}:{number}: expected a JSON object a line")
            yield number, item


def _why_not_json(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    return str(exc) if isinstance(exc, jsonread.TooDeep) else "not UTF-8"


# -- costs --------------------------------------------------------------------------------


def check_discount(discount: float, where: str = "--batch-discount") -> float:
    """A batch discount as a fraction of the sync price, between 0 and 1 (0.5: half price)."""
    if not 0 <= discount <= 1:
        raise SynthConfigError(
            f"{where}: the batch price is a fraction of the sync price between 0 and 1 "
            f"(0.5 is half price), got {discount:g}"
        )
    return float(discount)


def batch_prices(
    price_in: float, price_out: float, discount: float = BATCH_DISCOUNT
) -> tuple[float, float]:
    """USD per million prompt and completion tokens in a batch: the sync prices times the
    batch ``discount`` (:data:`BATCH_DISCOUNT` unless given)."""
    fraction = check_discount(discount)
    return price_in * fraction, price_out * fraction


def batch_cost(
    prompt_tokens: int,
    completion_tokens: int,
    price_in: float,
    price_out: float,
    discount: float = BATCH_DISCOUNT,
) -> float:
    """USD for tokens answered in a batch, at :func:`batch_prices`."""
    batch_in, batch_out = batch_prices(price_in, price_out, discount)
    return (prompt_tokens * batch_in + completion_tokens * batch_out) / 1_000_000
