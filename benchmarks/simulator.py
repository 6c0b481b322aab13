"""A loopback OpenAI-compatible chat-completions server that behaves like a hosted model.

Every answer takes ``delay`` seconds plus ``per_token`` seconds for each completion token it
returns, the way a hosted model's latency grows with the length of its output. The server
counts the requests it receives, the prompt and completion tokens of the answers it gives
(estimated as one token per four characters, the same rule for every client) and the
largest number of requests in flight at once.

It answers structured-output requests from the JSON schema they carry:

* ``response_format`` ``json_schema`` (OpenAI structured outputs) and ``json_object``
  (with a ``schema`` key, as llama.cpp accepts it);
* ``tools`` with a forced function call (``tool_calls`` in the answer);
* legacy ``functions`` with ``function_call`` (``function_call`` in the answer), which is
  what LangChain's ``create_openai_data_generator`` sends through
  ``langchain_openai.ChatOpenAI``.

A top-level array property gets as many items as the last user message asks for with
"exactly N records" (one otherwise); values are drawn at random, so records do not repeat
unless a client asks for the same thing twice and gets unlucky.

Fault injection: ``broken`` is the share of answers that come back malformed (invalid JSON)
or truncated (``finish_reason: "length"``), half each; ``errors`` is the share of requests
answered with HTTP 429 or 500 (half each) carrying ``retry-after-ms`` / ``retry-after``.

Run it alone::

    python benchmarks/simulator.py --delay 0.3 --per-token 0.004 --broken 0.15 --errors 0.1

or from Python with :class:`SimulatorProcess` (a subprocess, so the client's CPU time does
not slow the server down). ``POST /_config`` changes the settings and resets the counters,
``GET /_stats`` returns the counters.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

JSON = dict[str, Any]

_COUNT_RE = re.compile(r"exactly (\d+) records?", re.IGNORECASE)

FIRST_NAMES = [
    "Aurelio",
    "Bathsheba",
    "Cosimo",
    "Delphine",
    "Eero",
    "Fenella",
    "Gwendolyn",
    "Hamish",
    "Isolde",
    "Jago",
    "Kerensa",
    "Leopold",
    "Marisol",
    "Nkechi",
    "Oisin",
    "Perpetua",
    "Quillon",
    "Rosalind",
    "Saoirse",
    "Thaddeus",
    "Ulrike",
    "Valentin",
    "Wilhelmina",
    "Xanthe",
    "Yevgenia",
    "Zebedee",
    "Anouk",
    "Barnaby",
    "Calliope",
    "Dagny",
    "Evander",
    "Florentyna",
    "Gideon",
    "Hyacinth",
    "Ignatius",
    "Jessamy",
    "Kasimir",
    "Lavinia",
    "Mordecai",
    "Neriah",
    "Octavia",
    "Peregrine",
    "Quintessa",
    "Radomir",
    "Seraphina",
    "Tobiah",
    "Ulysses",
    "Verity",
    "Wolfram",
    "Ximena",
    "Yorick",
    "Zenobia",
]
LAST_NAMES = [
    "Abernathy",
    "Blackwood",
    "Carrow",
    "Dunmore",
    "Ekwueme",
    "Fairweather",
    "Gallagher",
    "Haverford",
    "Iyer",
    "Jablonski",
    "Kowalczyk",
    "Lindqvist",
    "Montgomery",
    "Nakashima",
    "Oyelaran",
    "Pemberton",
    "Quayle",
    "Rasmussen",
    "Szczepanski",
    "Thistlewood",
    "Umberfield",
    "Vasquez-Orr",
    "Whitlock",
    "Xiong",
    "Yarborough",
    "Zabriskie",
    "Ashdown",
    "Bramwell",
    "Cheung",
    "Delacroix",
    "Eriksen",
    "Featherstonehaugh",
    "Grimaldi",
    "Holloway",
    "Ingersoll",
    "Jorgensen",
    "Kilbride",
    "Loxley",
    "Mbeki",
    "Nightingale",
    "Okonkwo",
    "Prendergast",
    "Quimby",
    "Rowntree",
    "Sandoval",
    "Trevelyan",
    "Uchida",
    "Vandermeer",
    "Winterbottom",
    "Yoshida",
]


def tokens(chars: int) -> int:
    """The token estimate used for everything: one token per four characters."""
    return max(1, math.ceil(chars / 4))


@dataclass
class Config:
    """What the simulated model does; every field can be changed with ``POST /_config``."""

    delay: float = 0.3
    """Seconds every answer takes before its first token."""
    per_token: float = 0.004
    """Seconds per completion token."""
    broken: float = 0.0
    """Share of answers that are malformed JSON or truncated at the token limit."""
    errors: float = 0.0
    """Share of requests answered with HTTP 429 or 500."""
    error_delay: float = 0.05
    """Seconds before a 429/500 is sent."""
    retry_after_ms: int = 100
    """Sent as ``retry-after-ms`` (and rounded up in ``retry-after``) with 429/500."""
    seed: int = 0
    """Seed of the value and fault generator."""


@dataclass
class Stats:
    requests: int = 0
    chat_requests: int = 0
    answered: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    status: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)


class _BadRequest(Exception):
    pass


# ---------------------------------------------------------------------------------------
# Values from a JSON schema
# ---------------------------------------------------------------------------------------


class Faker:
    """Random, plausible values for a JSON schema (``$ref``/``$defs``, ``anyOf`` included)."""

    def __init__(self, root: JSON, rnd: random.Random) -> None:
        self.root = root
        self.rnd = rnd

    def resolve(self, node: Any) -> JSON:
        if not isinstance(node, dict):
            return {}
        for _ in range(32):
            ref = node.get("$ref")
            if not isinstance(ref, str):
                break
            target: Any = self.root
            for part in ref.lstrip("#").split("/"):
                if part:
                    target = target.get(part, {}) if isinstance(target, dict) else {}
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def value(self, node: Any, name: str, depth: int = 0) -> Any:
        node = self.resolve(node)
        if "const" in node:
            return node["const"]
        if isinstance(node.get("enum"), list) and node["enum"]:
            return self.rnd.choice(node["enum"])
        for key in ("anyOf", "oneOf"):
            branches = node.get(key)
            if isinstance(branches, list) and branches:
                real = [b for b in branches if self.resolve(b).get("type") != "null"]
                return self.value(real[0], name, depth) if real else None
        kind = node.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            kind = kinds[0] if kinds else "null"
        if kind is None:
            kind = "object" if "properties" in node else "array" if "items" in node else "string"
        if kind == "object":
            props = node.get("properties") or {}
            return {key: self.value(sub, key, depth + 1) for key, sub in props.items()}
        if kind == "array":
            count = 0 if depth > 6 else self.rnd.randint(1, 3)
            count = max(count, int(node.get("minItems", 0)))
            return [self.value(node.get("items", {}), name, depth + 1) for _ in range(count)]
        if kind == "integer":
            low = int(node.get("minimum", 100000 if "id" in name.lower() else 0))
            high = int(node.get("maximum", 999999 if "id" in name.lower() else low + 1000))
            return self.rnd.randint(low, max(low, high))
        if kind == "number":
            low = float(node.get("minimum", 20.0))
            high = float(node.get("maximum", low + 4980.0))
            return round(self.rnd.uniform(low, high), 2)
        if kind == "boolean":
            return self.rnd.random() < 0.5
        if kind == "null":
            return None
        return self.string(name, node)

    def string(self, name: str, node: JSON) -> str:
        lowered = name.lower()
        fmt = node.get("format")
        if fmt == "date":
            year, month, day = (
                self.rnd.randint(2010, 2025),
                self.rnd.randint(1, 12),
                self.rnd.randint(1, 28),
            )
            return f"{year}-{month:02d}-{day:02d}"
        if fmt == "email" or "email" in lowered:
            return f"{self.rnd.choice(FIRST_NAMES).lower()}.{self.rnd.randint(1, 999)}@example.com"
        if "name" in lowered:
            return f"{self.rnd.choice(FIRST_NAMES)} {self.rnd.choice(LAST_NAMES)}"
        if "diagnosis" in lowered:
            letter = self.rnd.choice("ABCDEFGHIJKLMNOPQRSTZ")
            return f"{letter}{self.rnd.randint(0, 99):02d}.{self.rnd.randint(0, 9)}"
        if "procedure" in lowered:
            return str(self.rnd.randint(10000, 99999))
        if "code" in lowered:
            return f"{self.rnd.choice('ABCDEFGHJK')}{self.rnd.randint(100, 999)}"
        words = ("amber", "basalt", "cobalt", "delta", "ember", "fjord", "garnet", "harbor")
        return f"{self.rnd.choice(words)} {self.rnd.choice(words)} {self.rnd.randint(1, 99)}"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def requested_count(messages: list[Any]) -> int:
    """The "exactly N records" of the last user message, 1 if it says nothing."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            found = _COUNT_RE.findall(_text(message.get("content")))
            return int(found[-1]) if found else 1
    return 1


