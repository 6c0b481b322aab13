"""vcrpy cassettes: a reviewable, checksummed YAML format, body matching, keeping secrets out.

Cassettes are YAML with sorted keys, JSON bodies stored as YAML mappings and multi-line
strings as blocks, so a re-recording reads well in a diff, sealed by a checksum line
(:mod:`.integrity`). Only the ``content-type`` header is kept; credential query values and
URL userinfo are taken out, a known secret in a request is masked (see :mod:`.secrets`), and
a cassette whose answers would hold one is refused. Writes go through a temporary file and a
rename.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import vcr
import yaml
from vcr.persisters.filesystem import CassetteNotFoundError
from vcr.request import Request

from ..errors import UNSUPPORTED_HINTS, SynthRecordingError
from .integrity import Tampered, seal, verify, verify_bytes
from .paths import DATASET_PREFIX
from .secrets import MASK, REGISTRY, found_in, is_credential_name, mask
from .vcrcompat import deserialize, install, serialize

KEEP_HEADERS = frozenset({"content-type"})
_TRANSIENT = frozenset({408, 409, 425, 429, 502, 503, 504})
_MODE_HINTS = (*UNSUPPORTED_HINTS, "seed")  # rejections worth replaying


# --- secrets -----------------------------------------------------------------------------


def _clean_uri(uri: str) -> str:
    """The URI without userinfo, credential-like query values masked by name, and any
    other known secret masked by value."""
    parts = urlsplit(uri)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    pairs = [pair.partition("=") for pair in parts.query.split("&") if pair]
    query = "&".join(
        f"{name}={MASK if is_credential_name(unquote(name)) else value}" if sep else name
        for name, sep, value in pairs
    )
    return mask(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def _mask_body(body: object) -> object:
    if isinstance(body, bytes):
        text = body.decode("utf-8", "replace")
        return mask(text).encode() if found_in(text) else body
    if isinstance(body, str):
        return mask(body)
    return body


def before_record_request(request: Request) -> Request:
    """Keep only the content type; take the credentials out of the URI and the body.

    vcrpy applies this to every request it matches as well as to those it records, so a
    masked value matches its masked recording."""
    REGISTRY.add_headers(request.headers.items())
    REGISTRY.add_url(request.uri)
    request.headers = {k: v for k, v in request.headers.items() if k.lower() in KEEP_HEADERS}
    request.uri = _clean_uri(request.uri)
    request.body = _mask_body(request.body)
    return request


def kept(status: int, body: object) -> bool:
    """Whether a cassette keeps an answer: not a transient failure (429, 5xx), which
    replays skip, but a server error that rejects a feature is kept (it steers the mode
    ladder the same way on replay)."""
    return not (status in _TRANSIENT or (status >= 500 and not _names_unsupported(body)))


def before_record_response(response: dict[str, Any]) -> dict[str, Any] | None:
    """Drop transient failures (429, 5xx) so replays skip them; keep only content-type."""
    status = int(response.get("status", {}).get("code", 200))
    body = response.get("body", {}).get("string", b"")
    if not kept(status, body):
        return None
    response["headers"] = {
        k: v for k, v in response.get("headers", {}).items() if k.lower() in KEEP_HEADERS
    }
    response["body"] = {"string": body}  # never masked: a masked answer replays other data
    return response


def _names_unsupported(body: object) -> bool:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    return any(hint in text.lower() for hint in _MODE_HINTS)


# --- matching ----------------------------------------------------------------------------


def _json_or_text(body: object) -> object:
    if body is None:
        return None
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@functools.lru_cache(maxsize=4096)
def _canonical_digest(body: bytes | str | None) -> str:
    """A digest of the body as canonical JSON, computed once per distinct body."""
    canonical = json.dumps(_json_or_text(body), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def body_matcher(r1: Request, r2: Request) -> None:
    """vcrpy matcher: the bodies are equal as JSON (key order and spacing do not matter).

    vcrpy compares a request with every recorded one, so the canonical form of each body is
    computed once and remembered.
    """
    if _digest_of(r1.body) != _digest_of(r2.body):
        raise AssertionError("request bodies differ")


def _digest_of(body: object) -> str:
    if body is None or isinstance(body, (bytes, str)):
        return _canonical_digest(body)
    return _canonical_digest(str(body))


def exchange_id(method: str, uri: str, body: object) -> str:
    """A short name for a recorded exchange: what it is matched on (method, path, query,
    body as canonical JSON), taken from the request as the cassette stores it (after
    :func:`before_record_request`). Stored datasets list the exchanges they took by it."""
    parts = urlsplit(uri)
    query = sorted(parse_qsl(parts.query, keep_blank_values=True))
    raw = json.dumps([method.upper(), parts.path, query, _digest_of(body)])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def explain_difference(request: Request, recorded: list[Request]) -> str:
    """What differs between a request and the closest recorded one, in a few lines."""
    new = _json_or_text(request.body)
    if not recorded:
        return "the cassette holds no recording for this request"
    best: tuple[int, list[str]] | None = None
    for old_request in recorded:
        old = _json_or_text(old_request.body)
        lines = _diff(old, new)
        if best is None or len(lines) < best[0]:
            best = (len(lines), lines)
    assert best is not None
    return "closest recording differs in: " + "; ".join(best[1][:4])


def _diff(old: object, new: object) -> list[str]:
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return ["the request body"] if old != new else []
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        if key == "messages":
            out.append("the prompt (" + _prompt_change(old.get(key), new.get(key)) + ")")
        elif key in ("response_format", "tools"):
            out.append(f"{key} (the schema or the structured mode)")
        else:
            out.append(f"{key}: recorded {old.get(key)!r}, now {new.get(key)!r}")
    return out


def _prompt_change(old: object, new: object) -> str:
    def text(messages: object) -> list[str]:
        if not isinstance(messages, list):
            return []
        return "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict)).split(
            "\n"
        )

    def short(line: str) -> str:
        return repr(line if len(line) <= 100 else line[:97] + "...")

    before, after = text(old), text(new)
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        was = short(before[i1]) if i1 < i2 else "nothing"
        now = short(after[j1]) if j1 < j2 else "nothing"
        return f"recorded {was}, now {now}"
    return "message structure"


# --- the file format ---------------------------------------------------------------------


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True  # never an anchor or an alias: a value shared twice is written twice


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Aliased(ValueError):
    """The YAML holds anchors or aliases, or is nested too deep: not what this tool writes."""


def _load(text: str) -> Any:
    """YAML as this tool writes it: with an anchor or an alias anywhere, it is refused
    before anything is expanded (an alias bomb would take minutes and gigabytes)."""
    if "&" in text or "*" in text:  # else there can be neither
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise Aliased(
                    "it holds YAML anchors or aliases, which pytest-synthdata never writes"
                )
    try:
        return yaml.load(text, Loader=_Loader)
    except RecursionError:
        raise Aliased("it is nested deeper than any cassette pytest-synthdata writes") from None


def _pack_body(body: object) -> object:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body[:1] in "{[":
        try:
            return {"json": json.loads(body)}
        except ValueError:
            pass
    return body


def _unpack_body(body: object) -> object:
    if isinstance(body, dict) and set(body) == {"json"}:
        return json.dumps(body["json"], ensure_ascii=False, separators=(",", ":"))
    return body


_DATASETS = "datasets"
INCOMPLETE = "incomplete"
"""Metadata flag, written as a top-level ``incomplete: true`` line, of a cassette whose
recording session has not finished; the next run in ``once`` mode completes it."""
_INCOMPLETE_LINE = f"\n{INCOMPLETE}: true\n"


class YamlSerializer:
    """vcrpy serializer: YAML with decoded JSON bodies and sorted keys.

    Stored datasets (metadata entries named ``dataset:...``) are written under a top-level
    ``datasets`` key, records as JSON lines. With sorted keys it comes first in the file, so
    a replay can read it without parsing the ``interactions`` that follow.
    """

    @staticmethod
    def serialize(cassette_dict: dict[str, Any]) -> str:
        data = json.loads(json.dumps(cassette_dict, default=str))
        for interaction in data.get("interactions", []):
            request = interaction["request"]
            request["body"] = _pack_body(request.get("body"))
            response_body = interaction["response"].get("body", {})
            response_body["string"] = _pack_body(response_body.get("string"))
        metadata = data.get("metadata") or {}
        stored = {k: metadata.pop(k) for k in sorted(metadata) if k.startswith(DATASET_PREFIX)}
        if stored:
            data[_DATASETS] = stored
        if metadata.pop(INCOMPLETE, False):
            data[INCOMPLETE] = True
        if not metadata:
            data.pop("metadata", None)
        body: str = yaml.dump(data, Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=100)
        return seal(body)

    @staticmethod
    def deserialize(text: str) -> dict[str, Any]:
        try:
            return YamlSerializer._deserialize(text)
        except RecursionError:
            raise Aliased("it is nested deeper than any cassette pytest-synthdata writes") from None

    @staticmethod
    def _deserialize(text: str) -> dict[str, Any]:
        data = _load(verify(text))
        if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
            raise ValueError("not a cassette: no 'interactions' list")
        stored = data.pop(_DATASETS, None)
        if stored is not None:
            if not isinstance(stored, dict):
                raise ValueError(f"'{_DATASETS}' must be a mapping")
            data["metadata"] = {**(data.get("metadata") or {}), **stored}
        if data.pop(INCOMPLETE, False):
            data["metadata"] = {**(data.get("metadata") or {}), INCOMPLETE: True}
        for interaction in data["interactions"]:
            if not isinstance(interaction, dict) or {"request", "response"} - set(interaction):
                raise ValueError("an interaction lacks its request or response")
            request = interaction["request"]
            request["body"] = _unpack_body(request.get("body"))
            response_body = interaction["response"].setdefault("body", {})
            response_body["string"] = _unpack_body(response_body.get("string"))
        return data


class AtomicPersister:
    """vcrpy persister: atomic writes; a corrupt file is an error, never silently re-recorded."""

    @staticmethod
    def load_cassette(cassette_path: str | Path, serializer: Any) -> Any:
        path = Path(cassette_path)
        if not path.is_file():
            raise CassetteNotFoundError()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise corrupt(path, exc) from None
        try:
            return deserialize(text, serializer)
        except (ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
            raise corrupt(path, exc) from None

    @staticmethod
    def save_cassette(cassette_path: str | Path, cassette_dict: Any, serializer: Any) -> None:
        """Write atomically. A cassette that would hold a secret of this run is not written;
        the refusal is raised by :func:`raise_refusal` once vcrpy has removed its patches
        (an exception here would leave them in place)."""
        path = Path(cassette_path)
        text = serialize(cassette_dict, serializer)
        if found_in(text):
            _REFUSED[str(path)] = _refusal(path, cassette_dict)
            return
        write_atomically(path, text)


_REFUSED: dict[str, SynthRecordingError] = {}


def write_atomically(path: Path, text: str) -> None:
    """Write ``path`` atomically: a temporary file, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else _default_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _refusal(path: Path, cassette_dict: Any) -> SynthRecordingError:
    """Why ``path`` is not written: an answer echoes a secret, or something else holds one."""
    answers = [
        response.get("body", {}).get("string")
        for response in cassette_dict.get("responses", [])
        if isinstance(response, dict)
    ]
    if any(
        found_in(a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a))
        for a in answers
        if a
    ):
        return SynthRecordingError(
            f"refusing to record cassette {path}: an answer from the endpoint contains a "
            "secret this run uses (an API key or another credential). Recording it would "
            "write the secret to disk, and a masked copy would replay different data. Make "
            "the endpoint stop echoing credentials (or use a key it does not repeat), then "
            "record again"
        )
    return SynthRecordingError(
        f"refusing to write cassette {path}: it would contain a secret this run uses (an API "
        "key or another credential); check the examples and instructions for credentials"
    )


