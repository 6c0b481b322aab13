"""The library entry points: :func:`generate` and :func:`agenerate`, and the sync bridge.

A call decides its route once (:func:`.route.resolve`) and hands it, with the recipe of its
dataset, to the dataset store (:func:`.store.run_stored`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel
from typing_extensions import TypedDict, Unpack

from .dataset import Dataset
from .diversity import DEFAULT_NEAR_DUPLICATES
from .errors import SynthConfigError
from .route import resolve
from .settings import Settings, StructuredMode
from .spec import make_spec
from .store import record_recipe, run_stored
from .usage import Usage

if TYPE_CHECKING:
    from .samplers import Sampler

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


class SettingOverrides(TypedDict, total=False):
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
    sample: Mapping[str, Sampler] | None = None,
    cover: Mapping[str, Sequence[Any]] | None = None,
    edge_cases: float | None = None,
    near_duplicates: float | None = DEFAULT_NEAR_DUPLICATES,
    client: object | None = None,
    settings: Settings | None = None,
    cassette: str | Path | None = None,
    record_mode: str = "once",
    cache_dir: str | Path | None = None,
    **options: Unpack[SettingOverrides],
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
    list has a ``usage`` attribute, ``coverage`` (with ``cover=`` or ``edge_cases=``) and
    ``diversity`` (the report).

    ``sample``: field name -> sampler (:mod:`~pytest_synthdata.samplers`), values code draws
    from the seed and the record's index; ``cover``: axis name -> values, one combination
    per record; ``edge_cases``: the share of records that are edge cases;
    ``near_duplicates``: the similarity from which a record counts as a copy of an earlier
    one or an example and is replaced (``None``: off).
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
        sample=sample,
        cover=cover,
        edge_cases=edge_cases,
        near_duplicates=near_duplicates,
    )
    where = resolve(
        "generate", client=client, cassette=cassette, record_mode=record_mode, cache_dir=cache_dir
    )
    return await run_stored(effective, where, record_recipe(spec, effective), Usage())


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
    sample: Mapping[str, Sampler] | None = None,
    cover: Mapping[str, Sequence[Any]] | None = None,
    edge_cases: float | None = None,
    near_duplicates: float | None = DEFAULT_NEAR_DUPLICATES,
    client: object | None = None,
    settings: Settings | None = None,
    cassette: str | Path | None = None,
    record_mode: str = "once",
    cache_dir: str | Path | None = None,
    **options: Unpack[SettingOverrides],
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
            sample=sample,
            cover=cover,
            edge_cases=edge_cases,
            near_duplicates=near_duplicates,
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
    if settings is not None and not isinstance(settings, Settings):
        keys = f" with keys {sorted(map(str, settings))}" if isinstance(settings, Mapping) else ""
        raise SynthConfigError(
            f"settings must be a pytest_synthdata.Settings, got a {type(settings).__name__}"
            f"{keys}; pass Settings(model=...), or give each setting as a keyword "
            "(generate(..., model=...))"
        )
    base = settings or Settings()
    return base.replace(**options) if options else base


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
    from .storage.turns import BLOCKED_LOOPS  # a cassette's turn held here cannot end meanwhile

    context.run(BLOCKED_LOOPS.set, BLOCKED_LOOPS.get() | {threading.get_ident()})
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
