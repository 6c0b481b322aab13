"""Cassettes and the response cache, through the library API and real files on disk."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakellm import FakeLLM, Fault
from models import EXAMPLES, MedicalBilling
from stored import stored_lines, strip_datasets

from pytest_synthdata import SynthGenerationError, SynthRecordingError, generate
from pytest_synthdata.llm import forget_endpoints
from pytest_synthdata.storage.cache import ResponseCache

FAKE_KEY = "sk-test-fake-key-0123456789"


pytestmark = pytest.mark.usefixtures("fresh_endpoints")  # nothing remembered across tests


def bills(tmp_path: Path, n: int = 30, **kwargs: Any) -> list[MedicalBilling]:
    kwargs.setdefault("cassette", tmp_path / "cassettes" / "bills.synth.yaml")
    return list(generate(MedicalBilling, n, examples=EXAMPLES, seed=1, **kwargs))


def all_text(root: Path) -> str:
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file()
    )


@pytest.mark.parametrize("source", ["datasets", "exchanges"])
def test_record_then_replay_offline_gives_equal_objects(
    llm_env: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    recorded = bills(tmp_path)
    sent = llm_env.request_count  # two batches, and a top-up for names that repeated
    assert 2 <= sent <= 3
    cassette = tmp_path / "cassettes" / "bills.synth.yaml"
    assert cassette.is_file()
    if source == "exchanges":
        strip_datasets(cassette)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a socket was opened during an offline replay")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("OPENAI_API_KEY")
    replayed = bills(tmp_path, record_mode="none")
    assert replayed == recorded
    assert llm_env.request_count == sent


def test_cassette_is_reviewable_yaml_without_secrets(llm_env: FakeLLM, tmp_path: Path) -> None:
    bills(tmp_path, n=3, cache_dir=tmp_path / "cache")
    text = (tmp_path / "cassettes" / "bills.synth.yaml").read_text()
    data = yaml.safe_load(text)
    request = data["interactions"][0]["request"]
    assert request["body"]["json"]["model"] == "gpt-4o-mini"
    assert set(request["headers"]) == {"content-type"}
    assert "Return exactly 3 records." in text
    assert "authorization" not in text.lower()
    assert FAKE_KEY not in all_text(tmp_path)
    assert llm_env.chat_requests[0].headers["authorization"] == f"Bearer {FAKE_KEY}"


def test_data_that_merely_looks_like_a_key_is_left_alone(llm_env: FakeLLM, tmp_path: Path) -> None:
    extra = "the account sk-live-abcdefghijklmnop and risk-assessment-2024 are fictional"
    llm_env.enqueue(
        Fault.mutate(lambda rs: [{**r, "patient_name": "Ann Whisk-0000abcd"} for r in rs])
    )
    recorded = bills(tmp_path, n=2, extra=extra)
    text = (tmp_path / "cassettes" / "bills.synth.yaml").read_text()
    assert "sk-live-abcdefghijklmnop" in text and "risk-assessment-2024" in text
    assert "REDACTED" not in text
    assert {r.patient_name for r in recorded} == {"Ann Whisk-0000abcd"} or recorded[
        0
    ].patient_name == "Ann Whisk-0000abcd"
    assert (
        stored_lines(tmp_path / "cassettes" / "bills.synth.yaml")[0]["patient_name"]
        == "Ann Whisk-0000abcd"
    )
    assert bills(tmp_path, n=2, extra=extra, record_mode="none") == recorded


def test_changed_spec_fails_under_none_with_the_rerecord_command(
    llm_env: FakeLLM, tmp_path: Path
) -> None:
    bills(tmp_path, n=5)
    with pytest.raises(SynthRecordingError) as info:
        bills(tmp_path, n=5, extra="more unusual names", record_mode="none")
    message = str(info.value)
    assert "bills.synth.yaml has no recording of this request" in message
    assert "more unusual names" in message
    assert "record_mode='rewrite'" in message
    assert llm_env.request_count == 1


def test_missing_cassette_under_none(llm_env: FakeLLM, tmp_path: Path) -> None:
    with pytest.raises(SynthRecordingError, match="does not exist"):
        bills(tmp_path, n=2, record_mode="none")
    assert llm_env.request_count == 0


def test_once_replays_existing_and_refuses_new(llm_env: FakeLLM, tmp_path: Path) -> None:
    first = bills(tmp_path, n=4)
    assert bills(tmp_path, n=4) == first
    assert llm_env.request_count == 1
    with pytest.raises(SynthRecordingError, match="'once' does not allow recording"):
        bills(tmp_path, n=4, extra="a new instruction")
    # more records of the same spec: the stored ones stay, the 2 missing are not recorded
    with pytest.raises(SynthRecordingError) as info:
        bills(tmp_path, n=6)
    assert "holds 4 MedicalBilling record(s) and 6 are asked for" in str(info.value)
    assert "record mode 'once' does not record the 2 missing one(s)" in str(info.value)
    assert "record_mode='new_episodes'" in str(info.value)
    assert llm_env.request_count == 1


def test_new_episodes_appends(llm_env: FakeLLM, tmp_path: Path) -> None:
    bills(tmp_path, n=4)
    bills(tmp_path, n=6, record_mode="new_episodes")
    path = tmp_path / "cassettes" / "bills.synth.yaml"
    assert len(yaml.safe_load(path.read_text())["interactions"]) == 2
    before = llm_env.request_count
    assert len(bills(tmp_path, n=4, record_mode="none")) == 4
    assert len(bills(tmp_path, n=6, record_mode="none")) == 6
    assert llm_env.request_count == before


def test_all_always_records(llm_env: FakeLLM, tmp_path: Path) -> None:
    bills(tmp_path, n=4)
    bills(tmp_path, n=4, record_mode="all")
    assert llm_env.request_count == 2
    path = tmp_path / "cassettes" / "bills.synth.yaml"
    assert len(yaml.safe_load(path.read_text())["interactions"]) == 1


def test_rewrite_deletes_then_records(llm_env: FakeLLM, tmp_path: Path) -> None:
    bills(tmp_path, n=4)
    bills(tmp_path, n=5, record_mode="new_episodes")
    path = tmp_path / "cassettes" / "bills.synth.yaml"
    assert len(yaml.safe_load(path.read_text())["interactions"]) == 2
    fresh = bills(tmp_path, n=5, record_mode="rewrite")
    assert len(yaml.safe_load(path.read_text())["interactions"]) == 1
    assert bills(tmp_path, n=4, record_mode="none") == fresh[:4]  # a prefix of the new one
    with pytest.raises(SynthRecordingError):
        bills(tmp_path, n=4, extra="a new instruction", record_mode="none")


def test_corrupt_cassette_is_a_clear_error(llm_env: FakeLLM, tmp_path: Path) -> None:
    bills(tmp_path, n=3)
    path = tmp_path / "cassettes" / "bills.synth.yaml"
    path.write_text(path.read_text()[:500])
    with pytest.raises(SynthRecordingError) as info:
        bills(tmp_path, n=3)
    assert str(path) in str(info.value)
    assert "is not what pytest-synthdata recorded" in str(info.value)
    assert "record_mode='rewrite'" in str(info.value)
    assert llm_env.request_count == 1


def test_failed_generation_writes_no_cassette(llm_env: FakeLLM, tmp_path: Path) -> None:
    llm_env.always("malformed")
    with pytest.raises(SynthGenerationError):
        bills(tmp_path, n=3, max_retries=1, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cassettes" / "bills.synth.yaml").exists()
    assert len(ResponseCache(tmp_path / "cache")) == 0


def test_transient_errors_are_not_recorded_but_reasks_are(llm_env: FakeLLM, tmp_path: Path) -> None:
    llm_env.retry_after_ms = 0
    llm_env.enqueue("500", "malformed")
    recorded = bills(tmp_path, n=5, cache_dir=tmp_path / "cache")
    text = (tmp_path / "cassettes" / "bills.synth.yaml").read_text()
    statuses = [i["response"]["status"]["code"] for i in yaml.safe_load(text)["interactions"]]
    assert statuses == [200, 200]  # the malformed answer and the re-ask; not the 500
    # only the valid answer was cached
    assert len(ResponseCache(tmp_path / "cache")) == 1
    assert bills(tmp_path, n=5, record_mode="none") == recorded


def test_cache_hit_makes_no_call_and_completes_a_new_cassette(
    llm_env: FakeLLM, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first = bills(tmp_path, n=30, cache_dir=cache, cassette=tmp_path / "a.synth.yaml")
    calls = llm_env.request_count
    second = bills(tmp_path, n=30, cache_dir=cache, cassette=tmp_path / "b.synth.yaml")
    assert second == first
    assert llm_env.request_count == calls  # all from the cache
    # the new cassette is complete: it replays offline with the cache gone
    for entry in cache.iterdir():
        if entry.is_file():
            entry.unlink()
    third = bills(tmp_path, n=30, cassette=tmp_path / "b.synth.yaml", record_mode="none")
    assert third == first


def test_rewrite_and_all_bypass_cache_reads(llm_env: FakeLLM, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    bills(tmp_path, n=3, cache_dir=cache)
    bills(tmp_path, n=3, cache_dir=cache, record_mode="all")
    bills(tmp_path, n=3, cache_dir=cache, record_mode="rewrite")
    assert llm_env.request_count == 3


def test_corrupt_cache_entry_is_dropped_and_regenerated(llm_env: FakeLLM, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    first = bills(tmp_path, n=3, cache_dir=cache_dir, cassette=None)
    cache = ResponseCache(cache_dir)
    keys = sorted(cache._cache.iterkeys())
    assert len(keys) == 2  # the response, and the whole dataset
    for key in keys:
        cache._cache.set(key, {"status": "garbage"})
    cache.close()
    again = bills(tmp_path, n=3, cache_dir=cache_dir, cassette=None)
    assert again == first
    assert llm_env.request_count == 2
    cache = ResponseCache(cache_dir)
    response_key = next(k for k in keys if not k.startswith("dataset:"))
    assert cache.get(response_key) is not None
    assert cache.get_text(next(k for k in keys if k.startswith("dataset:"))) is not None


def test_whole_datasets_are_cached_without_a_cassette(llm_env: FakeLLM, tmp_path: Path) -> None:
    from pytest_synthdata import generate

    cache_dir = tmp_path / "cache"
    first = generate(MedicalBilling, 30, examples=EXAMPLES, cache_dir=cache_dir)
    calls = llm_env.request_count
    second = generate(MedicalBilling, 30, examples=EXAMPLES, cache_dir=cache_dir)
    assert second == first
    assert llm_env.request_count == calls
    assert second.usage.requests == 0 and second.usage.cache_hits == 1
    # another spec is another dataset; a cassette in play never uses the shortcut
    assert len(generate(MedicalBilling, 31, examples=EXAMPLES, cache_dir=cache_dir)) == 31
    with_cassette = generate(
        MedicalBilling, 30, examples=EXAMPLES, cache_dir=cache_dir, cassette=tmp_path / "c.yaml"
    )
    assert with_cassette == first
    assert with_cassette.usage.requests == with_cassette.usage.cache_hits == 2


def test_cache_stores_json_not_pickles(llm_env: FakeLLM, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    bills(tmp_path, n=3, cache_dir=cache_dir, cassette=None)
    import sqlite3

    rows = sqlite3.connect(cache_dir / "cache.db").execute("SELECT mode FROM Cache").fetchall()
    # diskcache's JSONDisk stores values in MODE_BINARY (zlib JSON), never MODE_PICKLE (4)
    assert rows and all(mode != 4 for (mode,) in rows)


def test_fallback_mode_replays_from_a_fresh_process_state(llm_env: FakeLLM, tmp_path: Path) -> None:
    llm_env.supported_modes = {"tools"}
    with pytest.warns(UserWarning):
        recorded = bills(tmp_path, n=4)
    strip_datasets(tmp_path / "cassettes" / "bills.synth.yaml")  # replay the exchanges
    forget_endpoints()  # as in a new process
    with pytest.warns(UserWarning):
        assert bills(tmp_path, n=4, record_mode="none") == recorded
    # and a second dataset recorded after the fallback replays alone, too
    second = bills(tmp_path, n=4, cassette=tmp_path / "later.synth.yaml")
    strip_datasets(tmp_path / "later.synth.yaml")
    forget_endpoints()
    assert (
        bills(tmp_path, n=4, cassette=tmp_path / "later.synth.yaml", record_mode="none") == second
    )


def test_a_key_in_the_prompt_is_masked_and_still_replays(llm_env: FakeLLM, tmp_path: Path) -> None:
    recorded = bills(tmp_path, n=2, extra=f"never print {FAKE_KEY}")
    text = (tmp_path / "cassettes" / "bills.synth.yaml").read_text()
    assert FAKE_KEY not in text and "never print REDACTED" in text
    assert bills(tmp_path, n=2, extra=f"never print {FAKE_KEY}", record_mode="none") == recorded


def test_an_answer_echoing_the_key_is_refused_and_nothing_is_stored(
    llm_env: FakeLLM, tmp_path: Path
) -> None:
    llm_env.enqueue(Fault.mutate(lambda rs: [{**r, "patient_name": FAKE_KEY} for r in rs]))
    with pytest.raises(SynthRecordingError) as info:
        bills(tmp_path, n=2, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "an answer from the endpoint contains a secret" in message
    assert FAKE_KEY not in message
    assert not (tmp_path / "cassettes" / "bills.synth.yaml").exists()
    assert FAKE_KEY not in all_text(tmp_path)


def test_gzip_responses_are_stored_decoded(llm_env: FakeLLM, tmp_path: Path) -> None:
    llm_env.gzip = True
    recorded = bills(tmp_path, n=3)
    text = (tmp_path / "cassettes" / "bills.synth.yaml").read_text()
    assert "patient_id" in text and "!!binary" not in text
    assert bills(tmp_path, n=3, record_mode="none") == recorded


def test_mutated_records_are_replayed_identically(llm_env: FakeLLM, tmp_path: Path) -> None:
    def dup(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [records[0]] * len(records)

    llm_env.enqueue(Fault.mutate(dup))
    recorded = bills(tmp_path, n=6, unique="patient_id")
    assert bills(tmp_path, n=6, unique="patient_id", record_mode="none") == recorded
    strip_datasets(tmp_path / "cassettes" / "bills.synth.yaml")  # the re-asks, exchange by exchange
    assert bills(tmp_path, n=6, unique="patient_id", record_mode="none") == recorded


# --- stored datasets -----------------------------------------------------------------------


def test_cassette_keeps_the_dataset_as_json_lines_first(llm_env: FakeLLM, tmp_path: Path) -> None:
    path = tmp_path / "cassettes" / "bills.synth.yaml"
    dataset = generate(MedicalBilling, 5, examples=EXAMPLES, seed=1, cassette=path)
    recorded, recorded_usage = list(dataset), dataset.usage
    text = path.read_text()
    # one YAML document; the datasets come before the exchanges they summarise
    assert text.index("datasets:") < text.index("\ninteractions:")
    data = yaml.safe_load(text)
    assert len(data["interactions"]) == 1
    (entry,) = data["datasets"].values()
    assert entry["model"] == "MedicalBilling" and entry["n"] == 5
    assert entry["usage"]["requests"] == 1
    assert stored_lines(path) == [r.model_dump(mode="json") for r in recorded]
    assert '      {"patient_id": ' in text  # one readable JSON line per record
    # a replay reports what the recording cost, whichever part of the file it reads
    from_store = generate(
        MedicalBilling, 5, examples=EXAMPLES, seed=1, cassette=path, record_mode="none"
    )
    strip_datasets(path)
    from_exchanges = generate(
        MedicalBilling, 5, examples=EXAMPLES, seed=1, cassette=path, record_mode="none"
    )
    assert from_store.usage == from_exchanges.usage == recorded_usage


def test_stored_dataset_replays_under_other_budgets_and_concurrency(
    llm_env: FakeLLM, tmp_path: Path
) -> None:
    llm_env.enqueue("malformed")  # the recording needs one re-ask
    recorded = bills(tmp_path, n=4)
    assert llm_env.request_count == 2
    other = {"max_retries": 0, "concurrency": 1, "http_retries": 0, "timeout": 5.0}
    assert bills(tmp_path, n=4, record_mode="none", **other) == recorded
    # a setting that shapes the requests is another dataset: no recording of it
    with pytest.raises(SynthRecordingError, match="has no recording of this request"):
        bills(tmp_path, n=4, record_mode="none", temperature=0.3)
    assert llm_env.request_count == 2


def test_replaying_an_older_cassette_leaves_it_alone_until_new_episodes(
    llm_env: FakeLLM, tmp_path: Path
) -> None:
    recorded = bills(tmp_path, n=4)
    path = tmp_path / "cassettes" / "bills.synth.yaml"
    strip_datasets(path)
    older = path.read_bytes()
    assert bills(tmp_path, n=4) == recorded  # once: a replay never rewrites a committed file
    assert path.read_bytes() == older
    assert bills(tmp_path, n=4, record_mode="new_episodes") == recorded
    upgraded = yaml.safe_load(path.read_text())
    assert upgraded["interactions"] == yaml.safe_load(older)["interactions"]
    assert stored_lines(path) == [r.model_dump(mode="json") for r in recorded]
    assert llm_env.request_count == 1


def test_rerecording_replaces_the_stored_dataset(llm_env: FakeLLM, tmp_path: Path) -> None:
    bills(tmp_path, n=4)
    again = bills(tmp_path, n=4, record_mode="all")  # the fake answers with new records
    path = tmp_path / "cassettes" / "bills.synth.yaml"
    assert stored_lines(path) == [r.model_dump(mode="json") for r in again]
    assert bills(tmp_path, n=4, record_mode="none") == again


def test_stored_dataset_survives_yaml_line_breaks_inside_values(
    llm_env: FakeLLM, tmp_path: Path
) -> None:
    def odd(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        breaks = ["Ann\u2028Lee", "Bo\u2029Ek", "Cy\x85Ma", "Di\nNo"]
        return [{**r, "patient_name": b} for r, b in zip(records, breaks, strict=False)]

    llm_env.enqueue(Fault.mutate(odd))
    recorded = bills(tmp_path, n=4)
    assert [r.patient_name for r in recorded] == [
        "Ann\u2028Lee",
        "Bo\u2029Ek",
        "Cy\x85Ma",
        "Di\nNo",
    ]
    assert bills(tmp_path, n=4, record_mode="none") == recorded
    # still one line per record in the file: YAML's own line breaks are written as JSON escapes
    path = tmp_path / "cassettes" / "bills.synth.yaml"
    text = path.read_text()
    assert "    records: |\n" in text
    assert '"Ann\\u2028Lee"' in text and '"Cy\\u0085Ma"' in text and '"Di\\nNo"' in text
    assert len(stored_lines(path)) == 4


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [
        ("tests/test_a.py::test_x", "test_x.synth.yaml"),
        ("tests/test_a.py::TestGroup::test_y[1-2]", "TestGroup.test_y.synth.yaml"),
        ("t.py::test_odd[a/b c:d]", "test_odd.synth.yaml"),
        # characters replaced: a digest of the name keeps it apart from test_ānīcode
        ("t.py::test_ünïcode", "test__n_code-5461bd50.synth.yaml"),
    ],
)
def test_cassette_names_are_readable_and_safe(nodeid: str, expected: str) -> None:
    from pytest_synthdata.storage.paths import cassette_for_test, name_from_nodeid

    path = cassette_for_test(Path("/suite/tests/test_a.py"), name_from_nodeid(nodeid))
    assert path == Path("/suite/tests/cassettes/test_a") / expected


def test_long_names_are_shortened_with_a_hash() -> None:
    from pytest_synthdata.storage.paths import safe_name

    first, second = safe_name("test_" + "x" * 300), safe_name("test_" + "x" * 299 + "y")
    assert len(first) <= 100 and len(second) <= 100
    assert first != second
    assert first.startswith("test_xxx")
    assert safe_name("../../etc/passwd") == "etc_passwd"
