"""The library entry points: :func:`generate` and :func:`agenerate`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from typing_extensions import TypedDict, Unpack

from .dataset import Dataset
from .settings import Settings, StructuredMode
from .spec import make_spec

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

    async def work(llm: LLM) -> Dataset[M]:
        return await Engine(spec, effective, llm).run()

    return await run_with_llm(
        effective,
        work,
        client=client,
        cassette=cassette,
        record_mode=record_mode,
        cache_dir=cache_dir,
        state_key=f"generate:{spec.key()}",
        call="generate",
    )


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
    from .runtime import AMBIENT, with_llm

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


def run_sync(coro: Coroutine[Any, Any, R]) -> R:
    """Run a coroutine to completion, in a helper thread if a loop is already running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False  # leave the except block first: errors must not chain to this one
    else:
        running = True
    if not running:
        return asyncio.run(coro)
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(context.run, asyncio.run, coro).result()
