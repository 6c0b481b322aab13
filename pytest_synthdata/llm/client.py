"""The client that talks to the openai SDK: requests, the mode ladder, errors.

The structured-output modes themselves live in :mod:`pytest_synthdata.llm.modes`.
A server that rejects a mode (a 4xx, or a 5xx whose message names the unsupported feature)
makes ``auto`` move down the ladder once, with a warning; the mode that worked is remembered
per endpoint for the rest of the process. An explicitly chosen mode never changes.

A server that rejects the validation keywords of the schema (``minimum``, ``pattern``,
``format`` ...: a 4xx or 5xx whose message names one the request carries) gets the same
request again with those keywords moved into the field descriptions
(:func:`~pytest_synthdata.schema.relaxed_schema`), after one warning, and so does every later
request to that endpoint. Both choices are part of the endpoint profile a cassette records.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import httpx2
import openai

from ..errors import (
    UNSUPPORTED_HINTS,
    SynthAPIError,
    SynthError,
    names_constraint,
    option,
    warn,
)
from ..schema import enforced_keywords, relaxed_schema, with_lengths
from ..settings import Settings
from ..storage.bounded import body_cap, bound_client, done, expecting
from ..storage.exchange import CURRENT, Exchange
from ..storage.logmask import install_masking, masking
from ..storage.secrets import REGISTRY, redact
from ..usage import Usage
from .answers import (
    DROPPED,
    RawAnswer,
    after_tries,
    aread_capped,
    carried,
    connection_error,
    error_message,
    parsed,
    read_capped,
)
from .modes import (
    AUTO,
    MODES,
    Mode,
    bound_count,
    ladder,
    next_mode,
    read_content,
    sent_schema,
)
from .pacing import (
    MAX_TIMEOUTS,
    MAX_WAIT,
    asked_wait,
    backoff,
    forget_limits,
    limiter_for,
    reservation,
    retry_after,
)
from .wiring import wired_client

if TYPE_CHECKING:
    from ..storage.recorder import Recording


@dataclass(frozen=True, repr=False)
class Completion:
    """What came back from one chat-completion call, whatever the mode. Its ``repr`` (what a
    traceback with ``-l`` shows) masks every secret the answer may echo."""

    text: str | None
    finish_reason: str | None
    refusal: str | None
    prompt_tokens: int
    completion_tokens: int
    no_choices: bool = False
    exchange: Exchange | None = field(default=None, compare=False, repr=False)
    headers: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    tries: int = field(default=1, compare=False)
    """Tries it took: more than one after a 429, a 5xx or another transient failure."""
    usage_known: bool = field(default=True, compare=False)
    """False when the endpoint's usage values were not token counts (then both are 0)."""

    def __repr__(self) -> str:
        return redact(
            f"Completion(text={self.text!r}, finish_reason={self.finish_reason!r}, "
            f"refusal={self.refusal!r}, prompt_tokens={self.prompt_tokens}, "
            f"completion_tokens={self.completion_tokens})"
        )

    def count_in(self, usage: Usage, *, retry: bool) -> None:
        """Add this request to ``usage``."""
        usage.requests += 1
        usage.unknown_usage += int(not self.usage_known)
        usage.prompt_tokens += self.prompt_tokens
        usage.completion_tokens += self.completion_tokens
        usage.retries += int(retry)
        usage.cache_hits += int(self.exchange is not None and self.exchange.source == "cached")


@dataclass
class _EndpointProfile:
    mode: str | None = None
    send_seed: bool = True
    schema_constraints: bool = True
    """Whether the schema carries the validation keywords, or only its descriptions do."""


_PROFILES: dict[str, _EndpointProfile] = {}
_PROFILES_LOCK = threading.Lock()


def forget_endpoints() -> None:
    """Forget what endpoints accepted and their rate limits (tests, long-lived processes)."""
    with _PROFILES_LOCK:
        _PROFILES.clear()
    forget_limits()


