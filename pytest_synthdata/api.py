"""The library entry points: :func:`generate` and :func:`agenerate`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel
from typing_extensions import TypedDict, Unpack

from .dataset import Dataset
from .settings import Settings, StructuredMode
from .spec import SynthSpec, make_spec

if TYPE_CHECKING:
    from .llm import LLM

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
    from .engine import Engine

    snapshot = _Snapshot(spec, effective)
    hit = snapshot.replay(cassette, record_mode, cache_dir)
    if hit is not None:
        return hit
    whole = None
    if cassette is None and cache_dir is not None and record_mode not in ("all", "rewrite"):
        whole = _DatasetCache(Path(cache_dir), spec, effective, client)
        hit = whole.get()
        if hit is not None:
            return hit

    async def work(llm: LLM) -> Dataset[M]:
        dataset: Dataset[M] = await Engine(spec, effective, llm).run()
        if llm.recording is not None:
            llm.recording.keep_snapshot(snapshot.key, snapshot.entry(dataset))
        return dataset

    dataset = await run_with_llm(
        effective,
        work,
        client=client,
        cassette=cassette,
        record_mode=record_mode,
        cache_dir=cache_dir,
        state_key=f"generate:{spec.key()}",
        call="generate",
    )
    if whole is not None:
        whole.put(dataset)
    return dataset


def _shaping(spec: SynthSpec, settings: Settings) -> str:
    """What decides a whole dataset: the spec and the settings that shape its requests
    (not the endpoint's address, time-outs, retry budgets or how many run at once: the
    records of a finished dataset are valid whatever those were)."""
    import hashlib
    import json

    shaping = settings.replace(
        base_url=None, timeout=1.0, http_retries=0, max_retries=0, concurrency=1, max_n=1
    )
    raw = json.dumps([spec.key(), repr(shaping)], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


class _Snapshot:
    """The whole dataset, stored in the cassette that recorded it.

    A replay whose spec and settings match reads the records from the ``datasets`` section
    at the top of the cassette instead of replaying each exchange through the client. The
    records are validated with the model again; any mismatch (an edited model, an edited
    file) falls back to replaying the exchanges.
    """

    def __init__(self, spec: SynthSpec, settings: Settings) -> None:
        from .storage.paths import SNAPSHOT_PREFIX

        self.key = SNAPSHOT_PREFIX + _shaping(spec, settings)[:32]
        self.spec = spec

    def entry(self, dataset: Dataset[Any]) -> dict[str, Any]:
        """What the cassette stores: one JSON line per record, and what producing it cost."""
        import json

        from .storage.cassettes import scrub_text

        lines = (json.dumps(r.model_dump(mode="json"), ensure_ascii=False) for r in dataset)
        text = "".join(f"{line}\n" for line in lines)
        for char, escaped in _YAML_BREAKS.items():  # line breaks to YAML, not to JSON
            text = text.replace(char, escaped)
        return {
            "model": self.spec.model_name,
            "n": len(dataset),
            "records": scrub_text(text),
            # as a replay of the exchanges would count: every answer from the cassette
            "usage": {**dataset.usage.as_dict(), "cache_hits": 0},
        }

    def replay(
        self, cassette: str | Path | None, record_mode: str, cache_dir: str | Path | None
    ) -> Dataset[Any] | None:
        from .storage.ambient import AMBIENT

        if cassette is not None:
            if record_mode not in ("none", "once"):
                return None
            from .storage.cassettes import read_snapshot

            return self._decode(read_snapshot(Path(cassette), self.key))
        ambient = AMBIENT.get()
        if ambient is None or cache_dir is not None:
            return None
        storage, path, _ = ambient
        dataset = self._decode(storage.snapshot(path, self.key))
        if dataset is not None:
            storage.counters.bump("replayed", dataset.usage.requests)
        return dataset

    def _decode(self, entry: dict[str, Any] | None) -> Dataset[Any] | None:
        from dataclasses import fields

        from pydantic import TypeAdapter, ValidationError

        from .usage import Usage

        if entry is None or not isinstance(entry.get("records"), str):
            return None
        lines = [line for line in entry["records"].split("\n") if line.strip()]
        try:
            records = TypeAdapter(list[self.spec.model]).validate_json(  # type: ignore[name-defined]
                "[" + ",".join(lines) + "]"
            )
        except ValidationError:
            return None
        if len(records) != self.spec.n:
            return None
        stored = entry.get("usage")
        names = {f.name for f in fields(Usage)}
        counts = stored if isinstance(stored, dict) else {}
        usage = Usage(**{k: v for k, v in counts.items() if k in names and isinstance(v, int)})
        return Dataset(records, usage)


_YAML_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


class _DatasetCache:
    """Whole validated datasets in the response cache, for calls without a cassette.

    A hit skips every request (and the engine): the records are validated again with the
    model as they are read. With a cassette in play this is never used, so a recording
    stays the single source of what a test replays.
    """

    def __init__(
        self, directory: Path, spec: SynthSpec, settings: Settings, client: object | None
    ) -> None:
        import hashlib
        import os

        endpoint = str(getattr(client, "base_url", "")) or (
            settings.base_url or os.environ.get("OPENAI_BASE_URL") or "default"
        )
        raw = f"{_shaping(spec, settings)}|{endpoint}"
        self.key = "dataset:" + hashlib.sha256(raw.encode()).hexdigest()
        self.directory = directory
        self.model = spec.model

    def get(self) -> Dataset[Any] | None:
        from pydantic import TypeAdapter, ValidationError

        from .storage.cache import ResponseCache
        from .usage import Usage

        cache = ResponseCache.shared(self.directory)
        text = cache.get_text(self.key)
        if text is None:
            return None
        try:
            records = TypeAdapter(list[self.model]).validate_json(text)  # type: ignore[name-defined]
        except ValidationError:
            cache.delete(self.key)  # the model changed since: generate again
            return None
        return Dataset(records, Usage(cache_hits=1))

    def put(self, dataset: Dataset[Any]) -> None:
        from pydantic import TypeAdapter

        from .storage.cache import ResponseCache

        payload = TypeAdapter(list[self.model]).dump_json(list(dataset))  # type: ignore[name-defined]
        ResponseCache.shared(self.directory).put_text(self.key, payload.decode())


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
            rerecord=f"{call}(..., cassette={str(cassette)!r}, record_mode='rewrite')",
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