def read_text(path: Path) -> str | None:
    """The text of the cassette at ``path`` (``None``: there is none); unreadable is corrupt."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise corrupt(path, exc) from None


def read_datasets_entry(path: Path, key: str) -> dict[str, Any] | None:
    """The dataset entry stored under ``key`` in the cassette at ``path``, if any.

    The whole file's checksum is verified (a cassette that is not what this tool wrote is
    an error, never a miss); then only the part before the interactions is parsed.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise corrupt(path, exc) from None
    try:
        body = verify_bytes(data)  # checked as bytes: the whole file is never decoded
    except Tampered as exc:
        raise corrupt(path, exc) from None
    # Top-level keys are the only lines that start in column 0, sorted: the datasets end
    # where the interactions begin.
    end = body.find(b"\ninteractions:")
    if not body.startswith(f"{_DATASETS}:".encode()) or end < 0:
        return None
    try:
        text = body[: end + 1].decode("utf-8")
        quick = _quick_entry(text, key)
        if quick is not None:
            return quick
        head = _load(text)
    except (yaml.YAMLError, UnicodeDecodeError, Aliased) as exc:
        raise corrupt(path, exc) from None
    datasets = head.get(_DATASETS) if isinstance(head, dict) else None
    entry = datasets.get(key) if isinstance(datasets, dict) else None
    return entry if isinstance(entry, dict) else None


