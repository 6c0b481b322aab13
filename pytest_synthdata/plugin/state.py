"""The plugin's session state, and the helpers its hooks and fixtures share.

One :class:`SessionState` per pytest session lives in ``config.stash[STATE]`` (see
:func:`state_of`). It produces each dataset once per session and keeps what the terminal
summary reports: the :class:`Totals` (what the session cost and where responses came
from), the :class:`Inventory` (which cassettes the collected tests would use) and the
cassettes actually used, gathered into a :class:`Ledger`, which is also what each xdist
worker hands the controller through ``workeroutput``.

Importing this module is cheap: settings, storage (vcrpy, diskcache), the engine and
pydantic load on first use, so a suite that never asks for synthetic data pays almost
nothing.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import pytest

from ..errors import SynthConfigError, SynthError, SynthGenerationError
from ..progress import Spent
from ..storage.secrets import redact
from ..usage import Usage
from .ledger import Inventory, Ledger, Totals

if TYPE_CHECKING:
    from ..dataset import Dataset
    from ..route import Route
    from ..settings import SessionSettings, Settings
    from ..storage.recorder import Storage
    from .markers import DatasetRequest

T = TypeVar("T")

RESERVED = ("synth_data", "synth_record", "synth_factory")
"""The plugin's own fixture names, which ``synth(..., name=...)`` does not register again."""

__all__ = ["Inventory", "Ledger", "SessionState", "Totals"]


@dataclass(frozen=True)
class Shown:
    """How a dataset is named when it is shown (``--synth-show``) and exported
    (``--synth-export``): a title, and a file path relative to the export folder."""

    title: str
    file: str