def structured(body: JSON) -> tuple[str, JSON | None, str | None, int]:
    """(mode, schema, function name, schema characters counted as prompt)."""
    if body.get("functions"):
        functions = body["functions"]
        wanted = (
            (body.get("function_call") or {}).get("name")
            if isinstance(body.get("function_call"), dict)
            else None
        )
        chosen = next((f for f in functions if f.get("name") == wanted), functions[0])
        return (
            "functions",
            chosen.get("parameters") or {},
            chosen.get("name"),
            len(json.dumps(functions)),
        )
    if body.get("tools"):
        functions = [t.get("function") or {} for t in body["tools"]]
        choice = body.get("tool_choice")
        wanted = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
        chosen = next((f for f in functions if f.get("name") == wanted), functions[0])
        return (
            "tools",
            chosen.get("parameters") or {},
            chosen.get("name"),
            len(json.dumps(body["tools"])),
        )
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        kind = response_format.get("type")
        if kind == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema")
            if not isinstance(schema, dict):
                raise _BadRequest("response_format.json_schema.schema is missing")
            return "json_schema", schema, None, len(json.dumps(schema))
        if kind == "json_object":
            schema = response_format.get("schema")
            if isinstance(schema, dict):
                return "json_object", schema, None, len(json.dumps(schema))
            return "json_object", None, None, 0
    return "text", None, None, 0