def is_incomplete(path: Path) -> bool:
    """Whether the cassette at ``path`` was left incomplete by an interrupted recording."""
    try:
        return _INCOMPLETE_LINE in verify(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, Tampered):
        return False  # a missing file is not; a corrupt one is reported when it is opened


def mark_complete(path: Path) -> None:
    """Drop the incomplete flag of a cassette (its recording session finished)."""
    try:
        body = verify(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, Tampered):
        return
    if _INCOMPLETE_LINE in body:
        write_atomically(path, seal(body.replace(_INCOMPLETE_LINE, "\n", 1)))


_NEXT_KEY = re.compile(r"\n  (?=\S)")
_BLOCK_END = re.compile(r"\n(?!      )")
_RECORDS = "\n    records: |\n"


def _quick_entry(head: str, key: str) -> dict[str, Any] | None:
    """The entry ``key`` of a verified datasets section, read without parsing its records
    block as YAML (the records are JSON lines in a literal block, which the serializer
    always writes that way unless a value forces another style). ``None``: not found this
    way; the caller parses the section."""
    marker = f"\n  {key}:\n"
    start = head.find(marker)
    if start < 0:
        return None
    start += len(marker) - 1
    found = _NEXT_KEY.search(head, start)
    entry = head[start : found.start() if found else len(head)]
    at = entry.find(_RECORDS)
    if at < 0:
        return None
    block = at + len(_RECORDS)
    ends = _BLOCK_END.search(entry, block)
    stop = ends.start() if ends else len(entry)
    records = entry[block:stop].replace("\n      ", "\n")
    if not records.startswith("      "):
        return None
    rest = _load("x:" + entry[:at] + entry[stop:])
    if not isinstance(rest, dict) or not isinstance(rest.get("x"), dict):
        return None
    return {**rest["x"], "records": records[6:] + "\n"}