class _Unsupported(Exception):
    """The endpoint rejected a feature of the request: ``what`` is ``seed``, ``mode`` or
    ``constraints``."""

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
        self._replay_only = recording is not None and recording.replay_only
        client, self._owns_client = wired_client(settings, client, recording)
        self.client: openai.OpenAI | openai.AsyncOpenAI = client
        REGISTRY.add_client(client)
        bound_client(getattr(client, "_client", None))  # error bodies stop at the cap too
        install_masking()
        self.endpoint = redact(str(client.base_url))  # in messages and warnings too
        with _PROFILES_LOCK:
            self._shared = _PROFILES.setdefault(self.endpoint, _EndpointProfile())
        self._profile = self._shared
        if recording is not None:
            start = recording.start_profile(asdict(self._shared))
            try:
                self._profile = _EndpointProfile(**start)
            except TypeError:
                self._profile = _EndpointProfile(**asdict(self._shared))

    async def aclose(self) -> None:
        """Close the client if this object created it."""
        if not self._owns_client:
            return
        if isinstance(self.client, openai.AsyncOpenAI):
            await self.client.close()
        else:
            self.client.close()

    def settle(self, completion: Completion, *, valid: bool) -> None:
        """The batch loop has judged this completion: cache it if it was fully valid, and
        free its request for other processes either way."""
        if self.recording is not None:
            from ..storage.transport import settle

            settle(completion.exchange, self.recording.cache, valid=valid)

    @property
    def mode(self) -> str:
        """The structured-output mode the next request uses."""
        if self.settings.structured != AUTO:
            return self.settings.structured
        remembered = self._profile.mode
        return remembered if remembered in MODES else ladder()[0]

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        name: str,
        schema: dict[str, Any],
        seed: int | None = None,
        count: int | None = None,
        max_tokens: int | None = None,
        shrinkable: bool = False,
    ) -> Completion:
        """One structured request; moves down the mode ladder if the server rejects a mode.

        ``count`` (the number of array items wanted) is written into the schema as
        ``minItems``/``maxItems`` by the modes that bound the count (see
        :mod:`~pytest_synthdata.llm.modes`), where servers such as llama.cpp turn the schema
        into a grammar, so small models cannot answer with an empty or endless array.
        ``max_tokens`` lowers the output limit for this request. ``shrinkable``: a time-out
        ends it at once, uncounted towards an unresponsive endpoint (the caller asks for less).
        """
        while True:
            mode = MODES[self.mode]
            wire, bound = schema, count
            if not self._profile.schema_constraints:
                if count is not None and mode.bounds_count:
                    wire = bound_count(wire, count)
                wire, bound = relaxed_schema(wire), None  # the count too, in a description
            elif mode.lengths:
                wire = with_lengths(wire)
            request = self._structured_request(mode, messages, name, wire, seed, bound)
            if max_tokens is not None:
                request["max_tokens"] = min(max_tokens, self.settings.max_tokens)
            sent = sent_schema(request)
            keywords = enforced_keywords(sent) if sent is not None else []
            try:
                return await self._call(request, mode, keywords, shrinkable)
            except _Unsupported as exc:
                self._adjust(exc, mode)

    async def complete_text(
        self, messages: list[dict[str, str]], seed: int | None = None
    ) -> Completion:
        """One plain-text request (no structured output)."""
        while True:
            request = self._base_request(messages, seed)
            try:
                return await self._call(request, None, [], False)
            except _Unsupported as exc:
                self._adjust(exc, None)

    def _adjust(self, exc: _Unsupported, mode: Mode | None) -> None:
        """Drop the seed, or move ``auto`` one step down the ladder, or raise the error."""
        reason = _first_line(str(exc))
        if exc.what == "constraints":
            if self._profile.schema_constraints:  # else a request sent at the same time did
                self._profile.schema_constraints = False
                self._shared.schema_constraints = False
                warn(
                    f"{self.endpoint} rejected validation keywords of the JSON schema "
                    f"({reason}); sending them in the field descriptions from now on "
                    "(every record is still validated by the model)"
                )
            return
        if exc.what == "seed" and self._profile.send_seed:
            self._profile.send_seed = False
            self._shared.send_seed = False
            warn(
                f"{self.endpoint} rejected the 'seed' parameter ({reason}); sending requests "
                "without it from now on"
            )
            return
        if exc.what == "mode" and self.settings.structured == AUTO and mode is not None:
            following = next_mode(mode.name)
            if following is not None:
                if self._profile.mode in (None, mode.name):
                    self._profile.mode = following
                    self._shared.mode = following
                    warn(
                        f"{self.endpoint} does not support structured mode {mode.name!r} "
                        f"({reason}); using {following!r} from now on. Set "
                        + option(
                            "structured",
                            following,
                            otherwise=f"structured={following!r} (--synth-structured)",
                        )
                        + " to skip this probe."
                    )
                return
        hint = (
            f"try another structured mode ({', '.join(ladder())}) or structured={AUTO!r}"
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
        if seed is not None and self._profile.send_seed:
            request["seed"] = seed
        return request

    def _structured_request(
        self,
        mode: Mode,
        messages: list[dict[str, str]],
        name: str,
        schema: dict[str, Any],
        seed: int | None,
        count: int | None = None,
    ) -> dict[str, Any]:
        structured = mode.request(messages, name, schema, count)
        request = self._base_request(structured.messages, seed)
        request.update(structured.params)
        return request

    async def _call(
        self, request: dict[str, Any], mode: Mode | None, keywords: list[str], shrink: bool
    ) -> Completion:
        """One request, tried again after a transient failure as :mod:`.pacing` says, under
        the endpoint's rate limits. Raises the last failure, saying how many tries it took.
        ``keywords``: the validation keywords the request's schema carries."""
        limiter = limiter_for(self.endpoint)
        tries = 1 if self._replay_only else 1 + self.settings.http_retries
        cost = reservation(request)  # what the endpoint counts against its tokens per minute
        with masking():  # log records of the HTTP stack, openai and vcrpy show no secret
            return await self._tries(request, mode, keywords or [], limiter, (tries, cost), shrink)

    async def _tries(
        self,
        request: dict[str, Any],
        mode: Mode | None,
        keywords: list[str],
        limiter: Any,
        budget: tuple[int, int],
        shrink: bool,
    ) -> Completion:
        """Up to ``tries`` tries of ``cost`` reserved tokens each (``budget``); with
        ``shrink``, a time-out ends them at once (the caller asks for fewer records)."""
        tries, cost = budget
        timeouts, dropped_at = 0, None
        for attempt in range(tries):
            if limiter.unresponsive and not self._replay_only:
                raise SynthAPIError(
                    f"{self.endpoint} stopped answering: its last {limiter.timeouts_in_row} "
                    f"tries each ran past the {self.settings.timeout}s deadline, so no more "
                    "requests are sent to it in this run; check the server, or raise the "
                    f"timeout ({option('timeout')}) if the model needs longer"
                )
            ticket = await limiter.acquire(cost)
            started = time.monotonic()
            try:
                completion = await self._call_once(request, mode, keywords)
            except SynthAPIError as exc:
                smaller = shrink and exc.timed_out  # the caller asks for fewer records
                limiter.release(
                    ticket,
                    throttled=exc.status_code == 429,
                    headers=exc.headers,
                    timed_out=None if smaller else exc.timed_out,
                    cost=cost,
                )
                timeouts += int(exc.timed_out)
                sent = carried(request, mode.name if mode else None, keywords)
                if exc.dropped and dropped_at is None:
                    dropped_at = attempt + 1  # the server went away while answering it
                    limiter.went_away = limiter.went_away or sent
                last = attempt + 1 == tries or timeouts >= MAX_TIMEOUTS or smaller
                exc = _beyond_waiting(exc)
                if not exc.transient or last:
                    raise after_tries(
                        exc, attempt + 1, dropped_at, sent, limiter.went_away
                    ) from None
                await asyncio.sleep(retry_after(exc.headers) or backoff(attempt))
                continue
            except BaseException:
                limiter.release(ticket, throttled=False)
                raise
            fits = self.settings.timeout / max(time.monotonic() - started, 1e-3)
            limiter.release(ticket, throttled=False, headers=completion.headers, fits=fits)
            limiter.went_away = None  # it answers again: a later failure is not that crash
            return dataclasses.replace(completion, tries=attempt + 1) if attempt else completion
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call_once(
        self, request: dict[str, Any], mode: Mode | None, keywords: list[str]
    ) -> Completion:
        """One try, with a deadline over the whole request (not each read)."""
        exchange = Exchange()
        token = CURRENT.set(exchange)
        answered = False
        try:
            raw = await self._send(request)
            response, usage = parsed(raw, self.endpoint)
            answered = True
        except (asyncio.TimeoutError, openai.APITimeoutError):
            raise SynthAPIError(
                f"{self.endpoint} did not finish answering within {self.settings.timeout}s",
                transient=True,
                timed_out=True,
            ) from None
        except openai.APIStatusError as exc:
            raise self._status_error(exc, request, mode, keywords) from None
        except openai.APIConnectionError as exc:
            if isinstance(exc.__cause__, SynthError):
                raise exc.__cause__ from None
            raise connection_error(self.endpoint, exc.__cause__ or exc) from None
        except httpx2.HTTPError as exc:  # the body broke off while it was read
            raise SynthAPIError(
                f"{self.endpoint} broke off its answer ({exc or type(exc).__name__})",
                transient=True,
                dropped=isinstance(exc, DROPPED),
            ) from None
        finally:
            CURRENT.reset(token)
            if not answered:
                exchange.release()  # no answer to judge: other processes may try it
        return _to_completion(response, usage, mode, exchange, raw.headers)

    async def _send(self, request: dict[str, Any]) -> RawAnswer:
        """The raw answer to ``request``, within the deadline, its body read up to the cap
        that follows from its ``max_tokens`` (see :mod:`.answers`)."""
        timeout = self.settings.timeout
        cap = body_cap(request.get("max_tokens"))
        if isinstance(self.client, openai.AsyncOpenAI):
            if sys.version_info >= (3, 11):
                # In this task, not in one of its own as wait_for runs it: a request answered
                # at once (the cache, a batch's hook) is judged before the next one starts,
                # instead of every request of a wave holding its answer until all have one.
                async with asyncio.timeout(timeout):
                    return await self._read_async(request, cap)
            return await asyncio.wait_for(self._read_async(request, cap), timeout)
        call = _in_daemon_thread(self._read_sync, request=request, cap=cap, timeout=timeout)
        return await asyncio.wait_for(call, timeout)

    async def _read_async(self, request: dict[str, Any], cap: int) -> RawAnswer:
        assert isinstance(self.client, openai.AsyncOpenAI)
        token = expecting(cap)
        try:
            streaming = self.client.chat.completions.with_streaming_response.create(**request)
            async with streaming as response:
                raw = RawAnswer(response.status_code, dict(response.headers), b"")
                chunks = response.http_response.aiter_bytes()
                return await aread_capped(chunks, cap, raw, self.endpoint)
        except SynthError as exc:
            # Raised below the SDK (the cassette, the cache, a batch's hook): its traceback
            # holds every SDK and httpx frame of the request, with the request's objects, for
            # as long as it waits in this task for the caller to resume, and a batch pass
            # stops hundreds of requests before any caller resumes (about 20 KB each).
            exc.__traceback__ = None
            raise
        finally:
            done(token)

    def _read_sync(self, request: dict[str, Any], cap: int, timeout: float) -> RawAnswer:
        assert isinstance(self.client, openai.OpenAI)
        token = expecting(cap)
        try:
            streaming = self.client.chat.completions.with_streaming_response.create(
                **request, timeout=timeout
            )
            with streaming as response:
                raw = RawAnswer(response.status_code, dict(response.headers), b"")
                chunks = response.http_response.iter_bytes()
                return read_capped(chunks, cap, raw, self.endpoint)
        finally:
            done(token)

    def _status_error(
        self,
        exc: openai.APIStatusError,
        request: dict[str, Any],
        mode: Mode | None,
        keywords: list[str],
    ) -> Exception:
        message = error_message(exc)
        lowered = message.lower()
        status = exc.status_code
        if status in (400, 404, 405, 415, 422, 500, 501) and lowered:
            if "seed" in lowered and "seed" in request and self._profile.send_seed:
                return _Unsupported("seed", message)
            names_mode = any(hint in lowered for hint in UNSUPPORTED_HINTS)
            # keywords: sent before any relaxing. A 5xx counts only when a cassette keeps it
            # (it names an unsupported feature), so that a replay takes the same path.
            if names_constraint(message, keywords) and (status < 500 or names_mode):
                return _Unsupported("constraints", message)
            missing_model = status == 404 and "model" in lowered
            if mode is not None and names_mode and not missing_model:
                return _Unsupported("mode", message)
        advice = {
            401: "set OPENAI_API_KEY to a valid key (or replay from a cassette)",
            403: "the key is not allowed to use this model or endpoint",
            404: f"check the model name ({self.settings.model!r}) and the base URL",
        }.get(status, "")
        return SynthAPIError(
            f"{self.endpoint} answered HTTP {status}: {message or exc.message}"
            + (f"; {advice}" if advice else ""),
            status_code=status,
            body=exc.body,
            transient=status in (408, 409, 429) or status >= 500,
            headers=dict(exc.response.headers),
        )


def _first_line(text: str, limit: int = 300) -> str:
    """A server's error message, shortened for a warning (some include a traceback)."""
    text = redact(text)  # masked before it is cut
    line = " ".join(text.strip().splitlines()[:2]) if text.strip() else "no message"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _in_daemon_thread(function: Any, **kwargs: Any) -> asyncio.Future[Any]:
    """``function(**kwargs)`` in a thread of its own, as a future of the running loop.

    A blocking client cannot be interrupted: when the deadline passes, its thread is left
    to end on its own (its read timeout is the deadline too), and as a daemon thread it
    never holds up the end of the event loop or of the process."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result, error = context.run(function, **kwargs), None
        except BaseException as exc:  # handed to the waiting coroutine
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop may have ended meanwhile
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="synthdata-request", daemon=True).start()
    return future


def _to_completion(
    response: Any,
    usage: tuple[int, int, bool],
    mode: Mode | None,
    exchange: Exchange,
    headers: dict[str, str],
) -> Completion:
    """The text (read as ``mode`` says; the content for plain text), reason and usage."""
    prompt_tokens, completion_tokens, usage_known = usage
    choices = getattr(response, "choices", None) or []
    if not choices:
        return Completion(
            None,
            None,
            None,
            prompt_tokens,
            completion_tokens,
            no_choices=True,
            exchange=exchange,
            headers=headers,
            usage_known=usage_known,
        )
    choice = choices[0]
    message = choice.message
    text = mode.read(message) if mode is not None else read_content(message)
    return Completion(
        text=text,
        finish_reason=choice.finish_reason,
        refusal=getattr(message, "refusal", None),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        exchange=exchange,
        headers=headers,
        usage_known=usage_known,
    )


def _beyond_waiting(exc: SynthAPIError) -> SynthAPIError:
    """A rate limit whose server asks for a longer wait than :data:`MAX_WAIT` (a daily quota
    spent, a broken header) as an error that is not tried again: waiting the most a run waits,
    try after try, would only end in the same error much later, with nothing shown meanwhile."""
    asked = asked_wait(exc.headers) if exc.transient and exc.status_code == 429 else None
    if asked is None or asked <= MAX_WAIT:
        return exc
    shown = f"{asked:.0f} s" if asked < 1e7 else "longer than any run"
    return SynthAPIError(
        f"{exc}; the endpoint asks to wait {shown} before the next request (retry-after), more "
        f"than the {MAX_WAIT:.0f} s a run waits: try again later, or use another key or model",
        status_code=exc.status_code,
        body=exc.body,
        headers=exc.headers,
    )
