"""The library entry points: :func:`generate` and :func:`agenerate`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel
from typing_extensions import TypedDict, Unpack

from .dataset import Dataset
from .settings import Settings, StructuredMode
from .spec import SynthSpec, make_spec
from .usage import Usage

if TYPE_CHECKING:
    from .batching import Batcher
    from .llm import LLM
    from .storage.datasets import StoredDataset
    from .storage.recorder import Recording

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


class Options(TypedDict, total=False):
    """Per-call settings; each overrides the matching :class:`Settings` field."""

    model: str
    base_url: str | None
    temperature: float | None
    batch_size: int | None
    concurrency: int
    structured: StructuredMode
    max_retries: int
    max_tokens: int
    timeout: float
    http_retries: int
    max_n: int


async def agenerate(
    record_model: type[M],
    /,
    n: int,
    *,
    examples: Iterable[object] | None = None,
    subject: str | None = None,
    extra: str | None = None,
    seed: int | None = None,
    unique: str | Sequence[str] | None = None,
    client: object | None = None,
    settings: Settings | None = None,
    cassette: str | Path | None = None,
    record_mode: str = "once",
    cache_dir: str | Path | None = None,
    **options: Unpack[Options],
) -> Dataset[M]:
    """Generate exactly ``n`` valid, distinct ``record_model`` instances, in a stable order.

    ``examples`` mixes model instances, dicts and free-text strings. ``subject`` defaults
    to one derived from the model; ``extra`` adds steering instructions. The endpoint
    comes from ``client`` (an ``openai.OpenAI``/``AsyncOpenAI``/``AzureOpenAI``) or from
    ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``. Other keywords (``model``, ``temperature``,
    ``batch_size``, ``concurrency``, ``structured``, ``max_retries`` ...) override
    ``settings``. ``cassette`` (a YAML path) records the HTTP exchanges with vcrpy and
    replays them on later calls, following ``record_mode`` (none, once, new_episodes, all,
    rewrite); ``cache_dir`` keeps validated responses in a diskcache there. The returned
    list has a ``usage`` attribute.
    """
    effective = effective_settings(settings, options)
    spec = make_spec(
        record_model,
        n,
        examples=examples,
        subject=subject,
        extra=extra,
        seed=seed,
        unique=unique,
        max_n=effective.max_n,
    )
    growing = growing_key(spec)
    return await run_stored(
        effective,
        Wiring(client, cassette, record_mode, cache_dir),
        material=growing,
        label=spec.model_name,
        total=spec.n,
        seed=spec.seed,
        usage=Usage(),
        read=lambda stored, usage: _read_records(spec, stored, usage),
        work=lambda batcher: _generate_records(spec, effective, batcher, []),
        grow=lambda stored: _grow_records(spec, effective, stored),
        state_key=f"generate:{growing}",
        call="generate",
    )


def growing_key(spec: SynthSpec) -> str:
    """What decides a record dataset apart from ``n``: a dataset is a stable prefix, so
    every ``n`` of the same spec reads (and grows) the same stored records."""
    return replace(spec, n=0).key()


async def _generate_records(
    spec: SynthSpec, settings: Settings, batcher: Batcher, prefix: list[tuple[Any, object]]
) -> tuple[Dataset[Any], list[object]]:
    from .records import Engine

    engine: Engine[Any] = Engine(spec, settings, batcher, prefix=prefix)
    dataset = await engine.run()
    return dataset, engine.raw


def _grow_records(
    spec: SynthSpec, settings: Settings, stored: StoredDataset
) -> Callable[[Batcher], Awaitable[tuple[Dataset[Any], list[object]]]] | None:
    """Generate the records ``stored`` lacks after its own, or ``None`` when the stored
    ones no longer validate (the dataset starts afresh)."""
    from pydantic_core import from_json

    records = _validated(spec, stored.json_array())
    if records is None:
        return None
    raw = [from_json(line) for line in stored.lines]
    prefix = list(zip(records, raw, strict=True))
    return lambda batcher: _generate_records(spec, settings, batcher, prefix)


def _validated(spec: SynthSpec, array: str) -> list[Any] | None:
    """Stored records validated as JSON, as the recording run validated each answer."""
    from pydantic import ValidationError

    try:
        return list(_list_adapter(spec.model).validate_json(array))
    except (ValidationError, ValueError):
        return None


@functools.lru_cache(maxsize=64)
def _list_adapter(model: type[BaseModel]) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _read_records(spec: SynthSpec, stored: StoredDataset, usage: Usage) -> Dataset[Any] | None:
    """The first ``n`` stored records validated as the recording run validated them, or
    ``None`` when there are fewer or they no longer fit the spec (an edited model or file)."""
    if len(stored.lines) < spec.n:
        return None
    records = _validated(spec, stored.json_array(spec.n))
    if records is None or len(records) != spec.n:
        return None
    return Dataset(records, usage)


@dataclass(frozen=True)
class Wiring:
    """Where a library call's requests go and where its dataset is stored."""

    client: object | None = None
    cassette: str | Path | None = None
    record_mode: str = "once"
    cache_dir: str | Path | None = None


