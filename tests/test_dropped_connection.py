"""A server that accepts a request and then goes away before answering it (a local server
that segfaults on a schema feature) is reported as such, with what the request carried, not
as a server that could not be reached."""

from __future__ import annotations

import re
import time
from pathlib import Path

import openai
import pytest
from fakellm import FakeLLM
from fakellm.process import FakeLLMProcess
from pydantic import BaseModel, Field

from pytest_synthdata import SynthAPIError, generate

pytestmark = pytest.mark.usefixtures("fresh_endpoints")

EMAIL = r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$"
KEY = "sk-dropped-secret-0123456789abcdef"


class Contact(BaseModel):
    name: str = Field(min_length=2)
    email: str = Field(pattern=EMAIL)


def _generate(url: str, tmp_path: Path, **options: object) -> SynthAPIError:
    client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0)
    with pytest.raises(SynthAPIError) as info:
        generate(
            Contact,
            3,
            client=client,
            http_retries=2,
            cache_dir=tmp_path / "cache",
            **options,  # type: ignore[arg-type]
        )
    return info.value


def _assert_names_the_request(message: str) -> None:
    assert "went away while answering" in message
    assert "may have crashed on" in message
    assert f"pattern `{EMAIL}`" in message  # the value a server's regex engine choked on
    assert "model 'gpt-4o-mini'" in message
    assert re.search(r"max_tokens \d+", message)
    assert "drop that constraint from the model" in message
    assert KEY not in message and KEY[:12] not in message
    assert "after 3 tries" in message


def test_a_server_that_crashes_on_the_request_is_not_reported_as_unreachable(
    tmp_path: Path,
) -> None:
    with FakeLLM() as server:  # its own server: the crash stops it listening
        url = server.url
        server.enqueue("crash")
        error = _generate(url, tmp_path, structured="json_schema")
        assert server.chat_requests[0].fault is not None
    message = str(error)
    _assert_names_the_request(message)
    # the first try was accepted and dropped; the tries after it found nobody listening
    assert f"then this request could not reach {url}" in message
    assert "went away while answering a request that carried" in message
    assert "structured='json_schema'" in message
    assert error.transient and error.tries == 3


def test_a_process_that_dies_on_a_pattern_holding_an_escaped_dot(tmp_path: Path) -> None:
    # as llama-cpp-python 0.3 does: the request is read, then the process is gone
    with FakeLLMProcess(crash_on_pattern="\\.") as proc:
        error = _generate(proc.url, tmp_path, structured="json_schema")
        assert proc.proc.wait(timeout=10) != 0  # it did die, on the first request
    message = str(error)
    _assert_names_the_request(message)
    assert "went away while answering a request that carried" in message


class LooseContact(BaseModel):
    name: str = Field(min_length=2)
    email: str


def test_the_model_without_the_pattern_is_answered(tmp_path: Path) -> None:
    # the workaround the message gives: the same server answers once the pattern is gone
    with FakeLLMProcess(crash_on_pattern="\\.") as proc:
        client = openai.OpenAI(base_url=proc.url, api_key=KEY, max_retries=0)
        contacts = generate(LooseContact, 3, client=client, cache_dir=tmp_path / "c")
        assert len(contacts) == 3 and proc.proc.poll() is None
        # and the pattern alone, in any structured mode, is what it dies on
        with pytest.raises(SynthAPIError, match="went away while answering"):
            generate(
                Contact,
                3,
                client=client,
                structured="json_object",
                http_retries=1,
                cache_dir=tmp_path / "c",
            )
        assert proc.proc.wait(timeout=10) != 0


def test_every_try_dropped_after_it_was_sent(llm: FakeLLM, tmp_path: Path) -> None:
    llm.always("reset")  # the request is read, then the connection is reset: no answer
    error = _generate(llm.url, tmp_path, structured="json_schema")
    message = str(error)
    _assert_names_the_request(message)
    assert "closed the connection without a full answer" in message
    assert "went away while answering this request (try 1 of 3)" in message
    assert "could not reach" not in message
    dropped = len(llm.chat_requests)
    # retried as any transient failure is: as many requests as a server that answers 503
    llm.reset()
    llm.retry_after_ms = None
    llm.always("503")
    assert "HTTP 503" in str(_generate(llm.url, tmp_path, structured="json_schema"))
    assert dropped == len(llm.chat_requests) >= 3


def test_a_server_back_after_a_crash_is_not_blamed_for_it_later(tmp_path: Path) -> None:
    with FakeLLM() as server:
        url = server.url
        server.enqueue("crash")
        assert "went away while answering" in str(
            _generate(url, tmp_path, structured="json_schema")
        )
        time.sleep(0.2)  # the crash stops the server from a thread of its own
        server.start()  # back on the same port, and answering
        client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0)
        assert len(generate(Contact, 2, client=client, structured="json_schema")) == 2
    # gone again, without a crash this time: nobody listens
    message = str(_generate(url, tmp_path, structured="json_schema"))
    assert f"could not reach {url}" in message
    assert "went away" not in message and "may have crashed" not in message


def test_a_server_never_reached_is_still_reported_as_unreachable(tmp_path: Path) -> None:
    message = str(_generate("http://127.0.0.1:9/v1", tmp_path))
    assert "could not reach http://127.0.0.1:9/v1" in message
    assert "went away" not in message and "the request carried" not in message


TEST_FILE = f"""
import pytest
from pydantic import BaseModel, Field


class Contact(BaseModel):
    name: str = Field(min_length=2)
    email: str = Field(pattern={EMAIL!r})


@pytest.mark.synth(Contact, n=3)
def test_contacts(synth_data):
    assert len(synth_data) == 3
"""


def test_a_pytest_run_against_a_server_that_dies_says_so(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_contacts=TEST_FILE)
    with FakeLLMProcess(crash_on_pattern="\\.") as proc:
        monkeypatch.setenv("OPENAI_BASE_URL", proc.url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        result = pytester.runpytest("--synth-http-retries=1")
    text = result.stdout.str()
    assert result.ret != 0
    assert "the server went away while answering a request that carried model 'gpt-4o-mini'" in text
    assert f"pattern `{EMAIL}`" in text
    assert "drop that constraint from the model" in text
    assert KEY not in text and KEY[:12] not in text


def test_no_secret_in_the_report_of_a_dropped_connection(llm: FakeLLM, tmp_path: Path) -> None:
    llm.always("reset")
    url = llm.url.replace("http://", "http://user:pw-secret-42@")
    message = str(_generate(url, tmp_path, structured="json_schema"))
    assert "closed the connection without a full answer" in message
    assert f"pattern `{EMAIL}`" in message  # masking leaves the schema's own text alone
    for secret in ("pw-secret-42", KEY):
        assert secret not in message
