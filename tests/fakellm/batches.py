"""The fake server's Batch API: ``/v1/files`` and ``/v1/batches``, as OpenAI serves them.

``POST /v1/files`` takes a multipart upload (``purpose``, ``file``); ``GET /v1/files``,
``GET /v1/files/{id}`` and ``GET /v1/files/{id}/content`` give the list, the metadata and
the bytes back. ``POST /v1/batches`` checks the input file the way OpenAI does (every line a
``POST`` to the batch's endpoint with a unique ``custom_id``; else the batch ``failed`` with
its errors), ``GET /v1/batches/{id}`` moves it on, ``POST /v1/batches/{id}/cancel`` cancels
it and ``GET /v1/batches`` lists them, newest first.

Each line is answered as the server's chat-completions endpoint answers that body
(:meth:`fakellm.server.FakeLLM.chat_answer`), in the output file; an answer that is an HTTP
error is an output line with that status, as OpenAI writes it. Switches of
:class:`BatchService` (all restored by :meth:`BatchService.reset`):

* ``processing_time``: seconds a batch takes; a retrieve answers the share of its lines
  that the time elapsed since its creation allows (0: every line on the first retrieve);
* ``lines_per_poll``: instead of the clock, answer this many more lines at each retrieve
  (progress a test can count on);
* ``failures`` (``custom_id`` -> ``"4xx"`` or ``"error"``), and ``fail_fraction`` of the
  lines (chosen by a hash of ``fail_seed`` and the ``custom_id``) failing as ``fail_kind``:
  a ``"4xx"`` line is an output line with status 400, an ``"error"`` line is in the error
  file;
* ``expire_after``: seconds after which an unfinished batch ``expired`` (its answered lines
  in the output file, the others in the error file, ``batch_expired``); :meth:`expire` does
  it at once.

``POST /_batches`` with a JSON object changes these switches (:meth:`BatchService.configure`,
for the server in its own process) and ``GET /_batches`` reads them with the counters
(:meth:`BatchService.stats`). Observations: ``uploads``, ``creations``, ``cancellations``,
``answered``, ``prompt_tokens``, ``completion_tokens``. :func:`answer_line` answers one
request line in OpenAI's or vLLM's output format (the loopback runner,
:mod:`fakellm.runner`, uses it too).
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .wire import RecordedRequest, Reply, error_body

JSONDict = dict[str, Any]
Answer = Callable[[Any], tuple[int, JSONDict]]
"""What the chat-completions endpoint answers a request body: its status and JSON."""

BATCH_PATHS = re.compile(r"^/v1/(files|batches)(/[^/]+)?(/content|/cancel)?/?$")
CONTROL_PATH = "/_batches"
SWITCHES: tuple[str, ...] = (
    "processing_time",
    "lines_per_poll",
    "fail_fraction",
    "fail_kind",
    "fail_seed",
)
SWITCHES += ("expire_after", "failures")
"""What ``POST /_batches`` changes (see :meth:`BatchService.configure`)."""
ENDPOINTS = ("/v1/chat/completions",)
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
FAILURE_KINDS = ("4xx", "error")


def handles(path: str) -> bool:
    """Whether ``path`` is one of the Batch API's."""
    return BATCH_PATHS.match(path) is not None or path.rstrip("/") == CONTROL_PATH


def answer_line(
    answer: Answer, line: Mapping[str, Any], failure: str | None = None, *, vllm: bool = False
) -> tuple[JSONDict | None, JSONDict | None]:
    """The output line and the error-file line (one of them None) answering one request
    line: in OpenAI's format, or with ``vllm`` in vLLM's (a failed line has ``error`` set and
    no body, and is in the output file). ``failure`` forces a ``"4xx"`` or ``"error"`` line."""
    cid = str(line.get("custom_id"))
    request_id = "req_" + hashlib.sha256(cid.encode()).hexdigest()[:24]
    ident = ("vllm-" if vllm else "batch_req_") + uuid.uuid4().hex[:24]
    if failure == "error":
        error = {"code": "server_error", "message": "The request could not be processed."}
        if vllm:
            return _out(ident, cid, 500, request_id, None, error["message"]), None
        return None, {"id": ident, "custom_id": cid, "response": None, "error": error}
    if failure == "4xx":
        status, payload = (
            400,
            error_body("Invalid request in this batch line.", "invalid_request_error"),
        )
    else:
        status, payload = answer(line.get("body"))
    if status == 200:
        return _out(ident, cid, 200, request_id, payload, None), None
    if vllm:
        message = str(payload.get("error", {}).get("message") or f"HTTP {status}")
        return _out(ident, cid, status, request_id, None, message), None
    return _out(ident, cid, status, request_id, payload, None), None


