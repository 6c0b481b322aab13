"""Texts written from field values, text datasets, and the extraction round trip.

The tested successor of LangChain's ``create_data_generation_chain`` and
``DatasetGenerator`` (write a text that uses given values) and of ``PydanticOutputParser``
/ ``create_extraction_chain_pydantic`` (read a record back out of a text)::

    text = generate_text({"actor": "Tom Hanks", "movies": ["Forrest Gump", "Green Mile"]},
                         {"style": "gossip", "minimum_length": 200})
    texts = generate_dataset([{"actor": "Tom Hanks"}, {"actor": "Tom Hardy"}])
    actor = extract(texts[0].text, Actor)
    report = round_trip(actors)  # a text per record, read back, compared field by field
    assert report.accuracy >= 0.95, report

**Fields** are a list (``["blue", "yellow"]``), a dict (``{"actor": "Tom Hanks", "movies":
[...]}``), a list of dicts, or a pydantic model instance (its ``model_dump(mode="json")``),
holding JSON values: strings, numbers, booleans, null, lists and dicts.

**Fidelity.** Every text must mention every leaf value of its fields, however deeply
nested: each string must occur in the text as whole words (``Tom`` is not found in
``Tomato``) and each number as a number, ignoring case, whitespace and number format
(``1,000`` = ``1000`` = ``1000.0``; ``$500`` contains ``500``; ``3.50`` = ``3.5``).
Booleans and nulls are not checked (prose states them in words) and dict keys are names,
not values. A text that misses values is re-asked, naming them, within the retry budget
(``max_retries``); :func:`missing_values` is the check itself.

**Preferences** are one dict for every text. Keys are matched ignoring case, spaces and
hyphens (``"Minimum Length"`` is ``minimum_length``):

=================================================  ====================  ===============
key                                                meaning               how
=================================================  ====================  ===============
``minimum_length``, ``min_length``,               at least N            **enforced**
``minimal_length``                                 characters
``maximum_length``, ``max_length``,               at most N             **enforced**
``maximal_length``                                 characters
``min_words``, ``minimum_words``                   at least N words      **enforced**
``max_words``, ``maximum_words``                   at most N words       **enforced**
anything else: ``style``, ``tone``, ``language``,  passed to the prompt  advisory
``audience``, ...
=================================================  ====================  ===============

An enforced preference is checked like fidelity (a text outside the bounds is re-asked,
saying by how much) and its value must be an integer (>= 0 for a minimum, >= 1 for a
maximum, the minimum not above the maximum), otherwise :class:`SynthConfigError` names the
key. Characters are counted on the stripped text; words are whitespace-separated.

**Requests.** :func:`generate_text` sends plain-text requests: at most ``1 +
max_retries``. :func:`generate_dataset` splits the ``N`` entries into ``ceil(N /
batch_size)`` batches (default batch size: up to 10 texts, fewer when long texts would not
fit in 60% of ``max_tokens``) and sends them concurrently, at most ``concurrency`` in
flight. Each batch is one structured request plus at most ``max_retries`` re-asks for the
texts still owed, so a dataset costs exactly ``ceil(N / batch_size)`` requests when every
text passes. A batch that still fails is given one more round, one text per request (small
local models manage a single text where a batch defeats them), so a dataset never costs more
than ``(ceil(N / batch_size) + N) * (1 + max_retries)`` requests.
:func:`extract_many` batches the same way (default: up to 10 records per request, fewer for
large schemas) but has no one-per-request round: at most ``ceil(N / batch_size) * (1 +
max_retries)`` requests. :func:`extract` is one batch of one. :func:`round_trip` costs one
:func:`generate_dataset` plus one :func:`extract_many` per record class. Under
``structured="auto"`` an endpoint that rejects a structured-output mode costs one rejected
request per mode, once per endpoint and process; the SDK's own HTTP retries are not counted.

**Usage.** :func:`generate_dataset` and :func:`extract_many` return a :class:`Dataset` (with
``.usage``); the report of :func:`round_trip` has ``.usage``; every function also accepts
``usage=Usage()`` and adds what the call cost to it, even when the call fails (a
:class:`SynthGenerationError` carries ``.usage`` as well).

**Prompt format.** Requests carry their inputs as one-line JSON after fixed markers, at the
start of a line of the last user message, so any OpenAI-compatible endpoint (and the test
suite's loopback server) can read them:

* ``Fields (JSON): {...}``: the fields of the single text of :func:`generate_text`;
* ``Fields (JSON) #<i>: {...}``: entry ``i`` (1-based position in the whole collection) of
  a text batch, answered as ``{"texts": [{"index": i, "text": "..."}]}``;
* ``Text (JSON) #<i>: "..."``: text ``i`` of an extraction batch (a JSON string), answered
  as ``{"records": [{"index": i, "record": {...}}]}``;
* ``Preferences (JSON): {...}``: the preferences, when given (first request only).

A follow-up request repeats, in its own last user message, the lines of just the entries
or texts still owed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, Union, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from typing_extensions import Unpack

from .api import Options, effective_settings, run_sync, run_with_llm
from .dataset import Dataset
from .errors import SynthConfigError, SynthGenerationError, UnsupportedModelError
from .schema import field_lines, schema_name, wrapper_schema
from .settings import Settings
from .spec import format_validation_error
from .usage import Usage

if TYPE_CHECKING:
    from .llm import LLM, Completion

__all__ = [
    "CallOptions",
    "Fields",
    "Mismatch",
    "RoundTripReport",
    "TextRecord",
    "aextract",
    "aextract_many",
    "agenerate_dataset",
    "agenerate_text",
    "around_trip",
    "extract",
    "extract_many",
    "generate_dataset",
    "generate_text",
    "missing_values",
    "round_trip",
]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
R = TypeVar("R")

Fields = Union[list[Any], dict[str, Any]]  # noqa: UP007 (a runtime alias on Python 3.10)
"""A list of values, a dict of named values, or a list of dicts (JSON values inside)."""

TEXT_BATCH = 10
"""Most texts (and extracted records) asked for per request unless ``batch_size`` is set."""

FLOAT_TOLERANCE = 1e-6
"""Relative tolerance of :func:`round_trip` when comparing floats."""


class CallOptions(Options, total=False):
    """The keywords every function of this module takes, as :func:`~pytest_synthdata.generate`
    does: the endpoint (``client``), the base ``settings``, a ``cassette`` and its
    ``record_mode``, a ``cache_dir``, a ``seed`` sent with every request, a ``usage`` to add
    the cost to, and any :class:`~pytest_synthdata.api.Options` override."""

    client: object | None
    settings: Settings | None
    cassette: str | Path | None
    record_mode: str
    cache_dir: str | Path | None
    seed: int | None
    usage: Usage | None


class TextRecord(BaseModel):
    """One entry of a text dataset: the fields and preferences it was written from."""

    model_config = ConfigDict(frozen=True)

    fields: Fields
    preferences: dict[str, Any] | None
    text: str


@dataclass(frozen=True)
class Mismatch:
    """A field whose extracted value differs from the record's (``index`` into the records)."""

    index: int
    field: str
    expected: Any
    got: Any
    text: str


