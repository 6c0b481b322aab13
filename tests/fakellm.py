"""A loopback, OpenAI-compatible chat-completions server for the test suite.

``FakeLLM`` speaks real HTTP on 127.0.0.1 so the official ``openai`` SDK can be pointed at it
unchanged. It answers structured-output requests (``json_schema``, ``json_object`` with a
``schema``, forced function ``tools``) with deterministic records generated from the JSON schema,
and has switches to inject faults (rate limits, server errors, dropped connections, slow or
broken answers, refusals, wrong record counts, ...).

It also writes texts, reading the prompt format of ``pytest_synthdata.text``: a request
whose last user message carries ``Fields (JSON): {...}`` (plain text) or ``Fields (JSON)
#<i>: {...}`` lines (a ``{"texts": [...]}`` batch) gets texts holding every leaf value as a
``path: «value»`` phrase, padded to a ``minimum_length``/``min_words`` preference; a request
carrying ``Text (JSON) #<i>: "..."`` lines (a ``{"records": [{"index", "record"}]}``
extraction) gets records read back from those phrases (schema-valid values where a text has
none). ``text_omit_values`` makes it leave values out, ``extract_override`` makes extraction
disagree.

::

    with FakeLLM() as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
        server.enqueue("429", Fault.mutate(lambda records: records[:1]))
        ...

Only the standard library is used, so the server never depends on the code under test.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gzip as _gzip
import hashlib
import importlib
import json
import math
import re
import socket
import string
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

# The regex parser of the standard library, used to build strings matching a ``pattern``.
_sre_c: Any
_sre_p: Any
try:  # Python >= 3.11
    _sre_c = importlib.import_module("re._constants")
    _sre_p = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover - Python 3.10
    _sre_c = importlib.import_module("sre_constants")
    _sre_p = importlib.import_module("sre_parse")

__all__ = ["FAULT_KINDS", "MODES", "FakeLLM", "Fault", "RecordedRequest"]

JSONDict = dict[str, Any]
Records = list[dict[str, Any]]
MutateFn = Callable[[Records], Records]

MODES: frozenset[str] = frozenset({"json_schema", "json_object", "tools"})

FAULT_KINDS: frozenset[str] = frozenset(
    {
        "429",
        "500",
        "503",
        "reset",
        "timeout",
        "malformed",
        "truncated",
        "refusal",
        "empty_choices",
        "fewer",
        "more",
        "mutate",
        "duplicate",
    }
)

_HTTP_FAULTS = frozenset({"429", "500", "503"})
_CREATED = 1_700_000_000
_REFUSAL_TEXT = "I can't help with that."
_COUNT_RE = re.compile(r"exactly (\d+) records?", re.IGNORECASE)
_AZURE_RE = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions/?$")
_CHAT_PATHS = frozenset({"/v1/chat/completions", "/v1/chat/completions/"})

# Validation keywords the client may move from the schema into the description suffix
# ``(constraints: minimum=0, maxLength=10, format=date)``.
CONSTRAINT_KEYS: tuple[str, ...] = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minItems",
    "maxItems",
    "uniqueItems",
)
_CONSTRAINT_SPLIT_RE = re.compile(r",\s*(?=(?:" + "|".join(CONSTRAINT_KEYS) + r")\s*=)")
_CONSTRAINTS_MARK = "(constraints:"

_FIRST_NAMES = (
    "alice",
    "bruno",
    "chiara",
    "dmitri",
    "elena",
    "farid",
    "grace",
    "hiro",
    "ines",
    "jonas",
    "kemal",
    "lucia",
    "mateo",
    "nadia",
    "oscar",
    "priya",
)


_LAST_NAMES = (
    "okafor",
    "lindqvist",
    "moreau",
    "tanaka",
    "haddad",
    "kowalski",
    "silva",
    "brennan",
    "novak",
    "abara",
    "castellanos",
    "ivanova",
)
_CITIES = ("Lisbon", "Accra", "Osaka", "Tampere", "Cusco", "Tbilisi", "Porto", "Nairobi")
_WORDS = ("login", "invoice", "refund", "export", "password", "billing", "upload", "sync")


def _realistic(name: str, rnd: _Rand) -> str | None:
    """Readable values for common field names (the rest stay ``<field>-<hex>``)."""
    lowered = name.lower()
    first, last = rnd.choice(_FIRST_NAMES), rnd.choice(_LAST_NAMES)
    if "email" in lowered:
        return f"{first}.{last}.{rnd.hex(3)}@example.com"
    if lowered.endswith("name"):
        return f"{first.title()} {last.title()}"
    if "diagnosis" in lowered:
        return f"{rnd.choice('EJKMNR')}{rnd.between(10, 99)}.{rnd.below(10)}"
    if "procedure" in lowered or lowered.endswith("code"):
        return str(rnd.between(10000, 99999))
    if "city" in lowered:
        return str(rnd.choice(_CITIES))
    if lowered in ("subject", "title", "summary"):
        return f"{rnd.choice(_WORDS).title()} fails after the {rnd.choice(_WORDS)} step"
    if lowered in ("tags", "tag", "labels"):
        return str(rnd.choice(_WORDS))
    return None


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour.

    ``kind`` is one of :data:`FAULT_KINDS`; ``fn`` is the record transformer of a ``"mutate"``
    fault; ``delay`` overrides ``FakeLLM.timeout_delay`` for a ``"timeout"`` fault. Plain
    strings (``"429"``), ints (``429``) and bare callables (a mutate function) are accepted
    wherever a fault is, and converted with :meth:`coerce`.
    """

    kind: str
    fn: MutateFn | None = field(default=None, compare=False)
    delay: float | None = None

    RATE_LIMIT: ClassVar[str] = "429"
    SERVER_ERROR: ClassVar[str] = "500"
    UNAVAILABLE: ClassVar[str] = "503"
    RESET: ClassVar[str] = "reset"
    TIMEOUT: ClassVar[str] = "timeout"
    MALFORMED: ClassVar[str] = "malformed"
    TRUNCATED: ClassVar[str] = "truncated"
    REFUSAL: ClassVar[str] = "refusal"
    EMPTY_CHOICES: ClassVar[str] = "empty_choices"
    FEWER: ClassVar[str] = "fewer"
    MORE: ClassVar[str] = "more"
    MUTATE: ClassVar[str] = "mutate"
    DUPLICATE: ClassVar[str] = "duplicate"

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}"
            )
        if self.kind == "mutate" and not callable(self.fn):
            raise ValueError("a 'mutate' fault needs a callable fn(records) -> records")

    @classmethod
    def mutate(cls, fn: MutateFn) -> Fault:
        """A fault that passes the generated records through ``fn`` before serialisation."""
        return cls("mutate", fn=fn)

    @classmethod
    def timeout(cls, delay: float | None = None) -> Fault:
        """A fault that stalls ``delay`` seconds (default ``FakeLLM.timeout_delay``)."""
        return cls("timeout", delay=delay)

    @classmethod
    def coerce(cls, value: Fault | str | int | MutateFn) -> Fault:
        if isinstance(value, Fault):
            return value
        if isinstance(value, bool):
            raise TypeError(f"not a fault: {value!r}")
        if isinstance(value, (str, int)):
            return cls(str(value))
        if callable(value):
            return cls.mutate(value)
        raise TypeError(f"not a fault: {value!r}")


