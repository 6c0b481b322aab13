"""Secrets by value: every secret the run holds stays out of every store and message.

Each kind of secret (the environment's key, a key given only through ``client=``, Azure's
``api-key`` header, another credential header, URL userinfo, credential query values) is
checked in each store (the cassette, the response cache, the stored datasets) and in each
encoding the wire may use; data that merely looks like a key is left alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fakellm import FakeLLM, Fault
from models import EXAMPLES, MedicalBilling

from pytest_synthdata import SynthGenerationError, SynthRecordingError, generate
from pytest_synthdata.storage.cache import ResponseCache
from pytest_synthdata.storage.secrets import REGISTRY, found_in, mask

pytestmark = pytest.mark.usefixtures("fresh_endpoints", "_forget_secrets")

SECRET = "s3cr3t-Value-0123456789abcdef"


@pytest.fixture
def _forget_secrets() -> Iterator[None]:
    REGISTRY.forget()
    yield
    REGISTRY.forget()


def client_with(kind: str, server: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> object:
    """A client whose only credential of interest is ``SECRET``, sent as ``kind`` says."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    plain = "placeholder"  # too short to be a secret
    if kind == "environment key":
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        return openai.OpenAI(base_url=server.url, max_retries=0)
    if kind == "client key":
        return openai.OpenAI(api_key=SECRET, base_url=server.url, max_retries=0)
    if kind == "azure api-key":
        return openai.AzureOpenAI(
            azure_endpoint=server.origin, api_key=SECRET, api_version="2024-06-01", max_retries=0
        )
    if kind == "credential header":
        return openai.OpenAI(
            api_key=plain, base_url=server.url, default_headers={"X-Api-Token": SECRET}
        )
    if kind == "url userinfo":
        url = server.url.replace("http://", f"http://user:{SECRET}@")
        return openai.OpenAI(api_key=plain, base_url=url, max_retries=0)
    if kind.startswith("query "):
        name = kind.split(" ", 1)[1]
        return openai.OpenAI(
            api_key=plain, base_url=server.url, default_query={name: SECRET}, max_retries=0
        )
    raise AssertionError(kind)


KINDS = [
    "environment key",
    "client key",
    "azure api-key",
    "credential header",
    "url userinfo",
    "query subscription-key",
    "query access_token",
    "query sig",
    "query code",
]


ENCODINGS: dict[str, Callable[[str], str]] = {
    "raw": lambda s: s,
    "percent-encoded": lambda s: "".join(f"%{ord(c):02X}" for c in s),
    "partly percent-encoded, lower-case hex": lambda s: "".join(
        f"%{ord(c):02x}" if c in "-3e" else c for c in s
    ),
}


def stored_text(root: Path) -> str:
    """Everything on disk below ``root``, the response cache read through diskcache (its
    values are compressed, so the raw bytes alone would hide a secret)."""
    parts = [p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file()]
    cache_dir = root / "cache"
    if cache_dir.is_dir():
        cache = ResponseCache(cache_dir)
        parts += [json.dumps(cache._cache.get(key)) for key in cache._cache.iterkeys()]
        cache.close()
    return "\n".join(parts)


