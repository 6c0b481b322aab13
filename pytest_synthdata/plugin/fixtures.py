"""The plugin's fixtures, and ``synth_fixture`` for conftest files."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from ..errors import SynthConfigError, SynthError
from ..storage.paths import distinct_name
from .state import (
    RESERVED,
    Shown,
    cassette_of,
    describe,
    fail,
    label_of,
    requests_of,
    rerecord_hint,
    state_of,
)

if TYPE_CHECKING:
    from ..dataset import Dataset
    from ..usage import Usage
    from .markers import DatasetRequest

T = TypeVar("T")


def _marker_dataset(request: pytest.FixtureRequest, name: str) -> Any:
    __tracebackhide__ = True
    item = request.node
    requests = requests_of(item)
    for entry in requests:
        if isinstance(entry, SynthError):
            fail(item.nodeid, entry)
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
        fail(
            item.nodeid,
            f"the fixture {name!r} needs a @pytest.mark.synth(Model, n=..."
            + ("" if name in RESERVED else f", name={name!r}")
            + (", each=True" if name == "synth_record" else "")
            + ") marker on the test (or use the synth_factory fixture)"
            + (f"; this test's synth markers inject {', '.join(injected)}" if injected else ""),
        )
    marked = matching[0]
    state = state_of(request.config)
    error: SynthError | None = None
    nodeid = item.nodeid.split("[")[0] if marked.each else item.nodeid
    suffix = "" if name in RESERVED else f".{name}"
    try:
        dataset = state.produce(
            item.nodeid.split("[")[0],
            configured(request, marked),
            cassette=cassette_at(request),
            rerecord=rerecord_hint(item.nodeid.split("[")[0], request.config),
            shown=shown_as(request.config, Path(str(item.path)), nodeid, name, suffix),
        )
    except SynthError as exc:
        error = exc  # failed outside the except block: no "During handling..." chain
    if error is not None:
        fail(f"{item.nodeid}: {label_of(marked)}", error)
    if marked.each:
        if not hasattr(request, "param"):
            fail(item.nodeid, f"each=True needs the test to ask for the {name!r} fixture")
        return dataset[request.param]
    return _own_copy(dataset)


@pytest.fixture
def synth_config() -> dict[str, Any]:
    """Settings for the synth markers, synth_factory and text fixtures of the tests below a
    conftest that overrides this fixture (model, temperature, base_url, structured, ...):
    over the command line, ini and environment, under a marker's own keywords. Default: {}."""
    return {}


@pytest.fixture
def synth_cassette_dir(request: pytest.FixtureRequest) -> Path:
    """The folder that holds the cassettes of the tests below a conftest that overrides
    this fixture, as <folder>/<module>/<test>.synth.yaml (a relative one is under the
    rootdir). Default: the cassettes folder next to the test module."""
    from ..storage.paths import FOLDER

    return Path(str(request.path)).parent / FOLDER


def config_of(request: pytest.FixtureRequest) -> dict[str, Any]:
    """What the ``synth_config`` fixture sets for this test, checked: a mapping of setting
    names (a :class:`SynthConfigError` names what is wrong and where it came from)."""
    config = request.getfixturevalue("synth_config")
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise SynthConfigError(
            f"the synth_config fixture must return a dict of settings, got {config!r}"
        )
    from ..settings import setting_names

    unknown = sorted(str(name) for name in config if name not in setting_names())
    if unknown:
        raise SynthConfigError(
            f"the synth_config fixture sets {', '.join(map(repr, unknown))}, which "
            f"{'is not a setting' if len(unknown) == 1 else 'are not settings'}; settings: "
            f"{', '.join(setting_names())} (n, examples and the like belong on the marker)"
        )
    return dict(config)


def configured(request: pytest.FixtureRequest, entry: DatasetRequest) -> DatasetRequest:
    """``entry`` with the ``synth_config`` settings under its own keywords: the session's
    settings, then ``synth_config``, then the marker's (or the factory call's) keywords."""
    config = config_of(request)
    if not config:
        return entry
    try:
        state_of(request.config).settings.replace(**config)
    except SynthError as exc:
        raise SynthConfigError(f"the synth_config fixture: {exc}") from None
    return dataclasses.replace(entry, overrides={**config, **entry.overrides})


