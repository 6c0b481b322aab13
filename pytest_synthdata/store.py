"""The dataset store: every kind of dataset, read back from where its route keeps it, or
generated on the one batch loop and kept for the next time.

A :class:`Recipe` describes one dataset, as :class:`~.batching.Job` describes one batch:
what decides it (``material``, besides the settings that shape its requests), how progress
names it (``label``) and how many items it wants (``total``), how to ``read`` stored items
back into a result exactly as the generation judged them, how to ``generate`` it, and, for
a dataset that is a stable prefix, how to ``grow`` stored items that are too few. Record
datasets get theirs from :func:`record_recipe`; texts and extractions build theirs in
:mod:`.texts.calls`.

:func:`run_stored` takes a recipe down one path: the dataset stored in the route's
cassette (no cassette is opened for it), else the whole dataset in a library call's cache,
else the cassette opened under its lock and read again (another process may have stored it
meanwhile), else the recipe's generation (or growth) with an LLM on the route's recording,
whose items are then stored. Where the items live is :mod:`.storage.datasets`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from .dataset import Dataset
from .usage import Usage

if TYPE_CHECKING:
    from .batching import Batcher
    from .llm import LLM
    from .route import Route
    from .settings import Settings
    from .spec import SynthSpec
    from .storage.datasets import Step, StoredDataset
    from .storage.recorder import Recording

__all__ = [
    "Recipe",
    "Work",
    "dataset_key",
    "growing_key",
    "record_recipe",
    "run_stored",
    "stored_key",
]

R = TypeVar("R")

Work = Callable[["Batcher"], Awaitable[tuple[R, list[object]]]]
"""Generation on the batch loop: the result, and the items the model answered for it."""


@dataclass(frozen=True)
class Recipe(Generic[R]):
    """One dataset, as the store handles it.

    ``material`` is what decides the dataset besides the settings; ``label`` and ``total``
    (items wanted) are what progress reports and messages show; ``seed`` goes with every
    request; ``profile_key`` names the endpoint profile kept in the cassette. ``generate``
    returns the result and the items the model answered for it, which the store keeps;
    ``read`` turns stored items back into the result exactly as ``generate`` judged them
    (``None``: they do not fit). ``grow``, for datasets that are a stable prefix, turns
    stored items that are too few into the work that adds the rest (``None``: start afresh).
    """

    material: object
    label: str
    total: int
    seed: int | None
    profile_key: str
    read: Callable[[StoredDataset, Usage], R | None]
    generate: Work[R]
    grow: Callable[[StoredDataset], Work[R] | None] | None = None


_NEUTRAL: dict[str, object] = {
    "base_url": None,
    "timeout": 1.0,
    "http_retries": 0,
    "max_retries": 0,
    "concurrency": 1,
    "max_n": 1,
}
"""The value a setting that does not shape requests (``shapes_request=False`` in its
declaration) takes in a dataset's key: fixed values, so the keys of recorded cassettes stay
what they were. A new such setting needs one here."""


def dataset_key(material: object, settings: Settings) -> str:
    """What decides a whole dataset: the spec (``material``) and the settings that shape its
    requests (not the endpoint's address, time-outs, retry budgets or how many run at once:
    the records of a finished dataset are valid whatever those were)."""
    import hashlib
    import json

    from .settings import setting_names, shaping_names
    from .storage.paths import DATASET_PREFIX

    shapes = set(shaping_names())
    neutral = {name: _NEUTRAL[name] for name in setting_names() if name not in shapes}
    raw = json.dumps([material, repr(settings.replace(**neutral))], sort_keys=True, default=str)
    return DATASET_PREFIX + hashlib.sha256(raw.encode()).hexdigest()


def stored_key(key: str) -> str:
    """The name a dataset whose :func:`dataset_key` is ``key`` is stored under in a cassette."""
    from .storage import datasets

    return key[: len(datasets.PREFIX) + 32]


async def run_stored(settings: Settings, route: Route, recipe: Recipe[R], usage: Usage) -> R:
    """The dataset of ``recipe`` from the store when it holds one the recipe reads,
    otherwise generated (or grown) on the one batch loop and stored for the next time, all
    along ``route``. ``usage`` receives what the call cost, even when it fails."""

    key = dataset_key(recipe.material, settings)
    cassette_key = stored_key(key)
    stored = route.stored(cassette_key)
    if stored is not None:
        hit = recipe.read(stored, usage)
        if hit is not None:
            usage.add(_usage_of(stored))
            route.count_replay(usage)
            route.note_replay(cassette_key, recipe.profile_key, recipe.total, stored)
            return hit
    cache = _dataset_cache(route, settings, key)
    if cache is not None:
        hit = _from_cache(recipe, cache, usage)
        if hit is not None:
            return hit
    from .llm import LLM
    from .storage.turns import cassette_turn

    async with cassette_turn(route.cassette if route.stores else None):  # calls sharing it wait
        with route.recording(recipe.profile_key) as recording:
            llm = LLM(settings, route.client, recording=recording)
            try:
                return await _produce(llm, settings, route, recipe, usage, cassette_key, cache)
            finally:
                await llm.aclose()


def _dataset_cache(route: Route, settings: Settings, key: str) -> tuple[Path, str] | None:
    """Where the route's cache keeps this whole dataset (keyed also by the endpoint), if
    it keeps datasets."""
    import hashlib
    import os

    folder = route.dataset_cache()
    if folder is None:
        return None
    endpoint = str(getattr(route.client, "base_url", "")) or (
        settings.base_url or os.environ.get("OPENAI_BASE_URL") or "default"
    )
    digest = hashlib.sha256(f"{key}|{endpoint}".encode()).hexdigest()
    return folder, "dataset:" + digest


def _from_cache(recipe: Recipe[R], cache: tuple[Path, str], usage: Usage) -> R | None:
    """The dataset the cache keeps, when the recipe still reads it; one it no longer reads
    (the model changed since) is forgotten, to be generated again."""
    from .storage import datasets

    cached = datasets.from_cache(*cache)
    if cached is None:
        return None
    hit = recipe.read(cached, usage)
    if hit is None:
        datasets.forget_cached(*cache)
        return None
    usage.add(Usage(cache_hits=1))
    return hit


async def _produce(
    llm: LLM,
    settings: Settings,
    route: Route,
    recipe: Recipe[R],
    usage: Usage,
    key: str,
    cache: tuple[Path, str] | None,
) -> R:
    """The dataset read again from the opened cassette (another process may have stored it
    since), else generated (or grown) and stored."""
    from .batching import Batcher
    from .storage import datasets

    recording = llm.recording
    # Read again under the cassette's lock: another process may have stored it since.
    prior = recording.stored_dataset(key) if recording is not None else None
    if prior is not None and recording is not None:
        hit = recipe.read(prior, usage)
        if hit is not None:
            usage.add(_usage_of(prior))
            route.count_replay(_usage_of(prior))
            recording.note_use(key, recipe.total, prior.steps)
            return hit
    work, before, steps = _plan(route, recipe, recording, prior, usage)
    batcher = Batcher(
        llm, settings, usage, recipe.seed, label=recipe.label, total=recipe.total - before
    )
    start = usage.as_dict()
    result, items = await work(batcher)
    if recording is not None:
        _keep(recording, recipe, key, items, usage, start, before, steps)
    if cache is not None:
        text = datasets.cache_text(recipe.label, items, {**usage.as_dict(), "cache_hits": 0})
        datasets.to_cache(cache[0], cache[1], text)
    return result


def _plan(
    route: Route,
    recipe: Recipe[R],
    recording: Recording | None,
    prior: StoredDataset | None,
    usage: Usage,
) -> tuple[Work[R], int, tuple[Step, ...]]:
    """The work that makes the dataset, the items already stored before it and the steps
    that made them: the recipe's generation, or, when the cassette holds too few items of a
    dataset that grows, the work that adds the rest (whose stored part counts as replayed)."""
    if recipe.grow is None or prior is None or recording is None:
        return recipe.generate, 0, ()
    if len(prior.lines) >= recipe.total:
        return recipe.generate, 0, ()
    grown = recipe.grow(prior)
    if grown is None:
        return recipe.generate, 0, ()
    before = len(prior.lines)
    if recording.replay_only:
        raise _missing_records(recording, recipe.label, before, recipe.total)
    usage.add(_usage_of(prior))  # the stored records' cost, as a replay counts it
    route.count_replay(_usage_of(prior))
    return grown, before, prior.steps or ()


def _keep(
    recording: Recording,
    recipe: Recipe[Any],
    key: str,
    items: list[object],
    usage: Usage,
    start: dict[str, int],
    before: int,
    steps: tuple[Step, ...],
) -> None:
    """Store the generated items in the recording's cassette, with the step that made them
    (the exchanges it took, what it cost), and note what the session used of it."""
    from .storage import datasets

    spent = {name: value - start.get(name, 0) for name, value in usage.as_dict().items()}
    spent["cache_hits"] = 0
    done = (*steps, datasets.Step(len(items), tuple(recording.touched), spent))
    entry = datasets.encode(recipe.label, items, {**usage.as_dict(), "cache_hits": 0}, done)
    recording.store_dataset(key, entry)
    written = None
    if not recording.replay_only and recording.cassette is not None:
        grew = f"{before} -> " if before else ""
        written = f"{recipe.label}: {grew}{len(items)}"
    recording.note_use(key, recipe.total, done, written)


def _missing_records(recording: Recording, label: str, stored: int, total: int) -> Exception:
    """A dataset that grew, in a cassette the record mode does not let grow."""
    from .errors import SynthRecordingError

    mode = recording.storage.record_mode if recording.storage is not None else "none"
    return SynthRecordingError(
        f"cassette {recording.path} holds {stored} {label} record(s) and {total} are asked "
        f"for; record mode {mode!r} does not record the {total - stored} missing one(s) "
        f"(the stored ones stay the first {stored}). Record them with: {recording.rerecord}"
    )


def _usage_of(stored: StoredDataset) -> Usage:
    """What producing a stored dataset cost, as a replay of its exchanges would count it:
    every answer from the cassette, none from the cache."""
    from dataclasses import fields

    names = {f.name for f in fields(Usage)} - {"cache_hits"}
    return Usage(**{name: value for name, value in stored.usage.items() if name in names})


# --------------------------------------------------------------------------- record datasets


def record_recipe(spec: SynthSpec, settings: Settings) -> Recipe[Dataset[Any]]:
    """How the store handles the record dataset of ``spec``: keyed without ``n`` (a stable
    prefix), read by validating the first ``n`` stored records, grown by keeping them first."""
    growing = growing_key(spec)
    return Recipe(
        material=growing,
        label=spec.model_name,
        total=spec.n,
        seed=spec.seed,
        profile_key=f"generate:{growing}",
        read=functools.partial(_read_records, spec),
        generate=functools.partial(_generate_records, spec, settings, None),
        grow=functools.partial(_grow_records, spec, settings),
    )


def growing_key(spec: SynthSpec) -> str:
    """What decides a record dataset apart from ``n``: a dataset is a stable prefix, so
    every ``n`` of the same spec reads (and grows) the same stored records."""
    return replace(spec, n=0).key()


async def _generate_records(
    spec: SynthSpec,
    settings: Settings,
    prefix: list[tuple[Any, object]] | None,
    batcher: Batcher,
) -> tuple[Dataset[Any], list[object]]:
    from .records import Engine

    engine: Engine[Any] = Engine(spec, settings, batcher, prefix=prefix or [])
    dataset = await engine.run()
    return dataset, engine.raw


def _grow_records(spec: SynthSpec, settings: Settings, stored: StoredDataset) -> Work[Any] | None:
    """Generate the records ``stored`` lacks after its own, or ``None`` when the stored
    ones no longer validate (the dataset starts afresh)."""
    from pydantic_core import from_json

    records = _validated(spec, stored.json_array())
    if records is None:
        return None
    raw = [from_json(line) for line in stored.lines]
    prefix = list(zip(records, raw, strict=True))
    return functools.partial(_generate_records, spec, settings, prefix)


def _read_records(spec: SynthSpec, stored: StoredDataset, usage: Usage) -> Dataset[Any] | None:
    """The first ``n`` stored records validated as the recording run validated them, or
    ``None`` when there are fewer or they no longer fit the spec (an edited model or file)."""
    if len(stored.lines) < spec.n:
        return None
    records = _validated(spec, stored.json_array(spec.n))
    if records is None or len(records) != spec.n:
        return None
    from .records import describe_records

    # what it covers and its report, rebuilt from the spec and the stored records (checks
    # such as near-duplicates apply when records are generated, never to a replay)
    dropped = stored.usage.get("dropped_near_duplicate", 0)
    coverage, report = describe_records(spec, records, dropped if isinstance(dropped, int) else 0)
    return Dataset(records, usage, coverage=coverage, diversity=report)


def _validated(spec: SynthSpec, array: str) -> list[Any] | None:
    """Stored records validated as JSON, as the recording run validated each answer;
    ``None`` when the model now rejects them (a validator that fails another way too: the
    replay then goes through the exchanges, where each record is judged alone)."""
    try:
        return list(_list_adapter(spec.model).validate_json(array))
    except Exception:  # a model's own validator may raise anything
        return None


@functools.lru_cache(maxsize=64)
def _list_adapter(model: type[BaseModel]) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(list[model])  # type: ignore[valid-type]
