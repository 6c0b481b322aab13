"""The checksum that makes a cassette what this tool wrote, or an error.

Every cassette starts with one line, ``checksum: sha256:<hex>``, over the rest of the file.
The digest is taken over normalised text: line breaks as ``\\n`` (whether they were
``\\r\\n``, ``\\r`` alone as on old Macs, or a mix), no trailing spaces or tabs
on a line, no byte-order mark, exactly one newline at the end. So git's CRLF conversion and
the usual end-of-file and trailing-whitespace fixers leave a cassette valid, and they cannot
change what it holds either: the serializer never writes a line whose trailing white space
means something (PyYAML quotes such strings instead of writing them as blocks). Any other
change (an edited or duplicated record, an edited answer, a truncated file, appended text,
an empty file) fails :func:`verify` with what is wrong.
"""

from __future__ import annotations

import hashlib
import re

HEADER = "checksum: sha256:"
_TRAILING = re.compile(r"[ \t]+\n")
_TRAILING_BYTES = re.compile(rb"[ \t]+\n")
_NO_CHECKSUM = (
    "it has no checksum line, so it was not written by this version of pytest-synthdata "
    "(or was rewritten by hand)"
)
_MISMATCH = (
    "its content does not match its checksum: it was edited, truncated or appended to "
    "after it was recorded"
)


class Tampered(ValueError):
    """The text is not a cassette as this tool wrote it; the message says what is wrong."""


def normalise(body: str) -> str:
    """``body`` as the checksum sees it."""
    if body.startswith("\ufeff"):
        body = body[1:]
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    if " \n" in body or "\t\n" in body:
        body = _TRAILING.sub("\n", body)
    return body.rstrip(" \t\n") + "\n"


def seal(body: str) -> str:
    """``body`` (a serialized cassette) with its checksum line in front."""
    body = normalise(body)
    return f"{HEADER}{hashlib.sha256(body.encode('utf-8')).hexdigest()}\n{body}"


def verify_bytes(data: bytes) -> bytes:
    """:func:`verify` on the file's bytes, without decoding the whole file: a cassette as
    this tool wrote it is checked with one hash; only a file that a fixer touched (CRLF,
    trailing white space ...) is normalised first. Returns the body, normalised."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    first = data.find(b"\n")
    if b"\r" in (data if first < 0 else data[:first]):  # CR-only (old Mac) or CRLF line ends
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    line, _, body = data.partition(b"\n")
    line = line.rstrip(b"\r \t")
    header = HEADER.encode()
    if not line.startswith(header):
        raise Tampered("the file is empty" if not data.strip() else _NO_CHECKSUM)
    expected = line[len(header) :].strip()
    if hashlib.sha256(body).hexdigest().encode() == expected:
        return body
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if b" \n" in body or b"\t\n" in body:
        body = _TRAILING_BYTES.sub(b"\n", body)
    body = body.rstrip(b" \t\n") + b"\n"
    if hashlib.sha256(body).hexdigest().encode() != expected:
        raise Tampered(_MISMATCH)
    return body


def verify(text: str) -> str:
    """The body of a sealed cassette, normalised; :class:`Tampered` if it is not one."""
    return verify_bytes(text.encode("utf-8")).decode("utf-8")
