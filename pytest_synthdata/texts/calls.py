"""The text, text dataset, extraction and round-trip calls (see the package documentation),
each a :class:`~pytest_synthdata.store.Recipe` run through the dataset store."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict
from typing_extensions import Unpack

from ..api import SettingOverrides, effective_settings, run_sync
from ..dataset import Dataset
from ..errors import SynthConfigError
from ..route import resolve
from ..settings import Settings
from ..store import Recipe, Work, run_stored
from ..usage import Usage
from .fidelity import (
    Fields,
    Rules,
    check_collection,
    check_fields,
    check_preferences,
    check_texts,
    short,
    text_problems,
)
from .jobs import check_target, extract_accept, extract_records, text_accept, write_many, write_one
from .report import RoundTripReport, build_report

if TYPE_CHECKING:
    from ..batching import Batcher
    from ..storage.datasets import StoredDataset

__all__ = [
    "CallKeywords",
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
    "round_trip",
]

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


class CallKeywords(SettingOverrides, total=False):
    """The keywords every function of this module takes, as :func:`~pytest_synthdata.generate`
    does: the endpoint (``client``), the base ``settings``, a ``cassette`` and its
    ``record_mode``, a ``cache_dir``, a ``seed`` sent with every request, a ``usage`` to add
    the cost to, and any :class:`~pytest_synthdata.api.SettingOverrides` override."""

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


# --------------------------------------------------------------------------- public API


async def agenerate_text(
    fields: Fields | BaseModel,
    preferences: Mapping[str, Any] | None = None,
    **common: Unpack[CallKeywords],
) -> str:
    """A text that mentions every value of ``fields`` and follows ``preferences``.

    See the module documentation for the accepted fields, the enforced preferences and the
    request bound (``1 + max_retries``). Raises :class:`SynthGenerationError` when the
    retry budget runs out, naming the values still missing.
    """
    fields = check_fields(fields, "fields")
    rules = check_preferences(preferences)

    async def work(batcher: Batcher) -> tuple[str, list[object]]:
        text, raw = await write_one(batcher, fields, rules)
        return text, [raw]

    def read(items: list[object], usage: Usage) -> str | None:
        if len(items) != 1 or not isinstance(items[0], str):
            return None
        return None if text_problems(items[0], fields, rules, "The text") else items[0]

    return await _run(_call(common), "generate_text", [fields, rules.preferences], 1, work, read)


def generate_text(
    fields: Fields | BaseModel,
    preferences: Mapping[str, Any] | None = None,
    **common: Unpack[CallKeywords],
) -> str:
    """Blocking form of :func:`agenerate_text`."""
    return run_sync(agenerate_text(fields, preferences, **common))


async def agenerate_dataset(
    fields_collection: Sequence[Fields | BaseModel],
    preferences: Mapping[str, Any] | None = None,
    **common: Unpack[CallKeywords],
) -> Dataset[TextRecord]:
    """One :class:`TextRecord` per entry of ``fields_collection``, in the same order.

    Entries are written in batches of ``batch_size`` (default: up to 10) per structured
    request, the batches concurrently: ``ceil(N / batch_size)`` requests when every text
    passes the fidelity and preference checks, at most ``(ceil(N / batch_size) + N) * (1 +
    max_retries)`` in all (see the module docstring). The result has a ``usage`` attribute.
    """
    entries = check_collection(fields_collection)
    rules = check_preferences(preferences)
    call = _call(common)
    if len(entries) > call.settings.max_n:
        raise SynthConfigError(
            f"{len(entries)} entries is above the limit of {call.settings.max_n} per dataset; "
            f"split them, or raise the limit with max_n={len(entries)}"
        )

    def dataset(texts: list[str], usage: Usage) -> Dataset[TextRecord]:
        records = [
            TextRecord(fields=fields, preferences=rules.preferences, text=text)
            for fields, text in zip(entries, texts, strict=True)
        ]
        return Dataset(records, usage)

    async def work(batcher: Batcher) -> tuple[Dataset[TextRecord], list[object]]:
        texts, raw = await write_many(batcher, entries, rules)
        return dataset(texts, batcher.usage), raw

    def read(items: list[object], usage: Usage) -> Dataset[TextRecord] | None:
        texts = _read_texts(items, entries, rules)
        return None if texts is None else dataset(texts, usage)

    return await _run(
        call, "generate_dataset", [entries, rules.preferences], len(entries), work, read
    )


def generate_dataset(
    fields_collection: Sequence[Fields | BaseModel],
    preferences: Mapping[str, Any] | None = None,
    **common: Unpack[CallKeywords],
) -> Dataset[TextRecord]:
    """Blocking form of :func:`agenerate_dataset`."""
    return run_sync(agenerate_dataset(fields_collection, preferences, **common))


async def aextract_many(
    texts: Sequence[str], record_model: type[M], /, **common: Unpack[CallKeywords]
) -> Dataset[M]:
    """One ``record_model`` record extracted from each text, in the same order.

    Each record is validated by ``record_model`` (validators included); invalid or missing
    records are re-asked with the validation errors, batched like :func:`generate_dataset`.
    The result has a ``usage`` attribute.
    """
    checked = check_texts(texts)
    check_target(record_model)
    call = _call(common)
    order = range(1, len(checked) + 1)

    async def work(batcher: Batcher) -> tuple[Dataset[M], list[object]]:
        found, raw = await extract_records(batcher, record_model, list(enumerate(checked, 1)))
        records = [cast(M, found[i]) for i in order]
        return Dataset(records, batcher.usage), [raw[i] for i in order]

    def read(items: list[object], usage: Usage) -> Dataset[M] | None:
        found = _read_records(items, [record_model] * len(checked))
        return None if found is None else Dataset([cast(M, r) for r in found], usage)

    return await _run(
        call, "extract", [_model_key(record_model), checked], len(checked), work, read
    )


def extract_many(
    texts: Sequence[str], record_model: type[M], /, **common: Unpack[CallKeywords]
) -> Dataset[M]:
    """Blocking form of :func:`aextract_many`."""
    return run_sync(aextract_many(texts, record_model, **common))


async def aextract(text: str, record_model: type[M], /, **common: Unpack[CallKeywords]) -> M:
    """The ``record_model`` record stated by ``text``: one structured request, validated by
    the model, re-asked with the errors (at most ``1 + max_retries`` requests)."""
    if not isinstance(text, str) or not text.strip():
        raise SynthConfigError(f"text must be a non-empty string, got {short(repr(text))}")
    return (await aextract_many([text], record_model, **common))[0]


def extract(text: str, record_model: type[M], /, **common: Unpack[CallKeywords]) -> M:
    """Blocking form of :func:`aextract`."""
    return run_sync(aextract(text, record_model, **common))


async def around_trip(
    records: Sequence[BaseModel],
    preferences: Mapping[str, Any] | None = None,
    **common: Unpack[CallKeywords],
) -> RoundTripReport:
    """Write a text for each record (its ``model_dump(mode="json")`` as the fields, through
    :func:`generate_dataset`), extract each text back into the record's class, and compare
    them field by field.

    Strings compare ignoring case, whitespace and number format; numbers with a relative
    tolerance of 1e-6; lists as multisets (order ignored); dicts key by key.
    """
    classes = _check_records(records)
    entries = [check_fields(record, f"records[{i}]") for i, record in enumerate(records)]
    rules = check_preferences(preferences)
    models = [type(record) for record in records]
    n = len(records)

    async def work(batcher: Batcher) -> tuple[RoundTripReport, list[object]]:
        texts, text_items = await write_many(batcher, entries, rules)
        groups = [
            [(i + 1, texts[i]) for i, model in enumerate(models) if model is cls] for cls in classes
        ]
        found: dict[int, BaseModel] = {}
        raw: dict[int, object] = {}
        parts = await asyncio.gather(
            *(
                extract_records(batcher, cls, group)
                for cls, group in zip(classes, groups, strict=True)
            )
        )
        for part, part_raw in parts:
            found.update(part)
            raw.update(part_raw)
        extracted = [found[i + 1] for i in range(n)]
        report = build_report(list(records), texts, extracted, batcher.usage)
        return report, text_items + [raw[i + 1] for i in range(n)]

    def read(items: list[object], usage: Usage) -> RoundTripReport | None:
        if len(items) != 2 * n:
            return None
        texts = _read_texts(items[:n], entries, rules)
        extracted = _read_records(items[n:], models)
        if texts is None or extracted is None:
            return None
        return build_report(list(records), texts, extracted, usage)

    keys = [[_model_key(type(r)), e] for r, e in zip(records, entries, strict=True)]
    return await _run(_call(common), "round_trip", [keys, rules.preferences], 2 * n, work, read)


def _check_records(records: Sequence[BaseModel]) -> list[type[BaseModel]]:
    """The classes of a round trip's ``records`` (in order of first use), each one a
    model records can be extracted into; anything else is a :class:`SynthConfigError`."""
    if isinstance(records, BaseModel) or not isinstance(records, Sequence) or not records:
        raise SynthConfigError(
            "records must be a non-empty list of pydantic model instances, got "
            f"{short(repr(records))}"
        )
    for i, record in enumerate(records):
        if not isinstance(record, BaseModel):
            raise SynthConfigError(
                f"records[{i}] is a {type(record).__name__}, not a pydantic model instance"
            )
    classes = list(dict.fromkeys(type(record) for record in records))
    for cls in classes:
        check_target(cls)
    return classes


def round_trip(
    records: Sequence[BaseModel],
    preferences: Mapping[str, Any] | None = None,
    **common: Unpack[CallKeywords],
) -> RoundTripReport:
    """Blocking form of :func:`around_trip`."""
    return run_sync(around_trip(records, preferences, **common))


# --------------------------------------------------------------------------- running calls


@dataclass(frozen=True)
class _Call:
    """The keywords every function takes, checked: the settings, where the call's answers
    come from and go to (``client``, ``cassette``, ``record_mode``, ``cache_dir``: the route
    is resolved when the call runs), the seed and the usage to add the cost to."""

    settings: Settings
    where: dict[str, Any]
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
    where = {
        "client": options.pop("client", None),
        "cassette": options.pop("cassette", None),
        "record_mode": options.pop("record_mode", "once"),
        "cache_dir": options.pop("cache_dir", None),
    }
    settings = effective_settings(options.pop("settings", None), options)
    return _Call(settings, where, seed, usage)


async def _run(
    call: _Call,
    name: str,
    key: object,
    total: int,
    work: Work[R],
    read: Callable[[list[object], Usage], R | None],
) -> R:
    """Run ``work`` through the dataset store: ``read`` rebuilds its result from stored
    items (``None``: they do not fit), ``key`` is what decides the result."""
    route = resolve(name, **call.where)
    digest = hashlib.sha256(
        json.dumps(key, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()[:16]
    recipe = Recipe(
        material=[name, key],
        label=name,
        total=total,
        seed=call.seed,
        profile_key=f"{name}:{digest}",
        read=functools.partial(_read_items, read),
        generate=work,
    )
    usage = Usage()
    try:
        return await run_stored(call.settings, route, recipe, usage)
    finally:
        if call.usage is not None:
            call.usage.add(usage)


def _read_items(
    read: Callable[[list[object], Usage], R | None], stored: StoredDataset, usage: Usage
) -> R | None:
    """``read`` of the stored items, each line as JSON (``None``: a line is not JSON)."""
    try:
        items = [json.loads(line) for line in stored.lines]
    except ValueError:
        return None
    return read(items, usage)


def _read_texts(items: list[object], entries: list[Fields], rules: Rules) -> list[str] | None:
    """Stored ``{"index", "text"}`` items judged as when they were written, in entry order."""
    by_index = dict(enumerate(entries, 1))
    texts: dict[int, str] = {}
    for item in items:
        verdict = text_accept(by_index, rules, item)
        if verdict.problems or verdict.slot is None or verdict.value is None:
            return None
        texts[verdict.slot] = verdict.value
    if sorted(texts) != list(by_index):
        return None
    return [texts[index] for index in by_index]


def _read_records(items: list[object], models: list[type[BaseModel]]) -> list[BaseModel] | None:
    """Stored ``{"index", "record"}`` items validated as when they were extracted, in order
    (item ``i`` by ``models[i]``)."""
    if len(items) != len(models):
        return None
    found: list[BaseModel] = []
    for position, (item, model) in enumerate(zip(items, models, strict=True), 1):
        verdict = extract_accept(model, item)
        if verdict.problems or verdict.slot != position or verdict.value is None:
            return None
        found.append(verdict.value)
    return found


def _model_key(model: type[BaseModel]) -> object:
    return [model.__name__, model.model_json_schema()]
