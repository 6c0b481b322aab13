"""The Batch API through the openai SDK, over real HTTP to the loopback fake server: submit,
poll with progress, download, per-line failures, cancel, expire, list; jobs kept in the cache
folder so that a rerun, even after a kill -9 during polling, never submits anything twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakellm import FakeLLM
from models import MedicalBilling
from test_batchfiles import chat_body

from pytest_synthdata.batchfiles import (
    RequestFile,
    collect_results,
    custom_id,
    missing_ids,
    read_requests,
    write_request_files,
)
from pytest_synthdata.errors import SynthAPIError, SynthRecordingError
from pytest_synthdata.llm.batch import (
    BatchAPI,
    BatchStatus,
    cancel,
    refresh,
    resubmit,
    submit,
    upload_name,
    wait,
)
from pytest_synthdata.storage.batchjobs import BatchJobs, cache_answer
from pytest_synthdata.storage.cache import ResponseCache, request_key

KEY = "sk-batch-secret-0123456789abcdef"


@pytest.fixture
def api(llm: FakeLLM) -> Iterator[BatchAPI]:
    batch_api = BatchAPI.connect(llm.url, KEY, max_retries=0)
    yield batch_api
    batch_api.close()


def request_file(folder: Path, count: int = 5, wave: int = 1) -> RequestFile:
    requests = [(custom_id("claims", wave, b), chat_body(b % 3 + 1)) for b in range(count)]
    [written] = write_request_files(requests, folder / f"wave{wave}.jsonl")
    return written


def records_of(body: dict[str, object]) -> list[MedicalBilling]:
    content = body["choices"][0]["message"]["content"]  # type: ignore[index]
    return [MedicalBilling.model_validate(r) for r in json.loads(content)["records"]]


def test_submit_poll_download_and_validate(llm: FakeLLM, api: BatchAPI, tmp_path: Path) -> None:
    written = request_file(tmp_path, 5)
    jobs = BatchJobs(tmp_path / "cache")
    llm.batches.lines_per_poll = 2
    job = submit(api, jobs, written.path, label="claims wave 1")
    assert job.batch_id and job.file_id and job.status == "validating"
    assert jobs.get(written.digest) == job  # kept the moment it exists

    seen: list[BatchStatus] = []
    job = wait(api, jobs, job, progress=seen.append, interval=0)
    assert [(s.status, s.completed, s.failed) for s in seen] == [
        ("in_progress", 2, 0),
        ("in_progress", 4, 0),
        ("completed", 5, 0),
    ]
    assert seen[0].line().endswith("in_progress, 2/5 done, 0 failed")
    assert job.status == "completed" and job.downloaded and job.error_path is None
    results = collect_results(job.result_paths)
    assert missing_ids(written.custom_ids, results) == []
    for index, cid in enumerate(written.custom_ids):
        body = results[cid].body
        assert body is not None and len(records_of(body)) == index % 3 + 1
    uploaded = llm.batches.files[job.file_id]
    assert uploaded.filename == upload_name(written.digest)
    assert uploaded.data == written.path.read_bytes()
    assert llm.batches.batches[job.batch_id].metadata == {
        "synthdata": written.digest[:32],
        "label": "claims wave 1",
    }


def test_poll_reports_each_status_until_the_batch_is_over(
    llm: FakeLLM, api: BatchAPI, tmp_path: Path
) -> None:
    written = request_file(tmp_path, 3)
    llm.batches.lines_per_poll = 1
    status = api.create(api.upload(written.path))
    seen: list[str] = []
    waits: list[float] = []
    last = api.poll(
        status.id, progress=lambda s: seen.append(s.line()), interval=7, sleep=waits.append
    )
    assert last.status == "completed" and last.output_file_id is not None
    assert [line.split(": ", 1)[1] for line in seen] == [
        "in_progress, 1/3 done, 0 failed",
        "in_progress, 2/3 done, 0 failed",
        "completed, 3/3 done, 0 failed",
    ]
    assert waits == [7, 7]


def test_per_line_failures_are_counted_and_read(
    llm: FakeLLM, api: BatchAPI, tmp_path: Path
) -> None:
    written = request_file(tmp_path, 6)
    llm.batches.failures = {"claims-w1-b1": "4xx", "claims-w1-b4": "error"}
    jobs = BatchJobs(tmp_path / "cache")
    job = wait(api, jobs, submit(api, jobs, written.path), interval=0)
    assert (job.status, job.completed, job.failed) == ("completed", 4, 2)
    assert job.output_path and job.error_path
    errors = [json.loads(line) for line in Path(job.error_path).read_text().splitlines()]
    assert [e["custom_id"] for e in errors] == ["claims-w1-b4"]
    results = collect_results(job.result_paths)
    assert missing_ids(written.custom_ids, results) == ["claims-w1-b1", "claims-w1-b4"]
    assert results["claims-w1-b1"].status_code == 400


def test_a_fraction_of_lines_fails_as_configured(
    llm: FakeLLM, api: BatchAPI, tmp_path: Path
) -> None:
    written = request_file(tmp_path, 60)
    llm.batches.fail_fraction, llm.batches.fail_kind = 0.2, "error"
    jobs = BatchJobs(tmp_path / "cache")
    job = wait(api, jobs, submit(api, jobs, written.path), interval=0)
    missing = missing_ids(written.custom_ids, collect_results(job.result_paths))
    assert 0 < len(missing) < 30 and job.failed == len(missing)
    assert job.completed + job.failed == 60


def test_cancel_keeps_the_completed_lines(llm: FakeLLM, api: BatchAPI, tmp_path: Path) -> None:
    written = request_file(tmp_path, 5)
    jobs = BatchJobs(tmp_path / "cache")
    llm.batches.lines_per_poll = 2
    job = submit(api, jobs, written.path)
    assert api.retrieve(job.batch_id or "").completed == 2
    job = cancel(api, jobs, job)
    assert job.status == "cancelling" and llm.batches.cancellations == 1
    job = wait(api, jobs, job, interval=0)
    assert job.status == "cancelled" and job.completed == 2
    results = collect_results(job.result_paths)
    assert missing_ids(written.custom_ids, results) == written.custom_ids[2:]
    assert cancel(api, jobs, job) is job and llm.batches.cancellations == 1  # over: no call


def test_an_expired_batch_keeps_its_answers(llm: FakeLLM, api: BatchAPI, tmp_path: Path) -> None:
    written = request_file(tmp_path, 5)
    jobs = BatchJobs(tmp_path / "cache")
    llm.batches.lines_per_poll = 3
    job = submit(api, jobs, written.path)
    api.retrieve(job.batch_id or "")
    llm.batches.expire()
    job = wait(api, jobs, job, interval=0)
    assert (job.status, job.completed, job.failed) == ("expired", 3, 2)
    results = collect_results(job.result_paths)
    assert missing_ids(written.custom_ids, results) == written.custom_ids[3:]
    assert results[written.custom_ids[4]].error is not None
    assert results[written.custom_ids[4]].error.startswith("batch_expired")  # type: ignore[union-attr]


def test_a_rerun_finds_its_job_and_submits_nothing(
    llm: FakeLLM, api: BatchAPI, tmp_path: Path
) -> None:
    written = request_file(tmp_path, 3)
    jobs = BatchJobs(tmp_path / "cache")
    first = submit(api, jobs, written.path)
    again = submit(api, BatchJobs(tmp_path / "cache"), written.path)
    assert again.batch_id == first.batch_id
    assert (llm.batches.uploads, llm.batches.creations) == (1, 1)
    done = wait(api, jobs, again, interval=0)
    downloads = [r for r in llm.requests if r.path.endswith("/content")]
    assert len(downloads) == 1 and done.downloaded
    reread = BatchJobs(tmp_path / "cache").get(written.digest)
    assert reread is not None and wait(api, jobs, reread, interval=0).result_paths
    assert [r for r in llm.requests if r.path.endswith("/content")] == downloads
    other = request_file(tmp_path, 3, wave=2)  # other requests: a batch of their own
    assert submit(api, jobs, other.path).batch_id != first.batch_id
    assert (llm.batches.uploads, llm.batches.creations) == (2, 2)


def test_a_run_killed_while_uploading_or_creating_finds_what_arrived(
    llm: FakeLLM, api: BatchAPI, tmp_path: Path
) -> None:
    written = request_file(tmp_path, 3)
    jobs = BatchJobs(tmp_path / "cache")
    job = jobs.open(written.digest, written.path, 3, "")
    job.status = "uploading"  # saved just before the upload, which arrived
    jobs.save(job)
    file_id = api.upload(written.path, upload_name(written.digest))
    job = submit(api, jobs, written.path)
    assert job.file_id == file_id and llm.batches.uploads == 1

    batch_id = job.batch_id
    job.batch_id, job.status = None, "creating"  # saved just before the batch, which exists
    jobs.save(job)
    assert submit(api, jobs, written.path).batch_id == batch_id
    assert llm.batches.creations == 1


def test_a_batch_failing_validation_says_why_and_can_be_sent_again(
    llm: FakeLLM, api: BatchAPI, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": chat_body(1)}
    bad.write_text(json.dumps(line) + "\n" + json.dumps(line) + "\n", encoding="utf-8")
    jobs = BatchJobs(tmp_path / "cache")
    job = wait(api, jobs, submit(api, jobs, bad), interval=0)
    assert job.status == "failed" and job.result_paths == []
    assert job.errors == ["line 2: duplicate_custom_id: The custom_id 'a' is used more than once."]
    failed_id = job.batch_id
    again = resubmit(api, jobs, job)
    assert again.batch_id != failed_id and again.status == "failed"
    assert (llm.batches.uploads, llm.batches.creations) == (1, 2)


def test_batches_are_listed_and_refreshed(llm: FakeLLM, api: BatchAPI, tmp_path: Path) -> None:
    jobs = BatchJobs(tmp_path / "cache")
    llm.batches.lines_per_poll = 0  # they stay in progress
    made = [submit(api, jobs, request_file(tmp_path, 2, wave).path) for wave in (1, 2, 3)]
    listed = api.list()
    assert [b.id for b in listed] == [job.batch_id for job in reversed(made)]
    known = refresh(api, jobs)
    assert [job.batch_id for job in known] == [job.batch_id for job in made]
    assert {job.status for job in known} == {"in_progress"}
    assert [job.batch_id for job in BatchJobs(tmp_path / "cache")] == [j.batch_id for j in made]


def test_a_job_file_that_was_edited_is_refused(tmp_path: Path) -> None:
    jobs = BatchJobs(tmp_path)
    jobs.path_of("abc").parent.mkdir(parents=True)
    jobs.path_of("abc").write_text("{truncated", encoding="utf-8")
    with pytest.raises(SynthRecordingError, match=r"abc.json.*delete it to forget that job"):
        jobs.get("abc")


def test_errors_say_what_failed_and_never_show_the_key(llm: FakeLLM, tmp_path: Path) -> None:
    written = request_file(tmp_path, 1)
    no_batches = BatchAPI.connect(f"{llm.origin}/elsewhere/v1", KEY, max_retries=0)
    with pytest.raises(SynthAPIError) as caught:
        no_batches.upload(written.path)
    message = str(caught.value)
    assert message.startswith("uploading wave1.jsonl failed: HTTP 404")
    assert "--batch-file" in message and "vllm run-batch" in message
    assert caught.value.status_code == 404 and not caught.value.transient
    with pytest.raises(SynthAPIError, match="No batch found with id 'batch_nope'"):
        BatchAPI.connect(llm.url, KEY, max_retries=0).retrieve("batch_nope")

    closed = FakeLLM().start()
    url = closed.url
    closed.stop()
    gone = BatchAPI.connect(url, KEY, max_retries=0)
    with pytest.raises(SynthAPIError) as unreachable:
        gone.list()
    assert "cannot reach the endpoint" in str(unreachable.value)
    assert unreachable.value.transient
    for error in (caught.value, unreachable.value):
        assert KEY not in str(error) and KEY not in repr(error.args)


# -- a kill -9 during polling, then a rerun ---------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pytest_synthdata.batchfiles import collect_results, custom_id, write_request_files
    from pytest_synthdata.llm.batch import BatchAPI, submit, wait
    from pytest_synthdata.storage.batchjobs import BatchJobs

    def chat_body(count):
        schema = {"type": "object", "properties": {"records": {"type": "array", "items": {
            "type": "object", "properties": {"claim_id": {"type": "integer"}},
            "required": ["claim_id"], "additionalProperties": False}}},
            "required": ["records"], "additionalProperties": False}
        return {"model": "m", "messages": [{"role": "user", "content": f"Return {count} records."}],
                "response_format": {"type": "json_schema", "json_schema": {
                    "name": "records", "schema": schema, "strict": True}}}

    url, folder = sys.argv[1], Path(sys.argv[2])
    requests = [(custom_id("claims", 1, b), chat_body(2)) for b in range(8)]
    written = write_request_files(requests, folder / "requests.jsonl", max_requests=5)
    api = BatchAPI.connect(url, "sk-test", max_retries=0)
    jobs = BatchJobs(folder / "cache")
    submitted = [submit(api, jobs, f.path, label="claims wave 1") for f in written]
    for job in submitted:
        job = wait(api, jobs, job, interval=0.05, progress=lambda s: print(s.line(), flush=True))
        results = collect_results(job.result_paths)
        print("answered", sum(r.ok for r in results.values()), flush=True)
    """
)


