"""The fake model: an OpenAI-compatible chat-completions server on 127.0.0.1.

``FakeLLM`` speaks real HTTP so the official ``openai`` SDK (or LangChain's ``ChatOpenAI``)
can be pointed at it unchanged. It answers structured-output requests (``json_schema``,
``json_object`` with a ``schema``, forced function ``tools``, legacy ``functions``) with
records generated from the JSON schema, as many as the prompt asks for
(:mod:`fakellm.reading`). A schema whose array holds ``{index, text}`` items gets a text for
each JSON object or array quoted at the end of a prompt line; one whose array holds ``{index,
record}`` items gets a record read back out of each quoted text (:mod:`fakellm.texts`); a
plain request gets a text written from the last quoted object or array, or ``"ok"``. The
completion itself is built by :mod:`fakellm.completion`, the replies sent instead of one by
:mod:`fakellm.replies`; this module holds the switches, the counters and the request
handling. Switches inject faults (:mod:`fakellm.faults`)::

    with FakeLLM() as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
        server.enqueue("429", Fault.mutate(lambda records: records[:1]))
        ...

It can also behave like a hosted model (:mod:`fakellm.hosted`): a :class:`Latency` (a delay
per answer plus one per output token), a seeded :class:`~fakellm.faults.FaultMix` of errors
and broken answers, and ``sampling_seed`` for answers that differ each time even for
identical requests. Created with ``control=True`` (as ``python -m fakellm`` does, see
:mod:`fakellm.process`), it also serves ``GET /_stats`` (:meth:`FakeLLM.stats`) and
``POST /_config`` (:meth:`FakeLLM.configure`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterator, Mapping
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import batches as batch_api
from . import completion, reading, replies
from .faults import HTTP_FAULTS, BreakRule, Fault, FaultMix, MutateFn, item_faults, pattern_holding
from .hosted import CONFIG_KEYS, HostedSettings, Latency
from .models import models_reply
from .ratelimit import RateLimit, RateLimiter
from .schema_faker import SchemaError, SchemaFaker
from .wire import (
    Handler,
    HTTPError,
    RecordedRequest,
    Reply,
    Server,
    client_gone,
    error_body,
    read_body,
    send_reply,
    serve_async,
)

__all__ = ["CONFIG_KEYS", "MODES", "FakeLLM", "Latency", "RecordedRequest"]

JSONDict = dict[str, Any]
# A recorded request and the steps answering it: seconds to wait, then the reply.
Steps = tuple[RecordedRequest, Generator[float | Reply, None, None]]

MODES: frozenset[str] = frozenset({"json_schema", "json_object", "tools"})

_AZURE_RE = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions/?$")
_CHAT_PATHS = frozenset({"/v1/chat/completions", "/v1/chat/completions/"})


class FakeLLM(HostedSettings):
    """An OpenAI-compatible chat-completions server on 127.0.0.1 for tests and benchmarks.

    Switches (all restored by :meth:`reset`): ``supported_modes``, ``unsupported_status``,
    ``reject_seed``, ``timeout_delay``, ``trickle_delay``, ``response_delay``, ``retry_after_ms``,
    ``extra_response_fields``, ``omit_usage``, ``gzip``, ``text_omit_values``,
    ``text_omit_times``, ``extract_override``, ``latency``, ``serial``, ``fault_mix``,
    ``sampling_seed``, ``round_tokens_up``; faults via :meth:`enqueue` and :meth:`always`
    (a ``mutate`` fault sees ``[{"text": ...}]`` for a plain-text answer, the ``{"index",
    "text"}`` items of a text batch and the ``{"index", "record"}`` items of an extraction).
    Observations: ``requests``, ``request_count``, ``chat_requests``, ``prompt_tokens``,
    ``completion_tokens``, ``total_tokens``, ``max_in_flight``, :meth:`stats`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, control: bool = False) -> None:
        self.host = host
        self.port = port
        self.control = control
        self._httpd: Server | None = None
        self._serving = False
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._engine = threading.Lock()
        self._local = threading.local()
        self._generation = 0
        self._in_flight = 0
        self._sampled = 0
        self._faults: deque[Fault] = deque()
        self._always: Fault | None = None
        self.requests: list[RecordedRequest] = []
        # ``/v1/files`` and ``/v1/batches``, each line answered by :meth:`chat_answer`.
        self.batches = batch_api.BatchService(self.chat_answer)
        self._set_defaults()

    def _set_defaults(self) -> None:
        self.supported_modes: set[str] = set(MODES)
        self.unsupported_status: int = 400
        self.reject_seed: bool = False
        self.timeout_delay: float = 3.0
        # A request whose schema sends a ``pattern`` holding this text crashes the server.
        self.crash_on_pattern: str | None = None
        # Seconds between the bytes of a "trickle" answer.
        self.trickle_delay: float = 0.05
        # Seconds before any chat request is handled, faults included.
        self.response_delay: float = 0.0
        # When set, 429/500/503 faults also send ``retry-after-ms`` (0 = retry at once).
        self.retry_after_ms: float | None = None
        self.extra_response_fields: JSONDict = {}
        self.omit_usage: bool = False
        # Size of a "huge" answer, and the nesting of "deep_body" and "deep_content" ones.
        self.huge_bytes: int = 8 << 20
        self.deep_levels: int = 100_000
        self.gzip: bool = False
        # Texts leave out the leaf values whose text form is in this set (or, for an int N,
        # their first N string/number values), in the next ``text_omit_times`` answers
        # (None: every answer until reset).
        self.text_omit_values: set[str] | int = set()
        self.text_omit_times: int | None = None
        # Top-level values every extracted record takes instead of those read from the text.
        self.extract_override: JSONDict = {}
        # How long answers take (none of it by default).
        self.latency: Latency = Latency()
        # Generate one answer at a time, as llama-cpp-python's server does: the others wait,
        # a waiting request whose client hung up is dropped, and an answer being generated
        # runs to its end even when its client has hung up.
        self.serial: bool = False
        # Random faults for the requests no queued or ``always`` fault claims.
        self.fault_mix: FaultMix | None = None
        # Records of the answers no other fault claims break a cross-field rule this often.
        self.break_rule: BreakRule | None = None
        self.break_rule_text: str = ""  # "low<=high" (configure's invalid_rule; "": none)
        # None: the values of an answer follow from the request (the same request, the same
        # answer). An int: they follow from this seed and the number of requests answered so
        # far, so identical requests get different answers, as from a model that samples.
        self.sampling_seed: int | None = None
        self._sampled = 0
        # Tokens are estimated as one per four characters, rounded down (or up), at least one.
        self.round_tokens_up: bool = False
        # A hosted API's rate limit (none by default); see :mod:`fakellm.ratelimit`.
        self.rate_limit: RateLimit = RateLimit()
        self._limiter: RateLimiter | None = None
        self.prompt_tokens: int = 0
        self.completion_tokens: int = 0
        self.max_in_flight: int = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeLLM:
        if self._httpd is not None:
            return self
        httpd = Server((self.host, self.port), Handler)
        httpd.dispatch = self._handle
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeLLM:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            httpd.drop_connections()
        if thread is not None:
            thread.join(timeout=5)

    async def serve(self, ready: Callable[[str], None] | None = None) -> None:
        """Serve on the running asyncio loop until cancelled, calling ``ready(url)`` once
        listening. One thread holds every connection, so a thousand clients at once are all
        in flight together (what ``python -m fakellm`` runs); :meth:`start` serves from a
        thread per connection instead, next to the tests."""

        def listening(port: int) -> None:
            self.port, self._serving = port, True
            if ready is not None:
                ready(self.url)

        try:
            await serve_async(
                self.record, self.host, self.port, gzip=lambda: self.gzip, ready=listening
            )
        finally:
            self._serving = False

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None or self._serving

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``: the ``azure_endpoint`` for ``openai.AzureOpenAI``."""
        if not self.running:
            raise RuntimeError("FakeLLM is not started")
        return f"http://{self.host}:{self.port}"

    azure_endpoint = origin

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: the ``base_url`` for ``openai.OpenAI``."""
        return f"{self.origin}/v1"

    def _forget(self) -> None:
        """Forget requests and counters (requests still running count nowhere)."""
        self._generation += 1
        self._in_flight = 0
        self._sampled = 0
        self.requests = []
        self.prompt_tokens = self.completion_tokens = self.max_in_flight = 0
        self._limiter = RateLimiter(self.rate_limit) if self.rate_limit.active else None

    def reset(self) -> None:
        """Forget requests, faults and counters and restore every switch to its default."""
        with self._lock:
            self._forget()
            self._faults.clear()
            self._always = None
            self._set_defaults()
            self.batches.reset()

    # -- observations ------------------------------------------------------------------------

    def stats(self) -> JSONDict:
        """Counters since the last reset or configure: requests, chat requests, answers
        (HTTP 200), tokens, requests in flight (now and at most), chat requests by status,
        by fault kind and by output mode, and under a rate limit the requests it turned
        away (``throttled``) and the tokens it counted against the limit (``reserved_tokens``)."""
        with self._lock:
            chat = [r for r in self.requests if _is_chat(r.path)]
            status = Counter(str(r.status) for r in chat if r.status is not None)
            return {
                "requests": len(self.requests),
                "chat_requests": len(chat),
                "answered": status.get("200", 0),
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens,
                "in_flight": self._in_flight,
                "max_in_flight": self.max_in_flight,
                "status": dict(status),
                "faults": dict(Counter(r.fault.kind for r in chat if r.fault is not None)),
                "modes": dict(Counter(r.mode for r in chat if r.mode is not None)),
                "throttled": self._limiter.throttled if self._limiter else 0,
                "reserved_tokens": self._limiter.reserved_tokens if self._limiter else 0,
            }

    # -- faults ------------------------------------------------------------------------------

    def enqueue(self, *faults: Fault | str | int | MutateFn) -> None:
        """Queue one-shot faults; each chat request consumes the next one, in order."""
        coerced = [Fault.coerce(f) for f in faults]
        with self._lock:
            self._faults.extend(coerced)

    def always(self, fault: Fault | str | int | MutateFn | None) -> None:
        """Apply ``fault`` to every chat request (after queued ones) until reset; None clears."""
        coerced = None if fault is None else Fault.coerce(fault)
        with self._lock:
            self._always = coerced

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._always = None

    @property
    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            if self._always is not None:
                return self._always
            drawn = self.fault_mix.draw() if self.fault_mix is not None else None
            if drawn is None and self.break_rule is not None:
                return Fault.mutate(self.break_rule)  # answers break a rule now and then
            return drawn

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if _is_chat(r.path)]

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self.requests:
                raise LookupError("FakeLLM has received no request")
            return self.requests[-1]

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    # -- extension hooks ---------------------------------------------------------------------

    def _plain_text(self, body: JSONDict) -> str:
        """The answer to a request asking for neither JSON nor a tool call
        (:func:`fakellm.completion.plain_text`)."""
        return completion.plain_text(body, self._take_omission)

    def _take_omission(self) -> set[str] | int:
        """What the text being written leaves out (and one use of ``text_omit_times``)."""
        with self._lock:
            omit = self.text_omit_values
            if not omit:
                return set()
            if self.text_omit_times is not None:
                if self.text_omit_times <= 0:
                    return set()
                self.text_omit_times -= 1
            return omit if isinstance(omit, int) else set(omit)

    # -- request handling --------------------------------------------------------------------
    #
    # ``_steps`` decides, step by step, how a request is answered: it yields seconds to wait
    # and finally the :class:`~fakellm.wire.Reply` to send. The threaded server (``start``)
    # and the asyncio one of ``python -m fakellm`` (:mod:`fakellm.process`) both run it.

    def record(
        self, method: str, target: str, headers: Mapping[str, str] | Message[str, str], raw: bytes
    ) -> Steps:
        """The steps answering one HTTP request (recorded, unless it is a control request)."""
        split = urlsplit(target)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        rec = RecordedRequest(
            method=method,
            path=split.path,
            query=dict(parse_qsl(split.query)),
            headers={k.lower(): v for k, v in headers.items()},
            body=body,
            raw_body=raw,
        )
        if self.control and rec.path.rstrip("/") in ("/_stats", "/_config"):
            return rec, replies.once(self._control(rec))
        return rec, self._steps(rec)

    def _handle(self, handler: Handler) -> None:
        self._local.connection = handler.connection
        rec, steps = self.record(handler.command, handler.path, handler.headers, read_body(handler))
        with contextlib.closing(steps):
            for step in steps:
                if isinstance(step, Reply):
                    send_reply(handler, rec, step, gzip=self.gzip)
                else:
                    time.sleep(step)

    def _control(self, rec: RecordedRequest) -> Reply:
        """``GET /_stats`` and ``POST /_config`` (neither is recorded as a request)."""
        if rec.path.rstrip("/") == "/_stats":
            return Reply(200, self.stats())
        if rec.method != "POST" or not isinstance(rec.body, (dict, type(None))):
            return replies.error(400, "POST a JSON object of settings", "invalid_request_error")
        try:
            return Reply(200, self.configure(**(rec.body or {})))
        except (TypeError, ValueError) as exc:
            return replies.error(400, str(exc), "invalid_request_error")

    def _steps(self, rec: RecordedRequest) -> Generator[float | Reply, None, None]:
        with self._lock:
            generation = self._generation
            self.requests.append(rec)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        left = False

        def leave() -> None:
            nonlocal left
            with self._lock:
                if not left and generation == self._generation:
                    self._in_flight -= 1
                left = True

        try:
            for step in self._route(rec, generation):
                if isinstance(step, Reply):
                    # Leave before the reply goes out: a client that has read its answer
                    # must never see its own request still counted in flight.
                    leave()
                yield step
        finally:
            leave()

    def _route(self, rec: RecordedRequest, generation: int) -> Iterator[float | Reply]:
        if batch_api.handles(rec.path):
            yield self.batches.reply(rec)
            return
        listing = models_reply(rec.method, rec.path)
        if listing is not None:
            yield listing
            return
        azure = _AZURE_RE.match(rec.path)
        is_chat = rec.path in _CHAT_PATHS or azure is not None
        if not is_chat or rec.method != "POST":
            what = "Invalid URL" if is_chat else "Unknown request URL"
            yield replies.error(404, f"{what}: {rec.method} {rec.path}", "invalid_request_error")
            return
        yield from self._chat(rec, generation, azure.group("deployment") if azure else None)

    def _chat(
        self, rec: RecordedRequest, generation: int, deployment: str | None
    ) -> Iterator[float | Reply]:
        """The steps answering a chat request: the rate limit's verdict, the fault the request
        draws, then the completion once its latency has passed."""
        limiter = self._limiter
        limits: dict[str, str] = {}
        if limiter is not None:
            admission = limiter.admit(self._reservation(rec.body))
            limits = admission.headers
            if not admission.admitted:
                if self.latency.error_delay > 0:
                    yield self.latency.error_delay
                yield replies.throttled(
                    self.rate_limit, admission.wait, admission.too_large, limits
                )
                return

        fault = self._next_fault()
        rec.fault = fault
        if self.response_delay > 0:
            yield self.response_delay
        if (yield from self._fault_steps(rec, fault, limits)):
            return

        try:
            response, prompt_tokens, completion_tokens = self._complete(rec, fault, deployment)
        except HTTPError as err:
            yield replies.error(err.status, err.message, err.type, headers=limits)
            return
        except SchemaError as err:
            yield replies.error(400, str(err), "invalid_request_error", headers=limits)
            return
        if limiter is not None and completion.output_limit(rec.body) is None:
            limits = limiter.charge(completion_tokens)
        wait = self.latency.answer(completion_tokens)
        if self.serial:
            with self._engine:
                if client_gone(self._local.connection):
                    return  # it waited, and its client is gone: not generated at all
                if wait > 0:
                    yield wait
        elif wait > 0:
            yield wait
        with self._lock:
            if generation == self._generation and not self.omit_usage:
                self.prompt_tokens += prompt_tokens
                self.completion_tokens += completion_tokens
        trickle = self.trickle_delay if fault is not None and fault.kind == "trickle" else 0.0
        yield Reply(200, response, headers=limits, trickle=trickle)

    def _fault_steps(
        self, rec: RecordedRequest, fault: Fault | None, limits: Mapping[str, str]
    ) -> Generator[float | Reply, None, bool]:
        """The steps of a fault that answers in the model's place (then True), or the wait of
        a ``timeout`` before the model answers (then False, as with no such fault)."""
        if fault is not None and fault.kind == "reset":
            yield Reply(0)
            return True
        crash_on = self.crash_on_pattern
        crashing = crash_on is not None and pattern_holding(rec.body, crash_on)
        if crashing or (fault is not None and fault.kind == "crash"):
            yield from self._crash()
            return True
        if fault is None:
            return False
        if fault.kind in HTTP_FAULTS:
            if self.latency.error_delay > 0:
                yield self.latency.error_delay
            reply = replies.fault_reply(fault.kind, self.retry_after_ms)
            reply.headers.update(limits)
            yield reply
            return True
        if fault.kind == "timeout":
            yield self.timeout_delay if fault.delay is None else fault.delay
        if fault.kind in ("huge", "deep_body"):
            body = replies.hostile_body(fault.kind, self.huge_bytes, self.deep_levels)
            yield Reply(200, raw=body)
            return True
        if fault.kind in ("html", "html_json"):
            kind = "text/html; charset=utf-8" if fault.kind == "html" else "application/json"
            yield Reply(200, raw=replies.HTML_PAGE, content_type=kind)
            return True
        return False

    def chat_answer(self, body: Any) -> tuple[int, JSONDict]:
        """What ``POST /v1/chat/completions`` answers ``body`` (status and JSON), without
        faults, latency or rate limits: how a line of a batch is answered."""
        raw = json.dumps(body).encode()
        rec = RecordedRequest("POST", "/v1/chat/completions", {}, {}, body, raw)
        try:
            return 200, self._complete(rec, None, None)[0]
        except HTTPError as err:
            return err.status, error_body(err.message, err.type)
        except SchemaError as err:
            return 400, error_body(str(err), "invalid_request_error")

    def _reservation(self, body: Any) -> int:
        """The tokens a request counts against the rate limit before it is answered: its
        prompt, as :meth:`_complete` counts it, plus the output it allows (``max_tokens``)."""
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return 0
        try:
            definition = reading.output_of(body).definition
        except HTTPError:
            definition = None
        chars = completion.prompt_chars(body, definition)
        return completion.tokens(chars, self.round_tokens_up) + (completion.output_limit(body) or 0)

    def _crash(self) -> Iterator[Reply]:
        """Die while answering: the process ends at once (``python -m fakellm``), or the
        connection is reset and the server stops listening (``start``)."""
        if self._serving:
            os._exit(70)  # like a segfault: no answer, the kernel closes the sockets
        threading.Thread(target=self.stop, name="fakellm-crash", daemon=True).start()
        yield Reply(0)

    # -- building the completion (:mod:`fakellm.completion`) ---------------------------------

    requested_count = staticmethod(completion.requested_count)

    def generate(self, schema: JSONDict, body: JSONDict, fault: Fault | None = None) -> Any:
        """The object answering ``body`` for ``schema`` (with record faults applied)."""
        faker = SchemaFaker(schema, self._seed(body))
        batch = reading.batch_of(faker, schema)
        if batch is not None:
            answered = completion.batch_items(
                faker, batch, body, self._take_omission, self.extract_override
            )
            if answered is not None:
                return {batch.key: item_faults(answered, fault)}
        return completion.fake_records(faker, schema, body, fault)

    def _seed(self, body: JSONDict) -> str:
        """The seed of the values answering ``body``: the request itself, and with a
        ``sampling_seed`` also that seed and how many answers came before."""
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self._lock:
            if self.sampling_seed is None:
                return digest
            self._sampled += 1
            return f"{self.sampling_seed}|{self._sampled}|{digest}"

    def _complete(
        self, rec: RecordedRequest, fault: Fault | None, deployment: str | None
    ) -> tuple[JSONDict, int, int]:
        """The completion answering ``rec``, with its prompt and completion tokens."""
        body = completion.checked_body(rec.body, self.reject_seed)
        output = completion.output_for(body, self.supported_modes, self.unsupported_status)
        rec.mode = output.mode
        if output.schema is None:
            payload = self._plain_text(body)
            if fault is not None and fault.kind == "mutate" and fault.fn is not None:
                mutated = fault.fn([{"text": payload}])
                payload = str(mutated[0]["text"]) if mutated else ""
        else:
            payload = json.dumps(self.generate(output.schema, body, fault))
        response, prompt_tokens, completion_tokens = completion.completion(
            rec,
            body,
            output,
            payload,
            fault.kind if fault is not None else None,
            deployment=deployment,
            round_up=self.round_tokens_up,
            deep_levels=self.deep_levels,
            usage=not self.omit_usage,
        )
        response.update(self.extra_response_fields)
        return response, prompt_tokens, completion_tokens

    def __repr__(self) -> str:
        where = self.origin if self.running else "stopped"
        return f"<FakeLLM {where} requests={self.request_count}>"


def _is_chat(path: str) -> bool:
    return path.rstrip("/").endswith("/chat/completions")
