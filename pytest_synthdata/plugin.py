"""pytest hooks and fixtures. Thin: everything else lives in the core modules."""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import pytest

from .errors import SynthConfigError, SynthError
from .options import (
    ENV_PREFIX,
    HELP,
    RECORD_MODES,
    SETTING_NAMES,
    STORAGE_HELP,
    STORAGE_NAMES,
    env_name,
)

if TYPE_CHECKING:
    from .markers import DatasetRequest
    from .runtime import Inventory, SynthRuntime, Totals
    from .settings import Settings, StorageOptions
    from .storage.recorder import Storage
    from .usage import Usage

T = TypeVar("T")


class _State:
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


STATE = pytest.StashKey[_State]()


def _runtime(config: pytest.Config) -> SynthRuntime:
    state = config.stash[STATE]
    if state.runtime is None:
        from .runtime import SynthRuntime
        from .settings import Settings, StorageOptions

        options = state.options or StorageOptions()
        state.runtime = SynthRuntime(
            state.settings or Settings(), lambda: _storage(config, options, state.start)
        )
    return state.runtime


def _inventory(config: pytest.Config) -> Inventory:
    state = config.stash[STATE]
    if state.inventory is None:
        from .runtime import Inventory

        state.inventory = Inventory()
    return state.inventory


MARKER_DOC = (
    "synth(Model, n=10, examples=None, subject=None, extra=None, seed=None, unique=None, "
    "name='synth_data', each=False, model=..., temperature=..., ...): generate n validated "
    "records of the pydantic Model with an LLM and inject them into the test as the list "
    "fixture `synth_data` (or the fixture called `name`); each=True makes one test per "
    "record, injected as `synth_record`. See the pytest-synthdata README."
)
TEXT_MARKER_DOC = (
    "synth_text(fields_collection, preferences=None, **options): write one text per entry "
    "of fields_collection (a list of field lists or dicts) with an LLM, each mentioning every "
    "field value and following the preferences, and inject them as the list fixture "
    "`synth_texts` of TextRecord(fields, preferences, text). See the pytest-synthdata README."
)
RESERVED = ("synth_data", "synth_record", "synth_factory")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("synthdata", "pytest-synthdata: synthetic test data from an LLM")
    for name in SETTING_NAMES:
        flag = "--synth-" + name.replace("_", "-")
        group.addoption(
            flag,
            dest=f"synth_{name}",
            default=None,
            metavar=name.upper(),
            help=f"{HELP[name]}. ini: synth_{name}, env: {env_name(name)}",
        )
        parser.addini(f"synth_{name}", f"pytest-synthdata: {HELP[name]}", default=None)
    group.addoption(
        "--synth-record-mode",
        dest="synth_record_mode",
        default=None,
        choices=RECORD_MODES,
        help=f"{STORAGE_HELP['record_mode']}. ini: synth_record_mode, "
        f"env: {env_name('record_mode')}",
    )
    group.addoption(
        "--synth-cache-dir",
        dest="synth_cache_dir",
        default=None,
        metavar="DIR",
        help=f"{STORAGE_HELP['cache_dir']}. ini: synth_cache_dir, env: {env_name('cache_dir')}",
    )
    group.addoption(
        "--synth-no-cache",
        dest="synth_no_cache",
        action="store_true",
        default=False,
        help=f"{STORAGE_HELP['no_cache']}. ini: synth_no_cache, env: {env_name('no_cache')}",
    )
    group.addoption(
        "--synth-clear-cache",
        dest="synth_clear_cache",
        action="store_true",
        default=False,
        help="empty the response cache before the run",
    )
    for name in ("record_mode", "cache_dir"):
        parser.addini(f"synth_{name}", f"pytest-synthdata: {STORAGE_HELP[name]}", default=None)
    parser.addini(
        "synth_no_cache",
        f"pytest-synthdata: {STORAGE_HELP['no_cache']}",
        type="bool",
        default=False,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_DOC)
    config.addinivalue_line("markers", TEXT_MARKER_DOC)
    names = (*SETTING_NAMES, *STORAGE_NAMES)
    ini = {name: config.getini(f"synth_{name}") for name in names}
    cli = {name: config.getoption(f"synth_{name}") for name in names}
    configured = (
        any(value not in (None, "", False) for value in (*ini.values(), *cli.values()))
        or any(key.startswith(ENV_PREFIX) for key in os.environ)
        or "OPENAI_BASE_URL" in os.environ
    )
    settings: Settings | None = None
    storage: StorageOptions | None = None
    if configured:
        from .settings import (
            Settings,
            StorageOptions,
            settings_from_sources,
            storage_from_sources,
        )

        try:
            settings = settings_from_sources(ini=ini, env=os.environ, cli=cli)
            storage = storage_from_sources(ini=ini, env=os.environ, cli=cli)
        except SynthError as exc:
            if not config.getoption("help", False):  # --help works whatever the settings say
                raise pytest.UsageError(f"pytest-synthdata: {exc}") from None
            settings, storage = Settings(), StorageOptions()
    workerinput = getattr(config, "workerinput", None)
    start = float(workerinput["synthdata_start"]) if workerinput else time.time()
    config.stash[STATE] = _State(settings, storage, start)
    if config.getoption("synth_clear_cache") and workerinput is None:
        from .settings import StorageOptions
        from .storage.cache import ResponseCache

        ResponseCache(_cache_dir(config, storage or StorageOptions())).clear()


