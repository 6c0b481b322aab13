"""The one module that talks to the openai SDK: client, structured-output modes, errors.

Modes, in the order ``structured="auto"`` tries them:

* ``json_schema``: ``response_format={"type": "json_schema", ..., "strict": true}``
* ``json_object``: ``response_format={"type": "json_object", "schema": ...}`` with the schema
  also written into the prompt (servers such as llama.cpp enforce the ``schema`` key)
* ``tools``: one forced function call whose ``parameters`` are the schema

A server that rejects a mode (a 4xx, or a 5xx whose message names the unsupported feature)
makes ``auto`` move down the ladder once, with a warning; the mode that worked is remembered
per endpoint for the rest of the process. An explicitly chosen mode never changes.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import warnings
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import openai

from .errors import UNSUPPORTED_HINTS, SynthAPIError, SynthConfigError, SynthError
from .settings import Settings
from .storage.exchange import CURRENT, Exchange
from .usage import Usage

if TYPE_CHECKING:
    from .storage.recorder import Recording

LADDER: tuple[str, ...] = ("json_schema", "json_object", "tools")
MISSING_KEY = "sk-synthdata-no-key-set"


class SynthDataWarning(UserWarning):
    """Something was adjusted automatically (a structured-output mode, a dropped parameter)."""


@dataclass(frozen=True)
class Completion:
    """What came back from one chat-completion call, whatever the mode."""

    text: str | None
    finish_reason: str | None
    refusal: str | None
    prompt_tokens: int
    completion_tokens: int
    no_choices: bool = False
    exchange: Exchange | None = field(default=None, compare=False, repr=False)

    def count_in(self, usage: Usage, *, retry: bool) -> None:
        """Add this request to ``usage``."""
        usage.requests += 1
        usage.prompt_tokens += self.prompt_tokens
        usage.completion_tokens += self.completion_tokens
        usage.retries += int(retry)
        usage.cache_hits += int(self.exchange is not None and self.exchange.source == "cached")


@dataclass
class _EndpointState:
    mode: str | None = None
    send_seed: bool = True


_STATE: dict[str, _EndpointState] = {}
_STATE_LOCK = threading.Lock()

LOOP_OF_ITS_OWN: ContextVar[bool] = ContextVar("synthdata_loop_of_its_own", default=False)
"""Set while a blocking call runs its own event loop, which ends with the call."""


def forget_endpoints() -> None:
    """Forget which modes endpoints accepted (tests and long-lived processes)."""
    with _STATE_LOCK:
        _STATE.clear()


class _Unsupported(Exception):
    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what


class LLM:
    """Sends structured chat-completion requests under one :class:`Settings`."""

    def __init__(
        self,
        settings: Settings,
        client: object | None = None,
        *,
        recording: Recording | None = None,
    ) -> None:
        self.settings = settings
        self.recording = recording
        self._owns_client = client is None
        if client is None:
            http_client = None
            retries = settings.http_retries
            if recording is not None:
                import httpx2

                http_client = httpx2.AsyncClient(transport=recording.async_transport())
                if recording.replay_only:
                    retries = 0
            client = openai.AsyncOpenAI(
                api_key=os.environ.get("OPENAI_API_KEY") or MISSING_KEY,
                base_url=settings.base_url or os.environ.get("OPENAI_BASE_URL") or None,
                timeout=settings.timeout,
                max_retries=retries,
                http_client=http_client,
            )
        elif not isinstance(client, (openai.OpenAI, openai.AsyncOpenAI)):
            raise SynthConfigError(
                f"client must be an openai.OpenAI or openai.AsyncOpenAI instance (AzureOpenAI "
                f"works too), got {type(client).__name__}"
            )
        elif isinstance(client, openai.AsyncOpenAI) and LOOP_OF_ITS_OWN.get() and recording is None:
            # The caller's async client, from a blocking call: its pool would keep connections
            # of an event loop that ends with this call and break the caller's next use. The
            # same client on a pool of its own, closed before the loop ends.
            import httpx2

            self._owns_client = True
            client = client.copy(http_client=httpx2.AsyncClient())
        elif recording is not None:
            # The same client, with the cassette and cache in front of its connection pool.
            import httpx2

            self._owns_client = True
            retries = 0 if recording.replay_only else client.max_retries
            if isinstance(client, openai.AsyncOpenAI):
                async_pool = httpx2.AsyncClient(transport=recording.async_transport())
                client = client.copy(http_client=async_pool, max_retries=retries)
            else:
                sync_pool = httpx2.Client(transport=recording.sync_transport())
                client = client.copy(http_client=sync_pool, max_retries=retries)
        self.client: openai.OpenAI | openai.AsyncOpenAI = client
        self.endpoint = str(client.base_url)
        with _STATE_LOCK:
            self._shared = _STATE.setdefault(self.endpoint, _EndpointState())
        self._state = self._shared
        if recording is not None:
            start = recording.start_state(asdict(self._shared))
            try:
                self._state = _EndpointState(**start)
            except TypeError:
                self._state = _EndpointState(**asdict(self._shared))

    async def aclose(self) -> None:
        """Close the client if this object created it."""
        if not self._owns_client:
            return
        if isinstance(self.client, openai.AsyncOpenAI):
            await self.client.close()
        else:
            self.client.close()

    def confirm(self, completion: Completion) -> None:
        """The engine found this completion fully valid: it may be cached."""
        if self.recording is not None:
            from .storage.transport import confirm

            confirm(completion.exchange, self.recording.cache)

    @property
    def mode(self) -> str:
        if self.settings.structured != "auto":
            return self.settings.structured
        return self._state.mode or LADDER[0]

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        name: str,
        schema: dict[str, Any],
        seed: int | None = None,
        count: int | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        """One structured request; moves down the mode ladder if the server rejects a mode.

        ``count`` (the number of array items wanted) is written into the schema as
        ``minItems``/``maxItems`` in the json_object and tools modes, where servers such as
        llama.cpp turn the schema into a grammar, so small models cannot answer with an empty
        or endless array. ``max_tokens`` lowers the output limit for this request.
        """
        while True:
            mode = self.mode
            request = self._request(mode, messages, name, schema, seed, count)
            if max_tokens is not None:
                request["max_tokens"] = min(max_tokens, self.settings.max_tokens)
            try:
                return await self._call(request, mode)
            except _Unsupported as exc:
                self._adjust(exc, mode)

    async def complete_text(
        self, messages: list[dict[str, str]], seed: int | None = None
    ) -> Completion:
        """One plain-text request (no structured output)."""
        while True:
            request = self._base_request(messages, seed)
            try:
                return await self._call(request, "text")
            except _Unsupported as exc:
                self._adjust(exc, "text")

    def _adjust(self, exc: _Unsupported, mode: str) -> None:
        reason = _first_line(str(exc))
        if exc.what == "seed" and self._state.send_seed:
            self._state.send_seed = False
            self._shared.send_seed = False
            warnings.warn(
                SynthDataWarning(
                    f"{self.endpoint} rejected the 'seed' parameter ({reason}); sending requests "
                    "without it from now on"
                ),
                stacklevel=2,
            )
            return
        if exc.what == "mode" and self.settings.structured == "auto" and mode in LADDER:
            index = LADDER.index(mode)
            if index + 1 < len(LADDER):
                if self._state.mode in (None, mode):
                    self._state.mode = LADDER[index + 1]
                    self._shared.mode = LADDER[index + 1]
                    warnings.warn(
                        SynthDataWarning(
                            f"{self.endpoint} does not support structured mode {mode!r} "
                            f"({reason}); using {LADDER[index + 1]!r} from now on. Set structured="
                            f"{LADDER[index + 1]!r} (--synth-structured) to skip this probe."
                        ),
                        stacklevel=2,
                    )
                return
        hint = (
            "try another structured mode (json_schema, json_object, tools) or structured='auto'"
            if exc.what == "mode"
            else "check the endpoint"
        )
        raise SynthAPIError(f"{self.endpoint} rejected the request: {reason}; {hint}") from None

    def _base_request(self, messages: list[dict[str, str]], seed: int | None) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.settings.model,
            "messages": messages,
            "max_tokens": self.settings.max_tokens,
        }
        if self.settings.temperature is not None:
            request["temperature"] = self.settings.temperature
        if seed is not None and self._state.send_seed:
            request["seed"] = seed
        return request

    def _request(
        self,
        mode: str,
        messages: list[dict[str, str]],
        name: str,
        schema: dict[str, Any],
        seed: int | None,
        count: int | None = None,
    ) -> dict[str, Any]:
        if count is not None and mode in ("json_object", "tools"):
            schema = _with_count(schema, count)
        if mode == "json_object":
            note = "The answer must match this JSON schema: " + json.dumps(
                schema, separators=(",", ":")
            )
            messages = [*messages[:1], {"role": "system", "content": note}, *messages[1:]]
        request = self._base_request(messages, seed)
        if mode == "json_schema":
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            }
        elif mode == "json_object":
            request["response_format"] = {"type": "json_object", "schema": schema}
        else:
            request["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": name,
                        "description": "Return the requested records.",
                        "parameters": schema,
                        "strict": True,
                    },
                }
            ]
            request["tool_choice"] = {"type": "function", "function": {"name": name}}
        return request

    async def _call(self, request: dict[str, Any], mode: str) -> Completion:
        """One request. A transient failure the SDK could not get past (its retries spent)
        is tried again, up to ``max_retries`` more times, before it becomes the error."""
        for attempt in range(self.settings.max_retries + 1):
            try:
                return await self._call_once(request, mode)
            except SynthAPIError as exc:
                if not exc.transient or attempt == self.settings.max_retries:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call_once(self, request: dict[str, Any], mode: str) -> Completion:
        exchange = Exchange()
        token = CURRENT.set(exchange)
        try:
            if isinstance(self.client, openai.AsyncOpenAI):
                response: Any = await self.client.chat.completions.create(**request)
            else:
                sync_create: Any = self.client.chat.completions.create
                response = await asyncio.to_thread(sync_create, **request)
        except openai.APIStatusError as exc:
            raise self._status_error(exc, request, mode) from None
        except openai.APITimeoutError:
            raise SynthAPIError(
                f"{self.endpoint} did not answer within {self.settings.timeout}s "
                f"(after {self.settings.http_retries} retries); raise the timeout "
                "(--synth-timeout) or lower the batch size",
                transient=True,
            ) from None
        except openai.APIConnectionError as exc:
            if isinstance(exc.__cause__, SynthError):
                raise exc.__cause__ from None
            raise SynthAPIError(
                f"could not reach {self.endpoint} ({exc.__cause__ or exc}); check "
                "OPENAI_BASE_URL / --synth-base-url, or replay from a cassette",
                transient=True,
            ) from None
        finally:
            CURRENT.reset(token)
        return _to_completion(response, mode, exchange)

    def _status_error(
        self, exc: openai.APIStatusError, request: dict[str, Any], mode: str
    ) -> Exception:
        message = _error_message(exc)
        lowered = message.lower()
        status = exc.status_code
        if status in (400, 404, 405, 415, 422, 500, 501) and lowered:
            if "seed" in lowered and "seed" in request and self._state.send_seed:
                return _Unsupported("seed", message)
            names_mode = any(hint in lowered for hint in UNSUPPORTED_HINTS)
            missing_model = status == 404 and "model" in lowered
            if mode in LADDER and names_mode and not missing_model:
                return _Unsupported("mode", message)
        advice = {
            401: "set OPENAI_API_KEY to a valid key (or replay from a cassette)",
            403: "the key is not allowed to use this model or endpoint",
            404: f"check the model name ({self.settings.model!r}) and the base URL",
            429: "rate limited even after retries; lower concurrency (--synth-concurrency) or "
            "raise http_retries",
        }.get(status, "the endpoint failed even after retries; try again or check the server")
        return SynthAPIError(
            f"{self.endpoint} answered HTTP {status}: {message or exc.message}; {advice}",
            status_code=status,
            body=exc.body,
            transient=status in (408, 409, 429) or status >= 500,
        )


def _first_line(text: str, limit: int = 300) -> str:
    """A server's error message, shortened for a warning (some include a traceback)."""
    line = " ".join(text.strip().splitlines()[:2]) if text.strip() else "no message"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _with_count(schema: dict[str, Any], count: int) -> dict[str, Any]:
    """The wrapper schema with its array bounded to exactly ``count`` items."""
    properties = {
        key: {**value, "minItems": count, "maxItems": count}
        if isinstance(value, dict) and value.get("type") == "array"
        else value
        for key, value in schema.get("properties", {}).items()
    }
    return {**schema, "properties": properties}


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(exc.message or "")


def _to_completion(response: Any, mode: str, exchange: Exchange) -> Completion:
    usage = getattr(response, "usage", None)
    prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
    choices = getattr(response, "choices", None) or []
    if not choices:
        return Completion(
            None, None, None, prompt_tokens, completion_tokens, no_choices=True, exchange=exchange
        )
    choice = choices[0]
    message = choice.message
    text: str | None = message.content
    if mode == "tools":
        calls = getattr(message, "tool_calls", None) or []
        if calls:
            text = calls[0].function.arguments
    return Completion(
        text=text,
        finish_reason=choice.finish_reason,
        refusal=getattr(message, "refusal", None),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        exchange=exchange,
    )