# --------------------------------------------------------------------------------------------
# Recorded requests
# --------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request the server received (and, once answered, what it answered).

    Attribute access and ``req["body"]``-style access both work.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw_body: bytes = b""
    fault: Fault | None = None
    status: int | None = None
    response: Any = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    @property
    def messages(self) -> list[JSONDict]:
        if isinstance(self.body, dict) and isinstance(self.body.get("messages"), list):
            return list(self.body["messages"])
        return []


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_


# --------------------------------------------------------------------------------------------
# Deterministic randomness
# --------------------------------------------------------------------------------------------


class _Rand:
    """A tiny deterministic stream of numbers derived from sha256(seed)."""

    def __init__(self, seed: str) -> None:
        self._seed = seed.encode()
        self._counter = 0
        self.digest = hashlib.sha256(self._seed).digest()

    @property
    def hex6(self) -> str:
        return self.digest.hex()[:6]

    def _next(self) -> int:
        if self._counter == 0:
            block = self.digest
        else:
            block = hashlib.sha256(self._seed + struct.pack(">I", self._counter)).digest()
        self._counter += 1
        return int.from_bytes(block[:8], "big")

    def below(self, n: int) -> int:
        return self._next() % n if n > 0 else 0

    def between(self, lo: int, hi: int) -> int:
        return lo + self.below(hi - lo + 1) if hi >= lo else lo

    def fraction(self) -> float:
        return self._next() / 2.0**64

    def choice(self, seq: str | tuple[Any, ...] | list[Any]) -> Any:
        return seq[self.below(len(seq))]

    def hex(self, n: int) -> str:
        out = ""
        while len(out) < n:
            out += hashlib.sha256(self._seed + b"#" + str(len(out)).encode()).hexdigest()
        return out[:n]


# --------------------------------------------------------------------------------------------
# Constraints
# --------------------------------------------------------------------------------------------


