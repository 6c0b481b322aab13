"""The compact forms a large run holds its data in say and store exactly what the full forms
did: a record's stored text, exact-duplicate keys, a batch's absorbed answers, and the secret
check of a large text decoded a part at a time."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from pytest_synthdata.batchfiles import write_request_files
from pytest_synthdata.cli.batchrun import FAILED, BatchTracker, digest_of
from pytest_synthdata.judging import AcceptedRecords, Judge, canonical
from pytest_synthdata.storage import secrets
from pytest_synthdata.storage.batchjobs import BatchJobs, answer_key, cache_answer
from pytest_synthdata.storage.cache import ResponseCache, compressed_text, request_key
from pytest_synthdata.storage.datasets import EncodedItem, encode

SECRET = "sk-memory-forms-0123456789abcdef"
BASE = "http://127.0.0.1:9/v1"


class Claim(BaseModel):
    claim_id: int
    holder: str
    note: str


@pytest.fixture
def secret() -> Iterator[str]:
    secrets.REGISTRY.forget()
    secrets.REGISTRY.add(SECRET)
    yield SECRET
    secrets.REGISTRY.forget()


def test_a_stored_record_is_what_the_model_sent_byte_for_byte() -> None:
    sent = {"claim_id": 7, "holder": "Zoë \u2028 Ortiz", "note": 'said "hi"', "extra": 1.50}
    judge = Judge(Claim)
    verdict = judge(sent, 1)
    assert verdict.value is not None
    assert isinstance(verdict.raw, EncodedItem)
    assert json.loads(verdict.raw) == sent
    as_parsed = encode("Claim", [sent], {})
    as_kept = encode("Claim", [verdict.raw], {})
    assert as_kept == as_parsed
    assert "\\u2028" in as_kept["records"]  # YAML's line breaks escaped in either form


def test_exact_duplicates_are_found_by_digest_and_named_by_their_json() -> None:
    first = Claim(claim_id=1, holder="Ada", note="x")
    kept = AcceptedRecords(("holder",), [])
    data = first.model_dump(mode="json")
    assert kept.clash(data) is None
    kept.add(first, data)
    again = kept.clash({"note": "x", "holder": "Ada", "claim_id": 1})
    assert again == f"duplicate record dropped: {canonical(data)[:200]}"
    assert kept.clash({**data, "note": "y"}) == "record with an already used holder dropped"
    assert kept.clash({**data, "holder": "Bo"}) is None
    judge = Judge(Claim)
    assert judge(data, 1).problems == []
    repeated = judge(dict(reversed(list(data.items()))), 2)
    assert repeated.duplicate and repeated.problems == ["Record 2 repeated an earlier record."]


def test_absorbing_a_batch_caches_each_answer_under_the_sync_key(tmp_path: Path) -> None:
    bodies = [
        {"model": "m", "messages": [{"role": "user", "content": f"ask {i}"}], "seed": i}
        for i in range(3)
    ]
    written = write_request_files(
        ((f"ds-w1-b{i}", body) for i, body in enumerate(bodies)), tmp_path / "requests.jsonl"
    )[0]
    answer = {"id": "c0", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9}}
    output = tmp_path / "output.jsonl"
    refused = {"message": "bad"}
    lines = [
        {"custom_id": "ds-w1-b0", "response": {"status_code": 200, "body": answer}},
        {"custom_id": "ds-w1-b1", "response": {"status_code": 400, "body": {"error": refused}}},
    ]  # b2 has no line: the batch ended before it
    output.write_text("".join(json.dumps(line) + "\n" for line in lines))
    jobs = BatchJobs(tmp_path / "cache")
    cache = ResponseCache(tmp_path / "cache")
    job = jobs.open(written.digest, written.path, written.requests, "ds wave 1")
    job.status = "expired"
    tracker = BatchTracker(jobs, cache, "ds", BASE)
    assert tracker.absorb(job, [output]) == (1, 2)
    sync_key = request_key("POST", f"{BASE}/chat/completions", json.dumps(bodies[0]).encode())
    assert answer_key(BASE, bodies[0]) == sync_key
    cached = cache.get(sync_key)
    assert cached is not None and json.loads(cached["body"]) == answer
    assert cache.get(answer_key(BASE, bodies[1])) is None
    failed = json.loads((jobs.results_folder(job.digest) / FAILED).read_text())
    assert failed == {
        digest_of(bodies[1]): "HTTP 400: bad",
        digest_of(bodies[2]): "no answer: the batch ended expired",
    }
    assert tracker.tokens == [5, 9]
    other = ResponseCache(tmp_path / "other")
    assert cache_answer(other, BASE, bodies[0], answer) == sync_key
    assert other.get(sync_key) == cached
    cache.close()
    other.close()


@pytest.mark.parametrize("every", [2, 3, 4096])
def test_a_secret_split_across_the_parts_of_a_large_text_is_found(
    secret: str, monkeypatch: pytest.MonkeyPatch, every: int
) -> None:
    monkeypatch.setattr(secrets, "_JOIN_EVERY", every)
    escaped = "".join(f"\\u{ord(c):04x}" for c in secret)
    records = "".join(json.dumps({"note": f'a "quoted" note {i}'}) + "\n" for i in range(300))
    for at in (0, len(records) // 2, len(records)):
        text = json.dumps({"records": records[:at] + escaped + records[at:]})
        assert secrets.found_in(text)
        assert not secrets.found_in(secrets.mask(text))
    spaced = json.dumps({"records": records + secret[:6] + "%2B" + secret[6:]})
    assert not secrets.found_in(spaced)
    clean = json.dumps({"records": records})
    assert not secrets.found_in(clean)


def test_a_large_text_entry_is_stored_as_diskcache_would_store_it(tmp_path: Path) -> None:
    import diskcache

    text = "".join(
        json.dumps({"note": f'n\u00e9 {i} \U0001f600 \u2028 \\ "q" \x01'}) + "\n"
        for i in range(20_000)
    )
    assert len(text) > 4 * 65536
    for level in (1, 6):
        whole = zlib.compress(json.dumps({"text": text}).encode("utf-8"), level)
        assert compressed_text(text, level) == whole
    ours = ResponseCache(tmp_path / "cache")
    ours.put_text("dataset:x", text)
    ours.close()
    plain = diskcache.Cache(str(tmp_path / "cache"), disk=diskcache.JSONDisk)
    assert plain.get("dataset:x") == {"text": text}
    plain.set("dataset:y", {"text": text})
    plain.close()
    again = ResponseCache(tmp_path / "cache")
    assert again.get_text("dataset:y") == text
    stored = sorted((tmp_path / "cache").rglob("*.val"))
    assert len(stored) == 2 and stored[0].read_bytes() == stored[1].read_bytes()
    again.close()
