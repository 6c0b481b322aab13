"""No secret in any channel: messages, the report header, log records, tracebacks with
locals, junitxml, the response cache and cassettes, in every encoding.

Each test is a real run: the loopback fake server echoes the key as the request carried it
(with JSON's ``\\/`` escape for its slashes), pytester runs real test files with the options
a user would give, and what reached the terminal, the junitxml file and the disk is read
back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import openai
import pytest
import yaml
from fakellm import FakeLLM, Fault
from pydantic import BaseModel

from pytest_synthdata import SynthRecordingError, generate
from pytest_synthdata.storage.cache import ResponseCache
from pytest_synthdata.storage.secrets import REGISTRY, found_in, mask, redact

pytestmark = pytest.mark.usefixtures("fresh_endpoints", "_forget_secrets")

KEY = "sk-proj/Trust+Key/0123456789abcdef"
"""A key with slashes, which JSON may write as ``\\/``."""


class Note(BaseModel):
    text: str
    number: int


@pytest.fixture
def _forget_secrets() -> Iterator[None]:
    REGISTRY.forget()
    yield
    REGISTRY.forget()


def on_disk(root: Path) -> str:
    """Every file below ``root``, and the response cache's values as diskcache keeps them."""
    parts = [p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file()]
    if (root / "cache").is_dir():
        cache = ResponseCache(root / "cache")
        parts += [json.dumps(cache._cache.get(key)) for key in cache._cache.iterkeys()]
        cache.close()
    return "\n".join(parts)


ENCODINGS = {
    "json slash escape": lambda s: json.dumps(s).replace("/", "\\/"),
    "json in json": lambda s: json.dumps(json.dumps(s).replace("/", "\\/")),
    "python repr of json": lambda s: repr(json.dumps(s).replace("/", "\\/")),
    "ascii json": lambda s: json.dumps(s, ensure_ascii=True).replace("+", "\\u002B"),
    "yaml escapes": lambda s: '"' + "".join(f"\\x{ord(c):02x}" for c in s) + '"',
    "yaml long escapes": lambda s: '"' + "".join(f"\\U{ord(c):08X}" for c in s) + '"',
    "percent twice": lambda s: quote(quote(s, safe=""), safe=""),
    "percent lower": lambda s: "".join(f"%{b:02x}" for b in s.encode()),
    "yaml dump": lambda s: yaml.safe_dump({"k": s + "\x07"}),
}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_every_encoding_of_a_secret_is_found_and_masked(encoding: str) -> None:
    REGISTRY.add(KEY)
    text = "before " + ENCODINGS[encoding](KEY) + " after"
    assert found_in(text)
    masked = mask(text)
    assert "REDACTED" in masked and not found_in(masked)
    assert masked.startswith("before ") and masked.endswith(" after")


def test_a_secret_broken_over_lines_by_yaml_is_found() -> None:
    """YAML may break a double-quoted string after an escape, anywhere, with ``\\``."""
    REGISTRY.add(KEY)
    assert found_in('k: "\\a' + KEY[:9] + "\\\n    " + KEY[9:] + '"\n')


