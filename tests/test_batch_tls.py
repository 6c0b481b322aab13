"""The Batch API client's TLS, over real sockets on the loopback: a plain ``http://``
endpoint (a local server) gets a client that loads no CA certificates; an ``https://``
request, even one an ``http://`` endpoint redirects to, verifies the server's certificate as
the SDK always does (a self-signed server is refused until ``SSL_CERT_FILE`` trusts it); a
proxy set in the environment is still used."""

from __future__ import annotations

import http.server
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakellm import FakeLLM

from pytest_synthdata.errors import SynthAPIError
from pytest_synthdata.llm.batch import BatchAPI

KEY = "sk-batch-tls-0123456789abcdef"
EMPTY = {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The CA certificate loads of this process, as they happen."""
    calls: list[str] = []
    for name in ("load_verify_locations", "set_default_verify_paths"):
        original = getattr(ssl.SSLContext, name)

        def counting(self: ssl.SSLContext, *args: Any, _o: Any = original, **kw: Any) -> Any:
            calls.append(str(args or kw))
            return _o(self, *args, **kw)

        monkeypatch.setattr(ssl.SSLContext, name, counting)
    return calls


def serve(handler: Callable[[http.server.BaseHTTPRequestHandler], None], tls: Any = None) -> Any:
    """A one-route server on the loopback (TLS with ``tls``, a server-side context)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            handler(self)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def answer(request: http.server.BaseHTTPRequestHandler, body: object = EMPTY) -> None:
    data = json.dumps(body).encode()
    request.send_response(200)
    request.send_header("content-type", "application/json")
    request.send_header("content-length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


@pytest.fixture
def self_signed(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An https:// Batch API whose certificate (for 127.0.0.1) no CA signed: its URL and
    the certificate file."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = serve(answer, tls=context)
    yield f"https://127.0.0.1:{server.server_address[1]}/v1", cert
    server.shutdown()


@pytest.fixture
def redirecting(self_signed: tuple[str, Path]) -> Iterator[str]:
    """A plain http:// endpoint that sends every request on to the self-signed one."""
    target = self_signed[0]

    def moved(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_response(307)
        request.send_header("location", target + request.path.removeprefix("/v1"))
        request.send_header("content-length", "0")
        request.end_headers()

    server = serve(moved)
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_a_plain_http_endpoint_loads_no_ca_certificates(llm: FakeLLM, loaded: list[str]) -> None:
    api = BatchAPI.connect(llm.url, KEY, max_retries=0)
    try:
        assert api.list() == []
    finally:
        api.close()
    assert loaded == []


def test_https_refuses_a_certificate_no_ca_signed(self_signed: tuple[str, Path]) -> None:
    url, _ = self_signed
    api = BatchAPI.connect(url, KEY, max_retries=0)
    with pytest.raises(SynthAPIError, match="cannot reach the endpoint"):
        api.list()
    api.close()


def test_a_redirect_to_https_verifies_the_certificate(
    redirecting: str,
    self_signed: tuple[str, Path],
    loaded: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = BatchAPI.connect(redirecting, KEY, max_retries=0)
    with pytest.raises(SynthAPIError, match="cannot reach the endpoint"):
        api.list()  # followed to the https:// server, whose certificate nothing trusts
    api.close()
    assert loaded, "the https:// request loaded the CA certificates"
    monkeypatch.setenv("SSL_CERT_FILE", str(self_signed[1]))
    trusting = BatchAPI.connect(redirecting, KEY, max_retries=0)
    try:
        assert trusting.list() == []  # trusted as the SDK's own client trusts it
    finally:
        trusting.close()


def test_a_proxy_in_the_environment_is_still_used(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def proxy(request: http.server.BaseHTTPRequestHandler) -> None:
        asked.append(request.path)  # a proxy is asked for the whole URL
        answer(request)

    server = serve(proxy)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
    api = BatchAPI.connect("http://batch-api.invalid/v1", KEY, max_retries=0)
    try:
        assert api.list() == []
    finally:
        api.close()
        server.shutdown()
    assert asked and asked[0].startswith("http://batch-api.invalid/v1/batches")