def test_a_kill_during_polling_then_a_rerun_submits_nothing_twice(
    llm: FakeLLM, tmp_path: Path
) -> None:
    script = tmp_path / "run_batches.py"
    script.write_text(SCRIPT, encoding="utf-8")
    tests = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.environ.get("PYTHONPATH", ""), tests])}
    command = [sys.executable, str(script), llm.url, str(tmp_path)]
    llm.batches.lines_per_poll = 0  # the batches stay in progress while the first run polls
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None
        line = first.stdout.readline()
        assert "in_progress, 0/5 done" in line
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert first.returncode == -signal.SIGKILL
    assert (llm.batches.uploads, llm.batches.creations) == (2, 2)

    llm.batches.lines_per_poll = None  # now they finish
    second = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("answered") == 2
    assert "answered 5" in second.stdout and "answered 3" in second.stdout
    assert (llm.batches.uploads, llm.batches.creations) == (2, 2)
    assert llm.batches.answered == 8


def test_an_answered_line_is_cached_under_the_sync_requests_key(
    llm: FakeLLM, api: BatchAPI, tmp_path: Path
) -> None:
    written = request_file(tmp_path, 2)
    jobs = BatchJobs(tmp_path / "cache")
    job = wait(api, jobs, submit(api, jobs, written.path, label="claims wave 1"), interval=0)
    assert [j.batch_id for j in jobs.labelled("claims wave 1")] == [job.batch_id]
    assert jobs.labelled("claims wave 2") == []
    results = collect_results(job.result_paths)
    cache = ResponseCache(tmp_path / "cache")
    bodies = dict(read_requests(written.path))
    keys = {
        cid: cache_answer(cache, llm.url, bodies[cid], results[cid].body or {})
        for cid in written.custom_ids
    }
    # the same request sent the sync way: its key, as the storage transport computes it
    api.client.chat.completions.create(**bodies[written.custom_ids[1]])
    sent = llm.chat_requests[-1]
    assert (
        request_key("POST", f"{llm.url}/chat/completions", sent.raw_body)
        == keys[written.custom_ids[1]]
    )
    cached = cache.get(keys[written.custom_ids[1]])
    assert cached is not None and cached["status"] == 200
    assert json.loads(cached["body"]) == results[written.custom_ids[1]].body
    cache.close()