def dataset_key(material: object, settings: Settings) -> str:
    """What decides a whole dataset: the spec (``material``) and the settings that shape its
    requests (not the endpoint's address, time-outs, retry budgets or how many run at once:
    the records of a finished dataset are valid whatever those were)."""
    import hashlib
    import json

    from .storage.paths import DATASET_PREFIX

    shaping = settings.replace(
        base_url=None, timeout=1.0, http_retries=0, max_retries=0, concurrency=1, max_n=1
    )
    raw = json.dumps([material, repr(shaping)], sort_keys=True, default=str)
    return DATASET_PREFIX + hashlib.sha256(raw.encode()).hexdigest()


Work = Callable[["Batcher"], Awaitable[tuple[R, list[object]]]]


async def run_stored(
    settings: Settings,
    wiring: Wiring,
    *,
    material: object,
    label: str,
    total: int,
    seed: int | None,
    usage: Usage,
    read: Callable[[StoredDataset, Usage], R | None],
    work: Work[R],
    state_key: str,
    call: str,
    grow: Callable[[StoredDataset], Work[R] | None] | None = None,
) -> R:
    """A dataset from the dataset store when it holds one that ``read`` accepts, otherwise
    from ``work`` (on the one batch loop), stored for the next time.

    ``material`` is what decides the dataset besides the settings; ``label`` and ``total``
    (items wanted) are what progress reports show; ``work`` returns the
    result and the items the model answered for it, which the store keeps; ``read`` turns
    stored items back into the result exactly as ``work`` judged them (``None``: they do not
    fit). ``grow``, for datasets that are a stable prefix, turns stored items that are too
    few into the work that adds the rest (``None``: start afresh). ``usage`` receives what
    the call cost, even when it fails.
    """
    from .batching import Batcher
    from .storage import datasets
    from .storage.paths import check_storage

    check_storage(wiring.cassette, wiring.record_mode, wiring.cache_dir)
    key = dataset_key(material, settings)
    cassette_key = key[: len(datasets.PREFIX) + 32]
    stored = _stored(wiring, cassette_key, call)
    if stored is not None:
        hit = read(stored, usage)
        if hit is not None:
            usage.add(_usage_of(stored))
            _count_replay(wiring, usage)
            _note_replay(wiring, cassette_key, state_key, total, stored)
            return hit
    cache = _dataset_cache(wiring, settings, key)
    if cache is not None:
        cached = datasets.from_cache(cache[0], cache[1])
        hit = read(cached, usage) if cached is not None else None
        if hit is not None:
            usage.add(Usage(cache_hits=1))
            return hit
        if cached is not None:
            datasets.forget_cached(*cache)  # the model changed since: generate again

    async def produce(llm: LLM) -> R:
        recording = llm.recording
        # Read again under the cassette's lock: another process may have stored it since.
        prior = recording.stored_dataset(cassette_key) if recording is not None else None
        if prior is not None:
            hit = read(prior, usage)
            if hit is not None:
                usage.add(_usage_of(prior))
                _count_replay(wiring, _usage_of(prior))
                assert recording is not None
                recording.note_use(cassette_key, total, prior.steps)
                return hit
        plan, before = work, 0
        steps: tuple[datasets.Step, ...] = ()
        grown = None
        if grow is not None and prior is not None and len(prior.lines) < total:
            grown = grow(prior)
        if grown is not None and prior is not None and recording is not None:
            before = len(prior.lines)
            if recording.replay_only:
                raise _missing_records(recording, label, before, total)
            plan, steps = grown, prior.steps or ()
            usage.add(_usage_of(prior))  # the stored records' cost, as a replay counts it
            _count_replay(wiring, _usage_of(prior))
        batcher = Batcher(llm, settings, usage, seed, label=label, total=total - before)
        start = usage.as_dict()
        result, items = await plan(batcher)
        if recording is not None:
            spent = {name: value - start.get(name, 0) for name, value in usage.as_dict().items()}
            spent["cache_hits"] = 0
            done = (*steps, datasets.Step(len(items), tuple(recording.touched), spent))
            entry = datasets.encode(label, items, {**usage.as_dict(), "cache_hits": 0}, done)
            recording.store_dataset(cassette_key, entry)
            written = None
            if not recording.replay_only and recording.cassette is not None:
                grew = f"{before} -> " if before else ""
                written = f"{label}: {grew}{len(items)}"
            recording.note_use(cassette_key, total, done, written)
        if cache is not None:
            entry = datasets.encode(label, items, {**usage.as_dict(), "cache_hits": 0})
            datasets.to_cache(cache[0], cache[1], entry)
        return result

    return await run_with_llm(
        settings,
        produce,
        client=wiring.client,
        cassette=wiring.cassette,
        record_mode=wiring.record_mode,
        cache_dir=wiring.cache_dir,
        state_key=state_key,
        call=call,
    )


