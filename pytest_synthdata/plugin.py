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
from .markers import DatasetRequest, parse_request
from .runtime import Inventory, SynthRuntime, Totals
from .settings import (
    HELP,
    RECORD_MODES,
    STORAGE_HELP,
    Settings,
    StorageOptions,
    env_name,
    setting_names,
    settings_from_sources,
    storage_from_sources,
)
from .usage import Usage

if TYPE_CHECKING:
    from .storage.recorder import Storage

T = TypeVar("T")
RUNTIME = pytest.StashKey[SynthRuntime]()
REQUESTS = pytest.StashKey[dict[str, list[DatasetRequest | SynthError]]]()
INVENTORY = pytest.StashKey[Inventory]()
WORKERS = pytest.StashKey[tuple[Totals, Inventory, set[Path]]]()

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
STORAGE_NAMES = ("record_mode", "cache_dir", "no_cache")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("synthdata", "pytest-synthdata: synthetic test data from an LLM")
    for name in setting_names():
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
    names = setting_names()
    try:
        settings = settings_from_sources(
            ini={name: config.getini(f"synth_{name}") for name in names},
            env=os.environ,
            cli={name: config.getoption(f"synth_{name}") for name in names},
        )
        storage = storage_from_sources(
            ini={name: config.getini(f"synth_{name}") for name in STORAGE_NAMES},
            env=os.environ,
            cli={name: config.getoption(f"synth_{name}") for name in STORAGE_NAMES},
        )
    except SynthError as exc:
        if config.getoption("help", False):  # --help must work whatever the settings say
            settings, storage = Settings(), StorageOptions()
        else:
            raise pytest.UsageError(f"pytest-synthdata: {exc}") from None
    workerinput = getattr(config, "workerinput", None)
    start = float(workerinput["synthdata_start"]) if workerinput else time.time()
    if config.getoption("synth_clear_cache") and workerinput is None:
        from .storage.cache import ResponseCache

        ResponseCache(_cache_dir(config, storage)).clear()
    config.stash[RUNTIME] = SynthRuntime(settings, lambda: _storage(config, storage, start))
    config.stash[REQUESTS] = {}
    config.stash[INVENTORY] = Inventory()
    config.stash[WORKERS] = (Totals(), Inventory(), set())
    config.stash[START] = start


START = pytest.StashKey[float]()


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
    if RUNTIME in config.stash:
        config.stash[RUNTIME].close()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: workers share the controller's session start (for ``rewrite``)."""
    node.workerinput["synthdata_start"] = node.config.stash[START]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist: add up what each worker generated, replayed and collected."""
    data = getattr(node, "workeroutput", {}).get("synthdata")
    if data:
        totals, inventory, used = node.config.stash[WORKERS]
        totals.add(Totals.from_dict(data["totals"]))
        inventory.add(Inventory.from_dict(data["inventory"]))
        used.update(Path(p) for p in data["used"])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Note which cassettes the collected tests would use (for the stale-cassette report)."""
    from .storage.paths import FOLDER, cassette_for_test, name_from_nodeid

    inventory = config.stash[INVENTORY]
    for item in items:
        path = Path(str(item.path))
        for folder in [path.parent, *path.parent.parents]:
            inventory.folders.add(folder / FOLDER)
            if folder == config.rootpath:
                break
        names = set(getattr(item, "fixturenames", ()))
        inventory.fixture_names |= names
        if "synth_factory" in names or any(True for _ in item.iter_markers("synth")):
            inventory.expected.add(cassette_for_test(path, name_from_nodeid(item.nodeid)))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workeroutput") and RUNTIME in config.stash:
        runtime = config.stash[RUNTIME]
        used = runtime.used_cassettes()
        config.workeroutput["synthdata"] = {
            "totals": runtime.snapshot().as_dict(),
            "inventory": config.stash[INVENTORY].as_dict(),
            "used": sorted(map(str, used)),
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
    settings = config.stash[RUNTIME].settings
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
    requests = _requests(metafunc.definition)
    each = [r for r in requests if isinstance(r, DatasetRequest) and r.each]
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
    cache = node.config.stash[REQUESTS]
    if key not in cache:
        base_dir = Path(str(node.path)).parent
        parsed: list[DatasetRequest | SynthError] = []
        for mark in node.iter_markers("synth"):
            try:
                parsed.append(parse_request(mark.args, mark.kwargs, base_dir=base_dir))
            except SynthError as exc:
                parsed.append(SynthConfigError(f"{_describe(mark.args, mark.kwargs)}: {exc}"))
        names = [r.name for r in parsed if isinstance(r, DatasetRequest)]
        if len([r for r in parsed if isinstance(r, DatasetRequest) and r.each]) > 1:
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
    if not any(True for _ in item.iter_markers("synth")):
        return
    for entry in _requests(item):
        if not isinstance(entry, DatasetRequest) or not entry.each:
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
    matching = [r for r in requests if isinstance(r, DatasetRequest) and r.name == name]
    if not matching:
        if name not in RESERVED:
            # A name=... used by another test of the module hides a fixture of the same
            # name (conftest, builtin) for this one; hand that one out instead.
            try:
                return request.getfixturevalue(name)
            except pytest.FixtureLookupError:
                pass
        injected = [repr(r.name) for r in requests if isinstance(r, DatasetRequest)]
        _fail(
            item.nodeid,
            f"the fixture {name!r} needs a @pytest.mark.synth(Model, n=..."
            + ("" if name in RESERVED else f", name={name!r}")
            + (", each=True" if name == "synth_record" else "")
            + ") marker on the test (or use the synth_factory fixture)"
            + (f"; this test's synth markers inject {', '.join(injected)}" if injected else ""),
        )
    entry = matching[0]
    runtime = request.config.stash[RUNTIME]
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
    runtime = request.config.stash[RUNTIME]
    owner = request.node.nodeid
    base_dir = Path(str(request.node.path)).parent
    cassette = _cassette(request.node)
    rerecord = _rerecord(shlex.quote(owner.split("[")[0]))

    def factory(*args: Any, **kwargs: Any) -> list[Any]:
        __tracebackhide__ = True
        error: SynthError | None = None
        try:
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
    runtime = request.config.stash[RUNTIME]
    item = request.node
    owner = item.nodeid.split("[")[0]
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

    runtime = request.config.stash[RUNTIME]
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
        parsed: DatasetRequest | SynthError = parse_request(
            (model, n), kwargs, base_dir=base_dir, what="synth_fixture"
        )
    except SynthError as exc:
        parsed = exc
    if isinstance(parsed, DatasetRequest) and (parsed.each or "name" in kwargs):
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
        assert isinstance(parsed, DatasetRequest)
        runtime = request.config.stash[RUNTIME]
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
    runtime = config.stash[RUNTIME]
    totals, inventory, used = config.stash[WORKERS]
    totals = _merged(totals, runtime.snapshot())
    inventory.add(config.stash[INVENTORY])
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
