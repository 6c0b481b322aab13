"""Small loopback HTTP servers for tests that need an endpoint answering in a way the fake
server does not (a hostile Batch API, answers reshaped on their way): the server on a free
port of 127.0.0.1, a quiet handler that sends JSON, and a thread that serves for a block."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

S = TypeVar("S", bound=http.server.ThreadingHTTPServer)


class Loopback(http.server.ThreadingHTTPServer):
    """A server on a free port of 127.0.0.1, its OpenAI-style base URL at :attr:`url`."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class JsonHandler(http.server.BaseHTTPRequestHandler):
    """A handler that logs nothing and answers with :meth:`send`."""

    def log_message(self, format: str, *args: Any) -> None:
        return

    def send(self, body: Any, content_type: str = "application/json") -> None:
        """HTTP 200 with ``body``: bytes as they are, anything else as JSON."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def serving(server: S) -> Iterator[S]:
    """``server`` answering in a thread of its own for the block, then closed."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