def _missing_records(recording: Recording, label: str, stored: int, total: int) -> Exception:
    """A dataset that grew, in a cassette the record mode does not let grow."""
    from .errors import SynthRecordingError

    mode = recording.storage.record_mode if recording.storage is not None else "none"
    return SynthRecordingError(
        f"cassette {recording.path} holds {stored} {label} record(s) and {total} are asked "
        f"for; record mode {mode!r} does not record the {total - stored} missing one(s) "
        f"(the stored ones stay the first {stored}). Record them with: {recording.rerecord}"
    )


def _note_replay(
    wiring: Wiring, key: str, state_key: str, total: int, stored: StoredDataset
) -> None:
    """A test's dataset was read from its cassette: it counts as used (``--synth-update``)."""
    from .storage.ambient import AMBIENT

    ambient = AMBIENT.get()
    if wiring.cassette is None and wiring.cache_dir is None and ambient and ambient[1]:
        ambient[0].note_use(ambient[1], key, state_key, total, stored.steps)


def _usage_of(stored: StoredDataset) -> Usage:
    """What producing a stored dataset cost, as a replay of its exchanges would count it:
    every answer from the cassette, none from the cache."""
    from dataclasses import fields

    names = {f.name for f in fields(Usage)} - {"cache_hits"}
    return Usage(**{name: value for name, value in stored.usage.items() if name in names})


def _stored(wiring: Wiring, key: str, call: str) -> StoredDataset | None:
    """The dataset stored in the cassette this call would replay, if any."""
    from .errors import SynthRecordingError
    from .storage import datasets
    from .storage.ambient import AMBIENT
    from .storage.cassettes import with_command

    if wiring.cassette is not None:
        from .storage.uses import opened

        opened(wiring.cassette)
        if wiring.record_mode not in ("none", "once", "new_episodes"):
            return None
        try:
            return datasets.from_cassette(Path(wiring.cassette), key)
        except SynthRecordingError as exc:
            raise with_command(exc, _rerecord(call, wiring.cassette)) from None
    ambient = AMBIENT.get()
    if ambient is None or wiring.cache_dir is not None:
        return None
    storage, path, rerecord = ambient
    return storage.stored_dataset(path, key, rerecord)


def _rerecord(call: str, cassette: str | Path) -> str:
    """The library call that re-records ``cassette``."""
    return (
        f"{call}(..., cassette={str(cassette)!r}, record_mode='rewrite') (or "
        "record_mode='new_episodes' to record only what is missing)"
    )


def _count_replay(wiring: Wiring, usage: Usage) -> None:
    from .storage.ambient import AMBIENT

    ambient = AMBIENT.get()
    if wiring.cassette is None and ambient is not None:
        ambient[0].counters.bump("replayed", usage.requests)


def _dataset_cache(wiring: Wiring, settings: Settings, key: str) -> tuple[Path, str] | None:
    """Whole datasets in the response cache, for calls with a cache folder and no cassette
    (with one, the recording stays the single source of what a test replays)."""
    import hashlib
    import os

    if (
        wiring.cassette is not None
        or wiring.cache_dir is None
        or wiring.record_mode in ("all", "rewrite")
    ):
        return None
    endpoint = str(getattr(wiring.client, "base_url", "")) or (
        settings.base_url or os.environ.get("OPENAI_BASE_URL") or "default"
    )
    digest = hashlib.sha256(f"{key}|{endpoint}".encode()).hexdigest()
    return Path(wiring.cache_dir), "dataset:" + digest


