"""The pytest plugin (entry point ``pytest_synthdata.plugin``): its hooks live here.

The fixtures live in :mod:`.fixtures`, marker parsing in :mod:`.markers` and the session
state in :mod:`.state`. This is the only part of the package that imports pytest.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..errors import SynthError
from ..settings import env_name
from .fixtures import (  # noqa: F401  (imported here, pytest registers them)
    defined_at,
    fixture_taken,
    named_dataset,
    synth_data,
    synth_extract,
    synth_factory,
    synth_fixture,
    synth_record,
    synth_round_trip,
    synth_text_factory,
    synth_texts,
)
from .options import add_options, configured, raw_values
from .report import Report
from .state import (
    RESERVED,
    STATE,
    SessionState,
    cache_dir_of,
    cassette_of,
    fail,
    label_of,
    requests_of,
    state_of,
)

if TYPE_CHECKING:
    from ..settings import Settings, StorageOptions


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


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    from . import scrub

    config.pluginmanager.register(scrub, "synthdata-scrub")  # reports free of secrets
    scrub.install()
    config.addinivalue_line("markers", MARKER_DOC)
    config.addinivalue_line("markers", TEXT_MARKER_DOC)
    ini, cli = raw_values(config)
    settings: Settings | None = None
    storage: StorageOptions | None = None
    if configured(ini, cli):
        from ..settings import (
            Settings,
            StorageOptions,
            settings_from_sources,
            storage_from_sources,
        )

        try:
            settings = settings_from_sources(ini=ini, env=os.environ, cli=cli)
            storage = _updating(storage_from_sources(ini=ini, env=os.environ, cli=cli), cli)
        except SynthError as exc:
            if not config.getoption("help", False):  # --help works whatever the settings say
                raise pytest.UsageError(f"pytest-synthdata: {exc}") from None
            settings, storage = Settings(), StorageOptions()
    if storage is not None and storage.cache_dir:
        _check_cache_dir(config, storage, ini, cli)
    workerinput = getattr(config, "workerinput", None)
    start = float(workerinput["synthdata_start"]) if workerinput else time.time()
    state = SessionState(config, settings, storage, start)
    config.stash[STATE] = state
    _live(config, state, workerinput)
    if state.update:
        from .update import Outcomes, Uncollected

        uncollected = Uncollected(state.inventory, config.rootpath)
        config.pluginmanager.register(uncollected, "synthdata-uncollected")
        if workerinput is None:
            outcomes = Outcomes(state.passed, state.failed)
            config.pluginmanager.register(outcomes, "synthdata-update")
    if config.getoption("synth_clear_cache") and workerinput is None:
        from ..settings import StorageOptions
        from ..storage.cache import ResponseCache

        ResponseCache(cache_dir_of(config, storage or StorageOptions())).clear()


def _check_cache_dir(
    config: pytest.Config, storage: StorageOptions, ini: dict[str, Any], cli: dict[str, Any]
) -> None:
    """A cache folder that cannot be one is a usage error that names where it was set."""
    from ..storage.paths import folder_problem

    problem = folder_problem(cache_dir_of(config, storage))
    if problem is None or config.getoption("help", False):
        return
    if cli.get("cache_dir"):
        where = "--synth-cache-dir"
    elif os.environ.get(env_name("cache_dir")):
        where = f"environment variable {env_name('cache_dir')}"
    else:
        where = "ini key synth_cache_dir"
    raise pytest.UsageError(
        f"pytest-synthdata: {where}: {problem}; point it at a folder (it is created if missing)"
    )


def _updating(storage: StorageOptions, cli: dict[str, Any]) -> StorageOptions:
    """``--synth-update`` records what is missing: the record mode ``new_episodes``, unless
    ``all`` or ``rewrite`` asks for everything afresh. A record mode of ``none`` from an ini
    file or the environment (a CI setting) gives way; one on the command line contradicts it."""
    if not storage.update:
        return storage
    if cli.get("record_mode") == "none":
        from ..errors import SynthConfigError

        raise SynthConfigError(
            "--synth-update records what is missing, but --synth-record-mode=none forbids "
            "recording; drop one of them"
        )
    if storage.record_mode in ("all", "rewrite"):
        return storage
    return dataclasses.replace(storage, record_mode="new_episodes")


def _live(config: pytest.Config, state: SessionState, workerinput: Any) -> None:
    """The live progress line: this process's own, a worker's report to its controller,
    or (on xdist's controller) the workers' lines."""
    if workerinput is not None:
        folder = workerinput.get("synthdata_progress")
        if folder:
            from .live import Worker

            state.live = Worker(folder, str(workerinput.get("workerid", "gw")))
        return
    from .live import Controller, ControllerHooks, Local

    if getattr(config.option, "numprocesses", None) and config.option.dist != "no":
        controller = Controller(config)
        state.live = controller
        config.pluginmanager.register(ControllerHooks(controller), "synthdata-live")
    else:
        state.live = Local(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        state.close()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: workers share the controller's session start (for ``rewrite``), and report
    their progress to the controller's live line, if it has one."""
    state = state_of(node.config)
    node.workerinput["synthdata_start"] = state.start
    folder = getattr(state.live, "folder", None)
    if folder:
        node.workerinput["synthdata_progress"] = folder


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist: add up what each worker generated, replayed and collected."""
    data = getattr(node, "workeroutput", {}).get("synthdata")
    if data:
        state = state_of(node.config)
        if state.workers is None:
            state.workers = Report()
        state.workers.add(Report.from_dict(data))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Note which cassettes the collected tests would use (for the stale-cassette report),
    and, with ``--synth-update``, which items record into each.

    Only where a ``cassettes`` folder exists at all (or with ``--synth-update``), so a suite
    without any pays nothing.
    """
    state = state_of(config)
    inventory = state.inventory
    update = state.update
    if update:
        from .update import narrowed_by_args

        inventory.narrowed |= narrowed_by_args(config)
    folders: dict[str, list[Path]] = {}  # by folder name: cheaper than a Path per item
    for item in items:
        name = os.path.dirname(item.path)
        if name not in folders:
            directory = Path(name)
            chain = [directory, *directory.parents]
            stop = chain.index(config.rootpath) + 1 if config.rootpath in chain else 1
            folders[name] = [d / "cassettes" for d in chain[:stop] if (d / "cassettes").is_dir()]
        if not folders[name] and not update:
            continue
        inventory.folders.update(folders[name])
        names = set(getattr(item, "fixturenames", ()))
        inventory.fixture_names |= names
        path = cassette_of(item)
        inventory.expected.add(path)
        if update:
            inventory.owners.setdefault(str(path), set()).add(item.nodeid)


def pytest_deselected(items: list[pytest.Item]) -> None:
    """A deselected item (``-k``, ``-m``, ``--lf``, ``--deselect``, any plugin) narrows the
    run: nothing is stale, and its test's cassette is not pruned."""
    if not items:
        return
    state = state_of(items[0].config)
    state.inventory.deselected = True
    if state.update:
        state.inventory.narrowed |= {cassette_of(item) for item in items}


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """A module that cannot be imported because of ``@pytest.mark.synth(Model)`` (the
    model alone) gets an error that says what to write instead."""
    report: pytest.CollectReport = yield
    if report.failed:
        state = collector.config.stash.get(STATE, None)
        if state is not None:
            state.inventory.collect_errors = True  # nothing can be taken for stale
    if report.failed and isinstance(collector, pytest.Module):
        from .diagnostics import SYMPTOMS, single_class_markers, single_class_message

        if any(symptom in str(report.longrepr) for symptom in SYMPTOMS):
            found = single_class_markers(collector.path)
            if found:
                report.longrepr = single_class_message(collector.nodeid, found)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash.get(STATE, None)
    if state is None or state.idle:
        return
    if exitstatus != pytest.ExitCode.INTERRUPTED:
        state.finish()  # an interrupted run leaves its cassettes for the next one to complete
    if hasattr(config, "workeroutput"):
        config.workeroutput["synthdata"] = state.report().as_dict()
    elif state.update and exitstatus != pytest.ExitCode.INTERRUPTED:
        from .update import finish

        state.update_lines = finish(
            config, _merged(state), state.passed, state.failed, int(exitstatus)
        )


def _merged(state: SessionState) -> Report:
    """This process's report with what the xdist workers reported."""
    report = state.report()
    if state.workers is not None:
        report.add(state.workers)
    return report


def _records(config: pytest.Config) -> bool:
    """Whether this session's record mode records (anything but ``none``)."""
    return state_of(config).record_mode != "none"


def pytest_report_header(config: pytest.Config) -> str | None:
    state = state_of(config)
    if not state.configured and config.get_verbosity() < 1:
        return None
    settings = state.settings
    changed = settings.non_defaults()
    if not changed and config.get_verbosity() < 1:
        return None
    shown = changed or {"model": settings.model, "structured": settings.structured}
    from ..storage.secrets import redact

    return redact("synthdata: " + ", ".join(f"{key}={value!r}" for key, value in shown.items()))


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Register the fixtures named by ``synth(..., name=...)`` before the test is built."""
    marks = _synth_marks(obj)
    if isinstance(collector, pytest.Module):  # module-level ``pytestmark``
        marks += [mark for mark in collector.own_markers if mark.name == "synth"]
    if marks:
        state_of(collector.config).marked = True
    for mark in marks:
        inject = mark.kwargs.get("name")
        if isinstance(inject, str) and inject.isidentifier() and inject not in RESERVED:
            registered = collector.stash.setdefault(_REGISTERED, set())
            if inject not in registered and fixture_taken(collector, inject) is None:
                registered.add(inject)
                pytest.register_fixture(name=inject, func=_at(obj, collector), node=collector)


_REGISTERED = pytest.StashKey[set[str]]()


def _at(obj: object, collector: pytest.Collector) -> Any:
    """``named_dataset``, defined (for ``--fixtures``) where the marked test is."""
    code = getattr(obj, "__code__", None)
    if code is None:
        return named_dataset
    module = str(getattr(obj, "__module__", None) or collector.name)
    fixture = defined_at(code.co_filename, code.co_firstlineno, module, named_dataset)
    fixture.__doc__ = named_dataset.__doc__
    return fixture


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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Turn ``each=True`` into one test per record (ids ``Model-i``); never calls the LLM."""
    if not state_of(metafunc.config).marked:
        return
    if metafunc.definition.get_closest_marker("synth") is None:
        return
    requests = requests_of(metafunc.definition)
    each = [r for r in requests if not isinstance(r, SynthError) and r.each]
    state = state_of(metafunc.config)
    if (
        len(each) == 1
        and each[0].name in metafunc.fixturenames
        and fixture_taken(metafunc.definition, each[0].name) is None
        and state.valid(each[0])
    ):
        request = each[0]  # (an invalid one stays one test, which fails with the reason)
        metafunc.parametrize(
            request.name,
            range(request.n),
            ids=[f"{request.model.__name__}-{i}" for i in range(request.n)],
            indirect=True,
        )


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A marker that cannot work is a mistake, not a no-op, whether or not the test asks for
    its fixture: invalid arguments, a taken ``name``, an ``each=True`` fixture not asked for."""
    if not state_of(item.config).marked or item.get_closest_marker("synth") is None:
        return
    for entry in requests_of(item):
        if isinstance(entry, SynthError):
            fail(item.nodeid, entry)  # even when the test asks for none of its fixtures
        taken = fixture_taken(item, entry.name)
        if taken is not None:
            fail(
                item.nodeid,
                f"{label_of(entry)}: the name {entry.name!r} is already {taken}, so the "
                f"records could never reach the test; choose a name no fixture uses, e.g. "
                f"name={entry.name + '_records'!r}",
            )
        if not entry.each:
            continue
        if entry.name not in getattr(item, "fixturenames", ()):
            fail(
                item.nodeid,
                f"{label_of(entry)} gives one record per test through the {entry.name!r} "
                f"fixture, but the test does not ask for it; add a {entry.name} argument "
                "or drop each=True",
            )


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int) -> None:
    config = terminalreporter.config
    state = state_of(config)
    if state.idle:
        return  # nothing was generated, and there is no cassette folder to look at
    report = _merged(state)
    totals = report.totals
    from .update import stale as stale_files
    from .update import whole_suite

    stale = (
        stale_files(config, report)
        if not state.update and whole_suite(config, exitstatus, report)
        else []
    )
    active = totals.datasets or totals.calls.requests
    if (
        not active
        and not stale
        and not report.completed
        and not state.update_lines
        and not report.previews
        and not report.exported
    ):
        return
    terminalreporter.write_sep("-", "synthdata")
    if active:
        terminalreporter.write_line(
            f"{len(totals.datasets)} dataset(s), {totals.records} record(s); "
            f"{totals.usage.summary()}"
        )
        terminalreporter.write_line(
            f"responses: {totals.replayed} replayed from cassettes, {totals.recorded} recorded, "
            f"{totals.cached} from the cache, {totals.network} live without a cassette"
            + (f", {totals.failed} failed and retried" if totals.failed else "")
        )
    if report.completed:
        terminalreporter.write_line(
            f"{len(report.completed)} cassette file(s) left incomplete by an interrupted "
            "recording"
            + (
                " were completed:"
                if _records(config)
                else " (run in record mode 'once' to complete them):"
            )
        )
        for path in sorted(report.completed):
            terminalreporter.write_line(f"  {path}")
    if stale:
        terminalreporter.write_line(
            f"{len(stale)} cassette file(s) that no collected test or fixture uses "
            "(--synth-update deletes them):"
        )
        for path in stale:
            terminalreporter.write_line(f"  {path}")
    from ..storage.secrets import mask

    for line in state.update_lines:
        terminalreporter.write_line(mask(line))
    if report.previews:
        from .show import table

        width = int(getattr(getattr(terminalreporter, "_tw", None), "fullwidth", 80))
        for _, preview in sorted(report.previews.items(), key=lambda kv: kv[1]["title"]):
            for line in table(preview, width):
                terminalreporter.write_line(mask(line))
    if report.exported:
        terminalreporter.write_line(
            f"exported {len(report.exported)} dataset(s) as JSON Lines to {state.options.export}"
        )