@dataclass(frozen=True, repr=False)
class RoundTripReport:
    """How faithfully records survived being written as texts and extracted back.

    ``accuracy`` is the fraction of all compared fields that agree; ``per_field`` the same
    per field name; ``mismatches`` every disagreement, with its text. ``str(report)`` lists
    everything (texts included); ``repr(report)`` is one line that starts with the
    mismatches, so the message of ``assert report.accuracy >= 0.95, report`` shows them even
    where pytest shortens it.
    """

    total: int
    accuracy: float
    per_field: dict[str, float]
    mismatches: list[Mismatch]
    texts: list[str]
    extracted: list[BaseModel]
    usage: Usage = field(default_factory=Usage)

    def summary(self, limit: int = 20) -> str:
        """The accuracy, the per-field agreement and up to ``limit`` mismatches with texts."""
        lines = [
            f"round trip of {self.total} record(s): {self.accuracy:.1%} of fields agree, "
            f"{len(self.mismatches)} mismatch(es)"
        ]
        if self.per_field:
            lines.append(f"per field: {self._per_field()}")
        for mismatch in self.mismatches[:limit]:
            lines.append(f"  {_describe(mismatch)}")
            lines.append(f"    text: {_short(mismatch.text, 300)}")
        if len(self.mismatches) > limit:
            lines.append(f"  ... and {len(self.mismatches) - limit} more")
        lines.append(f"usage: {self.usage.summary()}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        shown = "; ".join(_describe(m) for m in self.mismatches[:5])
        more = f"; ... {len(self.mismatches) - 5} more" if len(self.mismatches) > 5 else ""
        return (
            f"<RoundTripReport {self.accuracy:.1%} agree, {len(self.mismatches)} mismatch(es)"
            f"{': ' + shown + more if shown else ''} | {self.total} record(s), per field: "
            f"{self._per_field()}>"
        )

    def _per_field(self) -> str:
        return ", ".join(f"{name} {share:.0%}" for name, share in self.per_field.items())


def _describe(mismatch: Mismatch) -> str:
    return (
        f"record {mismatch.index} {mismatch.field}: expected "
        f"{_short(_dumps(mismatch.expected))}, got {_short(_dumps(mismatch.got))}"
    )


# --------------------------------------------------------------------------- public API


async def agenerate_text(
    fields: Fields | BaseModel,
    preferences: Mapping[str, Any] | None = None,
    **common: Unpack[CallOptions],
) -> str:
    """A text that mentions every value of ``fields`` and follows ``preferences``.

    See the module documentation for the accepted fields, the enforced preferences and the
    request bound (``1 + max_retries``). Raises :class:`SynthGenerationError` when the
    retry budget runs out, naming the values still missing.
    """
    fields = _check_fields(fields, "fields")
    rules = _check_preferences(preferences)
    call = _call(common)

    async def work(session: _Session) -> str:
        return await _write_one(session, fields, rules)

    return await _run(call, "generate_text", [fields, rules.preferences], work)


def generate_text(
    fields: Fields | BaseModel,
    preferences: Mapping[str, Any] | None = None,
    **common: Unpack[CallOptions],
) -> str:
    """Blocking form of :func:`agenerate_text`."""
    return run_sync(agenerate_text(fields, preferences, **common))


async def agenerate_dataset(
    fields_collection: Sequence[Fields | BaseModel],
    preferences: Mapping[str, Any] | None = None,
    **common: Unpack[CallOptions],
) -> Dataset[TextRecord]:
    """One :class:`TextRecord` per entry of ``fields_collection``, in the same order.

    Entries are written in batches of ``batch_size`` (default: up to 10) per structured
    request, the batches concurrently: ``ceil(N / batch_size)`` requests when every text
    passes the fidelity and preference checks, at most ``(ceil(N / batch_size) + N) * (1 +
    max_retries)`` in all (see the module docstring). The result has a ``usage`` attribute.
    """
    entries = _check_collection(fields_collection)
    rules = _check_preferences(preferences)
    call = _call(common)
    if len(entries) > call.settings.max_n:
        raise SynthConfigError(
            f"{len(entries)} entries is above the limit of {call.settings.max_n} per dataset; "
            f"split them, or raise the limit with max_n={len(entries)}"
        )

    async def work(session: _Session) -> Dataset[TextRecord]:
        texts = await _write_many(session, entries, rules)
        records = [
            TextRecord(fields=fields, preferences=rules.preferences, text=text)
            for fields, text in zip(entries, texts, strict=True)
        ]
        return Dataset(records, session.usage)

    return await _run(call, "generate_dataset", [entries, rules.preferences], work)


def generate_dataset(
    fields_collection: Sequence[Fields | BaseModel],
    preferences: Mapping[str, Any] | None = None,
    **common: Unpack[CallOptions],
) -> Dataset[TextRecord]:
    """Blocking form of :func:`agenerate_dataset`."""
    return run_sync(agenerate_dataset(fields_collection, preferences, **common))


async def aextract_many(
    texts: Sequence[str], record_model: type[M], /, **common: Unpack[CallOptions]
) -> Dataset[M]:
    """One ``record_model`` record extracted from each text, in the same order.

    Each record is validated by ``record_model`` (validators included); invalid or missing records
    are re-asked with the validation errors, batched like :func:`generate_dataset`. The
    result has a ``usage`` attribute.
    """
    checked = _check_texts(texts)
    _check_target(record_model)
    call = _call(common)

    async def work(session: _Session) -> Dataset[M]:
        found = await _extract(session, record_model, list(enumerate(checked, 1)))
        return Dataset([cast(M, found[i]) for i in range(1, len(checked) + 1)], session.usage)

    return await _run(call, "extract", [_model_key(record_model), checked], work)


def extract_many(
    texts: Sequence[str], record_model: type[M], /, **common: Unpack[CallOptions]
) -> Dataset[M]:
    """Blocking form of :func:`aextract_many`."""
    return run_sync(aextract_many(texts, record_model, **common))


async def aextract(text: str, record_model: type[M], /, **common: Unpack[CallOptions]) -> M:
    """The ``record_model`` record stated by ``text``: one structured request, validated by
    the model, re-asked with the errors (at most ``1 + max_retries`` requests)."""
    if not isinstance(text, str) or not text.strip():
        raise SynthConfigError(f"text must be a non-empty string, got {_short(repr(text))}")
    return (await aextract_many([text], record_model, **common))[0]


def extract(text: str, record_model: type[M], /, **common: Unpack[CallOptions]) -> M:
    """Blocking form of :func:`aextract`."""
    return run_sync(aextract(text, record_model, **common))


async def around_trip(
    records: Sequence[BaseModel],
    preferences: Mapping[str, Any] | None = None,
    **common: Unpack[CallOptions],
) -> RoundTripReport:
    """Write a text for each record (its ``model_dump(mode="json")`` as the fields, through
    :func:`generate_dataset`), extract each text back into the record's class, and compare
    them field by field.

    Strings compare ignoring case, whitespace and number format; numbers with a relative
    tolerance of 1e-6; lists as multisets (order ignored); dicts key by key.
    """
    if isinstance(records, BaseModel) or not isinstance(records, Sequence) or not records:
        raise SynthConfigError(
            "records must be a non-empty list of pydantic model instances, got "
            f"{_short(repr(records))}"
        )
    for i, record in enumerate(records):
        if not isinstance(record, BaseModel):
            raise SynthConfigError(
                f"records[{i}] is a {type(record).__name__}, not a pydantic model instance"
            )
    classes = list(dict.fromkeys(type(record) for record in records))
    for cls in classes:
        _check_target(cls)
    entries = [_check_fields(record, f"records[{i}]") for i, record in enumerate(records)]
    rules = _check_preferences(preferences)
    call = _call(common)

    async def work(session: _Session) -> RoundTripReport:
        texts = await _write_many(session, entries, rules)
        groups = [
            [(i + 1, texts[i]) for i, record in enumerate(records) if type(record) is cls]
            for cls in classes
        ]
        found: dict[int, BaseModel] = {}
        for part in await asyncio.gather(
            *(_extract(session, cls, group) for cls, group in zip(classes, groups, strict=True))
        ):
            found.update(part)
        extracted = [found[i + 1] for i in range(len(records))]
        return _report(list(records), texts, extracted, session.usage)

    keys = [[_model_key(type(r)), e] for r, e in zip(records, entries, strict=True)]
    return await _run(call, "round_trip", [keys, rules.preferences], work)


def round_trip(
    records: Sequence[BaseModel],
    preferences: Mapping[str, Any] | None = None,
    **common: Unpack[CallOptions],
) -> RoundTripReport:
    """Blocking form of :func:`around_trip`."""
    return run_sync(around_trip(records, preferences, **common))


def missing_values(text: str, fields: Fields | BaseModel) -> list[Any]:
    """The leaf values of ``fields`` that ``text`` does not mention (the fidelity check).

    Strings must occur in the text as whole words and numbers as numbers, both ignoring case,
    whitespace and number format; booleans and nulls are not checked. Each value is listed
    once, in the order of the fields.
    """
    checked = _check_fields(fields, "fields")
    norm = normalise(text)
    numbers = {_canon_number(*m.groups()) for m in _NUMBER.finditer(norm)}
    missing: list[Any] = []
    seen: set[str] = set()
    for leaf in _leaves(checked):
        if leaf is None or isinstance(leaf, bool):
            continue
        if isinstance(leaf, (int, float)):
            wanted = _number_text(leaf)
            found = wanted in numbers
        else:
            wanted = normalise(str(leaf))
            found = not wanted or _mentions(norm, wanted)
        key = _dumps(leaf)
        if not found and key not in seen:
            seen.add(key)
            missing.append(leaf)
    return missing


def normalise(text: str) -> str:
    """``text`` casefolded, with single spaces, plain quotes and canonical numbers
    (``1,000.50`` -> ``1000.5``, ``007`` -> ``7``)."""
    text = unicodedata.normalize("NFKC", text).translate(_PLAIN).casefold()
    text = _NUMBER.sub(lambda m: _canon_number(*m.groups()), text)
    return " ".join(text.split())


# --------------------------------------------------------------------------- input checks


_ENFORCED: dict[str, str] = {
    "minimum_length": "min_chars",
    "min_length": "min_chars",
    "minimal_length": "min_chars",
    "maximum_length": "max_chars",
    "max_length": "max_chars",
    "maximal_length": "max_chars",
    "min_words": "min_words",
    "minimum_words": "min_words",
    "max_words": "max_words",
    "maximum_words": "max_words",
}


@dataclass(frozen=True)
class _Rules:
    """The preferences, and the bounds enforced from them."""

    preferences: dict[str, Any] | None = None
    min_chars: int | None = None
    max_chars: int | None = None
    min_words: int | None = None
    max_words: int | None = None

    def lines(self, subject: str) -> list[str]:
        out = []
        if self.min_chars is not None:
            out.append(f"{subject} must be at least {self.min_chars} characters long.")
        if self.max_chars is not None:
            out.append(f"{subject} must be at most {self.max_chars} characters long.")
        if self.min_words is not None:
            out.append(f"{subject} must have at least {self.min_words} words.")
        if self.max_words is not None:
            out.append(f"{subject} must have at most {self.max_words} words.")
        return out

    def problems(self, text: str, subject: str) -> list[str]:
        chars, words = len(text), len(text.split())
        out = []
        if self.min_chars is not None and chars < self.min_chars:
            out.append(
                f"{subject} is {chars} characters long; it must have at least {self.min_chars}."
            )
        if self.max_chars is not None and chars > self.max_chars:
            out.append(
                f"{subject} is {chars} characters long; it must have at most {self.max_chars}."
            )
        if self.min_words is not None and words < self.min_words:
            out.append(f"{subject} has {words} words; it must have at least {self.min_words}.")
        if self.max_words is not None and words > self.max_words:
            out.append(f"{subject} has {words} words; it must have at most {self.max_words}.")
        return out

    def expected_chars(self) -> int:
        if self.max_chars is not None:
            return self.max_chars
        if self.max_words is not None:
            return self.max_words * 7
        return max(600, self.min_chars or 0, (self.min_words or 0) * 7)


def _check_preferences(preferences: Mapping[str, Any] | None) -> _Rules:
    if preferences is None:
        return _Rules()
    if not isinstance(preferences, Mapping):
        raise SynthConfigError(
            "preferences must be None or a dict such as {'style': 'gossip', "
            f"'minimum_length': 200}}, got {type(preferences).__name__}: "
            f"{_short(repr(preferences))}"
        )
    bounds: dict[str, tuple[str, int]] = {}
    for key, value in preferences.items():
        if not isinstance(key, str) or not key.strip():
            raise SynthConfigError(f"preference keys must be non-empty strings, got {key!r}")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise SynthConfigError(
                f"preferences[{key!r}] must be a JSON value (a string, number, boolean, list "
                f"or dict), got {type(value).__name__}"
            ) from None
        rule = _ENFORCED.get(re.sub(r"[\s\-]+", "_", key.strip().casefold()))
        if rule is None:
            continue
        least = 0 if rule.startswith("min") else 1
        unit = "characters" if rule.endswith("chars") else "words"
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise SynthConfigError(
                f"preferences[{key!r}] must be an integer number of {unit} >= {least}, "
                f"got {value!r}"
            )
        if rule in bounds and bounds[rule][1] != value:
            raise SynthConfigError(
                f"preferences[{key!r}] and preferences[{bounds[rule][0]!r}] set the same "
                "bound to different values; give only one"
            )
        bounds[rule] = (key, value)
    for low, high in (("min_chars", "max_chars"), ("min_words", "max_words")):
        if low in bounds and high in bounds and bounds[low][1] > bounds[high][1]:
            raise SynthConfigError(
                f"preferences[{bounds[low][0]!r}]={bounds[low][1]} is above "
                f"preferences[{bounds[high][0]!r}]={bounds[high][1]}"
            )
    return _Rules(dict(preferences), **{rule: value for rule, (_, value) in bounds.items()})


def _check_fields(fields: object, where: str) -> Fields:
    if isinstance(fields, BaseModel):
        fields = fields.model_dump(mode="json")
    if isinstance(fields, (str, bytes)) or not isinstance(fields, (Mapping, list, tuple)):
        raise SynthConfigError(
            f"{where} must be a list (['blue', 'yellow']), a dict ({{'actor': 'Tom Hanks'}}), "
            f"a list of dicts or a pydantic model instance, got {type(fields).__name__}: "
            f"{_short(repr(fields))}"
        )
    checked = _json_value(fields, where)
    if not any(True for _ in _leaves(checked)):
        raise SynthConfigError(f"{where} holds no values to write about: {_short(repr(fields))}")
    return cast(Fields, checked)


def _json_value(value: object, where: str) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SynthConfigError(f"{where} is {value!r}; use a finite number")
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SynthConfigError(f"{where} has a non-string key {key!r}; use string keys")
            out[key] = _json_value(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_json_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise SynthConfigError(
        f"{where} is a {type(value).__name__} ({_short(repr(value))}); fields hold JSON values "
        "(str, int, float, bool, None, lists and dicts): convert it first, e.g. with "
        "model_dump(mode='json')"
    )


def _check_collection(collection: object) -> list[Fields]:
    if (
        isinstance(collection, (str, bytes, Mapping, BaseModel))
        or not isinstance(collection, Sequence)
        or not collection
    ):
        raise SynthConfigError(
            "fields_collection must be a non-empty list of fields (each a list, a dict, a list "
            f"of dicts or a model instance), got {_short(repr(collection))}"
        )
    return [_check_fields(item, f"fields_collection[{i}]") for i, item in enumerate(collection)]


def _check_texts(texts: object) -> list[str]:
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence) or not texts:
        raise SynthConfigError(
            f"texts must be a non-empty list of strings, got {_short(repr(texts))}"
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise SynthConfigError(
                f"texts[{i}] must be a non-empty string, got {_short(repr(text))}"
            )
    return list(texts)


def _check_target(model: object) -> None:
    if not (isinstance(model, type) and issubclass(model, BaseModel)) or model is BaseModel:
        raise UnsupportedModelError(
            "extraction needs a pydantic BaseModel subclass (the record type to extract), "
            f"got {_short(repr(model))}"
        )
    wrapper_schema(_indexed(model))  # raises UnsupportedModelError before any request


# --------------------------------------------------------------------------- running calls


@dataclass(frozen=True)
class _Call:
    settings: Settings
    client: object | None
    cassette: str | Path | None
    record_mode: str
    cache_dir: str | Path | None
    seed: int | None
    usage: Usage | None


def _call(common: Mapping[str, Any]) -> _Call:
    options = dict(common)
    seed = options.pop("seed", None)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise SynthConfigError(f"seed must be an integer, got {seed!r}")
    usage = options.pop("usage", None)
    if usage is not None and not isinstance(usage, Usage):
        raise SynthConfigError(f"usage must be a pytest_synthdata.Usage, got {usage!r}")
    return _Call(
        client=options.pop("client", None),
        cassette=options.pop("cassette", None),
        record_mode=options.pop("record_mode", "once"),
        cache_dir=options.pop("cache_dir", None),
        seed=seed,
        usage=usage,
        settings=effective_settings(options.pop("settings", None), options),
    )


class _Session:
    """One call's LLM, settings, usage and concurrency bound."""

    def __init__(self, llm: LLM, call: _Call, usage: Usage) -> None:
        self.llm = llm
        self.settings = call.settings
        self.seed = call.seed
        self.usage = usage
        self._semaphore = asyncio.Semaphore(call.settings.concurrency)

    async def ask(
        self,
        messages: list[dict[str, str]],
        *,
        retry: bool,
        name: str | None = None,
        schema: dict[str, Any] | None = None,
        count: int | None = None,
    ) -> Completion:
        """One request (structured when a schema is given), counted in the usage."""
        async with self._semaphore:
            if schema is None or name is None:
                completion = await self.llm.complete_text(messages, seed=self.seed)
            else:
                completion = await self.llm.complete(
                    messages, name=name, schema=schema, seed=self.seed, count=count
                )
        completion.count_in(self.usage, retry=retry)
        return completion

    def describe(self, what: str, batch: int | None = None) -> str:
        how = f"batches of {batch}, mode {self.llm.mode}" if batch else "plain text"
        return f"{what} from {self.settings.model!r} at {self.llm.endpoint} ({how})"

    def error(
        self,
        what: str,
        message: str,
        last_output: str | None,
        problems: list[str],
        *,
        asked: str,
        batch: int | None = None,
    ) -> SynthGenerationError:
        """The budget ran out: ``what`` could not be done, ``message`` says how far it got."""
        return SynthGenerationError(
            f"could not {what}: the retry budget ({self.settings.max_retries} follow-up "
            f"requests{'' if batch is None else ' per batch'}) ran out {message}; fix the "
            "problems below (requirements the LLM cannot meet together, a too-small "
            "max_tokens) or raise max_retries",
            asked=self.describe(asked, batch),
            last_output=last_output,
            errors=problems,
            usage=self.usage,
        )


async def _run(call: _Call, name: str, key: object, work: Callable[[_Session], Awaitable[R]]) -> R:
    usage = Usage()

    async def with_session(llm: LLM) -> R:
        return await work(_Session(llm, call, usage))

    digest = hashlib.sha256(
        json.dumps(key, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()[:16]
    try:
        return await run_with_llm(
            call.settings,
            with_session,
            client=call.client,
            cassette=call.cassette,
            record_mode=call.record_mode,
            cache_dir=call.cache_dir,
            state_key=f"{name}:{digest}",
            call=name,
        )
    finally:
        if call.usage is not None:
            call.usage.add(usage)


# --------------------------------------------------------------------------- prompts


_TEXT_SYSTEM = (
    "You write natural, realistic texts for software tests from given field values. "
    "A text must mention every value of its fields (names and words exactly as given; "
    "numbers in any usual format) and follow the preferences and length rules."
)
_SINGLE_SYSTEM = _TEXT_SYSTEM + " Answer with the text only: no title, quotes or comments."
_BATCH_SYSTEM = (
    _TEXT_SYSTEM + ' Answer with one JSON object of the form {"texts": [{"index": <entry '
    'number>, "text": "..."}]} and nothing else.'
)
_EXTRACT_SYSTEM = (
    "You extract structured records from texts. Take every value from the text the record "
    "belongs to and do not invent values it does not state (use null where a field allows "
    'it). Answer with one JSON object of the form {"records": [{"index": <text number>, '
    '"record": {...}}]} and nothing else.'
)


def _line(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _fields_line(fields: Fields, index: int | None = None) -> str:
    return f"Fields (JSON){'' if index is None else f' #{index}'}: {_line(fields)}"


def _mention_line(fields: Fields, index: int | None = None) -> str:
    """The values a text must contain, spelled out (small models miss them in the JSON)."""
    wanted: list[str] = []
    for leaf in _leaves(fields):
        if leaf is None or isinstance(leaf, bool):
            continue
        text = _dumps(leaf) if isinstance(leaf, str) else _number_text(leaf)
        if text not in wanted:
            wanted.append(text)
    where = "" if index is None else f" #{index}"
    return f"Text{where} must contain, word for word: {', '.join(wanted)}."


def _preference_lines(rules: _Rules, subject: str) -> list[str]:
    out = []
    if rules.preferences is not None:
        out.append(f"Preferences (JSON): {_line(rules.preferences)}")
    return out + rules.lines(subject)


def _single_messages(fields: Fields, rules: _Rules) -> list[dict[str, str]]:
    parts = [
        "Write one text that uses these fields.",
        _fields_line(fields),
        _mention_line(fields),
    ]
    parts += _preference_lines(rules, "The text")
    return [
        {"role": "system", "content": _SINGLE_SYSTEM},
        {"role": "user", "content": "\n".join(parts)},
    ]


def _batch_messages(entries: list[tuple[int, Fields]], rules: _Rules) -> list[dict[str, str]]:
    parts = ["Write one text for each entry below, using every value of the entry's fields."]
    parts += _preference_lines(rules, "Every text")
    for index, fields in entries:
        parts += [_fields_line(fields, index), _mention_line(fields, index)]
    parts.append(
        f"Return exactly {len(entries)} texts, one per entry, each with the entry's index."
    )
    return [
        {"role": "system", "content": _BATCH_SYSTEM},
        {"role": "user", "content": "\n".join(parts)},
    ]


def _extract_messages(model: type[BaseModel], texts: list[tuple[int, str]]) -> list[dict[str, str]]:
    parts = [f"Each record is a {model.__name__} with these fields:"]
    parts += field_lines(model)
    parts.append("")
    parts.append("Extract one record from each text below (each text is a JSON string).")
    parts += [f"Text (JSON) #{index}: {_line(text)}" for index, text in texts]
    parts.append(f"Return exactly {len(texts)} records, one per text, each with the text's index.")
    return [
        {"role": "system", "content": _EXTRACT_SYSTEM},
        {"role": "user", "content": "\n".join(parts)},
    ]


def _followup(
    first: list[dict[str, str]], last_output: str | None, lines: list[str]
) -> list[dict[str, str]]:
    messages = list(first)
    if last_output:
        messages.append({"role": "assistant", "content": last_output})
    messages.append({"role": "user", "content": "\n".join(lines)})
    return messages


# --------------------------------------------------------------------------- writing texts


def _text_problems(text: str, fields: Fields, rules: _Rules, subject: str) -> list[str]:
    problems = []
    missing = missing_values(text, fields)
    if missing:
        problems.append(
            f"{subject} does not mention {', '.join(_dumps(value) for value in missing)}."
        )
    return problems + rules.problems(text, subject)


def _plain_output(completion: Completion) -> tuple[str | None, list[str]]:
    if completion.no_choices:
        return None, ["The response contained no choices."]
    if completion.refusal:
        return None, [
            f"You refused ({completion.refusal}). This is a fictional text for automated "
            "software tests; no real person is involved."
        ]
    text = (completion.text or "").strip()
    if not text:
        return None, ["The response was empty."]
    if completion.finish_reason == "length":
        return None, ["The text was cut off at the output-token limit; write a shorter one."]
    return text, []


async def _write_one(session: _Session, fields: Fields, rules: _Rules) -> str:
    first = _single_messages(fields, rules)
    messages = first
    problems: list[str] = []
    last_output: str | None = None
    for attempt in range(session.settings.max_retries + 1):
        completion = await session.ask(messages, retry=attempt > 0)
        text, problems = _plain_output(completion)
        if text is not None:
            problems = _text_problems(text, fields, rules, "The text")
            if not problems:
                session.llm.confirm(completion)
                return text
            session.usage.dropped_invalid += 1
        last_output = completion.text
        messages = _followup(
            first,
            text,
            [
                "That answer does not meet the requirements:",
                *problems,
                "Write the text again, fixing this. Answer with the text only.",
                _fields_line(fields),
            ],
        )
    raise session.error(
        "write a text that mentions every field value and follows the preferences",
        "without an acceptable text",
        last_output,
        problems,
        asked="1 text",
    )


class _IndexedText(BaseModel):
    index: int = Field(description="The number of the entry the text was written for.")
    text: str


def _by_position(items: list[object], owed: list[int]) -> list[object]:
    """Exactly as many answers as entries owed, but with wrong or repeated indices (small
    models copy the example's number): take them in order."""
    indices = [item.get("index") if isinstance(item, dict) else None for item in items]
    if len(items) != len(owed) or sorted(map(str, indices)) == sorted(map(str, owed)):
        return items
    return [
        {**item, "index": index} if isinstance(item, dict) else item
        for item, index in zip(items, owed, strict=True)
    ]


def _text_batch_size(entries: list[Fields], rules: _Rules, max_tokens: int) -> int:
    """Texts per request: as many as fit in ~60% of the output-token limit, at most 10."""
    values = max(sum(len(_dumps(leaf)) for leaf in _leaves(fields)) for fields in entries)
    per_text = 30 + max(rules.expected_chars(), 2 * values) // 3
    return max(1, min(TEXT_BATCH, int(max_tokens * 0.6) // per_text))


async def _write_many(session: _Session, entries: list[Fields], rules: _Rules) -> list[str]:
    size = session.settings.batch_size or _text_batch_size(
        entries, rules, session.settings.max_tokens
    )
    numbered = list(enumerate(entries, 1))
    chunks = [numbered[i : i + size] for i in range(0, len(numbered), size)]
    schema = wrapper_schema(_IndexedText, "texts")

    def make_job(chunk: list[tuple[int, Fields]]) -> _Job[str]:
        by_index = dict(chunk)

        def accept(item: object) -> _Verdict[str]:
            try:
                parsed = _IndexedText.model_validate(item)
            except ValidationError as exc:
                return _Verdict(problem="An item was invalid:\n" + format_validation_error(exc))
            if parsed.index not in by_index:
                return _Verdict(problem=f"Index {parsed.index} is not an entry of this request.")
            text = parsed.text.strip()
            problems = _text_problems(text, by_index[parsed.index], rules, f"Text #{parsed.index}")
            if problems:
                return _Verdict(parsed.index, problem=" ".join(problems))
            return _Verdict(parsed.index, text)

        return _Job(
            first=_batch_messages(chunk, rules),
            lines={index: _fields_line(fields, index) for index, fields in chunk},
            name="texts",
            schema=schema,
            key="texts",
            noun="text",
            accept=accept,
        )

    texts: dict[int, str] = {}
    jobs = [make_job(chunk) for chunk in chunks]
    for last_round in (False, True):
        outcomes = await asyncio.gather(*(_run_job(session, job) for job in jobs))
        retry: list[_Job[str]] = []
        for job, outcome in zip(jobs, outcomes, strict=True):
            texts.update(outcome.done)
            owed = [index for index in job.lines if index not in outcome.done]
            if not outcome.exhausted:
                continue
            if last_round or len(job.lines) == 1:
                raise session.error(
                    f"write {len(entries)} text(s) that mention every field value and follow "
                    "the preferences",
                    f"with {len(outcome.done)} of {len(job.lines)} text(s) of a batch accepted",
                    outcome.last_output,
                    outcome.problems,
                    asked=f"{len(entries)} text(s)",
                    batch=size,
                )
            # A batch that keeps failing gets one more chance, one text per request:
            # small models manage a single text where a batch of them defeats them.
            retry += [make_job([(index, entries[index - 1])]) for index in owed]
        if not retry:
            break
        jobs = retry
    return [texts[index] for index in range(1, len(entries) + 1)]


# --------------------------------------------------------------------------- extraction


@lru_cache(maxsize=256)
def _indexed(model: type[BaseModel]) -> type[BaseModel]:
    """``{"index": int, "record": model}``: one extracted record and the text it came from."""
    return create_model(
        f"{model.__name__}FromText",
        index=(int, Field(description="The number of the text the record was extracted from.")),
        record=(model, ...),
    )


def _model_key(model: type[BaseModel]) -> object:
    return [model.__name__, model.model_json_schema()]


def _extract_batch_size(model: type[BaseModel], max_tokens: int) -> int:
    from .engine import auto_batch_size

    return min(TEXT_BATCH, auto_batch_size(model, max_tokens))


async def _extract(
    session: _Session, model: type[BaseModel], texts: list[tuple[int, str]]
) -> dict[int, BaseModel]:
    """Records extracted from ``(index, text)`` pairs, by index."""
    indexed = _indexed(model)
    schema = wrapper_schema(indexed)
    size = session.settings.batch_size or _extract_batch_size(model, session.settings.max_tokens)
    chunks = [texts[i : i + size] for i in range(0, len(texts), size)]

    def accept(item: object) -> _Verdict[BaseModel]:
        try:
            parsed = indexed.model_validate(item)
        except ValidationError as exc:
            index = item.get("index") if isinstance(item, dict) else None
            where = f"The record for text #{index}" if isinstance(index, int) else "A record"
            return _Verdict(problem=f"{where} was invalid:\n" + format_validation_error(exc))
        index = int(getattr(parsed, "index"))  # noqa: B009 (a dynamic model)
        record = getattr(parsed, "record")  # noqa: B009
        return _Verdict(index, cast(BaseModel, record))

    jobs = [
        _Job(
            first=_extract_messages(model, chunk),
            lines={index: f"Text (JSON) #{index}: {_line(text)}" for index, text in chunk},
            name=schema_name(model),
            schema=schema,
            key="records",
            noun="record",
            accept=accept,
        )
        for chunk in chunks
    ]
    outcomes = await asyncio.gather(*(_run_job(session, job) for job in jobs))
    found: dict[int, BaseModel] = {}
    for job, outcome in zip(jobs, outcomes, strict=True):
        if outcome.exhausted:
            raise session.error(
                f"extract {len(texts)} valid {model.__name__} record(s)",
                f"with {len(outcome.done)} of {len(job.lines)} record(s) of a batch valid",
                outcome.last_output,
                outcome.problems,
                asked=f"{len(texts)} {model.__name__} record(s)",
                batch=size,
            )
        found.update(outcome.done)
    return found


# --------------------------------------------------------------------------- batches


@dataclass(frozen=True)
class _Verdict(Generic[T]):
    """What one returned item amounts to: an accepted value for an index, or a problem."""

    index: int | None = None
    value: T | None = None
    problem: str | None = None


@dataclass
class _Job(Generic[T]):
    """One batch: its first request, the marker line of each index it owes, its schema."""

    first: list[dict[str, str]]
    lines: dict[int, str]
    name: str
    schema: dict[str, Any]
    key: str
    noun: str
    accept: Callable[[object], _Verdict[T]]


@dataclass
class _Outcome(Generic[T]):
    done: dict[int, T] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    last_output: str | None = None
    exhausted: bool = False


async def _run_job(session: _Session, job: _Job[T]) -> _Outcome[T]:
    """Ask for the batch, keep what passes, re-ask for the rest with the problems.

    Never raises for bad output: an exhausted budget is reported in the outcome, so sibling
    batches finish before the caller raises.
    """
    from .engine import parse_items

    outcome: _Outcome[T] = _Outcome()
    messages = job.first
    for attempt in range(session.settings.max_retries + 1):
        owed = [index for index in job.lines if index not in outcome.done]
        completion = await session.ask(
            messages, retry=attempt > 0, name=job.name, schema=job.schema, count=len(owed)
        )
        items, problems, echo = parse_items(completion, len(owed), key=job.key, noun=job.noun)
        items = _by_position(items, owed)
        answered: set[int] = set()
        for item in items:
            verdict = job.accept(item)
            if verdict.index is not None:
                answered.add(verdict.index)
            if verdict.problem is not None:
                session.usage.dropped_invalid += 1
                problems.append(verdict.problem)
            elif verdict.index is not None and verdict.index not in outcome.done:
                outcome.done[verdict.index] = cast(T, verdict.value)
        owed = [index for index in owed if index not in outcome.done]
        if items:
            problems += [
                f"{job.noun.capitalize()} #{index} was missing from the answer."
                for index in owed
                if index not in answered
            ]
        if not problems:
            session.llm.confirm(completion)
        outcome.problems = problems
        outcome.last_output = completion.text
        if not owed:
            return outcome
        kept = len(job.lines) - len(owed)
        messages = _followup(
            job.first,
            completion.text if echo else None,
            [
                f"{kept} of the {len(job.lines)} {job.noun}s asked for so far were acceptable "
                "and were kept.",
                *problems,
                f"Do these again, fixing the problems ({len(owed)} {job.noun}s):",
                *(job.lines[index] for index in owed),
                f"Return exactly {len(owed)} {job.noun}s, in the same JSON format "
                f'{{"{job.key}": [...]}}.',
            ],
        )
    outcome.exhausted = True
    return outcome


# --------------------------------------------------------------------------- comparing


def _report(
    records: list[BaseModel], texts: list[str], extracted: list[BaseModel], usage: Usage
) -> RoundTripReport:
    agree: dict[str, int] = {}
    seen: dict[str, int] = {}
    mismatches: list[Mismatch] = []
    for index, (record, text, back) in enumerate(zip(records, texts, extracted, strict=True)):
        expected_data = record.model_dump(mode="json")
        got_data = back.model_dump(mode="json")
        for name in type(record).model_fields:
            if name not in expected_data:
                continue
            expected, got = expected_data[name], got_data.get(name)
            seen[name] = seen.get(name, 0) + 1
            if same(expected, got):
                agree[name] = agree.get(name, 0) + 1
            else:
                mismatches.append(Mismatch(index, name, expected, got, text))
    compared = sum(seen.values())
    return RoundTripReport(
        total=len(records),
        accuracy=(sum(agree.values()) / compared) if compared else 1.0,
        per_field={name: agree.get(name, 0) / count for name, count in seen.items()},
        mismatches=mismatches,
        texts=list(texts),
        extracted=list(extracted),
        usage=usage,
    )


def same(expected: object, got: object) -> bool:
    """Whether two JSON values agree as :func:`round_trip` compares them."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected is got
    if expected is None or got is None:
        return expected is got
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(expected, got, rel_tol=FLOAT_TOLERANCE, abs_tol=1e-9)
    if isinstance(expected, (str, int, float)) and isinstance(got, (str, int, float)):
        return _scalar_text(expected) == _scalar_text(got)
    if isinstance(expected, dict) and isinstance(got, dict):
        return expected.keys() == got.keys() and all(same(v, got[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return False
        if all(same(a, b) for a, b in zip(expected, got, strict=True)):
            return True
        unused = list(got)
        for item in expected:
            match = next((i for i, other in enumerate(unused) if same(item, other)), None)
            if match is None:
                return False
            unused.pop(match)
        return True
    return False


# --------------------------------------------------------------------------- helpers


_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_NUMBER = re.compile(r"(?<![\w.])(-?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?!\d|\.\d)")


def _canon_number(sign: str, whole: str, fraction: str | None) -> str:
    whole = whole.replace(",", "").lstrip("0") or "0"
    fraction = (fraction or "").rstrip("0")
    text = whole + (f".{fraction}" if fraction else "")
    return f"-{text}" if sign and text != "0" else text


def _mentions(text: str, value: str) -> bool:
    """Whether ``value`` occurs in ``text`` not as part of a longer word (both normalised)."""
    start = r"(?<!\w)" if value[0].isalnum() or value[0] == "_" else ""
    end = r"(?!\w)" if value[-1].isalnum() or value[-1] == "_" else ""
    return re.search(start + re.escape(value) + end, text) is not None


def _number_text(value: int | float) -> str:
    text = format(Decimal(repr(value)) if isinstance(value, float) else Decimal(value), "f")
    whole, _, fraction = text.lstrip("-").partition(".")
    return _canon_number("-" if text.startswith("-") else "", whole, fraction)


def _scalar_text(value: str | int | float) -> str:
    return _number_text(value) if not isinstance(value, str) else normalise(value)


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
