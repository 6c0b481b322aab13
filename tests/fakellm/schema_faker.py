"""Deterministic values for a JSON schema: what the fake model writes into its answers.

:class:`SchemaFaker` follows local ``$ref``/``allOf``, ``anyOf``/``oneOf``, ``const``,
``enum``, nested objects and arrays, and honours validation keywords wherever they are: on
the schema node itself or written into its ``description`` as a ``(constraints: k=v, ...)``
suffix (:func:`parse_description_constraints`). Strings get readable values for common field
names (names, e-mails, codes, cities), a value in the requested ``format``, or a string
matching the ``pattern`` (:func:`string_for_pattern`). Every value is derived from a seed
(sha256 of the request, by default), so the same request always gets the same answer.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import json
import math
import re
import string
import struct
import uuid
from collections.abc import Mapping
from typing import Any

# The regex parser of the standard library, used to build strings matching a ``pattern``.
_sre_c: Any
_sre_p: Any
try:  # Python >= 3.11
    _sre_c = importlib.import_module("re._constants")
    _sre_p = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover - Python 3.10
    _sre_c = importlib.import_module("sre_constants")
    _sre_p = importlib.import_module("sre_parse")

__all__ = [
    "CONSTRAINT_KEYS",
    "Rand",
    "SchemaError",
    "SchemaFaker",
    "parse_description_constraints",
    "string_for_pattern",
]

JSONDict = dict[str, Any]


class SchemaError(ValueError):
    """A schema the faker cannot follow (answered with HTTP 400)."""


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

# Unusual names, as a model asked for realistic, varied people would pick them.
_FIRST_NAMES = (
    *("Aurelio", "Bathsheba", "Cosimo", "Delphine", "Eero", "Fenella", "Gwendolyn", "Hamish"),
    *("Isolde", "Jago", "Kerensa", "Leopold", "Marisol", "Nkechi", "Oisin", "Perpetua", "Quillon"),
    *("Rosalind", "Saoirse", "Thaddeus", "Ulrike", "Valentin", "Wilhelmina", "Xanthe", "Yevgenia"),
    *("Zebedee", "Anouk", "Barnaby", "Calliope", "Dagny", "Evander", "Florentyna", "Gideon"),
    *("Hyacinth", "Ignatius", "Jessamy", "Kasimir", "Lavinia", "Mordecai", "Neriah", "Octavia"),
    *("Peregrine", "Quintessa", "Radomir", "Seraphina", "Tobiah", "Ulysses", "Verity", "Wolfram"),
    *("Ximena", "Yorick", "Zenobia"),
)
_LAST_NAMES = (
    *("Abernathy", "Blackwood", "Carrow", "Dunmore", "Ekwueme", "Fairweather", "Gallagher"),
    *("Haverford", "Iyer", "Jablonski", "Kowalczyk", "Lindqvist", "Montgomery", "Nakashima"),
    *("Oyelaran", "Pemberton", "Quayle", "Rasmussen", "Szczepanski", "Thistlewood", "Umberfield"),
    *("Vasquez-Orr", "Whitlock", "Xiong", "Yarborough", "Zabriskie", "Ashdown", "Bramwell"),
    *("Cheung", "Delacroix", "Eriksen", "Featherstonehaugh", "Grimaldi", "Holloway", "Ingersoll"),
    *("Jorgensen", "Kilbride", "Loxley", "Mbeki", "Nightingale", "Okonkwo", "Prendergast"),
    *("Quimby", "Rowntree", "Sandoval", "Trevelyan", "Uchida", "Vandermeer", "Winterbottom"),
    "Yoshida",
)
_CITIES = ("Lisbon", "Accra", "Osaka", "Tampere", "Cusco", "Tbilisi", "Porto", "Nairobi")
_WORDS = ("login", "invoice", "refund", "export", "password", "billing", "upload", "sync")


def _realistic(name: str, rnd: Rand) -> str | None:
    """Readable values for common field names (the rest stay ``<field>-<hex>``)."""
    lowered = name.lower()
    first, last = rnd.choice(_FIRST_NAMES), rnd.choice(_LAST_NAMES)
    if "email" in lowered:
        return f"{first.lower()}.{last.lower()}.{rnd.hex(3)}@example.com"
    if lowered.endswith("name"):
        return f"{first} {last}"
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
# Deterministic randomness
# --------------------------------------------------------------------------------------------


class Rand:
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


def _gen_integer(cons: Mapping[str, Any], rnd: Rand) -> int:
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


def _gen_number(cons: Mapping[str, Any], rnd: Rand) -> float:
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


def _pick_from_set(items: list[tuple[Any, Any]], rnd: Rand) -> str:
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


def _emit(pattern: Any, rnd: Rand, out: list[str], groups: dict[int, str]) -> None:
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
        rnd = Rand(f"{seed}|pattern|{attempt}")
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

MAX_DEPTH = 6
HARD_DEPTH = 40


def is_null_schema(schema: Any) -> bool:
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
            raise SchemaError(f"unsupported $ref {ref!r}: only local references work")
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
                raise SchemaError(f"$ref {ref!r} does not resolve in the schema")
        if not isinstance(node, dict):
            raise SchemaError(f"$ref {ref!r} does not point to a schema object")
        return node

    def resolve(self, schema: Any) -> JSONDict:
        """Follow ``$ref`` and merge ``allOf``; sibling keywords override the target."""
        if schema is True or schema is None:
            return {}
        if not isinstance(schema, dict):
            raise SchemaError(f"invalid schema node: {schema!r}")
        seen = 0
        while "$ref" in schema or "allOf" in schema:
            seen += 1
            if seen > 50:
                raise SchemaError("schema $ref chain is too deep or cyclic")
            merged: JSONDict = {}
            if "$ref" in schema:
                merged.update(self._ref(schema["$ref"]))
            for part in schema.get("allOf") or []:
                merged.update(self.resolve(part))
            merged.update({k: v for k, v in schema.items() if k not in ("$ref", "allOf")})
            schema = merged
        return dict(schema)

    def _rand(self, path: str) -> Rand:
        return Rand(f"{self.seed}|{path}")

    # -- values ------------------------------------------------------------------------------

    def value(
        self,
        schema: Any,
        path: str,
        name: str,
        depth: int = 0,
        inherited: Mapping[str, Any] | None = None,
    ) -> Any:
        if depth > HARD_DEPTH:
            raise SchemaError("schema nests too deeply")
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
                non_null = [b for b in branches if not is_null_schema(self.resolve(b))]
                if not non_null or (depth >= MAX_DEPTH and len(non_null) < len(branches)):
                    return None
                return self.value(non_null[0], path, name, depth, cons)

        typ = node.get("type")
        if isinstance(typ, list):
            kinds = [t for t in typ if t != "null"]
            if not kinds or (depth >= MAX_DEPTH and "null" in typ):
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
        raise SchemaError(f"unsupported schema type {typ!r} at {path or 'root'}")

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
        count = 0 if depth >= MAX_DEPTH else self._rand(path + "#len").between(1, 3)
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

    def _string(self, name: str, cons: Mapping[str, Any], rnd: Rand, path: str) -> str:
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
    def _formatted(fmt: str, name: str, rnd: Rand) -> str | None:
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
            return f"{rnd.choice(_FIRST_NAMES).lower()}-{rnd.hex6}@example.com"
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


def _fit_length(text: str, cons: Mapping[str, Any], rnd: Rand) -> str:
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
