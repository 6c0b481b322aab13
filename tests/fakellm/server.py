"""The HTTP side of the fake: an OpenAI-compatible chat-completions server on 127.0.0.1.

``FakeLLM`` speaks real HTTP so the official ``openai`` SDK can be pointed at it unchanged.
It answers structured-output requests (``json_schema``, ``json_object`` with a ``schema``,
forced function ``tools``) with deterministic records generated from the JSON schema, as many
as the prompt asks for (:mod:`fakellm.reading`). A schema whose array holds ``{index, text}``
items gets a text for each JSON object or array quoted at the end of a prompt line; one whose
array holds ``{index, record}`` items gets a record read back out of each quoted text
(:mod:`fakellm.texts`); a plain request gets a text written from the last quoted object or
array, or ``"ok"``. Switches inject faults (:mod:`fakellm.faults`)::

    with FakeLLM() as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
        server.enqueue("429", Fault.mutate(lambda records: records[:1]))
        ...

Only the standard library is used, so the server never depends on the code under test.
"""

from __future__ import annotations

import contextlib
import gzip as _gzip
import hashlib
import json
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import reading
from .faults import HTTP_FAULTS, Fault, MutateFn, item_faults, record_faults
from .reading import text_of
from .schema_faker import SchemaError, SchemaFaker
from .texts import fill_record, read_phrases, write_text

__all__ = ["MODES", "FakeLLM", "RecordedRequest"]

JSONDict = dict[str, Any]


def _is_fields(value: Any) -> bool:
    """Fields to write a text from are a JSON object or array."""
    return isinstance(value, (dict, list))


MODES: frozenset[str] = frozenset({"json_schema", "json_object", "tools"})

_CREATED = 1_700_000_000
_REFUSAL_TEXT = "I can't help with that."
_AZURE_RE = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions/?$")
_CHAT_PATHS = frozenset({"/v1/chat/completions", "/v1/chat/completions/"})