def generate(
    record_model: type[M],
    /,
    n: int,
    *,
    examples: Iterable[object] | None = None,
    subject: str | None = None,
    extra: str | None = None,
    seed: int | None = None,
    unique: str | Sequence[str] | None = None,
    client: object | None = None,
    settings: Settings | None = None,
    cassette: str | Path | None = None,
    record_mode: str = "once",
    cache_dir: str | Path | None = None,
    **options: Unpack[Options],
) -> Dataset[M]:
    """Blocking form of :func:`agenerate` (safe to call from inside a running event loop)."""
    return run_sync(
        agenerate(
            record_model,
            n,
            examples=examples,
            subject=subject,
            extra=extra,
            seed=seed,
            unique=unique,
            client=client,
            settings=settings,
            cassette=cassette,
            record_mode=record_mode,
            cache_dir=cache_dir,
            **options,
        )
    )


def effective_settings(settings: Settings | None, options: Mapping[str, Any]) -> Settings:
    """``settings`` (default: the built-in defaults) with the per-call ``options`` applied."""
    base = settings or Settings()
    return base.replace(**options) if options else base


async def run_with_llm(
    settings: Settings,
    work: Callable[[LLM], Awaitable[R]],
    *,
    client: object | None,
    cassette: str | Path | None,
    record_mode: str,
    cache_dir: str | Path | None,
    state_key: str,
    call: str,
) -> R:
    """Run ``work(llm)`` wired as a library call's ``cassette=``, ``record_mode=`` and
    ``cache_dir=`` ask (no storage at all when neither a cassette nor a cache is given).

    ``state_key`` names the recording within the cassette; ``call`` is the function name
    used in the "record it with" hint of a missing recording.
    """
    from .storage.ambient import AMBIENT

    if cassette is None and cache_dir is None:
        ambient = AMBIENT.get()
        if ambient is None:
            return await with_llm(settings, work, client=client)
        storage, path, rerecord = ambient
        return await with_llm(
            settings,
            work,
            client=client,
            storage=storage,
            cassette=path,
            state_key=state_key,
            rerecord=rerecord,
        )
    from .storage.recorder import Storage

    storage = Storage(
        record_mode=record_mode,
        cache_dir=Path(cache_dir) if cache_dir is not None else None,
        use_cache=cache_dir is not None,
    )
    try:
        return await with_llm(
            settings,
            work,
            client=client,
            storage=storage,
            cassette=Path(cassette) if cassette is not None else None,
            state_key=state_key,
            rerecord=_rerecord(call, cassette) if cassette is not None else "",
        )
    finally:
        storage.close()


if TYPE_CHECKING:
    from .storage.recorder import Storage


async def with_llm(
    settings: Settings,
    work: Callable[[LLM], Awaitable[R]],
    *,
    client: object | None = None,
    storage: Storage | None = None,
    cassette: Path | None = None,
    state_key: str = "",
    rerecord: str = "",
) -> R:
    """Run ``work`` with an :class:`LLM` wired to the cassette and cache when ``storage`` is
    given (the one place that opens recordings), and close the client afterwards."""
    from .llm import LLM

    if storage is None:
        llm = LLM(settings, client)
        try:
            return await work(llm)
        finally:
            await llm.aclose()
    with storage.recording(cassette, state_key, rerecord) as recording:
        llm = LLM(settings, client, recording=recording)
        try:
            return await work(llm)
        finally:
            await llm.aclose()


def run_sync(coro: Coroutine[Any, Any, R]) -> R:
    """Run a coroutine to completion, in a helper thread if a loop is already running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False  # leave the except block first: errors must not chain to this one
    else:
        running = True
    if not running:
        return asyncio.run(_boxed(coro)).value
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(context.run, asyncio.run, _boxed(coro)).result().value


class _Box(Generic[R]):
    """Holds a coroutine's result. asyncio formats a finished task's result with
    ``reprlib``, which renders a list subclass such as :class:`Dataset` in full (1,000
    records cost milliseconds); this box has a short repr."""

    __slots__ = ("value",)

    def __init__(self, value: R) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<result>"


async def _boxed(coro: Coroutine[Any, Any, R]) -> _Box[R]:
    from .llm import LOOP_OF_ITS_OWN

    LOOP_OF_ITS_OWN.set(True)  # in this task's context only: the loop ends with the call
    return _Box(await coro)