def _out(
    ident: str, cid: str, status: int, request_id: str, body: JSONDict | None, error: Any
) -> JSONDict:
    response = {"status_code": status, "request_id": request_id, "body": body}
    return {"id": ident, "custom_id": cid, "response": response, "error": error}


def failure_of(cid: str, fraction: float, seed: int, kind: str) -> str | None:
    """``kind`` for the share ``fraction`` of custom ids picked by a hash of seed and id."""
    if fraction <= 0:
        return None
    digest = hashlib.sha256(f"{seed}|{cid}".encode()).digest()
    return kind if int.from_bytes(digest[:8], "big") / 2**64 < fraction else None


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def describe(self) -> JSONDict:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


@dataclass
class Batch:
    id: str
    input_file_id: str
    endpoint: str
    metadata: JSONDict | None
    created: float
    lines: list[JSONDict]
    status: str = "validating"
    done: int = 0
    completed: int = 0
    failed: int = 0
    output: list[JSONDict] = field(default_factory=list)
    errors: list[JSONDict] = field(default_factory=list)
    validation: list[JSONDict] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None
    stamps: dict[str, int] = field(default_factory=dict)

    def describe(self) -> JSONDict:
        described: JSONDict = {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": {"object": "list", "data": self.validation} if self.validation else None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": int(self.created),
            "expires_at": int(self.created) + 86400,
            "request_counts": {
                "total": len(self.lines),
                "completed": self.completed,
                "failed": self.failed,
            },
            "metadata": self.metadata,
        }
        for name in ("in_progress", "finalizing", "completed", "failed", "expired"):
            described[f"{name}_at"] = self.stamps.get(name)
        described["cancelling_at"] = self.stamps.get("cancelling")
        described["cancelled_at"] = self.stamps.get("cancelled")
        return described


