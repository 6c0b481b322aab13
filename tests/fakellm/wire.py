"""HTTP plumbing of the fake server: recorded requests, replies, and two ways to serve them.

:class:`Server` (a thread per connection, blocking waits) is what ``FakeLLM.start`` runs
next to the tests; :func:`serve_async` (asyncio, one thread for every connection) is what
``python -m fakellm`` runs, where a thousand clients may connect at once.

Only the standard library is used, so the fake never depends on the code under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip as _gzip
import hashlib
import json
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .faults import Fault

__all__ = ["HTTPError", "RecordedRequest", "Reply"]

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


def client_gone(sock: socket.socket) -> bool:
    """Whether the client of ``sock`` has hung up (it is readable, and reads as closed)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


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


@dataclass
class Reply:
    """What to answer: HTTP ``status`` with the JSON ``payload`` and extra ``headers``;
    ``status`` 0 drops the connection with a TCP reset instead. ``raw`` is sent as the body
    instead of the JSON payload (with ``content_type``), and ``trickle`` > 0 sends the body
    one byte at a time, that many seconds apart."""

    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"
    trickle: float = 0.0


def encode(
    rec: RecordedRequest, reply: Reply, *, gzip: bool = False
) -> tuple[list[tuple[str, str]], bytes]:
    """The headers and body answering ``rec`` with ``reply`` (gzipped when ``gzip`` and the
    client accepts it); ``rec`` records what was answered."""
    rec.status = reply.status
    rec.response = reply.payload if reply.raw is None else reply.raw.decode("utf-8", "replace")
    data = json.dumps(reply.payload).encode() if reply.raw is None else reply.raw
    headers = [
        ("content-type", reply.content_type),
        ("content-length", ""),
        ("x-request-id", f"req_{hashlib.sha256(rec.raw_body).hexdigest()[:24]}"),
    ]
    if gzip and "gzip" in rec.headers.get("accept-encoding", "").lower():
        data = _gzip.compress(data)
        headers.append(("content-encoding", "gzip"))
    headers[1] = ("content-length", str(len(data)))
    headers.extend(reply.headers.items())
    return headers, data


def send_reply(
    handler: BaseHTTPRequestHandler, rec: RecordedRequest, reply: Reply, *, gzip: bool = False
) -> None:
    """Send ``reply`` through a handler of the threaded server."""
    if reply.status == 0:
        rec.status = 0
        abort(handler.connection)
        handler.close_connection = True
        return
    headers, data = encode(rec, reply, gzip=gzip)
    handler.send_response(reply.status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.end_headers()
    if reply.trickle > 0:
        for byte in range(len(data)):
            handler.wfile.write(data[byte : byte + 1])
            handler.wfile.flush()
            time.sleep(reply.trickle)
        return
    handler.wfile.write(data)
    handler.wfile.flush()


def abort(sock: Any) -> None:
    """Drop the connection of socket ``sock`` with a TCP reset and no response at all."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


# --------------------------------------------------------------------------------------------
# The same server on asyncio
# --------------------------------------------------------------------------------------------

Dispatch = Callable[
    [str, str, dict[str, str], bytes], tuple[RecordedRequest, Generator[Any, None, None]]
]


async def _read_body_async(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readline()
    length = int(headers.get("content-length") or 0)
    return await reader.readexactly(length) if length > 0 else b""


async def serve_async(
    dispatch: Dispatch,
    host: str,
    port: int,
    *,
    gzip: Callable[[], bool],
    ready: Callable[[int], None],
) -> None:
    """Serve HTTP/1.1 (keep-alive) on the running event loop until cancelled, answering each
    request with the steps ``dispatch`` gives it: seconds to wait, then a :class:`Reply`.

    One thread holds any number of connections, so a thousand clients at once are all in
    flight together, as with a hosted API; the threaded :class:`Server` needs a thread per
    connection and starts them one at a time."""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                rec, steps = dispatch(
                    method, target, headers, await _read_body_async(reader, headers)
                )
                with contextlib.closing(steps):
                    for step in steps:
                        if not isinstance(step, Reply):
                            await asyncio.sleep(step)
                        elif step.status == 0:
                            rec.status = 0
                            with contextlib.suppress(OSError):
                                sock = writer.get_extra_info("socket")
                                sock.setsockopt(
                                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                                )
                            writer.transport.abort()
                            return
                        else:
                            fields, data = encode(rec, step, gzip=gzip())
                            head = [f"HTTP/1.1 {step.status} {_reason(step.status)}"]
                            head += [f"{name}: {value}" for name, value in fields]
                            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
                            await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        except asyncio.CancelledError:
            # The server is shutting down. Python 3.11's stream protocol asks a cancelled
            # connection task for its exception and logs what it gets, so end it quietly.
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    open_now: set[asyncio.Task[Any]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        open_now.add(task)
        try:
            await connection(reader, writer)
        finally:
            open_now.discard(task)

    server = await asyncio.start_server(tracked, host, port, backlog=4096)
    try:
        async with server:
            ready(server.sockets[0].getsockname()[1])
            await server.serve_forever()
    finally:
        # Hang up on every open connection, as the threaded server does when it stops.
        for task in list(open_now):
            task.cancel()
        await asyncio.gather(*open_now, return_exceptions=True)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"
