"""Every secret the run knows, by value, and keeping them out of stores and messages.

Secrets are collected rather than guessed: the API keys in the environment, the key of a
client passed in, every credential header a request carries (``Authorization``,
``api-key``, cookies ...), URL userinfo, the values of credential-like query parameters
(any name containing key, token, secret, sig, signature, code, password or auth) and a
client's ``default_headers`` and ``default_query``. Ordinary data is never rewritten
because it looks like a key.

* :func:`mask` replaces each secret in a text, in every encoding JSON, URLs, YAML or a
  Python ``repr`` can give it, character by character and in any mix: raw; backslash
  escapes ``\\uXXXX`` (surrogate pairs beyond the BMP), ``\\xXX``, ``\\UXXXXXXXX`` and
  ``\\/``, ``\\"``, ``\\'``, ``\\\\``, each with any number of backslashes (a JSON text
  inside a JSON string, a ``repr``); percent-encoding of the UTF-8 bytes, also
  percent-encoded again, and ``+`` for a space; YAML's ``''`` for a quote.
* :func:`found_in` tells whether a text about to be written holds one, in any of those
  encodings, so the write can be refused.
* :func:`redact` is :func:`mask` for text shown to people (messages, log records, the
  report header, tracebacks): it also hides any URL's userinfo and the value of any query
  parameter named like a credential, whatever their length.

Values shorter than :data:`MIN_SECRET` characters are placeholders (``EMPTY``, ``ollama``,
``anything``, as local servers take), not secrets: masking them would rewrite ordinary words.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MIN_SECRET = 12
"""Shorter values are treated as placeholders, not secrets."""

MASK = "REDACTED"

SECRET_ENV = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "AZURE_OPENAI_AD_TOKEN")
"""Environment variables whose values are secrets."""

_CREDENTIAL_NAME = re.compile(
    r"key|token|secret|sig|signature|code|password|passwd|auth|cookie|credential", re.IGNORECASE
)
_SCHEMES = re.compile(r"^(?:bearer|basic|token)\s+", re.IGNORECASE)


def is_credential_name(name: str) -> bool:
    """Whether a header or query parameter of this name carries a credential."""
    return _CREDENTIAL_NAME.search(name) is not None


class Registry:
    """The secret values this process has seen, and one pattern that finds them."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: tuple[list[str], re.Pattern[str]] | None = None
        self._lock = threading.Lock()

    def add(self, value: object) -> None:
        """Remember ``value`` (and, for ``Bearer xyz``, ``xyz``) as a secret."""
        if not isinstance(value, str):
            return
        candidates = {value.strip(), _SCHEMES.sub("", value.strip())}
        fresh = {v for v in candidates if len(v) >= MIN_SECRET and v not in self._values}
        if fresh:
            with self._lock:
                self._values |= fresh
                self._pattern = None

    def add_headers(self, headers: Mapping[str, object] | Iterable[tuple[str, object]]) -> None:
        """Remember the values of credential headers."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in items:
            if isinstance(name, str) and is_credential_name(name):
                self.add(value)

    def add_query(self, query: Mapping[str, object] | Iterable[tuple[str, object]]) -> None:
        """Remember the values of credential-like query parameters."""
        items = query.items() if isinstance(query, Mapping) else query
        for name, value in items:
            if isinstance(name, str) and is_credential_name(name):
                self.add(value)

    def add_url(self, url: object) -> None:
        """Remember a URL's userinfo and its credential-like query values."""
        if not isinstance(url, str) or not url:
            return
        try:
            parts = urlsplit(url)
        except ValueError:
            return
        self.add(unquote(parts.password or ""))
        if parts.username and parts.password is None:
            self.add(unquote(parts.username))
        self.add_query(parse_qsl(parts.query, keep_blank_values=True))

    def add_client(self, client: Any) -> None:
        """Remember every credential an openai client will send: its key, its base URL's,
        its default headers and query, an Azure AD token."""
        self.add(getattr(client, "api_key", None))
        self.add_url(str(getattr(client, "base_url", "")))
        headers = getattr(client, "default_headers", None) or {}
        self.add_headers((k, v) for k, v in headers.items() if isinstance(v, str))
        self.add_query((getattr(client, "default_query", None) or {}).items())
        for name in ("azure_ad_token", "_azure_ad_token"):
            self.add(getattr(client, name, None))

    def values(self) -> list[str]:
        """Every known secret, the environment's included, longest first."""
        env = {os.environ.get(name, "").strip() for name in SECRET_ENV}
        with self._lock:
            known = self._values | {v for v in env if len(v) >= MIN_SECRET}
        return sorted(known, key=lambda v: (-len(v), v))

    def pattern(self) -> re.Pattern[str] | None:
        """One regex matching any known secret in any encoding (``None``: none known)."""
        values = self.values()
        if not values:
            return None
        with self._lock:
            cached = self._pattern
        if cached is not None and cached[0] == values:
            return cached[1]
        compiled = re.compile("|".join(_encoded(v) for v in values))
        with self._lock:
            self._pattern = (values, compiled)
        return compiled

    def forget(self) -> None:
        """Forget the secrets seen so far (tests)."""
        with self._lock:
            self._values.clear()
            self._pattern = None