def run(client: object, tmp_path: Path, **kwargs: Any) -> list[MedicalBilling]:
    return list(
        generate(
            MedicalBilling,
            3,
            examples=EXAMPLES,
            client=client,
            model="my-deployment",
            cassette=tmp_path / "bills.synth.yaml",
            cache_dir=tmp_path / "cache",
            **kwargs,
        )
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_secret_sent_on_the_wire_reaches_no_store_and_replays(
    llm: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    client = client_with(kind, llm, monkeypatch)
    recorded = run(client, tmp_path)
    for encode in ENCODINGS.values():
        assert encode(SECRET) not in stored_text(tmp_path)
    assert not found_in(stored_text(tmp_path))
    llm.stop()
    try:
        assert run(client, tmp_path, record_mode="none") == recorded
    finally:
        llm.start()


def echo(value: str) -> Fault:
    return Fault.mutate(lambda rs: [{**r, "patient_name": value} for r in rs])


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("kind", ["client key", "azure api-key", "url userinfo", "query sig"])
def test_an_answer_echoing_a_secret_is_refused_not_masked(
    llm: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, encoding: str
) -> None:
    client = client_with(kind, llm, monkeypatch)
    llm.enqueue(echo(ENCODINGS[encoding](SECRET)))
    with pytest.raises(SynthRecordingError) as info:
        run(client, tmp_path)
    assert "an answer from the endpoint contains a secret" in str(info.value)
    assert not (tmp_path / "bills.synth.yaml").exists()
    assert SECRET not in stored_text(tmp_path) and not found_in(stored_text(tmp_path))


def test_an_echoed_secret_is_not_cached_without_a_cassette(
    llm: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_with("client key", llm, monkeypatch)
    llm.enqueue(echo(SECRET))
    records = generate(MedicalBilling, 3, client=client, cache_dir=tmp_path / "cache")
    assert records[0].patient_name == SECRET  # the caller gets what the endpoint said
    assert SECRET not in stored_text(tmp_path) and not found_in(stored_text(tmp_path))


def test_json_escaped_secret_in_an_answer_is_refused(tmp_path: Path) -> None:
    """A server may escape any character of a JSON string: ``sk\\u002d...`` decodes back to
    the key, so it counts as the key."""
    from vcr.request import Request

    from pytest_synthdata.storage.cassettes import AtomicPersister, YamlSerializer, raise_refusal

    REGISTRY.add(SECRET)
    escaped = "".join(f"\\u{ord(c):04x}" if c in "-3" else c for c in SECRET)
    body = '{"choices": [{"message": {"content": "' + escaped + '"}}]}'
    assert SECRET not in body
    cassette = {
        "requests": [Request("POST", "http://127.0.0.1/v1/chat/completions", b"{}", {})],
        "responses": [
            {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": body}}
        ],
    }
    path = tmp_path / "escaped.synth.yaml"
    AtomicPersister.save_cassette(path, cassette, YamlSerializer)
    with pytest.raises(SynthRecordingError, match="an answer from the endpoint contains a secret"):
        raise_refusal(path)
    assert not path.exists()


def test_messages_never_show_a_secret(
    llm: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_with("client key", llm, monkeypatch)
    llm.always(Fault.mutate(lambda rs: [{**r, "patient_id": SECRET} for r in rs]))
    with pytest.raises(SynthGenerationError) as info:
        generate(MedicalBilling, 2, client=client, max_retries=1)
    shown = str(info.value) + repr(info.value) + (info.value.last_output or "")
    assert SECRET not in shown and "REDACTED" in shown
    assert not any(SECRET in error for error in info.value.errors)


def test_data_that_looks_like_a_key_is_not_a_secret() -> None:
    REGISTRY.add(SECRET)
    for text in ("Ann Whisk-0000abcd", "risk-assessment-2024", "sk-live-abcdefghijklmnop"):
        assert not found_in(text) and mask(text) == text
    for placeholder in ("EMPTY", "ollama", "anything", "sk-no-key"):
        REGISTRY.add(placeholder)
        assert mask(f"say {placeholder}") == f"say {placeholder}"


def test_report_header_and_junitxml_mask_secrets(
    pytester: pytest.Pytester, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    llm.always(Fault.mutate(lambda rs: [{**r, "patient_id": SECRET} for r in rs]))
    pytester.makepyfile(
        test_leak="""
        import pytest
        from pydantic import BaseModel

        class Bill(BaseModel):
            patient_id: int

        @pytest.mark.synth(Bill, n=2, max_retries=1)
        def test_bills(synth_data):
            pass
        """
    )
    url = f"{llm.url}?api-key={SECRET}"
    result = pytester.runpytest(
        "-v", f"--synth-base-url={url}", "--synth-no-cache", "--junitxml=report.xml"
    )
    result.assert_outcomes(errors=1)
    output = result.stdout.str() + result.stderr.str()
    report = (pytester.path / "report.xml").read_text()
    assert "synthdata: " in output and "api-key=REDACTED" in output
    assert "REDACTED" in report
    for text in (output, report):
        assert SECRET not in text