def _parse_scalar(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        if text[0] == '"':
            try:
                return json.loads(text)
            except ValueError:
                pass
        return text[1:-1]
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_description_constraints(description: str | None) -> JSONDict:
    """Read the ``(constraints: k=v, ...)`` suffix a client writes into a description."""
    if not description:
        return {}
    start = description.rfind(_CONSTRAINTS_MARK)
    if start < 0:
        return {}
    text = description[start + len(_CONSTRAINTS_MARK) :].strip()
    if text.endswith(")"):
        text = text[:-1]
    out: JSONDict = {}
    for part in _CONSTRAINT_SPLIT_RE.split(text):
        key, sep, value = part.partition("=")
        key = key.strip()
        if sep and key in CONSTRAINT_KEYS:
            out[key] = value.strip() if key == "pattern" else _parse_scalar(value)
    return out


def _constraints_of(schema: Mapping[str, Any]) -> JSONDict:
    found = parse_description_constraints(schema.get("description"))
    for key in CONSTRAINT_KEYS:
        if key in schema:
            found[key] = schema[key]
    return found


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _bounds(cons: Mapping[str, Any]) -> tuple[float | None, bool, float | None, bool]:
    """(low, low_exclusive, high, high_exclusive) from the numeric constraints."""
    lo, lo_x = _num(cons.get("minimum")), False
    hi, hi_x = _num(cons.get("maximum")), False
    xmin, xmax = cons.get("exclusiveMinimum"), cons.get("exclusiveMaximum")
    if xmin is True:  # draft-04 boolean form
        lo_x = lo is not None
    elif (v := _num(xmin)) is not None and (lo is None or v >= lo):
        lo, lo_x = v, True
    if xmax is True:
        hi_x = hi is not None
    elif (v := _num(xmax)) is not None and (hi is None or v <= hi):
        hi, hi_x = v, True
    return lo, lo_x, hi, hi_x


def _within(v: float, lo: float | None, lo_x: bool, hi: float | None, hi_x: bool) -> bool:
    if lo is not None and (v < lo or (lo_x and v == lo)):
        return False
    return not (hi is not None and (v > hi or (hi_x and v == hi)))


def _gen_integer(cons: Mapping[str, Any], rnd: _Rand) -> int:
    lo_f, lo_x, hi_f, hi_x = _bounds(cons)
    lo = None if lo_f is None else (math.floor(lo_f) + 1 if lo_x else math.ceil(lo_f))
    hi = None if hi_f is None else (math.ceil(hi_f) - 1 if hi_x else math.floor(hi_f))
    if lo is None and hi is None:
        lo, hi = 1, 999_999
    elif hi is None:
        assert lo is not None
        hi = max(lo, 999_999) if lo < 999_999 else lo + 999_999
    elif lo is None:
        lo = 1 if hi >= 1 else hi - 999_999
    if lo > hi:
        return lo
    mult = _num(cons.get("multipleOf"))
    if mult and mult > 0 and float(mult).is_integer():
        m = int(mult)
        k_lo, k_hi = -(-lo // m), hi // m
        if k_lo <= k_hi:
            return rnd.between(k_lo, k_hi) * m
    return rnd.between(lo, hi)


def _gen_number(cons: Mapping[str, Any], rnd: _Rand) -> float:
    lo, lo_x, hi, hi_x = _bounds(cons)
    a = lo if lo is not None else (1.0 if hi is None or hi > 1.0 else hi - 10_000.0)
    b = hi if hi is not None else (10_000.0 if a < 10_000.0 else a + 10_000.0)
    mult = _num(cons.get("multipleOf"))
    if mult and mult > 0:
        k_lo, k_hi = math.ceil(a / mult), math.floor(b / mult)
        for _ in range(4):
            if k_lo > k_hi:
                break
            v = round(rnd.between(k_lo, k_hi) * mult, 10)
            if _within(v, lo, lo_x, hi, hi_x):
                return v
    if b < a:
        return a
    frac = 0.05 + 0.9 * rnd.fraction()
    raw = a + frac * (b - a)
    for digits in (2, 4, 8):
        v = round(raw, digits)
        if _within(v, lo, lo_x, hi, hi_x):
            return v
    return raw if _within(raw, lo, lo_x, hi, hi_x) else (a + b) / 2


# --------------------------------------------------------------------------------------------
# Strings matching a regex (best effort)
# --------------------------------------------------------------------------------------------


class _Unsupported(Exception):
    pass


_SAFE_CHARS = string.ascii_letters + string.digits + "-_ "
_CATEGORY_CHARS: dict[Any, str] = {
    _sre_c.CATEGORY_DIGIT: string.digits,
    _sre_c.CATEGORY_NOT_DIGIT: string.ascii_letters,
    _sre_c.CATEGORY_WORD: string.ascii_letters + string.digits,
    _sre_c.CATEGORY_NOT_WORD: "-",
    _sre_c.CATEGORY_SPACE: " ",
    _sre_c.CATEGORY_NOT_SPACE: string.ascii_letters + string.digits,
}


def _set_matches(ch: str, items: list[tuple[Any, Any]]) -> bool:
    code = ord(ch)
    for op, av in items:
        if op == _sre_c.LITERAL and av == code:
            return True
        if op == _sre_c.RANGE and av[0] <= code <= av[1]:
            return True
        if op == _sre_c.CATEGORY and ch in _CATEGORY_CHARS.get(av, ""):
            return True
    return False


def _pick_from_set(items: list[tuple[Any, Any]], rnd: _Rand) -> str:
    if items and items[0][0] == _sre_c.NEGATE:
        allowed = [c for c in _SAFE_CHARS if not _set_matches(c, items[1:])]
        if not allowed:
            raise _Unsupported
        return str(rnd.choice(allowed))
    options: list[str] = []
    for op, av in items:
        if op == _sre_c.LITERAL:
            options.append(chr(av))
        elif op == _sre_c.RANGE:
            lo, hi = av
            span = min(hi - lo, 200)
            options.append(chr(lo + rnd.below(span + 1)))
        elif op == _sre_c.CATEGORY:
            options.append(str(rnd.choice(_CATEGORY_CHARS.get(av, "x"))))
    if not options:
        raise _Unsupported
    return str(rnd.choice(options))


def _emit(pattern: Any, rnd: _Rand, out: list[str], groups: dict[int, str]) -> None:
    for op, av in pattern:
        if op == _sre_c.LITERAL:
            out.append(chr(av))
        elif op == _sre_c.NOT_LITERAL:
            out.append(next(c for c in _SAFE_CHARS if ord(c) != av))
        elif op == _sre_c.ANY:
            out.append(str(rnd.choice(string.ascii_lowercase)))
        elif op == _sre_c.IN:
            out.append(_pick_from_set(list(av), rnd))
        elif op in (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT) or str(op) == "POSSESSIVE_REPEAT":
            lo, hi, sub = av
            hi = min(hi, lo + 3) if hi != _sre_c.MAXREPEAT else lo + 3
            for _ in range(rnd.between(lo, max(lo, hi))):
                _emit(sub, rnd, out, groups)
        elif op == _sre_c.SUBPATTERN:
            group, _add, _del, sub = av
            start = len(out)
            _emit(sub, rnd, out, groups)
            if group is not None:
                groups[group] = "".join(out[start:])
        elif str(op) == "ATOMIC_GROUP":
            _emit(av, rnd, out, groups)
        elif op == _sre_c.BRANCH:
            _emit(rnd.choice(av[1]), rnd, out, groups)
        elif op == _sre_c.GROUPREF:
            out.append(groups.get(av, ""))
        elif op == _sre_c.AT:
            continue
        else:
            raise _Unsupported


def string_for_pattern(pattern: str, seed: str, *, tries: int = 4) -> str | None:
    """A string that ``re.search(pattern, s)`` accepts, or ``None`` if none could be made."""
    try:
        parsed = _sre_p.parse(pattern)
        compiled = re.compile(pattern)
    except (re.error, TypeError, ValueError, RecursionError):
        return None
    for attempt in range(tries):
        rnd = _Rand(f"{seed}|pattern|{attempt}")
        out: list[str] = []
        try:
            _emit(parsed, rnd, out, {})
        except (_Unsupported, StopIteration, KeyError, TypeError, ValueError, IndexError):
            return None
        text = "".join(out)
        if compiled.search(text):
            return text
    return None


# --------------------------------------------------------------------------------------------
# Records from a JSON schema
# --------------------------------------------------------------------------------------------

_MAX_DEPTH = 6
_HARD_DEPTH = 40


def _is_null_schema(schema: Any) -> bool:
    return isinstance(schema, dict) and (
        schema.get("type") == "null" or ("const" in schema and schema["const"] is None)
    )


class SchemaFaker:
    """Deterministic values for a JSON schema; ``seed`` should identify the request."""

    def __init__(self, root: JSONDict, seed: str) -> None:
        self.root = root
        self.seed = seed

    # -- schema plumbing ---------------------------------------------------------------------

    def _ref(self, ref: str) -> JSONDict:
        if not ref.startswith("#"):
            raise _HTTPError(400, f"unsupported $ref {ref!r}: only local references work")
        node: Any = self.root
        for part in ref[1:].split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise _HTTPError(400, f"$ref {ref!r} does not resolve in the schema")
        if not isinstance(node, dict):
            raise _HTTPError(400, f"$ref {ref!r} does not point to a schema object")
        return node

    def resolve(self, schema: Any) -> JSONDict:
        """Follow ``$ref`` and merge ``allOf``; sibling keywords override the target."""
        if schema is True or schema is None:
            return {}
        if not isinstance(schema, dict):
            raise _HTTPError(400, f"invalid schema node: {schema!r}")
        seen = 0
        while "$ref" in schema or "allOf" in schema:
            seen += 1
            if seen > 50:
                raise _HTTPError(400, "schema $ref chain is too deep or cyclic")
            merged: JSONDict = {}
            if "$ref" in schema:
                merged.update(self._ref(schema["$ref"]))
            for part in schema.get("allOf") or []:
                merged.update(self.resolve(part))
            merged.update({k: v for k, v in schema.items() if k not in ("$ref", "allOf")})
            schema = merged
        return dict(schema)

    def _rand(self, path: str) -> _Rand:
        return _Rand(f"{self.seed}|{path}")

    # -- values ------------------------------------------------------------------------------

    def value(
        self,
        schema: Any,
        path: str,
        name: str,
        depth: int = 0,
        inherited: Mapping[str, Any] | None = None,
    ) -> Any:
        if depth > _HARD_DEPTH:
            raise _HTTPError(400, "schema nests too deeply")
        node = self.resolve(schema)
        cons = {**(inherited or {}), **_constraints_of(node)}
        rnd = self._rand(path)

        if "const" in node:
            return node["const"]
        if isinstance(node.get("enum"), list) and node["enum"]:
            return rnd.choice(node["enum"])
        for key in ("anyOf", "oneOf"):
            branches = node.get(key)
            if isinstance(branches, list) and branches:
                non_null = [b for b in branches if not _is_null_schema(self.resolve(b))]
                if not non_null or (depth >= _MAX_DEPTH and len(non_null) < len(branches)):
                    return None
                return self.value(non_null[0], path, name, depth, cons)

        typ = node.get("type")
        if isinstance(typ, list):
            kinds = [t for t in typ if t != "null"]
            if not kinds or (depth >= _MAX_DEPTH and "null" in typ):
                return None
            typ = kinds[0]
        if typ is None:
            if "properties" in node:
                typ = "object"
            elif "items" in node or "prefixItems" in node:
                typ = "array"
            else:
                typ = "string"

        if typ == "object":
            return self._object(node, path, depth)
        if typ == "array":
            return self._array(node, path, name, depth, cons)
        if typ == "string":
            return self._string(name, cons, rnd, path)
        if typ == "integer":
            return _gen_integer(cons, rnd)
        if typ == "number":
            return _gen_number(cons, rnd)
        if typ == "boolean":
            return rnd.below(2) == 1
        if typ == "null":
            return None
        raise _HTTPError(400, f"unsupported schema type {typ!r} at {path or 'root'}")

    def _object(self, node: JSONDict, path: str, depth: int) -> JSONDict:
        props = node.get("properties")
        out: JSONDict = {}
        if isinstance(props, dict) and props:
            for key, sub in props.items():
                out[key] = self.value(sub, f"{path}.{key}" if path else key, key, depth + 1)
            return out
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            rnd = self._rand(path + "{}")
            for i in range(rnd.between(1, 2)):
                key = f"key-{self._rand(f'{path}{{{i}}}').hex6}"
                out[key] = self.value(extra, f"{path}{{{i}}}", key, depth + 1)
        return out

    def _array(
        self, node: JSONDict, path: str, name: str, depth: int, cons: Mapping[str, Any]
    ) -> list[Any]:
        prefix = node.get("prefixItems")
        if isinstance(prefix, list) and prefix:
            return [
                self.value(sub, f"{path}[{i}]", name, depth + 1) for i, sub in enumerate(prefix)
            ]
        lo = _int_or_none(cons.get("minItems")) or 0
        hi = _int_or_none(cons.get("maxItems"))
        count = 0 if depth >= _MAX_DEPTH else self._rand(path + "#len").between(1, 3)
        count = max(count, lo)
        if hi is not None and hi >= lo:
            count = min(count, hi)
        items = node.get("items", {})
        values = [self.value(items, f"{path}[{i}]", name, depth + 1) for i in range(count)]
        if cons.get("uniqueItems") is True:
            unique: list[Any] = []
            seen: set[str] = set()
            for v in values:
                k = json.dumps(v, sort_keys=True)
                if k not in seen:
                    seen.add(k)
                    unique.append(v)
            if len(unique) >= lo:
                values = unique
        return values

    def _string(self, name: str, cons: Mapping[str, Any], rnd: _Rand, path: str) -> str:
        fmt = cons.get("format")
        if isinstance(fmt, str):
            formatted = self._formatted(fmt, name, rnd)
            if formatted is not None:
                return formatted
        pattern = cons.get("pattern")
        if isinstance(pattern, str) and pattern:
            found = string_for_pattern(pattern, f"{self.seed}|{path}")
            if found is not None and _length_ok(found, cons):
                return found
        text = _realistic(name, rnd)
        if text is None:
            label = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "value"
            text = f"{label}-{rnd.hex6}"
        return _fit_length(text, cons, rnd)

    @staticmethod
    def _formatted(fmt: str, name: str, rnd: _Rand) -> str | None:
        base = _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)
        if fmt == "date":
            return (base + _dt.timedelta(days=rnd.below(9000))).date().isoformat()
        if fmt == "date-time":
            moment = base + _dt.timedelta(seconds=rnd.below(9000 * 86400))
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        if fmt == "time":
            secs = rnd.below(86400)
            return f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"
        if fmt == "email":
            return f"{rnd.choice(_FIRST_NAMES)}-{rnd.hex6}@example.com"
        if fmt == "uuid":
            return str(uuid.UUID(bytes=rnd.digest[:16], version=4))
        if fmt in ("uri", "url", "iri"):
            return f"https://example.com/{rnd.hex6}"
        if fmt in ("hostname", "idn-hostname"):
            return f"host-{rnd.hex6}.example.com"
        if fmt == "ipv4":
            d = rnd.digest
            return f"10.{d[0]}.{d[1]}.{max(d[2], 1)}"
        if fmt == "ipv6":
            return f"fd00::{rnd.digest[0]:x}:{rnd.digest[1]:x}"
        if fmt == "duration":
            return f"PT{rnd.between(1, 600)}S"
        return None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _length_ok(text: str, cons: Mapping[str, Any]) -> bool:
    lo, hi = _int_or_none(cons.get("minLength")), _int_or_none(cons.get("maxLength"))
    if lo is not None and len(text) < lo:
        return False
    return not (hi is not None and len(text) > hi)


def _fit_length(text: str, cons: Mapping[str, Any], rnd: _Rand) -> str:
    lo = _int_or_none(cons.get("minLength"))
    hi = _int_or_none(cons.get("maxLength"))
    if lo is not None and hi is not None and lo > hi:
        return text
    if hi is not None and len(text) > hi:
        label, _, tail = text.rpartition("-")
        if hi >= len(tail) + 2 and label:
            text = f"{label[: hi - len(tail) - 1]}-{tail}"
        else:
            text = rnd.hex(max(hi, 0))
    if lo is not None and len(text) < lo:
        text += rnd.hex(lo - len(text))
    return text


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128
    fake: FakeLLM

    def server_activate(self) -> None:
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Hang up on every open (keep-alive) connection."""
        with self.connections_lock:
            open_now = list(self.connections)
        for conn in open_now:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (timeouts, aborted requests) are part of normal operation.
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _dispatch(self) -> None:
        try:
            self.server.fake._handle(self)
        except OSError:
            self.close_connection = True

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        return


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in (handler.headers.get("transfer-encoding") or "").lower():
        chunks: list[bytes] = []
        while True:
            line = handler.rfile.readline()
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        return b"".join(chunks)
    length = int(handler.headers.get("content-length") or 0)
    return handler.rfile.read(length) if length > 0 else b""


def _text_of(content: Any) -> str:
    """The text of a message ``content`` (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return ""


def _error_body(message: str, type_: str, code: str | None = None) -> JSONDict:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


# --------------------------------------------------------------------------------------------
# Texts written from fields, and records read back from them
# --------------------------------------------------------------------------------------------

_FIELDS_RE = re.compile(r"^Fields \(JSON\): (.+)$", re.MULTILINE)
_ENTRY_RE = re.compile(r"^Fields \(JSON\) #(\d+): (.+)$", re.MULTILINE)
_TEXT_RE = re.compile(r"^Text \(JSON\) #(\d+): (.+)$", re.MULTILINE)
_PREFERENCES_RE = re.compile(r"^Preferences \(JSON\): (.+)$", re.MULTILINE)
_PHRASE_RE = re.compile(r"(?:^|— |; )(?P<path>[^;«»—]+?): «(?P<value>[^«»]*)»")
_TEXT_INTRO = "Note — "
_FILLER = " More details follow."
_MIN_CHARS_KEYS = ("minimum_length", "min_length", "minimal_length")
_MIN_WORDS_KEYS = ("min_words", "minimum_words")


def _loads(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _marked(body: JSONDict, pattern: re.Pattern[str]) -> list[Any]:
    """The matches of ``pattern`` in the last user message that has any."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            found = pattern.findall(_text_of(message.get("content")))
            if found:
                return found
    return []


def _preferences(body: JSONDict) -> JSONDict:
    """The last ``Preferences (JSON):`` object of the conversation, keys normalised."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict):
            found = _PREFERENCES_RE.findall(_text_of(message.get("content")))
            value = _loads(found[-1]) if found else None
            if isinstance(value, dict):
                return {
                    re.sub(r"[\s\-]+", "_", str(k).strip().lower()): v for k, v in value.items()
                }
    return {}


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def leaf_phrases(value: Any, path: str = "") -> list[tuple[str, str, Any]]:
    """``(path, shown, leaf)`` for every leaf: ``movies[1]``, ``address.city``, ``[0].actor``;
    an empty list or dict is a leaf shown as ``[]``/``{}`` (with ``None`` as the leaf)."""
    if isinstance(value, dict):
        if not value:
            return [(path or "value", "{}", None)]
        return [
            phrase
            for key, item in value.items()
            for phrase in leaf_phrases(item, f"{path}.{key}" if path else str(key))
        ]
    if isinstance(value, list):
        if not value:
            return [(path or "value", "[]", None)]
        return [
            phrase for i, item in enumerate(value) for phrase in leaf_phrases(item, f"{path}[{i}]")
        ]
    return [(path or "value", _show(value), value)]


def write_text(fields: Any, preferences: Mapping[str, Any], omit: set[str] | int = 0) -> str:
    """``Note — actor: «Tom Hanks»; movies[0]: «Forrest Gump».``, without the values in
    ``omit`` (or the first ``omit`` string/number values), padded with filler sentences to the
    ``minimum_length`` and ``min_words`` preferences."""
    phrases: list[str] = []
    position = 0
    for path, shown, leaf in leaf_phrases(fields):
        if isinstance(leaf, (str, int, float)) and not isinstance(leaf, bool):
            dropped = shown in omit if isinstance(omit, set) else position < omit
            position += 1
            if dropped:
                continue
        phrases.append(f"{path}: «{shown}»")
    text = _TEXT_INTRO + "; ".join(phrases) + "."
    min_chars = next((v for k in _MIN_CHARS_KEYS if isinstance(v := preferences.get(k), int)), 0)
    min_words = next((v for k in _MIN_WORDS_KEYS if isinstance(v := preferences.get(k), int)), 0)
    while len(text) < min_chars or len(text.split()) < min_words:
        text += _FILLER
    return text


def read_phrases(text: str) -> dict[str, str]:
    """The ``path: «value»`` phrases of a text written by :func:`write_text`."""
    return {m.group("path").strip(): m.group("value") for m in _PHRASE_RE.finditer(text)}


def _coerce(raw: str, typ: Any) -> tuple[bool, Any]:
    """``raw`` as a value of JSON type ``typ``, and whether that worked."""
    try:
        if typ == "integer":
            number = float(raw)
            return number.is_integer(), int(number) if number.is_integer() else None
        if typ == "number":
            return True, float(raw)
    except (ValueError, OverflowError):
        return False, None
    if typ == "boolean":
        return raw in ("true", "false"), raw == "true"
    if typ == "null":
        return raw == "null", None
    return typ in (None, "string"), raw


def _fill(
    faker: SchemaFaker, schema: Any, path: str, found: Mapping[str, str], depth: int = 0
) -> Any:
    """The value at ``path`` read from ``found`` phrases, or a schema-valid one."""
    if depth > _HARD_DEPTH:
        raise _HTTPError(400, "schema nests too deeply")
    node = faker.resolve(schema)
    raw = found.get(path)
    name = re.split(r"[.\[]", path)[-1] or "value"
    seed_path = f"text|{path}"
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if isinstance(branches, list) and branches:
            non_null = [b for b in branches if not _is_null_schema(faker.resolve(b))]
            if not non_null or (raw == "null" and len(non_null) < len(branches)):
                return None
            return _fill(faker, non_null[0], path, found, depth + 1)
    if "const" in node:
        return node["const"]
    typ = node.get("type")
    if isinstance(typ, list):
        if raw == "null" and "null" in typ:
            return None
        typ = next((t for t in typ if t != "null"), "null")
    if isinstance(node.get("enum"), list) and node["enum"]:
        match = [option for option in node["enum"] if raw is not None and _show(option) == raw]
        return match[0] if match else faker.value(node, seed_path, name, depth)
    if typ == "object" or (typ is None and "properties" in node):
        props = node.get("properties")
        if not isinstance(props, dict) or not props:
            return faker.value(node, seed_path, name, depth)
        return {
            key: _fill(faker, sub, f"{path}.{key}" if path else key, found, depth + 1)
            for key, sub in props.items()
        }
    if typ == "array" or (typ is None and "items" in node):
        if raw == "[]":
            return []
        prefix = f"{path}["
        indexes = [
            int(m.group(1))
            for p in found
            if p.startswith(prefix) and (m := re.match(r"(\d+)\]", p[len(prefix) :]))
        ]
        if not indexes:
            return faker.value(node, seed_path, name, depth)
        items = node.get("items", {})
        return [
            _fill(faker, items, f"{path}[{i}]", found, depth + 1) for i in range(max(indexes) + 1)
        ]
    if raw is not None:
        ok, value = _coerce(raw, typ)
        if ok:
            return value
    return faker.value(node, seed_path, name, depth)


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class FakeLLM:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 for tests.

    Switches (all restored by :meth:`reset`): ``supported_modes``, ``unsupported_status``,
    ``reject_seed``, ``timeout_delay``, ``response_delay``, ``retry_after_ms``,
    ``extra_response_fields``, ``omit_usage``, ``gzip``, ``text_omit_values``,
    ``text_omit_times``, ``extract_override``; faults via :meth:`enqueue` and :meth:`always`
    (a ``mutate`` fault sees ``[{"text": ...}]`` for a plain-text answer, the ``{"index",
    "text"}`` items of a text batch and the ``{"index", "record"}`` items of an extraction).
    Observations: ``requests``, ``request_count``, ``chat_requests``, ``prompt_tokens``,
    ``completion_tokens``, ``total_tokens``, ``max_in_flight``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._generation = 0
        self._in_flight = 0
        self._faults: deque[Fault] = deque()
        self._always: Fault | None = None
        self.requests: list[RecordedRequest] = []
        self._set_defaults()

    def _set_defaults(self) -> None:
        self.supported_modes: set[str] = set(MODES)
        self.unsupported_status: int = 400
        self.reject_seed: bool = False
        self.timeout_delay: float = 3.0
        self.response_delay: float = 0.0
        # When set, 429/500/503 faults also send ``retry-after-ms`` (0 = retry at once).
        self.retry_after_ms: float | None = None
        self.extra_response_fields: JSONDict = {}
        self.omit_usage: bool = False
        self.gzip: bool = False
        # Texts leave out the leaf values whose text form is in this set (or, for an int N,
        # their first N string/number values), in the next ``text_omit_times`` answers
        # (None: every answer until reset).
        self.text_omit_values: set[str] | int = set()
        self.text_omit_times: int | None = None
        # Top-level values every extracted record takes instead of those read from the text.
        self.extract_override: JSONDict = {}
        self.prompt_tokens: int = 0
        self.completion_tokens: int = 0
        self.max_in_flight: int = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeLLM:
        if self._httpd is not None:
            return self
        httpd = _Server((self.host, self.port), _Handler)
        httpd.fake = self
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

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``: the ``azure_endpoint`` for ``openai.AzureOpenAI``."""
        if self._httpd is None:
            raise RuntimeError("FakeLLM is not started")
        return f"http://{self.host}:{self.port}"

    azure_endpoint = origin

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: the ``base_url`` for ``openai.OpenAI``."""
        return f"{self.origin}/v1"

    def reset(self) -> None:
        """Forget requests, faults and counters and restore every switch to its default."""
        with self._lock:
            self._generation += 1
            self._in_flight = 0
            self._faults.clear()
            self._always = None
            self.requests = []
            self._set_defaults()

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
            return self._always

    # -- observations ------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.rstrip("/").endswith("/chat/completions")]

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
        """The answer to a request asking for neither JSON nor a tool call: a text written from
        the ``Fields (JSON):`` line of the last user message that has one, else ``"ok"``."""
        found = _marked(body, _FIELDS_RE)
        fields = _loads(found[-1]) if found else None
        if fields is None:
            return "ok"
        return write_text(fields, _preferences(body), self._take_omission())

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

    def _text_answer(
        self, faker: SchemaFaker, schema: JSONDict, body: JSONDict
    ) -> tuple[str, list[JSONDict]] | None:
        """``("texts", items)`` for a text batch, ``("records", items)`` for an extraction."""
        props = faker.resolve(schema).get("properties")
        if not isinstance(props, dict):
            return None
        if "texts" in props:
            entries = [(int(i), _loads(raw)) for i, raw in _marked(body, _ENTRY_RE)]
            if entries:
                prefs, omit = _preferences(body), self._take_omission()
                return "texts", [
                    {"index": i, "text": write_text(fields, prefs, omit)}
                    for i, fields in entries
                    if fields is not None
                ]
        if "records" in props:
            texts = [(int(i), _loads(raw)) for i, raw in _marked(body, _TEXT_RE)]
            item = faker.resolve(faker.resolve(props["records"]).get("items", {}))
            inner = item.get("properties")
            if texts and isinstance(inner, dict) and {"index", "record"} <= set(inner):
                records = []
                for i, text in texts:
                    found = read_phrases(text) if isinstance(text, str) else {}
                    record = _fill(faker, inner["record"], "", found)
                    if isinstance(record, dict):
                        record.update(json.loads(json.dumps(self.extract_override)))
                    records.append({"index": i, "record": record})
                return "records", records
        return None

    @classmethod
    def _item_faults(cls, items: list[Any], fault: Fault | None) -> list[Any]:
        kind = fault.kind if fault is not None else None
        if kind == "fewer":
            return items[: len(items) // 2]
        if kind == "more":
            return items + json.loads(json.dumps(items[:2]))
        return cls._record_faults(items, fault)

    # -- request handling --------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        raw = _read_body(handler)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        rec = RecordedRequest(
            method=handler.command,
            path=split.path,
            query=dict(parse_qsl(split.query)),
            headers=headers,
            body=body,
            raw_body=raw,
        )
        with self._lock:
            generation = self._generation
            self.requests.append(rec)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            self._route(handler, rec, generation)
        finally:
            with self._lock:
                if generation == self._generation:
                    self._in_flight -= 1

    def _route(self, handler: _Handler, rec: RecordedRequest, generation: int) -> None:
        azure = _AZURE_RE.match(rec.path)
        is_chat = rec.path in _CHAT_PATHS or azure is not None
        if not is_chat or rec.method != "POST":
            what = "Invalid URL" if is_chat else "Unknown request URL"
            self._send_error(
                handler, rec, 404, f"{what}: {rec.method} {rec.path}", "invalid_request_error"
            )
            return

        fault = self._next_fault()
        rec.fault = fault
        if self.response_delay > 0:
            time.sleep(self.response_delay)
        if fault is not None and fault.kind == "reset":
            self._abort(handler)
            rec.status = 0
            return
        if fault is not None and fault.kind in _HTTP_FAULTS:
            self._send_fault_status(handler, rec, fault.kind)
            return
        if fault is not None and fault.kind == "timeout":
            time.sleep(self.timeout_delay if fault.delay is None else fault.delay)

        try:
            response = self._complete(rec, fault, azure.group("deployment") if azure else None)
        except _HTTPError as err:
            self._send_error(handler, rec, err.status, err.message, err.type)
            return
        with self._lock:
            if generation == self._generation and not self.omit_usage:
                usage = response.get("usage") or {}
                self.prompt_tokens += int(usage.get("prompt_tokens", 0))
                self.completion_tokens += int(usage.get("completion_tokens", 0))
        self._send_json(handler, rec, 200, response)

    # -- building the completion -------------------------------------------------------------

    def _mode(self, body: JSONDict) -> tuple[str, JSONDict | None, str | None]:
        """(mode, schema, tool name); mode is one of MODES or "text"."""
        tools = body.get("tools")
        if tools:
            if "tools" not in self.supported_modes:
                raise _HTTPError(self.unsupported_status, "tools are not supported by this server")
            if not isinstance(tools, list):
                raise _HTTPError(400, "'tools' must be an array")
            functions = [
                t["function"]
                for t in tools
                if isinstance(t, dict) and isinstance(t.get("function"), dict)
            ]
            if not functions:
                raise _HTTPError(400, "'tools' has no function tool")
            choice = body.get("tool_choice")
            wanted: str | None = None
            if isinstance(choice, dict):
                wanted = (choice.get("function") or {}).get("name")
            chosen = functions[0]
            if wanted is not None:
                matches = [f for f in functions if f.get("name") == wanted]
                if not matches:
                    raise _HTTPError(400, f"tool_choice names an unknown function {wanted!r}")
                chosen = matches[0]
            params = chosen.get("parameters")
            if not isinstance(params, dict):
                raise _HTTPError(400, f"function {chosen.get('name')!r} has no parameters schema")
            return "tools", params, str(chosen.get("name", "function"))

        rf = body.get("response_format")
        if rf is None:
            return "text", None, None
        if not isinstance(rf, dict):
            raise _HTTPError(400, "'response_format' must be an object")
        kind = rf.get("type")
        if kind == "text":
            return "text", None, None
        if kind not in MODES or kind == "tools":
            raise _HTTPError(400, f"Invalid value for 'response_format.type': {kind!r}")
        if kind not in self.supported_modes:
            raise _HTTPError(
                self.unsupported_status,
                f"response_format type '{kind}' is not supported by this server",
            )
        if kind == "json_schema":
            spec = rf.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            if not isinstance(schema, dict):
                raise _HTTPError(400, "response_format.json_schema.schema is missing")
            return "json_schema", schema, None
        schema = rf.get("schema")
        if not isinstance(schema, dict):
            raise _HTTPError(
                400, "response_format json_object needs a 'schema' object on this server"
            )
        return "json_object", schema, None

    @staticmethod
    def requested_count(body: JSONDict) -> int:
        """The ``exactly N records`` count of the last user message (1 if absent)."""
        for message in reversed(body.get("messages") or []):
            if isinstance(message, dict) and message.get("role") == "user":
                found = _COUNT_RE.search(_text_of(message.get("content")))
                return int(found.group(1)) if found else 1
        return 1

    def generate(self, schema: JSONDict, body: JSONDict, fault: Fault | None = None) -> Any:
        """The object answering ``body`` for ``schema`` (with record faults applied)."""
        seed = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        faker = SchemaFaker(schema, seed)
        special = self._text_answer(faker, schema, body)
        if special is not None:
            key, items = special
            return {key: self._item_faults(items, fault)}
        asked = self.requested_count(body)
        kind = fault.kind if fault is not None else None
        count = {"fewer": asked // 2, "more": asked + 2}.get(kind or "", asked)

        root = faker.resolve(schema)
        props = root.get("properties")
        if root.get("type") == "array" or (not isinstance(props, dict) and "items" in root):
            records = [faker.value(root.get("items", {}), f"[{i}]", "item") for i in range(count)]
            return self._record_faults(records, fault)

        result: JSONDict = {}
        arrays: list[str] = []
        for key, sub in (props or {}).items():
            node = faker.resolve(sub)
            if node.get("type") == "array" and "prefixItems" not in node:
                items = node.get("items", {})
                result[key] = [faker.value(items, f"{key}[{i}]", key, 1) for i in range(count)]
                arrays.append(key)
            else:
                result[key] = faker.value(sub, key, key, 1)
        if arrays and kind in ("mutate", "duplicate"):
            target = "records" if "records" in arrays else arrays[0]
            for key in arrays if kind == "duplicate" else [target]:
                result[key] = self._record_faults(result[key], fault)
        return result

    @staticmethod
    def _record_faults(records: list[Any], fault: Fault | None) -> list[Any]:
        if fault is None:
            return records
        if fault.kind == "duplicate" and records:
            return [json.loads(json.dumps(records[0])) for _ in records]
        if fault.kind == "mutate" and fault.fn is not None:
            return list(fault.fn(json.loads(json.dumps(records))))
        return records

    def _complete(
        self, rec: RecordedRequest, fault: Fault | None, deployment: str | None
    ) -> JSONDict:
        body = rec.body
        if not isinstance(body, dict):
            raise _HTTPError(400, "We could not parse the JSON body of your request.")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise _HTTPError(400, "'messages' is a required property and must be non-empty")
        if self.reject_seed and "seed" in body:
            raise _HTTPError(400, "Unrecognized request argument supplied: seed")
        if body.get("stream"):
            raise _HTTPError(400, "stream=true is not supported by this server")

        mode, schema, tool_name = self._mode(body)
        if mode == "text":
            payload = self._plain_text(body)
            if fault is not None and fault.kind == "mutate" and fault.fn is not None:
                mutated = fault.fn([{"text": payload}])
                payload = str(mutated[0]["text"]) if mutated else ""
        else:
            assert schema is not None
            payload = json.dumps(self.generate(schema, body, fault))

        kind = fault.kind if fault is not None else None
        finish = "tool_calls" if mode == "tools" else "stop"
        if kind == "malformed":
            payload = payload[:-7] + "}{oops"
        elif kind == "truncated":
            payload = payload[: int(len(payload) * 0.6)]
            finish = "length"

        digest = hashlib.sha256(rec.raw_body).hexdigest()
        message: JSONDict = {"role": "assistant", "content": None, "refusal": None}
        produced = payload
        if kind == "refusal":
            message["refusal"] = produced = _REFUSAL_TEXT
            finish = "stop"
        elif mode == "tools":
            message["tool_calls"] = [
                {
                    "id": f"call_{digest[:24]}",
                    "type": "function",
                    "function": {"name": tool_name, "arguments": payload},
                }
            ]
        else:
            message["content"] = payload

        choices: list[JSONDict] = [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        ]
        if kind == "empty_choices":
            choices = []

        prompt_chars = sum(
            len(_text_of(m.get("content"))) for m in body["messages"] if isinstance(m, dict)
        )
        prompt_tokens = max(1, prompt_chars // 4)
        completion_tokens = max(1, len(produced) // 4)
        response: JSONDict = {
            "id": f"chatcmpl-{digest[:29]}",
            "object": "chat.completion",
            "created": _CREATED,
            "model": body.get("model") or deployment or "fake-llm",
            "choices": choices,
        }
        if not self.omit_usage:
            response["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        response.update(self.extra_response_fields)
        return response

    # -- writing responses -------------------------------------------------------------------

    def _send_fault_status(self, handler: _Handler, rec: RecordedRequest, kind: str) -> None:
        headers: dict[str, str] = {}
        if self.retry_after_ms is not None:
            # The SDK ignores a zero delay and falls back to its own backoff (0.5 s and up),
            # so "retry at once" is announced as a microsecond.
            headers["retry-after-ms"] = str(self.retry_after_ms or 0.001)
        if kind == "429":
            headers["retry-after"] = "0"
            self._send_error(
                handler,
                rec,
                429,
                "Rate limit reached for requests. Please try again later.",
                "rate_limit_error",
                code="rate_limit_exceeded",
                headers=headers,
            )
        elif kind == "503":
            self._send_error(
                handler,
                rec,
                503,
                "The server is overloaded or not ready yet.",
                "server_error",
                headers=headers,
            )
        else:
            self._send_error(
                handler,
                rec,
                500,
                "The server had an error while processing your request.",
                "server_error",
                headers=headers,
            )

    def _send_error(
        self,
        handler: _Handler,
        rec: RecordedRequest,
        status: int,
        message: str,
        type_: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._send_json(handler, rec, status, _error_body(message, type_, code), headers)

    def _send_json(
        self,
        handler: _Handler,
        rec: RecordedRequest,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        rec.status = status
        rec.response = payload
        data = json.dumps(payload).encode()
        encoding = None
        if self.gzip and "gzip" in rec.headers.get("accept-encoding", "").lower():
            data = _gzip.compress(data)
            encoding = "gzip"
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.send_header("x-request-id", f"req_{hashlib.sha256(rec.raw_body).hexdigest()[:24]}")
        if encoding:
            handler.send_header("content-encoding", encoding)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()

    @staticmethod
    def _abort(handler: _Handler) -> None:
        """Drop the connection with a TCP reset and no response at all."""
        handler.close_connection = True
        sock = handler.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.close()

    def __repr__(self) -> str:
        where = self.origin if self.running else "stopped"
        return f"<FakeLLM {where} requests={self.request_count}>"