_BACKSLASHED = frozenset("/\"'\\")
"""Characters JSON, YAML or a ``repr`` may write after a backslash as themselves."""


def _encoded(secret: str) -> str:
    """A regex for ``secret`` with each character in any of its encodings (see :func:`mask`)."""
    return "".join("(?:" + "|".join(_char_options(char)) + ")" for char in secret)


def _char_options(char: str) -> list[str]:
    """The regexes of one character: raw, backslash-escaped, percent-encoded, quoted."""
    code = ord(char)
    slash = r"\\+"  # one or more backslashes: an escape, possibly escaped again
    options = [re.escape(char)]
    if code < 0x10000:
        options.append(slash + "u" + _hex(code, 4))
    else:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        options.append(slash + "u" + _hex(high, 4) + slash + "u" + _hex(low, 4))
    if code < 0x100:
        options.append(slash + "x" + _hex(code, 2))
    options.append(slash + "U" + _hex(code, 8))
    if char in _BACKSLASHED:
        options.append(slash + re.escape(char))
    options.append("".join("%(?:25)*" + _hex(byte, 2) for byte in char.encode("utf-8")))
    if char == " ":
        options.append(r"\+")
    if char == "'":
        options.append("''")
    return options


def _hex(code: int, width: int) -> str:
    """``code`` in hex, either case."""
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in f"{code:0{width}x}")


REGISTRY = Registry()
"""The secrets of this process."""


def _plain(text: str) -> bool:
    """No escape of any kind in ``text``: a secret can only be there as itself."""
    return "\\" not in text and "%" not in text and "+" not in text and "''" not in text


def mask(text: str) -> str:
    """``text`` with every known secret replaced by ``REDACTED``, in any encoding."""
    if not text:
        return text
    if _plain(text):
        for value in REGISTRY.values():
            text = text.replace(value, MASK)
        return text
    if not found_in(text):
        return text
    pattern = REGISTRY.pattern()
    return text if pattern is None else pattern.sub(MASK, text)


def found_in(text: str) -> bool:
    """Whether ``text`` holds a known secret, in any encoding."""
    if not text:
        return False
    values = REGISTRY.values()
    if not values:
        return False
    if _plain(text):
        return any(value in text for value in values)
    if any(value in text for value in values):
        return True
    if not any("'" in value for value in values):  # else "''" pairs may span two parts
        found = _found_decoded(text, values)
        if found is not None:
            return found
    decoded = _decoded(text)
    variants = [text, decoded]
    if any(" " in value for value in values):
        variants.append(decoded.replace("+", " "))
    if any("'" in value for value in values):
        variants.append(decoded.replace("''", "'"))
    return any(value in variant for variant in variants for value in values)


_ESCAPE = re.compile(
    r"\\+(?:u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2})|U([0-9a-fA-F]{8})|([/\"'\\ ]))"
    r"|((?:%(?:25)*[0-9a-fA-F]{2})+)"
)
_PERCENT = re.compile(r"%(?:25)*([0-9a-fA-F]{2})")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTINUATION = re.compile(r"\\\n[ \t]*")


def _unescape(found: re.Match[str]) -> str:
    hex_code = found[1] or found[2] or found[3]
    if hex_code:
        code = int(hex_code, 16)
        return chr(code) if code < 0x110000 else found[0]
    if found[4]:
        return found[4]
    data = bytes(int(byte, 16) for byte in _PERCENT.findall(found[5]))
    return data.decode("utf-8", "replace")


