"""Batch request files and result files: splitting by count and by size, stable custom ids,
OpenAI's and vLLM's output formats, a file answered by the loopback runner, batch prices."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakellm import FakeLLM
from fakellm.runner import run_batch_file
from models import MedicalBilling

from pytest_synthdata.batchfiles import (
    CHAT_URL,
    MAX_BYTES,
    MAX_REQUESTS,
    BatchKey,
    batch_cost,
    batch_prices,
    collect_results,
    custom_id,
    file_digest,
    missing_ids,
    parse_custom_id,
    read_requests,
    read_results,
    stream_results,
    write_request_files,
)
from pytest_synthdata.errors import SynthConfigError
from pytest_synthdata.schema import wrapper_schema


def chat_body(count: int, model: type[Any] = MedicalBilling) -> dict[str, Any]:
    """A chat-completion request for ``count`` records of ``model`` (strict JSON schema)."""
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You write realistic synthetic records."},
            {"role": "user", "content": f"Return exactly {count} records."},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "records", "schema": wrapper_schema(model), "strict": True},
        },
    }


def requests_of(count: int, dataset: str = "claims", wave: int = 1) -> list[tuple[str, Any]]:
    return [(custom_id(dataset, wave, batch), chat_body(3)) for batch in range(count)]


def test_custom_ids_name_dataset_wave_and_batch_and_read_back() -> None:
    cid = custom_id("tests/test_claims.py::claims", 2, 17)
    assert cid == "tests_test_claims.py::claims-w2-b17"
    assert parse_custom_id(cid) == BatchKey("tests_test_claims.py::claims", 2, 17)
    assert BatchKey("claims", 2, 17).custom_id == "claims-w2-b17"
    assert custom_id("claims", 2, 17) == custom_id("claims", 2, 17)  # stable
    long = custom_id("x" * 300, 0, 0)
    assert len(long) <= 64 + len("-w0-b0") and long != custom_id("x" * 299, 0, 0)
    assert parse_custom_id("request-1") is None
    with pytest.raises(SynthConfigError, match="wave and batch must be >= 0"):
        custom_id("claims", -1, 0)


def test_a_request_file_has_the_batch_api_line_format(tmp_path: Path) -> None:
    [written] = write_request_files(requests_of(3), tmp_path / "requests.jsonl")
    lines = [json.loads(raw) for raw in written.path.read_text().splitlines()]
    assert [sorted(line) for line in lines] == [["body", "custom_id", "method", "url"]] * 3
    assert [line["custom_id"] for line in lines] == ["claims-w1-b0", "claims-w1-b1", "claims-w1-b2"]
    assert {line["method"] for line in lines} == {"POST"}
    assert {line["url"] for line in lines} == {CHAT_URL}
    assert lines[0]["body"] == chat_body(3)
    assert written.requests == 3 and written.size == written.path.stat().st_size
    assert written.digest == file_digest(written.path)
    assert list(read_requests(written.path)) == [(cid, body) for cid, body in requests_of(3)]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_the_default_limits_are_the_batch_apis() -> None:
    assert (MAX_REQUESTS, MAX_BYTES) == (50_000, 200 * 1024 * 1024)


def test_files_are_split_at_the_request_count(tmp_path: Path) -> None:
    written = write_request_files(requests_of(7), tmp_path / "requests.jsonl", max_requests=3)
    assert [f.path.name for f in written] == [
        "requests.jsonl",
        "requests.2.jsonl",
        "requests.3.jsonl",
    ]
    assert [f.requests for f in written] == [3, 3, 1]
    read = [cid for f in written for cid, _ in read_requests(f.path)]
    assert read == [cid for cid, _ in requests_of(7)]
    assert [cid for f in written for cid in f.custom_ids] == read


def test_files_are_split_at_the_size(tmp_path: Path) -> None:
    one_line = len(json.dumps({"custom_id": "claims-w1-b0", "body": chat_body(3)}))
    limit = int(one_line * 2.5) + 200  # room for two lines, not three
    written = write_request_files(requests_of(5), tmp_path / "r.jsonl", max_bytes=limit)
    assert [f.requests for f in written] == [2, 2, 1]
    assert all(f.path.stat().st_size <= limit for f in written)
    assert sum(f.requests for f in written) == 5


def test_a_request_larger_than_a_file_or_a_repeated_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SynthConfigError, match="more than a batch file may hold"):
        write_request_files(requests_of(2), tmp_path / "r.jsonl", max_bytes=100)
    twice = requests_of(2) + requests_of(1)
    with pytest.raises(SynthConfigError, match="'claims-w1-b0' is given twice"):
        write_request_files(twice, tmp_path / "s.jsonl")
    assert not list(tmp_path.iterdir())  # nothing half-written is left behind
    with pytest.raises(SynthConfigError, match="room for one request"):
        write_request_files(requests_of(2), tmp_path / "t.jsonl", max_requests=0)


OPENAI_OUTPUT: list[dict[str, Any]] = [
    {
        "id": "batch_req_1",
        "custom_id": "claims-w1-b0",
        "response": {
            "status_code": 200,
            "request_id": "req_1",
            "body": {"id": "chatcmpl-1", "choices": [{"message": {"content": "{}"}}]},
        },
        "error": None,
    },
    {
        "id": "batch_req_2",
        "custom_id": "claims-w1-b1",
        "response": {
            "status_code": 400,
            "request_id": "req_2",
            "body": {"error": {"message": "Invalid schema", "type": "invalid_request_error"}},
        },
        "error": None,
    },
]
OPENAI_ERRORS: list[dict[str, Any]] = [
    {
        "id": "batch_req_3",
        "custom_id": "claims-w1-b2",
        "response": None,
        "error": {"code": "batch_expired", "message": "This request could not be executed."},
    }
]
VLLM_OUTPUT: list[dict[str, Any]] = [
    {
        "id": "vllm-abc",
        "custom_id": "claims-w1-b0",
        "response": {
            "status_code": 200,
            "request_id": "vllm-batch-1",
            "body": {"id": "cmpl-1", "choices": [{"message": {"content": "{}"}}]},
        },
        "error": None,
    },
    {
        "id": "vllm-def",
        "custom_id": "claims-w1-b1",
        "response": {"status_code": 400, "request_id": "vllm-batch-2", "body": None},
        "error": {"object": "error", "message": "max_tokens is too large", "code": 400},
    },
    {"id": "vllm-ghi", "custom_id": "claims-w1-b2", "response": None, "error": "Engine died"},
]


def write_lines(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_openai_output_and_error_files_become_one_result_per_request(tmp_path: Path) -> None:
    output = write_lines(tmp_path / "out.jsonl", OPENAI_OUTPUT)
    errors = write_lines(tmp_path / "err.jsonl", OPENAI_ERRORS)
    results = collect_results([output, errors])
    assert results["claims-w1-b0"].ok
    assert results["claims-w1-b0"].body == OPENAI_OUTPUT[0]["response"]["body"]
    failed = results["claims-w1-b1"]
    assert not failed.ok and failed.status_code == 400
    assert failed.error == "HTTP 400: invalid_request_error: Invalid schema"
    assert results["claims-w1-b2"].error == "batch_expired: This request could not be executed."
    wanted = [cid for cid, _ in requests_of(4)]
    assert missing_ids(wanted, results) == ["claims-w1-b1", "claims-w1-b2", "claims-w1-b3"]


def test_vllm_output_failed_lines_have_an_error_and_no_body(tmp_path: Path) -> None:
    results = {r.custom_id: r for r in read_results(write_lines(tmp_path / "o", VLLM_OUTPUT))}
    assert results["claims-w1-b0"].ok and results["claims-w1-b0"].status_code == 200
    assert results["claims-w1-b1"].error == "HTTP 400: 400: max_tokens is too large"
    assert results["claims-w1-b1"].body is None
    assert results["claims-w1-b2"].error == "Engine died"


def test_an_answer_wins_over_a_failure_of_the_same_request(tmp_path: Path) -> None:
    first = write_lines(tmp_path / "a.jsonl", [VLLM_OUTPUT[1]])
    retried = {**VLLM_OUTPUT[0], "custom_id": "claims-w1-b1"}
    second = write_lines(tmp_path / "b.jsonl", [retried])
    for order in ([first, second], [second, first]):
        assert collect_results(order)["claims-w1-b1"].ok


def test_streamed_results_agree_with_collected_ones(tmp_path: Path) -> None:
    first = write_lines(tmp_path / "a.jsonl", OPENAI_OUTPUT + VLLM_OUTPUT[2:])
    second = write_lines(
        tmp_path / "b.jsonl", [*OPENAI_ERRORS, {**VLLM_OUTPUT[0], "custom_id": "claims-w1-b1"}]
    )
    streamed = list(stream_results([first, second]))
    assert [r.custom_id for r in streamed] == ["claims-w1-b0", "claims-w1-b1", "claims-w1-b2"]
    assert [r.ok for r in streamed] == [True, True, False]
    assert streamed[2].error == "Engine died"  # the first failure of an id is kept
    assert {r.custom_id: r for r in streamed} == collect_results([first, second])


def test_a_file_that_is_not_batch_output_is_refused_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "results.jsonl"
    bad.write_text(json.dumps(OPENAI_OUTPUT[0]) + "\n\n{not json\n", encoding="utf-8")
    with pytest.raises(SynthConfigError, match=r"results.jsonl:3: not a JSON line"):
        list(read_results(bad))
    bad.write_text(json.dumps({"records": []}) + "\n", encoding="utf-8")
    with pytest.raises(SynthConfigError, match=r":1: .*no 'custom_id'.*vLLM's batch output"):
        list(read_results(bad))
    with pytest.raises(SynthConfigError, match="cannot read batch file"):
        list(read_results(tmp_path / "missing.jsonl"))


def test_a_request_file_answered_by_the_loopback_runner_validates(tmp_path: Path) -> None:
    """vLLM's format end to end: a request file, answered line by line by the fake chat
    endpoint, read back into records the model validates; a failing line is reported."""
    requests = [(custom_id("claims", 1, b), chat_body(b + 1)) for b in range(4)]
    [written] = write_request_files(requests, tmp_path / "requests.jsonl")
    out = tmp_path / "results.jsonl"
    count = run_batch_file(
        FakeLLM().chat_answer, written.path, out, failures={"claims-w1-b2": "4xx"}
    )
    assert count == 4
    results = collect_results([out])
    assert missing_ids(written.custom_ids, results) == ["claims-w1-b2"]
    assert results["claims-w1-b2"].body is None and results["claims-w1-b2"].status_code == 400
    for batch in (0, 1, 3):
        body = results[custom_id("claims", 1, batch)].body
        assert body is not None
        records = json.loads(body["choices"][0]["message"]["content"])["records"]
        assert len(records) == batch + 1
        assert all(MedicalBilling.model_validate(r) for r in records)


def test_the_runner_is_a_command_like_vllm_run_batch(tmp_path: Path) -> None:
    [written] = write_request_files(requests_of(3), tmp_path / "in.jsonl")
    tests = Path(__file__).parent
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fakellm.runner",
            "-i",
            str(written.path),
            "-o",
            str(tmp_path / "out.jsonl"),
        ],
        cwd=tests,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "answered 3 requests" in done.stderr
    results = collect_results([tmp_path / "out.jsonl"])
    assert sorted(results) == sorted(written.custom_ids)
    assert all(r.ok for r in results.values())


def test_batch_prices_are_the_sync_prices_times_the_discount() -> None:
    assert batch_prices(0.15, 0.60) == pytest.approx((0.075, 0.30))
    assert batch_prices(2.0, 8.0, discount=0.25) == pytest.approx((0.5, 2.0))
    assert batch_cost(1_000_000, 1_000_000, 0.15, 0.60) == pytest.approx(0.375)
    assert batch_cost(2_000_000, 0, 1.0, 1.0, discount=1.0) == pytest.approx(2.0)
    with pytest.raises(SynthConfigError, match=r"--batch-discount: .* between 0 and 1.*got 50"):
        batch_prices(1.0, 1.0, discount=50)
