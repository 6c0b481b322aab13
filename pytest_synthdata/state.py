"""The plugin's per-session state, and the helpers its hooks and fixtures share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from .errors import SynthConfigError, SynthError

if TYPE_CHECKING:
    from .markers import DatasetRequest
    from .runtime import Inventory, SynthRuntime, Totals
    from .settings import Settings, StorageOptions
    from .storage.recorder import Storage


class State:
    """Per-session plugin state. The runtime (and with it pydantic) loads on first use, so a
    suite that never asks for synthetic data pays almost nothing."""

    def __init__(
        self, settings: Settings | None, options: StorageOptions | None, start: float
    ) -> None:
        self.settings = settings  # None: nothing configured, every default applies
        self.options = options
        self.start = start
        self.runtime: SynthRuntime | None = None
        self.requests: dict[str, list[DatasetRequest | SynthError]] = {}
        self.inventory: Inventory | None = None
        self.workers: tuple[Totals, Inventory, set[Path]] | None = None
        self.marked = False  # a synth marker was seen at collection: per-test hooks have work


STATE = pytest.StashKey[State]()


def runtime_of(config: pytest.Config) -> SynthRuntime:
    """The session's :class:`SynthRuntime`, created on first use."""
    state = config.stash[STATE]
    if state.runtime is None:
        from .runtime import SynthRuntime
        from .settings import Settings, StorageOptions

        options = state.options or StorageOptions()
        state.runtime = SynthRuntime(
            state.settings or Settings(), lambda: make_storage(config, options, state.start)
        )
    return state.runtime


def inventory_of(config: pytest.Config) -> Inventory:
    """Which cassettes the collected tests would use, created on first use."""
    state = config.stash[STATE]
    if state.inventory is None:
        from .runtime import Inventory

        state.inventory = Inventory()
    return state.inventory


RESERVED = ("synth_data", "synth_record", "synth_factory")


def cache_dir_of(config: pytest.Config, options: StorageOptions) -> Path:
    """The response cache folder: ``synth_cache_dir``, else inside pytest's cache."""
    if options.cache_dir:
        return config.rootpath / options.cache_dir
    cache = getattr(config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("synthdata"))
    return config.rootpath / ".pytest_cache" / "d" / "synthdata"


def make_storage(config: pytest.Config, options: StorageOptions, start: float) -> Storage:
    """Cassettes and cache for the session (vcrpy and diskcache load only here)."""
    from .storage.recorder import Storage

    cache_dir = cache_dir_of(config, options)
    return Storage(
        record_mode=options.record_mode,
        cache_dir=cache_dir,
        use_cache=not options.no_cache,
        lock_dir=cache_dir / "locks",
        session_start=start,
    )


def cassette_of(item: pytest.Item) -> Path:
    """The cassette file of a test: ``cassettes/<module>/<test>.synth.yaml``."""
    from .storage.paths import cassette_for_test, name_from_nodeid

    return cassette_for_test(Path(str(item.path)), name_from_nodeid(item.nodeid))


def rerecord_hint(target: str) -> str:
    """The command that re-records ``target``, for error messages."""
    return (
        f"pytest {target} --synth-record-mode=rewrite (with OPENAI_API_KEY set; or "
        "new_episodes to keep the other recordings)"
    )


def describe(args: Sequence[Any], kwargs: Mapping[str, Any], marker: str = "synth") -> str:
    """``@pytest.mark.synth(MedicalBilling, n=0)``: the marker as written, shortened."""

    def short(value: object) -> str:
        text = value.__name__ if isinstance(value, type) else repr(value)
        return text if len(text) <= 40 else text[:37] + "..."

    shown = [short(arg) for arg in args] + [f"{key}={short(v)}" for key, v in kwargs.items()]
    return f"@pytest.mark.{marker}({', '.join(shown)})"


def label_of(entry: DatasetRequest) -> str:
    extra = "" if entry.name in RESERVED else f", name={entry.name!r}"
    extra += ", each=True" if entry.each else ""
    return f"@pytest.mark.synth({entry.model.__name__}, n={entry.n}{extra})"


def requests_of(node: pytest.Item) -> list[DatasetRequest | SynthError]:
    """The item's synth markers, parsed once; errors are kept to fail the test at setup."""
    key = node.nodeid  # not the base id: pytest.param(..., marks=...) can differ per item
    cache = node.config.stash[STATE].requests
    if key not in cache:
        base_dir = Path(str(node.path)).parent
        from .markers import parse_request

        parsed: list[DatasetRequest | SynthError] = []
        for mark in node.iter_markers("synth"):
            try:
                parsed.append(parse_request(mark.args, mark.kwargs, base_dir=base_dir))
            except SynthError as exc:
                parsed.append(SynthConfigError(f"{describe(mark.args, mark.kwargs)}: {exc}"))
        names = [r.name for r in parsed if not isinstance(r, SynthError)]
        if len([r for r in parsed if not isinstance(r, SynthError) and r.each]) > 1:
            parsed.append(
                SynthConfigError(
                    "@pytest.mark.synth: only one synth marker per test may use each=True; "
                    "drop each=True from the others"
                )
            )
        for name in sorted({n for n in names if names.count(n) > 1}):
            parsed.append(
                SynthConfigError(
                    f"@pytest.mark.synth: several synth markers inject under the name {name!r}; "
                    "give each marker its own name=..., e.g. name='bills', and ask for that "
                    "fixture"
                )
            )
        cache[key] = parsed
    return cache[key]


def fail(where: str, exc: BaseException | str) -> NoReturn:
    # No __tracebackhide__ here: if every frame were hidden, pytest would add an "All
    # traceback entries are hidden" line; with pytrace=False only the message is shown.
    pytest.fail(f"pytest-synthdata: {where}: {exc}", pytrace=False)