class SessionState:
    """Per-session plugin state: produces each dataset once per session and keeps the totals.

    The settings, the storage (and with them vcrpy, diskcache and pydantic) load on first
    use, so a suite that never asks for synthetic data pays almost nothing.
    """

    def __init__(
        self,
        config: pytest.Config,
        settings: Settings | None,
        session: SessionSettings | None,
        start: float,
    ) -> None:
        self.configured = settings is not None  # else nothing was configured: all defaults
        self.start = start  # the session start (the controller's, under xdist)
        self.totals = Totals()
        self.inventory = Inventory()
        self.workers: Ledger | None = None  # what xdist workers reported, added up
        self.requests: dict[str, list[DatasetRequest | SynthError]] = {}
        self.marked = False  # a synth marker was seen at collection: per-test hooks have work
        self.passed: set[str] = set()  # items whose call passed (for --synth-update)
        self.failed: set[str] = set()  # items that failed or were skipped in any phase
        self.previews: dict[str, dict[str, Any]] = {}  # --synth-show, by dataset identity
        self.exported: set[str] = set()  # --synth-export: the files written
        self.live: Any = None  # the live progress line (plugin/live.py), when on a terminal
        self.spent = Spent()  # the answers of this process: sent, or replayed
        self.update_lines: list[str] = []  # what --synth-update did, for the summary
        self._config = config
        self._settings = settings
        self._session = session
        self._storage: Storage | None = None
        self._failures: dict[Hashable, SynthError] = {}
        self._results: dict[Hashable, Any] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    @property
    def session(self) -> SessionSettings:
        """The session-wide cassette, cache and reporting settings."""
        if self._session is None:
            from ..settings import SessionSettings

            self._session = SessionSettings()
        return self._session

    @property
    def update(self) -> bool:
        return self._session is not None and self._session.update

    @contextlib.contextmanager
    def generating(self) -> Iterator[None]:
        """Generations in this block report their progress to the live line, if any, and
        to :attr:`spent` (what was sent to the endpoint, for the summary)."""
        from ..progress import fan_out, listening

        live = self.live.generating() if self.live is not None else contextlib.nullcontext()
        with live as display, listening(fan_out(self.spent, display)):
            yield

    @property
    def settings(self) -> Settings:
        """The configured settings, or the built-in defaults."""
        if self._settings is None:
            from ..settings import Settings

            self._settings = Settings()
        return self._settings

    @property
    def storage(self) -> Storage:
        """Cassettes and cache, created on first use (vcrpy and diskcache load only then)."""
        if self._storage is None:
            with self._lock:
                if self._storage is None:
                    from ..settings import SessionSettings

                    session = self._session or SessionSettings()
                    self._storage = make_storage(self._config, session, self.start)
        return self._storage

    @property
    def idle(self) -> bool:
        """Nothing was generated or opened, no worker reported and no cassette folder was
        seen: there is nothing to report."""
        return (
            self._storage is None
            and not self.totals.datasets
            and not self.totals.calls.requests
            and not self.inventory.folders
            and self.workers is None
        )

    @contextlib.contextmanager
    def ambient(self, cassette: Path | None, rerecord: str) -> Iterator[None]:
        """Library calls (text generation, extraction) inside this block that name no
        storage of their own take the test's route: they record into ``cassette`` and use
        the session's cache."""
        from ..route import using

        with using(self.route(cassette, rerecord)):
            yield

    def route(self, cassette: Path | None, rerecord: str, owner: str = "") -> Route:
        """The route of a test whose cassette is ``cassette``: the session's storage;
        ``owner``: what :meth:`produce` was given (default: the test being run)."""
        from ..route import Route
        from .owners import owner_of

        return Route.for_test(self.storage, cassette, rerecord, owner_of(owner))

    def remember(
        self, key: Hashable, make: Callable[[], T], usage: Usage, *, records: bool = False
    ) -> T:
        """``make()`` once per session for ``key``; it counts as one dataset (with its
        records, when ``records``) whose cost is ``usage``."""
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._failures:
                raise self._failures[key]
            if key not in self._results:
                try:
                    self._results[key] = make()
                except SynthError as exc:
                    self._failures[key] = exc
                    if isinstance(exc, SynthGenerationError):
                        usage.add(exc.usage)  # what the failed attempt cost still counts
                    with self._lock:
                        self.totals.calls.add(usage)
                    raise
                made = self._results[key]
                count = len(made) if records and isinstance(made, list) else 0
                with self._lock:
                    self.totals.datasets[_identity(key)] = (count, usage)
            result: T = self._results[key]
            return result

    def produce(
        self,
        owner: str,
        request: DatasetRequest,
        *,
        cassette: Path | None = None,
        rerecord: str = "",
        shown: Shown | None = None,
    ) -> Dataset[Any]:
        """The dataset for ``request``, generated on first use; ``owner`` scopes the sharing.

        ``shown`` names it for ``--synth-show`` and ``--synth-export``."""
        from ..api import run_sync
        from ..spec import make_spec
        from ..store import record_recipe, run_stored

        settings = (
            self.settings.replace(**request.overrides) if request.overrides else self.settings
        )
        spec = make_spec(request.model, max_n=settings.max_n, **request.spec_kwargs)
        usage = Usage()
        key = (owner, request.name, spec.key(), settings)

        def make() -> Dataset[Any]:
            route = self.route(cassette, rerecord, owner).checked()
            recipe = record_recipe(spec, settings)
            with self.generating():
                dataset = run_sync(run_stored(settings, route, recipe, Usage()))
            usage.add(dataset.usage)
            if shown is not None:
                self.keep_shown(shown, dataset, _identity(key))
            return dataset

        return self.remember(key, make, usage, records=True)

    def valid(self, request: DatasetRequest) -> bool:
        """Whether a marker's settings and spec pass every check made before any request
        (an ``each=True`` marker is split into one test per record only then)."""
        import warnings

        from ..spec import make_spec

        try:
            settings = self.settings.replace(**request.overrides)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # they are given when the dataset is made
                make_spec(request.model, max_n=settings.max_n, **request.spec_kwargs)
        except SynthError:
            return False
        return True

    def count(self, *, texts: int = 0, extractions: int = 0) -> None:
        """Count texts and extractions the text fixtures made (for the summary)."""
        with self._lock:
            self.totals.texts += texts
            self.totals.extractions += extractions

    def keep_shown(self, shown: Shown, records: Sequence[Any], identity: str = "") -> None:
        """Keep a preview of a dataset (``--synth-show``) and export it (``--synth-export``)."""
        identity = identity or shown.title
        session = self.session
        if not session.show and not session.export:
            return
        from .show import export, preview

        if session.show:
            with self._lock:
                self.previews[identity] = preview(shown.title, records)
        if session.export:
            folder = Path(self._config.invocation_params.dir) / session.export
            export(folder / shown.file, records)
            with self._lock:
                self.exported.add(str(folder / shown.file))

    def ledger(self) -> Ledger:
        """This process's report: the totals with where responses came from, the inventory
        and the cassettes used (not what xdist workers reported: see :attr:`workers`)."""
        report = Ledger()
        report.totals.add(self.totals)
        report.inventory.add(self.inventory)
        if self._storage is not None:
            counters = self._storage.counters
            report.totals.replayed += counters.replayed
            report.totals.recorded += counters.recorded
            report.totals.cached += counters.cached
            report.totals.network += counters.network
            report.totals.failed += counters.failed
            report.used |= set(self._storage.used)
            report.completed |= set(self._storage.completed)
            for path, use in self._storage.uses.items():
                report.uses.setdefault(path, type(use)()).add(use)
        report.totals.sent += self.spent.sent
        report.totals.sent_prompt_tokens += self.spent.sent_prompt_tokens
        report.totals.sent_completion_tokens += self.spent.sent_completion_tokens
        from ..storage.footprint import OPENED

        report.used |= OPENED  # library calls' own cassettes too: none of them is stale
        report.previews.update(self.previews)
        report.exported |= self.exported
        return report

    def merged(self) -> Ledger:
        """This process's report with what the xdist workers reported."""
        report = self.ledger()
        if self.workers is not None:
            report.add(self.workers)
        return report

    @property
    def record_mode(self) -> str:
        return self.session.record_mode

    def finish(self) -> None:
        """The session ran to its end: the cassettes it recorded are complete."""
        if self._storage is not None:
            self._storage.finish()

    def close(self) -> None:
        if self._storage is not None:
            self._storage.close()