def _found_decoded(text: str, values: list[str]) -> bool | None:
    """Whether a value is in ``text`` decoded (or, for a value with a space, in it decoded
    with ``+`` read as a space), decoded one part at a time: a stored dataset of 10,000
    records is checked without a decoded copy of it, nor the list of two strings an escape
    that ``re.sub`` builds first (over 10 MiB for a text of 2 MiB). ``None`` when a part
    holds a surrogate (the whole text is decoded then, as :func:`_decoded` does)."""
    spaced = any(" " in value for value in values)
    keep = max(len(value) for value in values) - 1  # a value may span two parts
    tail = ""
    for part in _decoded_parts(_continued(text)):
        if _SURROGATE.search(part):
            return None
        window = tail + part
        if any(value in window for value in values):
            return True
        if spaced and any(value in window.replace("+", " ") for value in values):
            return True
        tail = window[-keep:] if keep > 0 else ""
    return False


def _decoded_parts(text: str) -> Iterator[str]:
    """``_ESCAPE.sub(_unescape, text)`` in consecutive parts, each joined from a few
    thousand escapes (the pattern never matches an empty string)."""
    pieces: list[str] = []
    at = 0
    for found in _ESCAPE.finditer(text):
        pieces += (text[at : found.start()], _unescape(found))
        at = found.end()
        if len(pieces) >= _JOIN_EVERY:
            yield "".join(pieces)
            pieces.clear()
    pieces.append(text[at:])
    yield "".join(pieces)


_JOIN_EVERY = 4096


def _continued(text: str) -> str:
    """YAML's escaped line breaks removed: the line goes on after the indent."""
    return _CONTINUATION.sub("", text) if "\\\n" in text else text


def _decoded(text: str) -> str:
    """``text`` with every escape :func:`mask` knows decoded, in one pass (the same
    encodings as its pattern, read the other way: fast on a large text)."""
    out = "".join(_decoded_parts(_continued(text)))
    if _SURROGATE.search(out):  # JSON's surrogate pairs
        out = out.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return out


_USERINFO = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*:(?:\\*/|%2[fF]){2})(?P<info>[^\s/?#@'\"<>\\]+)@"
)
_QUERY = re.compile(
    r"(?P<head>(?:[?&;]|\\u0026|%26|%3[fF])(?P<name>[A-Za-z0-9_.\-]+)(?:=|%3[dD]))"
    r"(?P<value>[^&#\s'\"<>\\]+)"
)


def _query_value(found: re.Match[str]) -> str:
    if found["value"] == MASK or not is_credential_name(found["name"]):
        return found[0]
    return found["head"] + MASK


_CUT = re.compile(r"([^\s'\"]{4,})\.\.\.([^\s'\"]{4,})")
"""A value shortened as ``start...end`` (pytest cuts a long ``repr`` in its middle)."""


def _cut_secret(found: re.Match[str]) -> str:
    """A shortened secret (its start, ``...``, its end) masked; anything else as it is."""
    head, tail = found[1], found[2]
    for value in REGISTRY.values():
        start = next((k for k in range(min(len(head), len(value)), 3, -1)
                      if head.endswith(value[:k])), 0)  # fmt: skip
        end = next((k for k in range(min(len(tail), len(value)), 3, -1)
                    if tail.startswith(value[-k:])), 0)  # fmt: skip
        if start and end and start + end >= 12:
            return head[:-start] + MASK + tail[end:]
    return found[0]


def redact(text: str) -> str:
    """``text`` as it may be shown: every known secret masked (:func:`mask`), and every
    URL's userinfo and credential-named query values replaced by ``REDACTED``, however short
    (``https://user:pw@host/v1?sig=abc`` reads ``https://REDACTED@host/v1?sig=REDACTED``)."""
    if not text:
        return text
    text = mask(text)
    if "..." in text:
        text = _CUT.sub(_cut_secret, text)
    if "@" in text:
        text = _USERINFO.sub(lambda m: m["head"] + MASK + "@", text)
    if "=" in text or "%" in text:
        text = _QUERY.sub(_query_value, text)
    return text
