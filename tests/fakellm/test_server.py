"""The loopback FakeLLM server, exercised through the real ``openai`` SDK: its switches (modes
it refuses, seeds, streaming, Azure paths, usage, gzip) and its bookkeeping (unknown paths,
recorded requests, requests in flight, reset, the fixtures)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from fakellm import (
    FakeLLM,
)
from fakellm.helpers import (
    PERSON_SCHEMA,
    ask,
    chat,
    json_schema_format,
    raw_chat,
    records_of,
    tool_args,
    user,
)

# --------------------------------------------------------------------------------------------
# Switches
# --------------------------------------------------------------------------------------------


def test_unsupported_modes(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.supported_modes = {"tools"}
    with pytest.raises(openai.BadRequestError) as info:
        ask(client)
    assert info.value.status_code == 400
    assert "response_format type 'json_schema' is not supported by this server" in str(info.value)

    llm.supported_modes = {"json_schema"}
    with pytest.raises(openai.BadRequestError, match="tools are not supported by this server"):
        chat(
            client,
            model="m",
            messages=user("exactly 2 records"),
            **tool_args(PERSON_SCHEMA),
        )

    llm.unsupported_status = 500
    with pytest.raises(openai.InternalServerError, match="json_object' is not supported"):
        chat(
            client,
            model="m",
            messages=user("exactly 2 records"),
            response_format={"type": "json_object", "schema": PERSON_SCHEMA},
        )
    assert records_of(ask(client).choices[0].message.content)


def test_reject_seed(client: openai.OpenAI, llm: FakeLLM) -> None:
    assert records_of(ask(client, seed=7).choices[0].message.content)
    llm.reject_seed = True
    with pytest.raises(
        openai.BadRequestError, match="Unrecognized request argument supplied: seed"
    ):
        ask(client, seed=7)
    assert records_of(ask(client).choices[0].message.content)


def test_streaming_is_rejected(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="stream"):
        chat(client, model="m", messages=user("hi"), stream=True)


def test_azure_deployment_path(llm: FakeLLM) -> None:
    azure = openai.AzureOpenAI(
        azure_endpoint=llm.origin, api_key="azure-key", api_version="2024-06-01", max_retries=0
    )
    try:
        resp = ask(azure, "Generate exactly 2 records.")
    finally:
        azure.close()
    assert len(records_of(resp.choices[0].message.content)) == 2
    req = llm.last_request
    assert req.path == "/openai/deployments/fake-model/chat/completions"
    assert req.query == {"api-version": "2024-06-01"}
    assert req.headers["api-key"] == "azure-key"
    assert resp.model == "fake-model"


def test_usage_is_reported_and_accumulated(client: openai.OpenAI, llm: FakeLLM) -> None:
    messages = [{"role": "system", "content": "x" * 40}, {"role": "user", "content": "y" * 21}]
    resp = chat(client, model="m", messages=messages)
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == 61 // 4
    assert resp.usage.completion_tokens == 1  # "ok" is 2 characters
    assert resp.usage.total_tokens == 16

    resp2 = ask(client, "Generate exactly 3 records.")
    assert resp2.usage is not None
    content = resp2.choices[0].message.content or ""
    assert resp2.usage.completion_tokens == len(content) // 4
    assert llm.prompt_tokens == 15 + resp2.usage.prompt_tokens
    assert llm.completion_tokens == 1 + resp2.usage.completion_tokens
    assert llm.total_tokens == llm.prompt_tokens + llm.completion_tokens

    llm.enqueue("500")
    with pytest.raises(openai.InternalServerError):
        ask(client)
    assert llm.completion_tokens == 1 + resp2.usage.completion_tokens


def test_omit_usage(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.omit_usage = True
    resp = ask(client)
    assert resp.usage is None
    assert "usage" not in llm.last_request.response
    assert llm.prompt_tokens == llm.completion_tokens == 0


def test_extra_response_fields(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.extra_response_fields = {"system_fingerprint": "fp_x", "service_tier": "default"}
    resp = ask(client)
    assert resp.system_fingerprint == "fp_x"
    assert resp.service_tier == "default"


def test_gzip(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.gzip = True
    raw = raw_chat(
        client,
        model="m",
        messages=user("exactly 2 records"),
        response_format=json_schema_format(PERSON_SCHEMA),
    )
    assert raw.headers["content-encoding"] == "gzip"
    assert len(records_of(raw.parse().choices[0].message.content)) == 2

    plain = raw_chat(
        client,
        model="m",
        messages=user("hi"),
        extra_headers={"Accept-Encoding": "identity"},
    )
    assert "content-encoding" not in plain.headers
    assert plain.parse().choices[0].message.content == "ok"


# --------------------------------------------------------------------------------------------
# Bookkeeping
# --------------------------------------------------------------------------------------------


def test_unknown_paths_are_404(client: openai.OpenAI, llm: FakeLLM) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.embeddings.create(model="m", input="hi")  # /v1/models is answered
    assert isinstance(info.value.body, dict)
    assert info.value.body["type"] == "invalid_request_error"
    assert set(info.value.body) == {"message", "type", "param", "code"}
    assert llm.request_count == 1
    assert llm.chat_requests == []


def test_requests_are_recorded(client: openai.OpenAI, llm: FakeLLM) -> None:
    ask(client, "Generate exactly 2 records.", temperature=0.5)
    assert llm.request_count == 1
    req = llm.requests[0]
    assert req.path == "/v1/chat/completions"
    assert req["path"] == req.path
    assert req.method == "POST"
    assert req.headers["authorization"] == "Bearer sk-test"
    assert all(name == name.lower() for name in req.headers)
    assert req.body["model"] == "fake-model"
    assert req.body["temperature"] == 0.5
    assert req.messages[-1] == {"role": "user", "content": "Generate exactly 2 records."}
    assert req.status == 200
    assert req.response["object"] == "chat.completion"


def test_max_in_flight(llm: FakeLLM) -> None:
    llm.response_delay = 0.2
    with (
        openai.OpenAI(base_url=llm.url, api_key="k", max_retries=0) as c,
        ThreadPoolExecutor(max_workers=4) as pool,
    ):
        results = list(pool.map(lambda i: ask(c, f"exactly 1 record, #{i}"), range(4)))
    assert len(results) == 4
    assert 2 <= llm.max_in_flight <= 4
    assert llm.request_count == 4


def test_reset_restores_defaults(llm: FakeLLM, client: openai.OpenAI) -> None:
    ask(client)
    llm.supported_modes.discard("tools")
    llm.unsupported_status = 500
    llm.reject_seed = True
    llm.timeout_delay = 0.1
    llm.gzip = llm.omit_usage = True
    llm.extra_response_fields["x"] = 1
    llm.enqueue("429")
    llm.always("refusal")
    llm.reset()
    assert llm.requests == [] and llm.request_count == 0
    assert llm.prompt_tokens == llm.completion_tokens == llm.max_in_flight == 0
    assert llm.supported_modes == {"json_schema", "json_object", "tools"}
    assert llm.unsupported_status == 400
    assert not (llm.reject_seed or llm.gzip or llm.omit_usage)
    assert llm.timeout_delay == 3.0
    assert llm.extra_response_fields == {}
    assert llm.pending_faults == []
    assert ask(client).choices[0].message.content


def test_llm_env_fixture(llm_env: FakeLLM) -> None:
    with openai.OpenAI(max_retries=0) as c:
        assert str(c.base_url).rstrip("/") == llm_env.url
        assert c.api_key == "sk-test-fake-key-0123456789"
        assert ask(c).choices[0].message.content


def test_standalone_server_lifecycle() -> None:
    with (
        FakeLLM() as server,
        openai.OpenAI(base_url=server.url, api_key="k", max_retries=0) as c,
    ):
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/v1")
        assert server.azure_endpoint == server.origin == server.url.removesuffix("/v1")
        assert ask(c).choices[0].message.content
        server.stop()
        assert not server.running
        with pytest.raises(openai.APIConnectionError):
            ask(c)  # its kept-alive connection was closed too
