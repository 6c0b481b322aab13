"""Hostile endpoints and files: every failure is a SynthError with a message, memory stays
bounded, and a cassette is read as this tool writes it.

Real runs against the loopback fake server that misbehaves (a huge body, JSON nested
100,000 deep in the body or in the model's content, usage values that are not counts),
and real cassette files on disk (an alias bomb resealed, CR-only line endings).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fakellm import FakeLLM, Fault
from models import MedicalBilling

from pytest_synthdata import SynthAPIError, SynthGenerationError, SynthRecordingError, generate
from pytest_synthdata.storage.cassettes import YamlSerializer
from pytest_synthdata.storage.integrity import seal, verify

pytestmark = pytest.mark.usefixtures("fresh_endpoints")


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_huge_body_is_a_transient_failure_read_only_up_to_the_cap(
    llm: FakeLLM, asynchronous: bool, make_client: Callable[..., Any]
) -> None:
    llm.huge_bytes = 16 << 20  # far past the cap of any request of this test
    llm.always(Fault("huge"))
    with pytest.raises(SynthAPIError, match="body longer than") as info:
        generate(
            MedicalBilling, 2, client=make_client(llm, asynchronous=asynchronous), http_retries=1
        )
    assert info.value.transient and info.value.tries == 2
    llm.clear_faults()
    llm.enqueue(Fault("huge"))  # once: tried again, like an HTML error page
    bills = generate(MedicalBilling, 2, client=make_client(llm, asynchronous=asynchronous))
    assert len(bills) == 2


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_huge_body_is_cut_at_the_cap_when_recording_a_cassette_too(
    llm: FakeLLM, tmp_path: Path, asynchronous: bool, make_client: Callable[..., Any]
) -> None:
    llm.huge_bytes = 16 << 20  # far past the cap of any request of this test
    llm.always(Fault("huge"))
    path = tmp_path / "bills.synth.yaml"
    with pytest.raises(SynthAPIError, match="the rest was not read") as info:
        generate(
            MedicalBilling,
            2,
            client=make_client(llm, asynchronous=asynchronous),
            cassette=path,
            cache_dir=tmp_path / "cache",
            http_retries=1,
        )
    assert info.value.transient and info.value.tries == 2
    assert not path.exists() or "x" * 1000 not in path.read_text()
    llm.clear_faults()
    llm.enqueue(Fault("huge"))
    bills = generate(MedicalBilling, 2, client=make_client(llm), cassette=path, cache_dir=tmp_path)
    assert len(bills) == 2 and "x" * 1000 not in path.read_text()


def test_json_nested_deep_in_the_body_is_invalid_not_a_recursion_error(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    llm.always(Fault("deep_body"))
    with pytest.raises(SynthAPIError, match="nested more than 100") as info:
        generate(MedicalBilling, 2, client=make_client(llm), http_retries=1)
    assert info.value.transient
    llm.clear_faults()
    llm.enqueue(Fault("deep_body"))
    assert len(generate(MedicalBilling, 2, client=make_client(llm))) == 2


@pytest.mark.parametrize("levels", [150, 100_000])
def test_json_nested_deep_in_the_content_is_an_invalid_answer(
    llm: FakeLLM, levels: int, make_client: Callable[..., Any]
) -> None:
    llm.deep_levels = levels
    llm.always(Fault("deep_content"))
    with pytest.raises(SynthGenerationError) as info:
        generate(MedicalBilling, 2, client=make_client(llm), max_retries=1)
    errors = info.value.errors
    # 150 deep fits the output limit and is refused as nested too deep; 100,000 deep is
    # cut off at the limit first and is refused as a cut-off answer
    assert any("nested more than 100" in e or "cut off" in e for e in errors), errors
    assert levels > 1000 or any("nested more than 100" in e for e in errors)
    llm.clear_faults()
    llm.enqueue(Fault("deep_content"))
    bills = generate(MedicalBilling, 2, client=make_client(llm))
    assert len(bills) == 2 and bills.usage.retries >= 1


@pytest.mark.parametrize(
    "bad",
    ["n/a", -1, 1e40, 10**30, 2.5, True, None, [3], {"n": 1}],
    ids=lambda v: repr(v)[:12],
)
def test_usage_values_that_are_not_counts_are_ignored_and_marked_unknown(
    llm: FakeLLM, bad: object, make_client: Callable[..., Any]
) -> None:
    llm.extra_response_fields = {
        "usage": {"prompt_tokens": 10, "completion_tokens": bad, "total_tokens": bad}
    }
    bills = generate(MedicalBilling, 2, client=make_client(llm))
    usage = bills.usage
    assert usage.requests >= 1 and usage.unknown_usage == usage.requests
    assert usage.prompt_tokens == 0 and usage.completion_tokens == 0
    assert "usage unknown" in usage.summary()


def test_usage_that_is_not_a_count_is_stored_and_replayed_as_unknown(
    llm: FakeLLM, tmp_path: Path, make_client: Callable[..., Any]
) -> None:
    llm.extra_response_fields = {"usage": {"prompt_tokens": "n/a", "completion_tokens": -1}}
    path = tmp_path / "bills.synth.yaml"
    first = generate(MedicalBilling, 2, client=make_client(llm), cassette=path)
    assert first.usage.unknown_usage == first.usage.requests >= 1
    assert "unknown_usage" in path.read_text()
    again = generate(MedicalBilling, 2, client=make_client(llm), cassette=path, record_mode="none")
    assert list(again) == list(first)


def test_good_usage_is_counted_and_not_marked(
    llm: FakeLLM, make_client: Callable[..., Any]
) -> None:
    bills = generate(MedicalBilling, 2, client=make_client(llm))
    assert bills.usage.completion_tokens > 0 and bills.usage.unknown_usage == 0
    assert "unknown_usage" not in bills.usage.as_dict()


def record(client: Any, path: Path) -> list[Any]:
    return list(generate(MedicalBilling, 3, client=client, cassette=path, seed=1))


def test_a_resealed_alias_bomb_is_refused_before_it_is_expanded(
    llm: FakeLLM, tmp_path: Path, make_client: Callable[..., Any]
) -> None:
    path = tmp_path / "bills.synth.yaml"
    record(make_client(llm), path)
    body = verify(path.read_text())
    bomb = "lol0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 12)
    )
    path.write_text(seal(bomb + body))
    with pytest.raises(SynthRecordingError, match="anchors or aliases") as info:
        generate(MedicalBilling, 3, client=make_client(llm), cassette=path, record_mode="none")
    assert info.value.corrupt


def test_cassettes_never_hold_anchors_even_for_shared_values(tmp_path: Path) -> None:
    shared = {"a": [1, 2, 3]}
    text = YamlSerializer.serialize({"interactions": [], "metadata": {"x": shared, "y": shared}})
    assert "&id" not in text and "*id" not in text
    assert YamlSerializer.deserialize(text)["metadata"] == {"x": shared, "y": shared}


@pytest.mark.parametrize("ending", ["\r", "\r\n"], ids=["CR-only", "CRLF"])
def test_a_cassette_with_other_line_endings_replays(
    llm: FakeLLM, tmp_path: Path, ending: str, make_client: Callable[..., Any]
) -> None:
    path = tmp_path / "bills.synth.yaml"
    first = record(make_client(llm), path)
    path.write_bytes(path.read_bytes().replace(b"\n", ending.encode()))
    sent = llm.request_count
    again = generate(
        MedicalBilling, 3, client=make_client(llm), cassette=path, seed=1, record_mode="none"
    )
    assert list(again) == first and llm.request_count == sent


@pytest.mark.parametrize("where", ["datasets", "interactions"])
def test_a_resealed_cassette_nested_too_deep_is_refused(
    llm: FakeLLM, tmp_path: Path, where: str, make_client: Callable[..., Any]
) -> None:
    path = tmp_path / "bills.synth.yaml"
    record(make_client(llm), path)
    body = verify(path.read_text())
    deep = "[" * 100_000 + "]" * 100_000
    if where == "datasets":
        body = f"aaa: {deep}\n" + body
    else:
        body = body.replace("interactions:\n", f"interactions:\n- deep: {deep}\n", 1)
    path.write_text(seal(body))
    with pytest.raises(SynthRecordingError, match="not what pytest-synthdata recorded") as info:
        generate(MedicalBilling, 3, client=make_client(llm), cassette=path, record_mode="none")
    assert info.value.corrupt


@pytest.fixture
def huge_error() -> Iterator[str]:
    """A loopback server that answers HTTP 500 with a 64 MB body, sent in pieces."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    sent: list[int] = []

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                size, piece, done = 64 << 20, b" " * (1 << 16), 0
                head = b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
                try:
                    conn.sendall(head + f"content-length: {size}\r\n\r\n".encode())
                    while done < size:
                        conn.sendall(piece)
                        done += len(piece)
                except OSError:
                    pass  # the client hung up
                sent.append(done)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join()
    listener.close()
    assert sent and all(done < 64 << 20 for done in sent)  # never read to the end


@pytest.mark.parametrize("kind", [openai.OpenAI, openai.AsyncOpenAI], ids=["sync", "async"])
def test_a_huge_error_body_is_cut_at_the_cap(huge_error: str, kind: Any) -> None:
    failing = kind(base_url=huge_error, api_key="sk-test", max_retries=0)
    with pytest.raises(SynthAPIError, match="the rest was not read") as info:
        generate(MedicalBilling, 2, client=failing, http_retries=0)
    assert info.value.transient


@pytest.fixture
def cut_off() -> Iterator[str]:
    """A loopback server that announces a 100,000-byte body, sends 20 bytes and hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: 100000\r\n\r\n" + b'{"choices": [{"index"'
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join()
    listener.close()


@pytest.mark.parametrize("kind", [openai.OpenAI, openai.AsyncOpenAI], ids=["sync", "async"])
def test_a_body_that_breaks_off_is_a_transient_failure(cut_off: str, kind: Any) -> None:
    broken = kind(base_url=cut_off, api_key="sk-test", max_retries=0)
    with pytest.raises(SynthAPIError) as info:
        generate(MedicalBilling, 2, client=broken, http_retries=1)
    assert info.value.transient and info.value.tries == 2
    assert "broke off its answer" in str(info.value)
