"""The pytest plugin (entry point ``pytest_synthdata.plugin``): its hooks live here, each
a few lines that call the module doing the work.

The fixtures live in :mod:`.fixtures`, marker parsing in :mod:`.markers`, the session state
in :mod:`.state`, collection-time work in :mod:`.collection` and :mod:`.inventory`, the
terminal summary in :mod:`.summary`, the live line in :mod:`.live` and ``--synth-update`` in
:mod:`.update`. This is the only part of the package that imports pytest.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

import pytest

from .collection import (
    MARKER_DOC,
    TEXT_MARKER_DOC,
    check_markers,
    explain_collect_error,
    parametrize_each,
    register_named,
)
from .dryrun import DRY
from .fixtures import (  # noqa: F401  (imported here, pytest registers them)
    synth_cassette_dir,
    synth_config,
    synth_data,
    synth_extract,
    synth_factory,
    synth_fixture,
    synth_record,
    synth_round_trip,
    synth_text_factory,
    synth_texts,
)
from .flags import add_options, session_settings
from .inventory import note_collected, note_deselected
from .ledger import Ledger
from .live import attach_live
from .state import STATE, SessionState, cache_dir_of, state_of
from .summary import header


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    from . import scrub

    config.pluginmanager.register(scrub, "synthdata-scrub")  # reports free of secrets
    scrub.install()
    config.addinivalue_line("markers", MARKER_DOC)
    config.addinivalue_line("markers", TEXT_MARKER_DOC)
    settings, storage = session_settings(config)
    workerinput = getattr(config, "workerinput", None)
    start = float(workerinput["synthdata_start"]) if workerinput else time.time()
    state = SessionState(config, settings, storage, start)
    config.stash[STATE] = state
    attach_live(config, state, workerinput)
    if config.getoption("synth_dry_run"):
        from .dryrun import start as start_dry_run

        start_dry_run(config, storage)
    elif state.update:
        from .update import register

        register(config, state, workerinput)
    if config.getoption("synth_clear_cache") and workerinput is None:
        from ..settings import SessionSettings
        from ..storage.cache import ResponseCache

        ResponseCache(cache_dir_of(config, storage or SessionSettings())).clear()


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
            state.workers = Ledger()
        state.workers.add(Ledger.from_dict(data))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    note_collected(config, items)


def pytest_collection_finish(session: pytest.Session) -> None:
    if DRY in session.config.stash:
        from .dryrun import survey

        survey(session)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """``--synth-dry-run``: the session ends after collection; no test runs."""
    return True if DRY in session.config.stash else None


def pytest_deselected(items: list[pytest.Item]) -> None:
    note_deselected(items)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report: pytest.CollectReport = yield
    explain_collect_error(collector, report)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    register_named(collector, obj)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_each(metafunc)


def pytest_runtest_setup(item: pytest.Item) -> None:
    check_markers(item)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash.get(STATE, None)
    if state is None or state.idle or DRY in config.stash:
        return  # (a dry run opened nothing, and --synth-update must prune nothing)
    if exitstatus != pytest.ExitCode.INTERRUPTED:
        state.finish()  # an interrupted run leaves its cassettes for the next one to complete
    if hasattr(config, "workeroutput"):
        config.workeroutput["synthdata"] = state.ledger().as_dict()
    elif state.update and exitstatus != pytest.ExitCode.INTERRUPTED:
        from .update import finish

        state.update_lines = finish(
            config, state.merged(), state.passed, state.failed, int(exitstatus)
        )


def pytest_report_header(config: pytest.Config) -> str | None:
    return header(state_of(config), config.get_verbosity())


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int) -> None:
    state = state_of(terminalreporter.config)
    dry = terminalreporter.config.stash.get(DRY, None)
    if dry is not None:
        from .dryrun import lines as dry_lines

        terminalreporter.write_sep("-", "synthdata dry run")
        for line in dry_lines(dry):
            terminalreporter.write_line(line)
        return
    if state.idle:
        return  # nothing was generated, and there is no cassette folder to look at
    from .summary import lines

    width = int(getattr(getattr(terminalreporter, "_tw", None), "fullwidth", 80))
    shown = lines(terminalreporter.config, state, state.merged(), int(exitstatus), width)
    if shown:
        terminalreporter.write_sep("-", "synthdata")
        for line in shown:
            terminalreporter.write_line(line)