def cassette_at(request: pytest.FixtureRequest) -> Path:
    """The test's cassette: ``<synth_cassette_dir>/<module>/<test>.synth.yaml``."""
    folder = request.getfixturevalue("synth_cassette_dir")
    if not isinstance(folder, (str, Path)) or not str(folder):
        raise SynthConfigError(
            f"the synth_cassette_dir fixture must return a folder (a str or a Path), got {folder!r}"
        )
    item = request.node
    usual = cassette_of(item)
    path = (request.config.rootpath / folder) / usual.parent.name / usual.name
    if path != usual:
        from .inventory import note_moved

        note_moved(state_of(request.config), item, path)
    return path


@pytest.fixture
def synth_data(request: pytest.FixtureRequest) -> list[Any]:
    """The records of the test's @pytest.mark.synth(Model, n=...) marker: a list of exactly n."""
    data: list[Any] = _marker_dataset(request, "synth_data")
    return data


@pytest.fixture
def synth_record(request: pytest.FixtureRequest) -> Any:
    """One record of a @pytest.mark.synth(Model, n=..., each=True) marker (one test per record)."""
    return _marker_dataset(request, "synth_record")


def named_dataset(request: pytest.FixtureRequest) -> Any:
    """The records of the test's synth marker with the matching name=..."""
    return _marker_dataset(request, str(request.fixturename))


@pytest.fixture
def synth_factory(request: pytest.FixtureRequest) -> Callable[..., list[Any]]:
    """Call synth_factory(Model, n=5, **options) inside a test to get a list of n records."""
    state = state_of(request.config)
    owner = request.node.nodeid
    module = Path(str(request.node.path))
    base_dir = module.parent
    rerecord = rerecord_hint(owner.split("[")[0], request.config)
    calls = [0]

    def factory(*args: Any, **kwargs: Any) -> list[Any]:
        __tracebackhide__ = True
        error: SynthError | None = None
        try:
            from .markers import parse_request

            entry = parse_request(args, kwargs, base_dir=base_dir, what="synth_factory")
            entry = configured(request, entry)
            if entry.each:
                raise SynthConfigError("each=True only applies to markers; use the returned list")
            calls[0] += 1
            what = f"synth_factory({entry.model.__name__}, n={entry.n}) #{calls[0]}"
            shown = shown_as(request.config, module, owner, what, f".factory-{calls[0]}")
            return _own_copy(
                state.produce(
                    f"{owner}::factory",
                    entry,
                    cassette=cassette_at(request),
                    rerecord=rerecord,
                    shown=shown,
                )
            )
        except SynthError as exc:
            error = exc  # failed outside the except block: no "During handling..." chain
        fail(f"{owner}: synth_factory", error)

    return factory


def shown_as(config: pytest.Config, module: Path, nodeid: str, what: str, suffix: str) -> Shown:
    """How a test's dataset is shown and exported: ``test_a.py::test_x (synth_data)``, in
    ``<module path>/<Class.test_x><suffix>.jsonl`` (relative to the rootdir)."""
    try:
        folder = module.relative_to(config.rootpath).with_suffix("")
    except ValueError:
        folder = Path(module.stem)
    test = (nodeid.split("::", 1)[1] if "::" in nodeid else nodeid).replace("::", ".")
    file = folder / f"{distinct_name(test)}{suffix}.jsonl"
    return Shown(f"{nodeid} ({what})", file.as_posix())


def _ambient(request: pytest.FixtureRequest, what: str, call: Callable[[Usage], T]) -> T:
    """Run a text/extraction library call so that it records into the test's cassette,
    uses the session cache and counts in the summary; errors fail the test cleanly."""
    state = state_of(request.config)
    item = request.node
    owner = item.nodeid.split("[")[0]
    from ..usage import Usage

    usage = Usage()
    error: SynthError | None = None
    try:
        hint = rerecord_hint(owner, request.config)
        with state.ambient(cassette_at(request), hint), state.generating():
            result = call(usage)
    except SynthError as exc:
        error = exc  # failed outside the except block: no "During handling..." chain
    finally:
        state.totals.calls.add(usage)
    if error is not None:
        fail(f"{item.nodeid}: {what}", error)
    return result