def _identity(key: Hashable) -> str:
    """A dataset's identity, the same in every xdist worker."""
    import hashlib

    return hashlib.sha256(repr(key).encode()).hexdigest()[:24]


STATE = pytest.StashKey[SessionState]()


def state_of(config: pytest.Config, user: str = "") -> SessionState:
    """The session's :class:`SessionState` (set up by ``pytest_configure``).

    Only a fixture can ask while the plugin is off (a conftest's ``synth_fixture`` under
    ``-p no:synthdata``); ``user`` names it in the message that fails its tests.
    """
    state = config.stash.get(STATE, None)
    if state is None:
        fail(
            user or "pytest-synthdata",
            "the pytest-synthdata plugin is not active in this run (it was disabled with "
            "-p no:synthdata, or plugin autoloading is off), so synthetic data cannot be "
            "produced. Drop -p no:synthdata (or add -p synthdata), or deselect the tests "
            "that use this fixture",
        )
    return state


def cache_dir_of(config: pytest.Config, session: SessionSettings) -> Path:
    """The response cache folder: ``synth_cache_dir``, else inside pytest's cache."""
    if session.cache_dir:
        return config.rootpath / session.cache_dir
    cache = getattr(config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("synthdata"))
    return config.rootpath / ".pytest_cache" / "d" / "synthdata"


def make_storage(config: pytest.Config, session: SessionSettings, start: float) -> Storage:
    """Cassettes and cache for the session (vcrpy and diskcache load only here)."""
    from ..storage.recorder import Storage

    cache_dir = cache_dir_of(config, session)
    return Storage(
        record_mode=session.record_mode,
        cache_dir=cache_dir,
        use_cache=not session.no_cache,
        lock_dir=cache_dir / "locks",
        session_start=start,
        finish_at_end=True,
    )


def cassette_of(item: pytest.Item) -> Path:
    """The cassette file of a test: ``cassettes/<module>/<test>.synth.yaml``."""
    from ..storage.paths import cassette_for_test, name_from_nodeid

    return cassette_for_test(Path(str(item.path)), name_from_nodeid(item.nodeid))


def rerecord_hint(target: str, config: pytest.Config | None = None) -> str:
    """The command that re-records ``target``, for error messages: with ``config``, a node
    id as it runs from the folder pytest was started in (:func:`runnable`)."""
    if config is not None:
        target = shlex.quote(runnable(config, target))
    return (
        f"pytest {target} --synth-record-mode=rewrite (with OPENAI_API_KEY set; or "
        "--synth-update to record only what is missing and keep the rest)"
    )


def runnable(config: pytest.Config, nodeid: str) -> str:
    """``nodeid`` (relative to the rootdir) as pytest, started where this run was, takes it:
    ``test_x.py::test_a`` from the test's own folder, ``../test_x.py::test_a`` from below."""
    path, sep, rest = nodeid.partition("::")
    here, root = Path(config.invocation_params.dir), Path(config.rootpath)
    if not path or here == root:
        return nodeid
    return Path(os.path.relpath(root / path, here)).as_posix() + sep + rest


def describe(args: Sequence[Any], kwargs: Mapping[str, Any], marker: str = "synth") -> str:
    """``@pytest.mark.synth(MedicalBilling, n=0)``: the marker as written, shortened."""

    def short(value: object) -> str:
        text = value.__name__ if isinstance(value, type) else redact(repr(value))
        return text if len(text) <= 40 else text[:37] + "..."  # redacted before it is cut

    shown = [short(arg) for arg in args] + [f"{key}={short(v)}" for key, v in kwargs.items()]
    return f"@pytest.mark.{marker}({', '.join(shown)})"


def label_of(entry: DatasetRequest) -> str:
    extra = "" if entry.name in RESERVED else f", name={entry.name!r}"
    extra += ", each=True" if entry.each else ""
    return f"@pytest.mark.synth({entry.model.__name__}, n={entry.n}{extra})"


def requests_of(node: pytest.Item) -> list[DatasetRequest | SynthError]:
    """The item's synth markers, parsed once; errors are kept to fail the test at setup."""
    key = node.nodeid  # not the base id: pytest.param(..., marks=...) can differ per item
    cache = state_of(node.config).requests
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
    from ..terminal_safe import escape_controls  # a model's values may be in the message

    pytest.fail(escape_controls(f"pytest-synthdata: {where}: {exc}", keep="\n"), pytrace=False)