class BatchService:
    """The files and batches of one fake server, answering lines with ``answer``."""

    def __init__(self, answer: Answer, clock: Callable[[], float] = time.time) -> None:
        self.answer = answer
        self._clock = clock
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget files, batches and counters; restore every switch."""
        with getattr(self, "_lock", threading.RLock()):
            # What the time is (a test may set a clock of its own).
            self.clock: Callable[[], float] = self._clock
            self.processing_time: float = 0.0
            self.lines_per_poll: int | None = None
            self.failures: dict[str, str] = {}
            self.fail_fraction: float = 0.0
            self.fail_kind: str = "4xx"
            self.fail_seed: int = 0
            self.expire_after: float | None = None
            self.files: dict[str, StoredFile] = {}
            self.batches: dict[str, Batch] = {}
            self.uploads = self.creations = self.cancellations = self.answered = 0
            self.prompt_tokens = self.completion_tokens = 0

    # -- routing ---------------------------------------------------------------------------

    def reply(self, rec: RecordedRequest) -> Reply:
        """The answer to a request on one of the Batch API's paths."""
        found = BATCH_PATHS.match(rec.path)
        with self._lock:
            if found is None:
                return self._control(rec)
            kind, ident, action = found[1], (found[2] or "")[1:], found[3] or ""
            try:
                return self._dispatch(rec, kind, ident, action.lstrip("/"))
            except _Refused as refused:
                return Reply(refused.status, error_body(refused.message, refused.type))

    def stats(self) -> JSONDict:
        """The switches and the counters (what ``GET /_batches`` answers)."""
        with self._lock:
            return {
                **{name: getattr(self, name) for name in SWITCHES},
                "uploads": self.uploads,
                "creations": self.creations,
                "cancellations": self.cancellations,
                "answered": self.answered,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "batches": dict(Counter(b.status for b in self.batches.values())),
            }

    def configure(self, **changes: Any) -> JSONDict:
        """Change some :data:`SWITCHES` (the server in its own process takes them as the JSON
        object of ``POST /_batches``); the stats."""
        unknown = sorted(set(changes) - set(SWITCHES))
        if unknown:
            raise ValueError(f"unknown batch setting(s) {unknown}; expected some of {SWITCHES}")
        kind = changes.get("fail_kind", self.fail_kind)
        if kind not in FAILURE_KINDS:
            raise ValueError(f"fail_kind must be one of {FAILURE_KINDS}, got {kind!r}")
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, dict(value) if name == "failures" else value)
        return self.stats()

    def _control(self, rec: RecordedRequest) -> Reply:
        if rec.method == "GET":
            return Reply(200, self.stats())
        if rec.method != "POST" or not isinstance(rec.body, dict):
            return Reply(
                400, error_body("POST a JSON object of batch settings", "invalid_request_error")
            )
        try:
            return Reply(200, self.configure(**rec.body))
        except ValueError as exc:
            return Reply(400, error_body(str(exc), "invalid_request_error"))

    def _dispatch(self, rec: RecordedRequest, kind: str, ident: str, action: str) -> Reply:
        method = rec.method
        if kind == "files":
            if method == "POST" and not ident:
                return Reply(200, self._upload(rec))
            if method == "GET" and not ident:
                files = [
                    f
                    for f in self.files.values()
                    if f.purpose == rec.query.get("purpose", f.purpose)
                ]
                return Reply(200, _page([f.describe() for f in reversed(files)], rec.query))
            stored = self._file(ident)
            if method == "GET" and action == "content":
                return Reply(200, raw=stored.data, content_type="application/octet-stream")
            if method == "GET" and not action:
                return Reply(200, stored.describe())
            if method == "DELETE" and not action:
                del self.files[ident]
                return Reply(200, {"id": ident, "object": "file", "deleted": True})
        else:
            if method == "POST" and not ident:
                return Reply(200, self._create(rec.body))
            if method == "GET" and not ident:
                for batch in self.batches.values():
                    self._advance(batch)
                described = [b.describe() for b in reversed(list(self.batches.values()))]
                return Reply(200, _page(described, rec.query))
            batch = self._batch(ident)
            if method == "GET" and not action:
                self._advance(batch)
                return Reply(200, batch.describe())
            if method == "POST" and action == "cancel":
                return Reply(200, self._cancel(batch))
        raise _Refused(404, f"Invalid URL ({method} {rec.path})")

    # -- files -----------------------------------------------------------------------------

    def _upload(self, rec: RecordedRequest) -> JSONDict:
        content_type = rec.headers.get("content-type", "")
        if "multipart/form-data" not in content_type:
            raise _Refused(400, "Expected a multipart/form-data upload with 'file' and 'purpose'")
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + rec.raw_body)
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields[name] = (part.get_filename(), payload)
        purpose = fields.get("purpose", (None, b""))[1].decode()
        if "file" not in fields or not purpose:
            raise _Refused(400, "Missing required parameter: 'file' and 'purpose' are required")
        if purpose != "batch":
            raise _Refused(400, f"Invalid purpose {purpose!r} for this server: use 'batch'")
        filename, data = fields["file"]
        stored = StoredFile(
            f"file-{uuid.uuid4().hex[:24]}",
            filename or "upload.jsonl",
            purpose,
            data,
            int(self.clock()),
        )
        self.files[stored.id] = stored
        self.uploads += 1
        return stored.describe()

    def _file(self, ident: str) -> StoredFile:
        if ident not in self.files:
            raise _Refused(404, f"No such File object: {ident}")
        return self.files[ident]

    def _store(self, lines: list[JSONDict], filename: str) -> str | None:
        if not lines:
            return None
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        stored = StoredFile(
            f"file-{uuid.uuid4().hex[:24]}", filename, "batch_output", data, int(self.clock())
        )
        self.files[stored.id] = stored
        return stored.id

    # -- batches ---------------------------------------------------------------------------

    def _create(self, body: Any) -> JSONDict:
        if not isinstance(body, dict):
            raise _Refused(400, "We could not parse the JSON body of your request.")
        endpoint, window = body.get("endpoint"), body.get("completion_window")
        if endpoint not in ENDPOINTS:
            raise _Refused(400, f"Invalid endpoint {endpoint!r}: this server batches {ENDPOINTS}")
        if window != "24h":
            raise _Refused(400, f"Invalid completion_window {window!r}: only '24h' is supported")
        source = self._file(str(body.get("input_file_id")))
        if source.purpose != "batch":
            raise _Refused(400, f"File {source.id} was not uploaded with purpose 'batch'")
        lines, problems = _read_lines(source.data, endpoint)
        batch = Batch(
            f"batch_{uuid.uuid4().hex[:24]}",
            source.id,
            endpoint,
            body.get("metadata"),
            self.clock(),
            lines,
        )
        if problems:
            batch.validation, batch.lines = problems, []
            self._finish(batch, "failed")
        self.batches[batch.id] = batch
        self.creations += 1
        return batch.describe()

    def _batch(self, ident: str) -> Batch:
        if ident not in self.batches:
            raise _Refused(404, f"No batch found with id '{ident}'.")
        return self.batches[ident]

    def _cancel(self, batch: Batch) -> JSONDict:
        if batch.status in TERMINAL:
            raise _Refused(409, f"Cannot cancel a batch with status '{batch.status}'.")
        self.cancellations += 1
        batch.status = "cancelling"
        batch.stamps["cancelling"] = int(self.clock())
        return batch.describe()

    def expire(self, batch_id: str | None = None) -> None:
        """Expire one unfinished batch now, or every one: answered lines stay answered."""
        with self._lock:
            for batch in self.batches.values():
                if batch_id in (None, batch.id) and batch.status not in TERMINAL:
                    self._finish(batch, "expired")

    def _advance(self, batch: Batch) -> None:
        """Move a batch on to where time (or ``lines_per_poll``) says it is."""
        if batch.status in TERMINAL:
            return
        if batch.status == "cancelling":
            self._finish(batch, "cancelled")
            return
        if batch.status == "validating":
            batch.status = "in_progress"
            batch.stamps["in_progress"] = int(self.clock())
        elapsed = self.clock() - batch.created
        total = len(batch.lines)
        if self.expire_after is not None:
            elapsed = min(elapsed, self.expire_after)
        if self.lines_per_poll is not None:
            target = min(total, batch.done + self.lines_per_poll)
        elif self.processing_time <= 0:
            target = total
        else:
            target = min(total, math.floor(total * elapsed / self.processing_time))
        while batch.done < target:
            self._answer(batch, batch.lines[batch.done])
            batch.done += 1
        if batch.done == total:
            self._finish(batch, "completed")
        elif self.expire_after is not None and self.clock() - batch.created >= self.expire_after:
            self._finish(batch, "expired")

    def _answer(self, batch: Batch, line: JSONDict) -> None:
        cid = str(line["custom_id"])
        failure = self.failures.get(cid) or failure_of(
            cid, self.fail_fraction, self.fail_seed, self.fail_kind
        )
        out, err = answer_line(self.answer, line, failure)
        if out is not None:
            batch.output.append(out)
            response = out["response"]
            if response["status_code"] == 200:
                batch.completed += 1
                usage = response["body"].get("usage") or {}
                self.prompt_tokens += int(usage.get("prompt_tokens", 0))
                self.completion_tokens += int(usage.get("completion_tokens", 0))
            else:
                batch.failed += 1
        if err is not None:
            batch.errors.append(err)
            batch.failed += 1
        self.answered += 1

    def _finish(self, batch: Batch, status: str) -> None:
        now = int(self.clock())
        if status == "expired":
            for line in batch.lines[batch.done :]:
                error = {
                    "code": "batch_expired",
                    "message": "This request could not be executed before the completion window "
                    "expired.",
                }
                batch.errors.append(
                    {
                        "id": f"batch_req_{uuid.uuid4().hex[:24]}",
                        "custom_id": line["custom_id"],
                        "response": None,
                        "error": error,
                    }
                )
                batch.failed += 1
        if status != "failed":
            batch.stamps["finalizing"] = now
        batch.output_file_id = self._store(batch.output, f"{batch.id}_output.jsonl")
        batch.error_file_id = self._store(batch.errors, f"{batch.id}_error.jsonl")
        batch.output, batch.errors = [], []
        batch.status = status
        batch.stamps[status] = now