def test_a_key_echoed_with_json_slash_escapes_is_not_cached(
    llm: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = openai.OpenAI(api_key=KEY, base_url=llm.url, max_retries=0)
    llm.always(Fault("echo_key"))
    notes = generate(Note, 2, client=client, cache_dir=tmp_path / "cache")
    assert {note.text for note in notes} == {KEY}  # the caller gets what the model said
    answers = [str(r.response) for r in llm.chat_requests]
    assert "\\\\/" in json.dumps(answers) and KEY not in json.dumps(answers)
    stored = on_disk(tmp_path)
    assert stored and KEY not in stored and not found_in(stored)


def test_a_key_echoed_with_json_slash_escapes_is_not_recorded(
    llm: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = openai.OpenAI(api_key=KEY, base_url=llm.url, max_retries=0)
    llm.always(Fault("echo_key"))
    with pytest.raises(SynthRecordingError, match="contains a secret"):
        generate(Note, 2, client=client, cassette=tmp_path / "notes.synth.yaml")
    assert not (tmp_path / "notes.synth.yaml").exists()
    assert not found_in(on_disk(tmp_path))


def test_redact_hides_url_credentials_of_any_length() -> None:
    text = "base_url='http://ann:pw@127.0.0.1:8000/v1?sig=abc&n=2&api_key=x' and http://h/ok"
    shown = redact(text)
    assert shown == (
        "base_url='http://REDACTED@127.0.0.1:8000/v1?sig=REDACTED&n=2&api_key=REDACTED'"
        " and http://h/ok"
    )
    escaped = '"http:\\/\\/ann:pw@h\\/v1?code=7"'
    assert redact(escaped) == '"http:\\/\\/REDACTED@h\\/v1?code=REDACTED"'


def _leaks(text: str, *secrets: str) -> list[str]:
    return [secret for secret in secrets if secret in text]


def test_a_marker_error_shows_no_url_credentials(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marker="""
        import pytest
        from pydantic import BaseModel

        class Bill(BaseModel):
            amount: int

        URL = "http://ann:hunter2pass@127.0.0.1:9/v1?sig=s1g-value&n=1"

        @pytest.mark.synth(Bill, n=2, base_url=URL, bogus_option=1)
        def test_bills(synth_data):
            pass

        @pytest.mark.synth(Bill, n=0, base_url="http://bob:a-much-longer-password-here@h/v1")
        def test_zero(synth_data):
            pass
        """
    )
    result = pytester.runpytest("-l", "--tb=long", "--junitxml=report.xml")
    result.assert_outcomes(errors=2)
    shown = result.stdout.str() + result.stderr.str()
    report = (pytester.path / "report.xml").read_text()
    assert "bogus_option" in shown
    for text in (shown, report):
        assert not _leaks(text, "hunter2pass", "s1g-value", "a-much-longer-password-here", "a-much")


def test_log_records_of_the_libraries_show_no_credentials(
    pytester: pytest.Pytester, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    url = llm.url.replace("http://", "http://ann:tiny@")
    pytester.makepyfile(
        test_logged="""
        import logging
        import pytest
        from pydantic import BaseModel

        class Bill(BaseModel):
            amount: int

        @pytest.mark.synth(Bill, n=2)
        def test_bills(synth_data):
            assert len(synth_data) == 2

        def test_fails_after(synth_data_logged):
            pass

        @pytest.fixture
        def synth_data_logged():
            logging.getLogger("httpcore2.connection.deep.child").info("saw %s?sig=short", URL)
            raise AssertionError("show the captured log")
        """.replace("URL", repr(url))
    )
    result = pytester.runpytest(
        f"--synth-base-url={url}",
        "--synth-no-cache",
        "--log-level=DEBUG",
        "--log-cli-level=DEBUG",
        "-o",
        "junit_logging=all",
        "--junitxml=report.xml",
    )
    result.assert_outcomes(passed=1, errors=1)
    shown = result.stdout.str() + result.stderr.str()
    report = (pytester.path / "report.xml").read_text()
    assert "HTTP Request: POST" in shown  # the library's records were shown ...
    for text in (shown, report):  # ... without the credentials
        assert not _leaks(text, "ann:tiny", "sig=short", KEY), text[-3000:]


def test_a_traceback_with_locals_shows_no_echoed_key(
    pytester: pytest.Pytester, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
    llm.always(Fault("echo_key"))
    pytester.makepyfile(
        test_echo="""
        import pytest
        from pydantic import BaseModel, Field

        class Note(BaseModel):
            text: str
            number: int

        @pytest.mark.synth(Note, n=2)
        def test_notes(synth_data):
            pass

        def test_direct():
            from pytest_synthdata import generate
            notes = generate(Note, 2, cassette="direct.synth.yaml")

        class Short(BaseModel):
            text: str = Field(max_length=5)
            number: int

        def test_invalid_every_time():
            from pytest_synthdata import generate
            shorts = generate(Short, 2, max_retries=1)
        """
    )
    result = pytester.runpytest(f"--synth-base-url={llm.url}", "-l", "--junitxml=report.xml")
    result.assert_outcomes(failed=2, errors=1)
    shown = result.stdout.str() + result.stderr.str()
    report = (pytester.path / "report.xml").read_text()
    assert "refusing to record" in shown and "self       = " in shown  # locals were shown
    # the engine's locals were shown, the last batch's outcome (its answer) among them
    assert "outcome    = " in shown and '"text": "REDACTED"' in shown
    for text in (shown, report):
        assert KEY not in text and not found_in(text)
        assert "Trust+Key" not in text  # not even a part of it, cut off by a short repr


def test_the_report_header_masks_short_credential_query_values(
    pytester: pytest.Pytester, llm: FakeLLM
) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    url = llm.url.replace("http://", "http://ann:pw@") + "?sig=abc&api-version=2024"
    result = pytester.runpytest("-v", f"--synth-base-url={url}")
    result.assert_outcomes(passed=1)
    header = [line for line in result.stdout.lines if line.startswith("synthdata: ")]
    assert header and "sig=REDACTED" in header[0] and "api-version=2024" in header[0]
    assert "ann:pw" not in result.stdout.str() and "sig=abc" not in result.stdout.str()


def test_warnings_show_no_url_credentials(llm: FakeLLM) -> None:
    llm.supported_modes = {"tools"}
    url = llm.url.replace("http://", "http://ann:pw@")
    client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0)
    with pytest.warns(Warning) as caught:
        notes = generate(Note, 2, client=client)
    assert len(notes) == 2
    shown = " ".join(str(w.message) for w in caught)
    assert "does not support structured mode" in shown
    assert "REDACTED@" in shown and "ann:pw" not in shown