# --------------------------------------------------------------------------------------------
# Recorded requests
# --------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request the server received (and, once answered, what it answered).

    Attribute access and ``req["body"]``-style access both work.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw_body: bytes = b""
    fault: Fault | None = None
    status: int | None = None
    response: Any = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    @property
    def messages(self) -> list[JSONDict]:
        if isinstance(self.body, dict) and isinstance(self.body.get("messages"), list):
            return list(self.body["messages"])
        return []


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128
    fake: FakeLLM

    def server_activate(self) -> None:
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Hang up on every open (keep-alive) connection."""
        with self.connections_lock:
            open_now = list(self.connections)
        for conn in open_now:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (timeouts, aborted requests) are part of normal operation.
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _dispatch(self) -> None:
        try:
            self.server.fake._handle(self)
        except OSError:
            self.close_connection = True

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        return


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in (handler.headers.get("transfer-encoding") or "").lower():
        chunks: list[bytes] = []
        while True:
            line = handler.rfile.readline()
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        return b"".join(chunks)
    length = int(handler.headers.get("content-length") or 0)
    return handler.rfile.read(length) if length > 0 else b""


def _error_body(message: str, type_: str, code: str | None = None) -> JSONDict:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class FakeLLM:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 for tests.

    Switches (all restored by :meth:`reset`): ``supported_modes``, ``unsupported_status``,
    ``reject_seed``, ``timeout_delay``, ``response_delay``, ``retry_after_ms``,
    ``extra_response_fields``, ``omit_usage``, ``gzip``, ``text_omit_values``,
    ``text_omit_times``, ``extract_override``; faults via :meth:`enqueue` and :meth:`always`
    (a ``mutate`` fault sees ``[{"text": ...}]`` for a plain-text answer, the ``{"index",
    "text"}`` items of a text batch and the ``{"index", "record"}`` items of an extraction).
    Observations: ``requests``, ``request_count``, ``chat_requests``, ``prompt_tokens``,
    ``completion_tokens``, ``total_tokens``, ``max_in_flight``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._generation = 0
        self._in_flight = 0
        self._faults: deque[Fault] = deque()
        self._always: Fault | None = None
        self.requests: list[RecordedRequest] = []
        self._set_defaults()

    def _set_defaults(self) -> None:
        self.supported_modes: set[str] = set(MODES)
        self.unsupported_status: int = 400
        self.reject_seed: bool = False
        self.timeout_delay: float = 3.0
        self.response_delay: float = 0.0
        # When set, 429/500/503 faults also send ``retry-after-ms`` (0 = retry at once).
        self.retry_after_ms: float | None = None
        self.extra_response_fields: JSONDict = {}
        self.omit_usage: bool = False
        self.gzip: bool = False
        # Texts leave out the leaf values whose text form is in this set (or, for an int N,
        # their first N string/number values), in the next ``text_omit_times`` answers
        # (None: every answer until reset).
        self.text_omit_values: set[str] | int = set()
        self.text_omit_times: int | None = None
        # Top-level values every extracted record takes instead of those read from the text.
        self.extract_override: JSONDict = {}
        self.prompt_tokens: int = 0
        self.completion_tokens: int = 0
        self.max_in_flight: int = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeLLM:
        if self._httpd is not None:
            return self
        httpd = _Server((self.host, self.port), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeLLM:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            httpd.drop_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``: the ``azure_endpoint`` for ``openai.AzureOpenAI``."""
        if self._httpd is None:
            raise RuntimeError("FakeLLM is not started")
        return f"http://{self.host}:{self.port}"

    azure_endpoint = origin

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: the ``base_url`` for ``openai.OpenAI``."""
        return f"{self.origin}/v1"

    def reset(self) -> None:
        """Forget requests, faults and counters and restore every switch to its default."""
        with self._lock:
            self._generation += 1
            self._in_flight = 0
            self._faults.clear()
            self._always = None
            self.requests = []
            self._set_defaults()

    # -- faults ------------------------------------------------------------------------------

    def enqueue(self, *faults: Fault | str | int | MutateFn) -> None:
        """Queue one-shot faults; each chat request consumes the next one, in order."""
        coerced = [Fault.coerce(f) for f in faults]
        with self._lock:
            self._faults.extend(coerced)

    def always(self, fault: Fault | str | int | MutateFn | None) -> None:
        """Apply ``fault`` to every chat request (after queued ones) until reset; None clears."""
        coerced = None if fault is None else Fault.coerce(fault)
        with self._lock:
            self._always = coerced

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._always = None

    @property
    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            return self._always

    # -- observations ------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.rstrip("/").endswith("/chat/completions")]

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self.requests:
                raise LookupError("FakeLLM has received no request")
            return self.requests[-1]

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    # -- extension hooks ---------------------------------------------------------------------

    def _plain_text(self, body: JSONDict) -> str:
        """The answer to a request asking for neither JSON nor a tool call: a text written from
        the last JSON object or array quoted at the end of a line of the last user message that
        has one (preferences aside), else ``"ok"``."""
        found = reading.inputs(body, _is_fields)
        if not found:
            return "ok"
        return write_text(found[-1][1], reading.preferences(body), self._take_omission())

    def _take_omission(self) -> set[str] | int:
        """What the text being written leaves out (and one use of ``text_omit_times``)."""
        with self._lock:
            omit = self.text_omit_values
            if not omit:
                return set()
            if self.text_omit_times is not None:
                if self.text_omit_times <= 0:
                    return set()
                self.text_omit_times -= 1
            return omit if isinstance(omit, int) else set(omit)

    def _batch_answer(
        self, faker: SchemaFaker, batch: reading.Batch, body: JSONDict
    ) -> list[JSONDict] | None:
        """The items answering a text batch (``{index, text}``, one per JSON object or array
        quoted in the prompt) or an extraction (``{index, record}``, one per quoted string);
        ``None`` when the prompt quotes no input."""
        if batch.kind == "texts":
            entries = reading.inputs(body, _is_fields)
            if not entries:
                return None
            prefs, omit = reading.preferences(body), self._take_omission()
            return [{"index": i, "text": write_text(fields, prefs, omit)} for i, fields in entries]
        texts = reading.inputs(body, lambda value: isinstance(value, str))
        if not texts or batch.record is None:
            return None
        records = []
        for i, text in texts:
            record = fill_record(faker, batch.record, "", read_phrases(text))
            if isinstance(record, dict):
                record.update(json.loads(json.dumps(self.extract_override)))
            records.append({"index": i, "record": record})
        return records

    # -- request handling --------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        raw = _read_body(handler)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        rec = RecordedRequest(
            method=handler.command,
            path=split.path,
            query=dict(parse_qsl(split.query)),
            headers=headers,
            body=body,
            raw_body=raw,
        )
        with self._lock:
            generation = self._generation
            self.requests.append(rec)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            self._route(handler, rec, generation)
        finally:
            with self._lock:
                if generation == self._generation:
                    self._in_flight -= 1

    def _route(self, handler: _Handler, rec: RecordedRequest, generation: int) -> None:
        azure = _AZURE_RE.match(rec.path)
        is_chat = rec.path in _CHAT_PATHS or azure is not None
        if not is_chat or rec.method != "POST":
            what = "Invalid URL" if is_chat else "Unknown request URL"
            self._send_error(
                handler, rec, 404, f"{what}: {rec.method} {rec.path}", "invalid_request_error"
            )
            return

        fault = self._next_fault()
        rec.fault = fault
        if self.response_delay > 0:
            time.sleep(self.response_delay)
        if fault is not None and fault.kind == "reset":
            self._abort(handler)
            rec.status = 0
            return
        if fault is not None and fault.kind in HTTP_FAULTS:
            self._send_fault_status(handler, rec, fault.kind)
            return
        if fault is not None and fault.kind == "timeout":
            time.sleep(self.timeout_delay if fault.delay is None else fault.delay)

        try:
            response = self._complete(rec, fault, azure.group("deployment") if azure else None)
        except _HTTPError as err:
            self._send_error(handler, rec, err.status, err.message, err.type)
            return
        except SchemaError as err:
            self._send_error(handler, rec, 400, str(err), "invalid_request_error")
            return
        with self._lock:
            if generation == self._generation and not self.omit_usage:
                usage = response.get("usage") or {}
                self.prompt_tokens += int(usage.get("prompt_tokens", 0))
                self.completion_tokens += int(usage.get("completion_tokens", 0))
        self._send_json(handler, rec, 200, response)

    # -- building the completion -------------------------------------------------------------

    def _mode(self, body: JSONDict) -> tuple[str, JSONDict | None, str | None]:
        """(mode, schema, tool name); mode is one of MODES or "text"."""
        tools = body.get("tools")
        if tools:
            if "tools" not in self.supported_modes:
                raise _HTTPError(self.unsupported_status, "tools are not supported by this server")
            if not isinstance(tools, list):
                raise _HTTPError(400, "'tools' must be an array")
            functions = [
                t["function"]
                for t in tools
                if isinstance(t, dict) and isinstance(t.get("function"), dict)
            ]
            if not functions:
                raise _HTTPError(400, "'tools' has no function tool")
            choice = body.get("tool_choice")
            wanted: str | None = None
            if isinstance(choice, dict):
                wanted = (choice.get("function") or {}).get("name")
            chosen = functions[0]
            if wanted is not None:
                matches = [f for f in functions if f.get("name") == wanted]
                if not matches:
                    raise _HTTPError(400, f"tool_choice names an unknown function {wanted!r}")
                chosen = matches[0]
            params = chosen.get("parameters")
            if not isinstance(params, dict):
                raise _HTTPError(400, f"function {chosen.get('name')!r} has no parameters schema")
            return "tools", params, str(chosen.get("name", "function"))

        rf = body.get("response_format")
        if rf is None:
            return "text", None, None
        if not isinstance(rf, dict):
            raise _HTTPError(400, "'response_format' must be an object")
        kind = rf.get("type")
        if kind == "text":
            return "text", None, None
        if kind not in MODES or kind == "tools":
            raise _HTTPError(400, f"Invalid value for 'response_format.type': {kind!r}")
        if kind not in self.supported_modes:
            raise _HTTPError(
                self.unsupported_status,
                f"response_format type '{kind}' is not supported by this server",
            )
        if kind == "json_schema":
            spec = rf.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            if not isinstance(schema, dict):
                raise _HTTPError(400, "response_format.json_schema.schema is missing")
            return "json_schema", schema, None
        schema = rf.get("schema")
        if not isinstance(schema, dict):
            raise _HTTPError(
                400, "response_format json_object needs a 'schema' object on this server"
            )
        return "json_object", schema, None

    @staticmethod
    def requested_count(body: JSONDict, schema: JSONDict | None = None) -> int:
        """How many records ``body`` asks for: the count its last user message states (1 if
        none), within the ``minItems``/``maxItems`` of ``schema`` when it is an array."""
        root = SchemaFaker(schema, "").resolve(schema) if schema is not None else {}
        nouns = [key for key in root.get("properties") or {} if isinstance(key, str)]
        array = root if root.get("type") == "array" else {}
        return reading.item_count(array, reading.stated_count(body, nouns))

    def generate(self, schema: JSONDict, body: JSONDict, fault: Fault | None = None) -> Any:
        """The object answering ``body`` for ``schema`` (with record faults applied)."""
        faker = SchemaFaker(schema, self._seed(body))
        batch = reading.batch_of(faker, schema)
        if batch is not None:
            answered = self._batch_answer(faker, batch, body)
            if answered is not None:
                return {batch.key: item_faults(answered, fault)}
        kind = fault.kind if fault is not None else None

        def count(array: JSONDict) -> int:
            asked = reading.item_count(array, stated)
            return {"fewer": asked // 2, "more": asked + 2}.get(kind or "", asked)

        root = faker.resolve(schema)
        props = root.get("properties")
        stated = reading.stated_count(body, [k for k in props or {} if isinstance(k, str)])
        if root.get("type") == "array" or (not isinstance(props, dict) and "items" in root):
            items = root.get("items", {})
            records = [faker.value(items, f"[{i}]", "item") for i in range(count(root))]
            return record_faults(records, fault)

        result: JSONDict = {}
        arrays: list[str] = []
        for key, sub in (props or {}).items():
            node = faker.resolve(sub)
            if node.get("type") == "array" and "prefixItems" not in node:
                items = node.get("items", {})
                result[key] = [
                    faker.value(items, f"{key}[{i}]", key, 1) for i in range(count(node))
                ]
                arrays.append(key)
            else:
                result[key] = faker.value(sub, key, key, 1)
        if arrays and kind in ("mutate", "duplicate"):
            target = "records" if "records" in arrays else arrays[0]
            for key in arrays if kind == "duplicate" else [target]:
                result[key] = record_faults(result[key], fault)
        return result

    def _seed(self, body: JSONDict) -> str:
        """The seed of the values answering ``body``: the request itself."""
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def _complete(
        self, rec: RecordedRequest, fault: Fault | None, deployment: str | None
    ) -> JSONDict:
        body = rec.body
        if not isinstance(body, dict):
            raise _HTTPError(400, "We could not parse the JSON body of your request.")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise _HTTPError(400, "'messages' is a required property and must be non-empty")
        if self.reject_seed and "seed" in body:
            raise _HTTPError(400, "Unrecognized request argument supplied: seed")
        if body.get("stream"):
            raise _HTTPError(400, "stream=true is not supported by this server")

        mode, schema, tool_name = self._mode(body)
        if mode == "text":
            payload = self._plain_text(body)
            if fault is not None and fault.kind == "mutate" and fault.fn is not None:
                mutated = fault.fn([{"text": payload}])
                payload = str(mutated[0]["text"]) if mutated else ""
        else:
            assert schema is not None
            payload = json.dumps(self.generate(schema, body, fault))

        kind = fault.kind if fault is not None else None
        finish = "tool_calls" if mode == "tools" else "stop"
        if kind == "malformed":
            payload = payload[:-7] + "}{oops"
        elif kind == "truncated":
            payload = payload[: int(len(payload) * 0.6)]
            finish = "length"

        digest = hashlib.sha256(rec.raw_body).hexdigest()
        message: JSONDict = {"role": "assistant", "content": None, "refusal": None}
        produced = payload
        if kind == "refusal":
            message["refusal"] = produced = _REFUSAL_TEXT
            finish = "stop"
        elif mode == "tools":
            message["tool_calls"] = [
                {
                    "id": f"call_{digest[:24]}",
                    "type": "function",
                    "function": {"name": tool_name, "arguments": payload},
                }
            ]
        else:
            message["content"] = payload

        choices: list[JSONDict] = [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        ]
        if kind == "empty_choices":
            choices = []

        prompt_chars = sum(
            len(text_of(m.get("content"))) for m in body["messages"] if isinstance(m, dict)
        )
        prompt_tokens = max(1, prompt_chars // 4)
        completion_tokens = max(1, len(produced) // 4)
        response: JSONDict = {
            "id": f"chatcmpl-{digest[:29]}",
            "object": "chat.completion",
            "created": _CREATED,
            "model": body.get("model") or deployment or "fake-llm",
            "choices": choices,
        }
        if not self.omit_usage:
            response["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        response.update(self.extra_response_fields)
        return response

    # -- writing responses -------------------------------------------------------------------

    def _send_fault_status(self, handler: _Handler, rec: RecordedRequest, kind: str) -> None:
        headers: dict[str, str] = {}
        if self.retry_after_ms is not None:
            # The SDK ignores a zero delay and falls back to its own backoff (0.5 s and up),
            # so "retry at once" is announced as a microsecond.
            headers["retry-after-ms"] = str(self.retry_after_ms or 0.001)
        if kind == "429":
            headers["retry-after"] = "0"
            self._send_error(
                handler,
                rec,
                429,
                "Rate limit reached for requests. Please try again later.",
                "rate_limit_error",
                code="rate_limit_exceeded",
                headers=headers,
            )
        elif kind == "503":
            self._send_error(
                handler,
                rec,
                503,
                "The server is overloaded or not ready yet.",
                "server_error",
                headers=headers,
            )
        else:
            self._send_error(
                handler,
                rec,
                500,
                "The server had an error while processing your request.",
                "server_error",
                headers=headers,
            )

    def _send_error(
        self,
        handler: _Handler,
        rec: RecordedRequest,
        status: int,
        message: str,
        type_: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._send_json(handler, rec, status, _error_body(message, type_, code), headers)

    def _send_json(
        self,
        handler: _Handler,
        rec: RecordedRequest,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        rec.status = status
        rec.response = payload
        data = json.dumps(payload).encode()
        encoding = None
        if self.gzip and "gzip" in rec.headers.get("accept-encoding", "").lower():
            data = _gzip.compress(data)
            encoding = "gzip"
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.send_header("x-request-id", f"req_{hashlib.sha256(rec.raw_body).hexdigest()[:24]}")
        if encoding:
            handler.send_header("content-encoding", encoding)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()

    @staticmethod
    def _abort(handler: _Handler) -> None:
        """Drop the connection with a TCP reset and no response at all."""
        handler.close_connection = True
        sock = handler.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.close()

    def __repr__(self) -> str:
        where = self.origin if self.running else "stopped"
        return f"<FakeLLM {where} requests={self.request_count}>"