class _Refused(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type_


def _read_lines(data: bytes, endpoint: str) -> tuple[list[JSONDict], list[JSONDict]]:
    """The request lines of an input file, and what is wrong with them (OpenAI's checks:
    JSON objects, ``POST`` to the batch's endpoint, a body, unique ``custom_id``)."""
    lines: list[JSONDict] = []
    problems: list[JSONDict] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            problems.append(
                _problem("invalid_json_line", "This line is not parseable as valid JSON.", number)
            )
            continue
        cid = line.get("custom_id") if isinstance(line, dict) else None
        if not isinstance(line, dict) or not isinstance(cid, str):
            problems.append(_problem("missing_required_parameter", "Missing 'custom_id'.", number))
        elif line.get("method") != "POST" or line.get("url") != endpoint:
            problems.append(
                _problem(
                    "invalid_url",
                    "The URL provided for this request does not match the batch endpoint "
                    f"{endpoint}.",
                    number,
                )
            )
        elif not isinstance(line.get("body"), dict):
            problems.append(_problem("missing_required_parameter", "Missing 'body'.", number))
        elif cid in seen:
            problems.append(
                _problem(
                    "duplicate_custom_id", f"The custom_id '{cid}' is used more than once.", number
                )
            )
        else:
            seen.add(cid)
            lines.append(line)
    if not lines and not problems:
        problems.append(_problem("empty_file", "The input file has no requests.", None))
    return lines, problems


def _problem(code: str, message: str, line: int | None) -> JSONDict:
    return {"code": code, "message": message, "param": None, "line": line}


def _page(items: list[JSONDict], query: Mapping[str, str]) -> JSONDict:
    """One page of a cursor-paged list (``after``, ``limit``), as OpenAI's lists are."""
    after = query.get("after")
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    limit = int(query.get("limit") or 20)
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }
