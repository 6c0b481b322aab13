"""HTTP plumbing of the fake server: the threaded server, its handler, recorded requests.

Only the standard library is used, so the fake never depends on the code under test.
"""

from __future__ import annotations

import contextlib
import gzip as _gzip
import hashlib
import json
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .faults import Fault

__all__ = ["HTTPError", "RecordedRequest"]

JSONDict = dict[str, Any]


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
    mode: str | None = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    @property
    def messages(self) -> list[JSONDict]:
        if isinstance(self.body, dict) and isinstance(self.body.get("messages"), list):
            return list(self.body["messages"])
        return []


class HTTPError(Exception):
    """A request the server answers with an OpenAI-style error body."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 4096  # a thousand clients may connect at once
    dispatch: Callable[[Handler], None]  # set by the owner: answers one request

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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the second one waits for
    # the client's delayed ACK, about 40 ms per answer.
    disable_nagle_algorithm = True
    server: Server

    def _dispatch(self) -> None:
        try:
            self.server.dispatch(self)
        except OSError:
            self.close_connection = True

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        return


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
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


def error_body(message: str, type_: str, code: str | None = None) -> JSONDict:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def send_json(
    handler: BaseHTTPRequestHandler,
    rec: RecordedRequest,
    status: int,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    *,
    gzip: bool = False,
) -> None:
    """Answer with ``payload`` as JSON (gzipped when ``gzip`` and the client accepts it)."""
    rec.status = status
    rec.response = payload
    data = json.dumps(payload).encode()
    encoding = None
    if gzip and "gzip" in rec.headers.get("accept-encoding", "").lower():
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


def abort(handler: BaseHTTPRequestHandler) -> None:
    """Drop the connection with a TCP reset and no response at all."""
    handler.close_connection = True
    sock = handler.connection
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