class Simulator:
    """The server itself (asyncio, HTTP/1.1 with keep-alive)."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.stats = Stats()
        self.rnd = random.Random(self.config.seed)
        self.fault_rnd = random.Random(f"faults-{self.config.seed}")
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    def configure(self, changes: JSON) -> None:
        known = set(asdict(Config()))
        unknown = set(changes) - known
        if unknown:
            raise _BadRequest(f"unknown setting(s): {sorted(unknown)}")
        self.config = Config(**{**asdict(self.config), **changes})
        self.rnd = random.Random(self.config.seed)
        self.fault_rnd = random.Random(f"faults-{self.config.seed}")
        # Requests still running from before keep counting into the old Stats object.
        self.stats = Stats()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = await asyncio.start_server(self._connection, host, port, backlog=4096)
        self.port = self.server.sockets[0].getsockname()[1]

    # -- HTTP -----------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    header = await reader.readline()
                    if header in (b"\r\n", b"\n", b""):
                        break
                    key, _, value = header.decode("latin-1").partition(":")
                    headers[key.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                raw = await reader.readexactly(length) if length else b""
                status, payload, extra = await self._dispatch(method, path, raw)
                data = json.dumps(payload).encode()
                head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
                head.append("content-type: application/json")
                head.append(f"content-length: {len(data)}")
                head.extend(f"{k}: {v}" for k, v in extra.items())
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _dispatch(self, method: str, path: str, raw: bytes) -> tuple[int, Any, JSON]:
        path = path.split("?", 1)[0].rstrip("/")
        if path == "/_stats":
            return 200, asdict(self.stats), {}
        if path == "/_config" and method == "POST":
            try:
                self.configure(json.loads(raw or b"{}"))
            except (_BadRequest, TypeError, ValueError) as exc:
                return 400, {"error": {"message": str(exc)}}, {}
            return 200, asdict(self.config), {}
        self.stats.requests += 1
        if not path.endswith("/chat/completions") or method != "POST":
            return 404, _error(f"Unknown request URL: {method} {path}", "invalid_request_error"), {}
        stats = self.stats
        stats.chat_requests += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            status, payload, extra = await self._chat(raw)
        finally:
            stats.in_flight -= 1
        stats.status[str(status)] = stats.status.get(str(status), 0) + 1
        return status, payload, extra

    # -- chat completions -----------------------------------------------------------------

    async def _chat(self, raw: bytes) -> tuple[int, Any, JSON]:
        config, stats, rnd, fate = self.config, self.stats, self.rnd, self.fault_rnd
        try:
            body = json.loads(raw)
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise _BadRequest("'messages' is a required property")
            mode, schema, function, schema_chars = structured(body)
        except (ValueError, _BadRequest) as exc:
            return 400, _error(str(exc), "invalid_request_error"), {}
        stats.modes[mode] = stats.modes.get(mode, 0) + 1
        # Faults come from their own generator: the k-th request's fate depends only on the
        # seed and k, whatever the earlier answers held.
        draw, coin = fate.random(), fate.random()
        if draw < config.errors:
            status = 429 if coin < 0.5 else 500
            stats.faults[str(status)] = stats.faults.get(str(status), 0) + 1
            await asyncio.sleep(config.error_delay)
            headers = {
                "retry-after-ms": str(config.retry_after_ms),
                "retry-after": str(math.ceil(config.retry_after_ms / 1000)),
            }
            if status == 429:
                return 429, _error("Rate limit reached for requests.", "rate_limit_error"), headers
            return (
                500,
                _error("The server had an error processing your request.", "server_error"),
                headers,
            )
        fault = None
        if draw < config.errors + config.broken:
            fault = "malformed" if coin < 0.5 else "truncated"
            stats.faults[fault] = stats.faults.get(fault, 0) + 1

        messages = body["messages"]
        if schema is not None:
            payload = json.dumps(self._answer(schema, messages))
        elif mode == "json_object":
            payload = json.dumps({"records": []})
        else:
            payload = "Here is some synthetic data."
        finish = "stop"
        if fault == "malformed":
            payload = payload[: max(1, len(payload) - 9)] + '"}, {oops'
        elif fault == "truncated":
            payload = payload[: int(len(payload) * 0.6)]
            finish = "length"

        prompt_chars = schema_chars + sum(
            len(_text(m.get("content"))) for m in messages if isinstance(m, dict)
        )
        prompt_tokens = tokens(prompt_chars)
        completion_tokens = tokens(len(payload))
        await asyncio.sleep(config.delay + config.per_token * completion_tokens)
        stats.answered += 1
        stats.prompt_tokens += prompt_tokens
        stats.completion_tokens += completion_tokens

        message: JSON = {"role": "assistant", "content": None, "refusal": None}
        call_id = f"call_{rnd.getrandbits(64):016x}"
        if mode == "functions":
            message["function_call"] = {"name": function, "arguments": payload}
        elif mode == "tools":
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": function, "arguments": payload},
                }
            ]
        else:
            message["content"] = payload
        return (
            200,
            {
                "id": f"chatcmpl-{rnd.getrandbits(64):016x}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model") or "simulated",
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
            {},
        )

    def _answer(self, schema: JSON, messages: list[Any]) -> Any:
        faker = Faker(schema, self.rnd)
        root = faker.resolve(schema)
        count = requested_count(messages)
        props = root.get("properties")
        if not isinstance(props, dict):
            return faker.value(root, "value")
        answer: JSON = {}
        for key, sub in props.items():
            node = faker.resolve(sub)
            if node.get("type") == "array":
                answer[key] = [faker.value(node.get("items", {}), key, 1) for _ in range(count)]
            else:
                answer[key] = faker.value(sub, key, 1)
        return answer


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


def _error(message: str, kind: str) -> JSON:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


# ---------------------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------------------


class SimulatorProcess:
    """The simulator in a child process, controlled over HTTP."""

    def __init__(self, **config: Any) -> None:
        args = [sys.executable, __file__, "--port", "0"]
        for key, value in config.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.origin = line.split()[-1].rstrip("/")
        self.url = self.origin + "/v1"

    def _call(self, path: str, data: JSON | None = None) -> JSON:
        request = urllib.request.Request(
            self.origin + path,
            data=json.dumps(data).encode() if data is not None else None,
            method="POST" if data is not None else "GET",
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def configure(self, **changes: Any) -> JSON:
        """Change settings (the others keep their values) and reset the counters."""
        return self._call("/_config", changes)

    def stats(self) -> JSON:
        return self._call("/_stats")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def serve(config: Config, port: int) -> None:
    simulator = Simulator(config)
    await simulator.start(port=port)
    print(f"listening on http://127.0.0.1:{simulator.port}/", flush=True)
    assert simulator.server is not None
    async with simulator.server:
        await simulator.server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    defaults = Config()
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    port = args.pop("port")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(Config(**args), port))


if __name__ == "__main__":
    main()