def _cache_dir(config: pytest.Config, options: StorageOptions) -> Path:
    if options.cache_dir:
        return config.rootpath / options.cache_dir
    cache = getattr(config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("synthdata"))
    return config.rootpath / ".pytest_cache" / "d" / "synthdata"


def _storage(config: pytest.Config, options: StorageOptions, start: float) -> Storage:
    from .storage.recorder import Storage

    cache_dir = _cache_dir(config, options)
    return Storage(
        record_mode=options.record_mode,
        cache_dir=cache_dir,
        use_cache=not options.no_cache,
        lock_dir=cache_dir / "locks",
        session_start=start,
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and state.runtime is not None:
        state.runtime.close()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: workers share the controller's session start (for ``rewrite``)."""
    node.workerinput["synthdata_start"] = node.config.stash[STATE].start


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist: add up what each worker generated, replayed and collected."""
    data = getattr(node, "workeroutput", {}).get("synthdata")
    if data:
        from .runtime import Inventory, Totals

        state = node.config.stash[STATE]
        if state.workers is None:
            state.workers = (Totals(), Inventory(), set())
        totals, inventory, used = state.workers
        totals.add(Totals.from_dict(data["totals"]))
        inventory.add(Inventory.from_dict(data["inventory"]))
        used.update(Path(p) for p in data["used"])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Note which cassettes the collected tests would use (for the stale-cassette report).

    Only where a ``cassettes`` folder exists at all, so a suite without any pays nothing.
    """
    folders: dict[str, list[Path]] = {}  # by folder name: cheaper than a Path per item
    for item in items:
        name = os.path.dirname(item.path)
        if name not in folders:
            directory = Path(name)
            chain = [directory, *directory.parents]
            stop = chain.index(config.rootpath) + 1 if config.rootpath in chain else 1
            folders[name] = [d / "cassettes" for d in chain[:stop] if (d / "cassettes").is_dir()]
        if not folders[name]:
            continue
        from .storage.paths import cassette_for_test, name_from_nodeid

        inventory = _inventory(config)
        inventory.folders.update(folders[name])
        names = set(getattr(item, "fixturenames", ()))
        inventory.fixture_names |= names
        if "synth_factory" in names or item.get_closest_marker("synth") is not None:
            path = Path(str(item.path))
            inventory.expected.add(cassette_for_test(path, name_from_nodeid(item.nodeid)))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = config.stash.get(STATE, None)
    if not hasattr(config, "workeroutput") or state is None:
        return
    if state.runtime is None and state.inventory is None:
        return
    runtime = _runtime(config)
    config.workeroutput["synthdata"] = {
        "totals": runtime.snapshot().as_dict(),
        "inventory": _inventory(config).as_dict(),
        "used": sorted(map(str, runtime.used_cassettes())),
    }


def _cassette(item: pytest.Item) -> Path:
    from .storage.paths import cassette_for_test, name_from_nodeid

    return cassette_for_test(Path(str(item.path)), name_from_nodeid(item.nodeid))


def _rerecord(target: str) -> str:
    return (
        f"pytest {target} --synth-record-mode=rewrite (with OPENAI_API_KEY set; or "
        "new_episodes to keep the other recordings)"
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash[STATE]
    if state.settings is None and config.get_verbosity() < 1:
        return None
    settings = _runtime(config).settings
    changed = settings.non_defaults()
    if not changed and config.get_verbosity() < 1:
        return None
    shown = changed or {"model": settings.model, "structured": settings.structured}
    return "synthdata: " + ", ".join(f"{key}={value!r}" for key, value in shown.items())


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Register the fixtures named by ``synth(..., name=...)`` before the test is built."""
    marks = _synth_marks(obj)
    if isinstance(collector, pytest.Module):  # module-level ``pytestmark``
        marks += [mark for mark in collector.own_markers if mark.name == "synth"]
    if marks:
        collector.config.stash[STATE].marked = True
    for mark in marks:
        inject = mark.kwargs.get("name")
        if isinstance(inject, str) and inject.isidentifier() and inject not in RESERVED:
            registered = collector.stash.setdefault(_REGISTERED, set())
            if inject not in registered:
                registered.add(inject)
                pytest.register_fixture(name=inject, func=_named_dataset, node=collector)


_REGISTERED = pytest.StashKey[set[str]]()


def _synth_marks(obj: object) -> list[pytest.Mark]:
    """The ``synth`` marks stored on a function or class (any object is tolerated)."""
    try:
        stored = getattr(obj, "pytestmark", [])
    except Exception:
        return []
    if not isinstance(stored, (list, tuple)):
        stored = [stored]
    marks = [getattr(mark, "mark", mark) for mark in stored]
    return [mark for mark in marks if isinstance(mark, pytest.Mark) and mark.name == "synth"]


def _describe(args: Sequence[Any], kwargs: Mapping[str, Any], marker: str = "synth") -> str:
    """``@pytest.mark.synth(MedicalBilling, n=0)``: the marker as written, shortened."""

    def short(value: object) -> str:
        text = value.__name__ if isinstance(value, type) else repr(value)
        return text if len(text) <= 40 else text[:37] + "..."

    shown = [short(arg) for arg in args] + [f"{key}={short(v)}" for key, v in kwargs.items()]
    return f"@pytest.mark.{marker}({', '.join(shown)})"


def _label(entry: DatasetRequest) -> str:
    extra = "" if entry.name in RESERVED else f", name={entry.name!r}"
    extra += ", each=True" if entry.each else ""
    return f"@pytest.mark.synth({entry.model.__name__}, n={entry.n}{extra})"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Turn ``each=True`` into one test per record (ids ``Model-i``); never calls the LLM."""
    if not metafunc.config.stash[STATE].marked:
        return
    if metafunc.definition.get_closest_marker("synth") is None:
        return
    requests = _requests(metafunc.definition)
    each = [r for r in requests if not isinstance(r, SynthError) and r.each]
    if len(each) == 1 and each[0].name in metafunc.fixturenames:
        request = each[0]
        metafunc.parametrize(
            request.name,
            range(request.n),
            ids=[f"{request.model.__name__}-{i}" for i in range(request.n)],
            indirect=True,
        )


def _requests(node: pytest.Item) -> list[DatasetRequest | SynthError]:
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
                parsed.append(SynthConfigError(f"{_describe(mark.args, mark.kwargs)}: {exc}"))
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


def pytest_runtest_setup(item: pytest.Item) -> None:
    """An ``each=True`` marker whose fixture the test never asks for is a mistake, not a no-op."""
    if not item.config.stash[STATE].marked or item.get_closest_marker("synth") is None:
        return
    for entry in _requests(item):
        if isinstance(entry, SynthError) or not entry.each:
            continue
        if entry.name not in getattr(item, "fixturenames", ()):
            _fail(
                item.nodeid,
                f"{_label(entry)} gives one record per test through the {entry.name!r} "
                f"fixture, but the test does not ask for it; add a {entry.name} argument "
                "or drop each=True",
            )


def _fail(where: str, exc: BaseException | str) -> NoReturn:
    # No __tracebackhide__ here: if every frame were hidden, pytest would add an "All
    # traceback entries are hidden" line; with pytrace=False only the message is shown.
    pytest.fail(f"pytest-synthdata: {where}: {exc}", pytrace=False)


def _marker_dataset(request: pytest.FixtureRequest, name: str) -> Any:
    __tracebackhide__ = True
    item = request.node
    requests = _requests(item)
    for entry in requests:
        if isinstance(entry, SynthError):
            _fail(item.nodeid, entry)
    matching = [r for r in requests if not isinstance(r, SynthError) and r.name == name]
    if not matching:
        if name not in RESERVED:
            # A name=... used by another test of the module hides a fixture of the same
            # name (conftest, builtin) for this one; hand that one out instead.
            try:
                return request.getfixturevalue(name)
            except pytest.FixtureLookupError:
                pass
        injected = [repr(r.name) for r in requests if not isinstance(r, SynthError)]
        _fail(
            item.nodeid,
            f"the fixture {name!r} needs a @pytest.mark.synth(Model, n=..."
            + ("" if name in RESERVED else f", name={name!r}")
            + (", each=True" if name == "synth_record" else "")
            + ") marker on the test (or use the synth_factory fixture)"
            + (f"; this test's synth markers inject {', '.join(injected)}" if injected else ""),
        )
    entry = matching[0]
    runtime = _runtime(request.config)
    error: SynthError | None = None
    try:
        dataset = runtime.produce(
            item.nodeid.split("[")[0],
            entry,
            cassette=_cassette(item),
            rerecord=_rerecord(shlex.quote(item.nodeid.split("[")[0])),
        )
    except SynthError as exc:
        error = exc  # failed outside the except block: no "During handling..." chain
    if error is not None:
        _fail(f"{item.nodeid}: {_label(entry)}", error)
    if entry.each:
        if not hasattr(request, "param"):
            _fail(item.nodeid, f"each=True needs the test to ask for the {name!r} fixture")
        return dataset[request.param]
    return list(dataset)


@pytest.fixture
def synth_data(request: pytest.FixtureRequest) -> list[Any]:
    """The records of the test's @pytest.mark.synth(Model, n=...) marker: a list of exactly n."""
    data: list[Any] = _marker_dataset(request, "synth_data")
    return data


@pytest.fixture
def synth_record(request: pytest.FixtureRequest) -> Any:
    """One record of a @pytest.mark.synth(Model, n=..., each=True) marker (one test per record)."""
    return _marker_dataset(request, "synth_record")


def _named_dataset(request: pytest.FixtureRequest) -> Any:
    """The records of the test's synth marker with the matching name=..."""
    return _marker_dataset(request, str(request.fixturename))


@pytest.fixture
def synth_factory(request: pytest.FixtureRequest) -> Callable[..., list[Any]]:
    """Call synth_factory(Model, n=5, **options) inside a test to get a list of n records."""
    runtime = _runtime(request.config)
    owner = request.node.nodeid
    base_dir = Path(str(request.node.path)).parent
    cassette = _cassette(request.node)
    rerecord = _rerecord(shlex.quote(owner.split("[")[0]))

    def factory(*args: Any, **kwargs: Any) -> list[Any]:
        __tracebackhide__ = True
        error: SynthError | None = None
        try:
            from .markers import parse_request

            entry = parse_request(args, kwargs, base_dir=base_dir, what="synth_factory")
            if entry.each:
                raise SynthConfigError("each=True only applies to markers; use the returned list")
            return list(
                runtime.produce(f"{owner}::factory", entry, cassette=cassette, rerecord=rerecord)
            )
        except SynthError as exc:
            error = exc  # failed outside the except block: no "During handling..." chain
        _fail(f"{owner}: synth_factory", error)

    return factory


def _ambient(request: pytest.FixtureRequest, what: str, call: Callable[[Usage], T]) -> T:
    """Run a text/extraction library call so that it records into the test's cassette,
    uses the session cache and counts in the summary; errors fail the test cleanly."""
    runtime = _runtime(request.config)
    item = request.node
    owner = item.nodeid.split("[")[0]
    from .usage import Usage

    usage = Usage()
    error: SynthError | None = None
    try:
        with runtime.ambient(_cassette(item), _rerecord(shlex.quote(owner))):
            result = call(usage)
    except SynthError as exc:
        error = exc  # failed outside the except block: no "During handling..." chain
    finally:
        runtime.totals.usage.add(usage)
    if error is not None:
        _fail(f"{item.nodeid}: {what}", error)
    return result


@pytest.fixture
def synth_texts(request: pytest.FixtureRequest) -> list[Any]:
    """The texts of the test's @pytest.mark.synth_text(fields_collection, ...) marker."""
    item = request.node
    mark = item.get_closest_marker("synth_text")
    what = _describe(mark.args, mark.kwargs, "synth_text") if mark else "synth_texts"
    if mark is None:
        _fail(item.nodeid, "the fixture 'synth_texts' needs a @pytest.mark.synth_text(...) marker")
    from .markers import parse_text_request
    from .text import generate_dataset
    from .usage import Usage

    runtime = _runtime(request.config)
    error: SynthError | None = None
    try:
        collection, preferences, options = parse_text_request(mark.args, mark.kwargs)
    except SynthError as exc:
        error = exc
    if error is not None:
        _fail(f"{item.nodeid}: {what}", error)
    key = ("synth_text", item.nodeid.split("[")[0], repr((mark.args, sorted(mark.kwargs.items()))))

    def make(usage: Usage) -> list[Any]:
        return runtime.remember(
            key,
            lambda: list(generate_dataset(collection, preferences, usage=usage, **options)),
            Usage(),
        )

    return list(_ambient(request, what, make))


def _recorded(
    request: pytest.FixtureRequest, what: str, call: Callable[..., T]
) -> Callable[..., T]:
    """``call(*args, usage=..., **kwargs)`` made through :func:`_ambient`."""

    def recorded(*args: Any, **kwargs: Any) -> T:
        __tracebackhide__ = True
        return _ambient(request, what, lambda usage: call(*args, usage=usage, **kwargs))

    return recorded


@pytest.fixture
def synth_text_factory(request: pytest.FixtureRequest) -> Callable[..., str]:
    """Call synth_text_factory(fields, preferences=None, **options) for one text."""
    from .text import generate_text

    return _recorded(request, "synth_text_factory", generate_text)


@pytest.fixture
def synth_extract(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Call synth_extract(text, Model, **options) to extract one validated Model from a text."""
    from .text import extract

    return _recorded(request, "synth_extract", extract)


@pytest.fixture
def synth_round_trip(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Call synth_round_trip(records) to write a text per record, extract it back, and compare."""
    from .text import round_trip

    return _recorded(request, "synth_round_trip", round_trip)


def synth_fixture(
    model: Any,
    n: int = 10,
    *,
    scope: str = "function",
    **kwargs: Any,
) -> Any:
    """A fixture for a conftest: ``medical_bills = synth_fixture(MedicalBilling, n=20)``.

    The fixture is named after the variable it is assigned to, takes the same keywords as
    the ``synth`` marker, and is generated once per session whatever its ``scope``; each
    request of a function-scoped one gets its own copy of the records.
    """
    caller = sys._getframe(1).f_code.co_filename
    base_dir = Path(caller).parent
    try:
        from .markers import parse_request

        parsed: DatasetRequest | SynthError = parse_request(
            (model, n), kwargs, base_dir=base_dir, what="synth_fixture"
        )
    except SynthError as exc:
        parsed = exc
    if not isinstance(parsed, SynthError) and (parsed.each or "name" in kwargs):
        parsed = SynthConfigError(
            "each= and name= only apply to markers; the fixture is named after the variable "
            "it is assigned to and gives the whole list"
        )
    if scope not in ("function", "class", "module", "package", "session"):
        parsed = SynthConfigError(
            f"scope must be function, class, module, package or session, got {scope!r}"
        )
        scope = "function"  # an invalid scope would break collection, not just its users

    def fixture(request: pytest.FixtureRequest) -> Iterator[list[Any]]:
        __tracebackhide__ = True
        name = request.fixturename
        if isinstance(parsed, SynthError):
            _fail(f"fixture {name!r} (synth_fixture in {caller})", parsed)
        assert not isinstance(parsed, SynthError)
        runtime = _runtime(request.config)
        error: SynthError | None = None
        try:
            from .storage.paths import fixture_cassette

            dataset = runtime.produce(
                f"fixture:{name}@{caller}",
                parsed,
                cassette=fixture_cassette(Path(caller), str(name)),
                rerecord=_rerecord(f"<a test that uses {name}>"),
            )
        except SynthError as exc:
            error = exc  # failed outside the except block: no "During handling..." chain
        if error is not None:
            _fail(f"fixture {name!r} (synth_fixture({parsed.model.__name__}, ...))", error)
        if scope == "function":
            yield [record.model_copy(deep=True) for record in dataset]
        else:
            yield list(dataset)

    fixture.__doc__ = f"{n} synthetic {getattr(model, '__name__', model)} records (synth_fixture)."
    return pytest.fixture(scope=scope)(fixture)  # type: ignore[call-overload]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int) -> None:
    config = terminalreporter.config
    state = config.stash[STATE]
    if state.runtime is None and state.workers is None and state.inventory is None:
        return  # nothing was generated, and there is no cassette folder to look at
    from .runtime import Inventory, Totals

    runtime = _runtime(config)
    totals, inventory, used = state.workers or (Totals(), Inventory(), set())
    totals = _merged(totals, runtime.snapshot())
    inventory.add(_inventory(config))
    used = used | runtime.used_cassettes()
    stale = inventory.stale(used) if _whole_suite(config, exitstatus) else []
    active = totals.datasets or totals.usage.requests
    if not active and not stale:
        return
    terminalreporter.write_sep("-", "synthdata")
    if active:
        terminalreporter.write_line(
            f"{totals.datasets} dataset(s), {totals.records} record(s); {totals.usage.summary()}"
        )
        terminalreporter.write_line(
            f"responses: {totals.replayed} replayed from cassettes, {totals.recorded} recorded, "
            f"{totals.cached} from the cache, {totals.network} live without a cassette"
        )
    if stale:
        terminalreporter.write_line(
            f"{len(stale)} cassette file(s) that no collected test or fixture uses "
            "(delete them if the tests are gone):"
        )
        for path in stale:
            terminalreporter.write_line(f"  {path}")


def _merged(*parts: Totals) -> Totals:
    from .runtime import Totals

    total = Totals()
    for part in parts:
        total.add(part)
    return total


def _whole_suite(config: pytest.Config, exitstatus: int) -> bool:
    """Only a full, uninterrupted, unfiltered run can tell that a cassette is unused."""
    option = config.option
    filtered = (
        getattr(option, "keyword", "")
        or getattr(option, "markexpr", "")
        or getattr(option, "lf", False)
        or getattr(option, "deselect", None)
        or getattr(option, "maxfail", 0)
    )
    explicit = config.args_source == pytest.Config.ArgsSource.ARGS and any(
        "::" in arg or not Path(arg).is_dir() for arg in config.args
    )
    return not filtered and not explicit and exitstatus in (0, 1)