@pytest.fixture
def synth_texts(request: pytest.FixtureRequest) -> list[Any]:
    """The texts of the test's @pytest.mark.synth_text(fields_collection, ...) marker."""
    item = request.node
    mark = item.get_closest_marker("synth_text")
    what = describe(mark.args, mark.kwargs, "synth_text") if mark else "synth_texts"
    if mark is None:
        fail(item.nodeid, "the fixture 'synth_texts' needs a @pytest.mark.synth_text(...) marker")
    from ..texts import generate_dataset
    from ..usage import Usage
    from .markers import parse_text_request

    state = state_of(request.config)
    error: SynthError | None = None
    try:
        collection, preferences, options = parse_text_request(mark.args, mark.kwargs)
        options = {**config_of(request), **options}
    except SynthError as exc:
        error = exc
    if error is not None:
        fail(f"{item.nodeid}: {what}", error)
    key = ("synth_text", item.nodeid.split("[")[0], repr((mark.args, sorted(mark.kwargs.items()))))

    shown = shown_as(request.config, Path(str(item.path)), item.nodeid, "synth_texts", "")

    def texts(usage: Usage) -> list[Any]:
        made = list(generate_dataset(collection, preferences, usage=usage, **options))
        state.count(texts=len(made))
        state.keep_shown(shown, made)
        return made

    def make(usage: Usage) -> list[Any]:
        return state.remember(key, lambda: texts(usage), Usage())

    return list(_ambient(request, what, make))


def _recorded(
    request: pytest.FixtureRequest,
    what: str,
    call: Callable[..., T],
    counted: Callable[[tuple[Any, ...]], dict[str, int]],
) -> Callable[..., T]:
    """``call(*args, usage=..., **kwargs)`` made through :func:`_ambient`, with the
    ``synth_config`` settings under ``kwargs``; once it succeeded, ``counted(args)`` says
    how many texts and extractions it made."""

    def recorded(*args: Any, **kwargs: Any) -> T:
        __tracebackhide__ = True

        def made(usage: Usage) -> T:
            return call(*args, usage=usage, **{**config_of(request), **kwargs})

        result = _ambient(request, what, made)
        state_of(request.config).count(**counted(args))
        return result

    return recorded


@pytest.fixture
def synth_text_factory(request: pytest.FixtureRequest) -> Callable[..., str]:
    """Call synth_text_factory(fields, preferences=None, **options) for one text."""
    from ..texts import generate_text

    return _recorded(request, "synth_text_factory", generate_text, lambda args: {"texts": 1})


