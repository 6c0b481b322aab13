"""The fake server's Batch API through the openai SDK: files uploaded, described, listed and
read back; batches created, checked, answered line by line as the chat endpoint answers,
moved on by a clock, expired, cancelled and listed page by page."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest
from test_batchfiles import chat_body

from fakellm import FakeLLM, FakeLLMProcess


def line(cid: str, body: dict[str, Any], url: str = "/v1/chat/completions") -> dict[str, Any]:
    return {"custom_id": cid, "method": "POST", "url": url, "body": body}


def upload(client: openai.OpenAI, lines: list[dict[str, Any]], name: str = "in.jsonl") -> str:
    data = "".join(json.dumps(item) + "\n" for item in lines).encode()
    return client.files.create(
        file=(name, io.BytesIO(data), "application/jsonl"), purpose="batch"
    ).id


def create(client: openai.OpenAI, file_id: str) -> Any:
    return client.batches.create(
        completion_window="24h", endpoint="/v1/chat/completions", input_file_id=file_id
    )


def output_lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(raw) for raw in client.files.content(file_id).text.splitlines()]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_files_are_uploaded_described_listed_and_read_back(
    llm: FakeLLM, client: openai.OpenAI
) -> None:
    lines = [line("a", chat_body(1)), line("b", chat_body(2))]
    file_id = upload(client, lines, "claims.jsonl")
    described = client.files.retrieve(file_id)
    assert (described.filename, described.purpose, described.status) == (
        "claims.jsonl",
        "batch",
        "processed",
    )
    content = client.files.content(file_id).text
    assert [json.loads(raw) for raw in content.splitlines()] == lines
    assert described.bytes == len(content.encode())
    assert [f.id for f in client.files.list(purpose="batch")] == [file_id]
    assert llm.batches.uploads == 1
    with pytest.raises(openai.BadRequestError, match="Invalid purpose 'fine-tune'"):
        client.files.create(file=("x.jsonl", io.BytesIO(b"{}\n")), purpose="fine-tune")
    with pytest.raises(openai.NotFoundError, match="No such File object: file-nope"):
        client.files.retrieve("file-nope")
    client.files.delete(file_id)
    assert list(client.files.list(purpose="batch")) == []


def test_each_line_is_answered_as_the_chat_endpoint_answers_it(
    llm: FakeLLM, client: openai.OpenAI
) -> None:
    bodies = [chat_body(1), chat_body(3), {**chat_body(2), "messages": []}]
    batch = create(client, upload(client, [line(f"r{i}", b) for i, b in enumerate(bodies)]))
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (2, 1)
    out = {item["custom_id"]: item for item in output_lines(client, batch.output_file_id)}
    for index in (0, 1):
        direct = client.chat.completions.create(**bodies[index])
        body = out[f"r{index}"]["response"]["body"]
        assert body["choices"][0]["message"]["content"] == direct.choices[0].message.content
        assert out[f"r{index}"]["response"]["status_code"] == 200
    failed = out["r2"]["response"]
    assert failed["status_code"] == 400
    assert "'messages' is a required property" in failed["body"]["error"]["message"]
    assert batch.error_file_id is None
    assert llm.stats()["chat_requests"] == 2  # only the direct ones: batch lines are not


def test_an_input_file_that_breaks_the_rules_fails_the_batch(client: openai.OpenAI) -> None:
    lines = [
        line("a", chat_body(1)),
        line("b", chat_body(1), url="/v1/embeddings"),
        line("a", chat_body(1)),
    ]
    batch = create(client, upload(client, lines))
    assert batch.status == "failed" and batch.errors is not None and batch.errors.data
    said = [(e.code, e.line) for e in batch.errors.data]
    assert said == [("invalid_url", 2), ("duplicate_custom_id", 3)]
    with pytest.raises(openai.BadRequestError, match="only '24h'"):
        client.batches.create(
            completion_window="1h",  # type: ignore[arg-type]
            endpoint="/v1/chat/completions",
            input_file_id=upload(client, lines[:1]),
        )


def test_processing_time_moves_a_batch_on_with_the_clock(
    llm: FakeLLM, client: openai.OpenAI
) -> None:
    clock = Clock()
    llm.batches.clock, llm.batches.processing_time = clock, 100.0
    batch = create(client, upload(client, [line(f"r{i}", chat_body(1)) for i in range(10)]))
    assert batch.status == "validating"
    progress = []
    for _ in range(3):
        seen = client.batches.retrieve(batch.id)
        assert seen.request_counts is not None
        progress.append((seen.status, seen.request_counts.completed))
        clock.now += 50
    assert progress == [("in_progress", 0), ("in_progress", 5), ("completed", 10)]


def test_a_batch_expires_with_its_answered_lines_kept(llm: FakeLLM, client: openai.OpenAI) -> None:
    clock = Clock()
    llm.batches.clock, llm.batches.processing_time, llm.batches.expire_after = clock, 100.0, 30.0
    batch = create(client, upload(client, [line(f"r{i}", chat_body(1)) for i in range(10)]))
    clock.now += 60
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "expired" and batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (3, 7)
    assert [o["custom_id"] for o in output_lines(client, batch.output_file_id)] == [
        "r0",
        "r1",
        "r2",
    ]
    errors = output_lines(client, batch.error_file_id)
    assert [e["custom_id"] for e in errors] == [f"r{i}" for i in range(3, 10)]
    assert {e["error"]["code"] for e in errors} == {"batch_expired"}
    assert {e["response"] for e in errors} == {None}


def test_per_line_failures_go_to_the_output_or_the_error_file(
    llm: FakeLLM, client: openai.OpenAI
) -> None:
    llm.batches.failures = {"r1": "4xx", "r2": "error"}
    batch = create(client, upload(client, [line(f"r{i}", chat_body(1)) for i in range(4)]))
    batch = client.batches.retrieve(batch.id)
    out = {o["custom_id"]: o for o in output_lines(client, batch.output_file_id)}
    assert sorted(out) == ["r0", "r1", "r3"]
    assert out["r1"]["response"]["status_code"] == 400 and out["r1"]["error"] is None
    [error] = output_lines(client, batch.error_file_id)
    assert error["custom_id"] == "r2" and error["error"]["code"] == "server_error"


def test_cancelling_and_listing(llm: FakeLLM, client: openai.OpenAI) -> None:
    llm.batches.lines_per_poll = 1
    made = [create(client, upload(client, [line(f"r{i}", chat_body(1)) for i in range(3)]))]
    made += [create(client, upload(client, [line("x", chat_body(1))])) for _ in range(2)]
    client.batches.retrieve(made[0].id)
    cancelling = client.batches.cancel(made[0].id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    cancelled = client.batches.retrieve(made[0].id)
    assert cancelled.status == "cancelled" and cancelled.request_counts is not None
    assert cancelled.request_counts.completed == 1
    assert [o["custom_id"] for o in output_lines(client, cancelled.output_file_id)] == ["r0"]
    with pytest.raises(openai.ConflictError, match="Cannot cancel a batch with status 'cancelled'"):
        client.batches.cancel(made[0].id)
    listed = [b.id for b in client.batches.list(limit=2)]  # two pages
    assert listed == [b.id for b in reversed(made)]
    llm.reset()
    assert list(client.batches.list()) == [] and llm.batches.creations == 0


def control(origin: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        origin + "/_batches",
        data=json.dumps(settings).encode() if settings is not None else None,
        method="POST" if settings is not None else "GET",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def test_the_server_in_its_own_process_serves_and_configures_batches() -> None:
    with FakeLLMProcess() as server:
        settings = control(server.origin, {"failures": {"r1": "error"}, "lines_per_poll": 1})
        assert settings["failures"] == {"r1": "error"} and settings["lines_per_poll"] == 1
        with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client:
            batch = create(client, upload(client, [line(f"r{i}", chat_body(1)) for i in range(2)]))
            statuses = [client.batches.retrieve(batch.id).status for _ in range(2)]
            assert statuses == ["in_progress", "completed"]
            [error] = output_lines(client, client.batches.retrieve(batch.id).error_file_id)
            assert error["custom_id"] == "r1"
        stats = control(server.origin)
        assert (stats["uploads"], stats["creations"], stats["answered"]) == (1, 1, 2)
        assert stats["batches"] == {"completed": 1}
        with pytest.raises(urllib.error.HTTPError) as refused:
            control(server.origin, {"fail_kind": "sometimes"})
        assert "fail_kind must be one of" in refused.value.read().decode()