def raise_refusal(path: Path) -> None:
    """Raise the refusal to write ``path``, if there was one."""
    refusal = _REFUSED.pop(str(path), None)
    if refusal is not None:
        raise refusal


def _default_mode() -> int:
    """0o666 minus the process umask: what a plain ``open(path, "w")`` would create."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def corrupt(path: Path, exc: BaseException, rerecord: str = "") -> SynthRecordingError:
    """The error for a cassette that is not what this tool wrote. Nothing is replayed from
    it or re-recorded over it; ``rerecord`` is the exact command that re-records it."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    what = reason if isinstance(exc, Tampered) else f"it cannot be read: {reason}"
    how = f": {rerecord}" if rerecord else _GENERIC
    return SynthRecordingError(
        f"cassette {path} is not what pytest-synthdata recorded ({what}). Nothing was "
        f"replayed from it or recorded over it; restore it from version control, or "
        f"re-record it{how}",
        corrupt=True,
    )


_GENERIC = " with --synth-record-mode=rewrite"


def with_command(error: SynthRecordingError, rerecord: str) -> SynthRecordingError:
    """``error`` for a corrupt cassette, naming the exact command that re-records it."""
    message = str(error)
    if not error.corrupt or not rerecord or not message.endswith(_GENERIC):
        return error
    return SynthRecordingError(message[: -len(_GENERIC)] + f": {rerecord}", corrupt=True)


def make_vcr() -> vcr.VCR:
    install()  # cassette metadata on vcrpy 8 (Python 3.10) too
    recorder = vcr.VCR(
        serializer="synthdata-yaml",
        match_on=["method", "path", "query", "synth_body"],
        before_record_request=before_record_request,
        before_record_response=before_record_response,
        decode_compressed_response=True,
        record_on_exception=False,
    )
    recorder.register_serializer("synthdata-yaml", YamlSerializer)
    recorder.register_matcher("synth_body", body_matcher)
    recorder.register_persister(AtomicPersister)
    return recorder