@pytest.fixture
def synth_extract(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Call synth_extract(text, Model, **options) to extract one validated Model from a text."""
    from ..texts import extract

    return _recorded(request, "synth_extract", extract, lambda args: {"extractions": 1})


@pytest.fixture
def synth_round_trip(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Call synth_round_trip(records) to write a text per record, extract it back, and compare."""
    from ..texts import round_trip

    def counted(args: tuple[Any, ...]) -> dict[str, int]:
        n = len(args[0]) if args and isinstance(args[0], (list, tuple)) else 0
        return {"texts": n, "extractions": n}

    return _recorded(request, "synth_round_trip", round_trip, counted)


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
    request of a function-scoped one gets its own copy of the records. ``pytest --fixtures``
    shows it where it is assigned.
    """
    frame = sys._getframe(1)
    caller, line = frame.f_code.co_filename, frame.f_lineno
    module = str(frame.f_globals.get("__name__", Path(caller).stem))
    del frame
    parsed = _fixture_request(model, n, scope, kwargs, Path(caller).parent)
    if scope not in ("function", "class", "module", "package", "session"):
        scope = "function"  # an invalid scope would break collection, not just its users

    def body(request: pytest.FixtureRequest) -> list[Any]:
        __tracebackhide__ = True
        name = request.fixturename
        where = f"fixture {name!r} (synth_fixture in {caller})"
        if isinstance(parsed, SynthError):
            fail(where, parsed)
        assert not isinstance(parsed, SynthError)
        state = state_of(request.config, where)
        error: SynthError | None = None
        try:
            from ..storage.paths import fixture_cassette

            dataset = state.produce(
                f"fixture:{name}@{caller}",
                parsed,
                cassette=fixture_cassette(Path(caller), str(name)),
                rerecord=rerecord_hint(f"<a test that uses {name}>"),
                shown=fixture_shown(request.config, Path(caller), str(name)),
            )
        except SynthError as exc:
            error = exc  # failed outside the except block: no "During handling..." chain
        if error is not None:
            fail(f"fixture {name!r} (synth_fixture({parsed.model.__name__}, ...))", error)
        if scope == "function":
            return _own_copy(dataset, [record.model_copy(deep=True) for record in dataset])
        return _own_copy(dataset)

    fixture = defined_at(caller, line, module, body)
    fixture.__doc__ = f"{n} synthetic {getattr(model, '__name__', model)} records (synth_fixture)."
    # what --synth-dry-run reads at collection, without setting the fixture up
    fixture.synth_dataset = (parsed, caller)  # type: ignore[attr-defined]
    return pytest.fixture(scope=scope)(fixture)  # type: ignore[call-overload]


def _fixture_request(
    model: Any, n: int, scope: str, kwargs: dict[str, Any], base_dir: Path
) -> DatasetRequest | SynthError:
    """A ``synth_fixture`` call's arguments, checked; an error fails the fixture's users."""
    if scope not in ("function", "class", "module", "package", "session"):
        return SynthConfigError(
            f"scope must be function, class, module, package or session, got {scope!r}"
        )
    try:
        from .markers import parse_request

        parsed = parse_request((model, n), kwargs, base_dir=base_dir, what="synth_fixture")
    except SynthError as exc:
        return exc
    if parsed.each or "name" in kwargs:
        return SynthConfigError(
            "each= and name= only apply to markers; the fixture is named after the variable "
            "it is assigned to and gives the whole list"
        )
    return parsed


def fixture_taken(node: pytest.Item | pytest.Collector, name: str) -> str | None:
    """What of pytest or of a plugin already answers to ``name`` for tests under ``node``
    (``None``: ``synth(..., name=...)`` may use it). A fixture of the project itself, from
    a conftest or a test module, may be replaced by a marker's records for that one test."""
    if name in ("synth_data", "synth_record"):
        return None  # the injected datasets themselves
    if name == "request":
        return "pytest's own request object"
    manager = getattr(node.session, "_fixturemanager", None)
    found = manager.getfixturedefs(name, node) if manager is not None else None
    for definition in found or ():
        func = getattr(definition.func, "__wrapped__", definition.func)
        if func is named_dataset:
            continue
        module = str(getattr(func, "__module__", None) or "")
        if module.split(".")[0] in ("_pytest", "pytest", "pytest_synthdata"):
            return f"a fixture of {module.split('.')[0].lstrip('_')}"
        path = Path(str(getattr(sys.modules.get(module), "__file__", "") or "/"))
        installed = {"site-packages", "dist-packages"} & set(path.parts)
        if installed or node.config.rootpath not in path.parents:
            return f"a fixture of the plugin {module}"
    return None


def fixture_shown(config: pytest.Config, defining_file: Path, name: str) -> Shown:
    """How a ``synth_fixture`` is shown and exported: ``<conftest path>/<name>.jsonl``."""
    try:
        folder = defining_file.relative_to(config.rootpath).with_suffix("")
    except ValueError:
        folder = Path(defining_file.stem)
    return Shown(f"fixture {name} ({folder.as_posix()}.py)", (folder / f"{name}.jsonl").as_posix())


def defined_at(
    filename: str, line: int, module: str, body: Callable[[Any], T]
) -> Callable[[Any], T]:
    """A one-line function ``(request) -> body(request)`` whose code lives at ``filename``,
    ``line`` in ``module``: where pytest's ``--fixtures`` and tracebacks point for a fixture
    made there, instead of at this package."""
    source = "\n" * max(0, line - 1) + (
        "def synth_fixture(request): __tracebackhide__ = True; return _synth_body(request)\n"
    )
    namespace: dict[str, Any] = {"_synth_body": body, "__name__": module}
    exec(compile(source, filename, "exec"), namespace)
    function: Callable[[Any], T] = namespace["synth_fixture"]
    return function


def _own_copy(dataset: Dataset[Any], records: list[Any] | None = None) -> Dataset[Any]:
    """The list a test gets: its own (a test may change it), with the dataset's usage,
    ``coverage`` (what record ``i`` covers) and ``diversity`` report."""
    from ..dataset import Dataset

    return Dataset(
        list(dataset) if records is None else records,
        dataset.usage,
        coverage=None if dataset.coverage is None else [dict(c) for c in dataset.coverage],
        diversity=dataset.diversity,
    )
