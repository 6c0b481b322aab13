"""``--synth-update`` at the end of a session: cassettes cut down to what the run used, stale
cassette files deleted, and the report of what was recorded, pruned and deleted.

What may be pruned, and what deleted:

* A cassette the run used is rewritten to hold only what the run used (datasets, their
  records up to the largest ``n`` asked for, the exchanges that made them, their endpoint
  states), but only when every collected test that records into it passed, and none of its
  items was left out (deselected, or not selected by a node id with parameters): a test that
  failed half-way, or did not run, may still need what it did not get to use. A conftest
  fixture's cassette is pruned whenever the run produced the fixture.
* Cassette files that no collected test or fixture uses are deleted only after a run that
  collected the whole suite: no ``-k``, ``-m``, ``--lf``, ``--deselect``, node ids or test
  files on the command line, no deselection by any plugin, no collection error, no
  ``-x``/``--maxfail``; and only in the folders below the directories collected, never for
  a module the run ignored (``--ignore``, ``collect_ignore``) or skipped as a whole.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..errors import SynthError
from .ledger import Inventory, Ledger

if TYPE_CHECKING:
    from .state import SessionState


def register(config: pytest.Config, state: SessionState, workerinput: Any) -> None:
    """The hooks ``--synth-update`` needs: what the run leaves uncollected on purpose, and
    (where reports arrive: not on an xdist worker) which items passed and failed."""
    config.pluginmanager.register(
        Uncollected(state.inventory, config.rootpath), "synthdata-uncollected"
    )
    if workerinput is None:
        outcomes = Outcomes(state.passed, state.failed)
        config.pluginmanager.register(outcomes, "synthdata-update")


def _shown(config: pytest.Config, path: Path) -> str:
    try:
        return path.relative_to(config.rootpath).as_posix()
    except ValueError:
        return str(path)


def roots(config: pytest.Config) -> list[Path] | None:
    """The directories the run collected, or ``None`` when an argument was not a
    directory (a file, a node id): the run did not collect the whole suite."""
    found = []
    for arg in config.args:
        if "::" in arg:
            return None
        path = Path(os.path.abspath(Path(config.invocation_params.dir, arg)))
        if not path.is_dir():
            return None
        found.append(path)
    return found


def whole_suite(config: pytest.Config, exitstatus: int, report: Ledger) -> bool:
    """Whether the run collected the whole suite, so that a cassette no collected test or
    fixture uses is stale."""
    option = config.option
    narrowed = (
        getattr(option, "keyword", "")
        or getattr(option, "markexpr", "")
        or getattr(option, "lf", False)
        or getattr(option, "deselect", None)
        or getattr(option, "maxfail", 0)
        or getattr(option, "stepwise", False)
        or getattr(option, "collectonly", False)
    )
    inventory = report.inventory
    return (
        not narrowed
        and not inventory.deselected
        and not inventory.collect_errors
        and not inventory.narrowed
        and roots(config) is not None
        and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    )


def stale(config: pytest.Config, report: Ledger) -> list[Path]:
    """The cassette files, in the folders below the collected directories, that no
    collected test or fixture uses."""
    below = roots(config) or []
    protected = report.inventory.protected
    return [path for path in report.stale() if _in_scope(path, below, protected)]


def _in_scope(path: Path, below: list[Path], protected: set[Path]) -> bool:
    """A cassette ``<dir>/cassettes/<module>/<name>`` belongs to ``<dir>/<module>.py``;
    ``<dir>`` must be a collected directory or below one, and the module must not have been
    left uncollected on purpose (ignored, or skipped as a whole)."""
    from ..storage.paths import FOLDER

    folders = [folder for folder in path.parents if folder.name == FOLDER]
    if not folders:
        return False
    home = folders[0].parent
    owner = home / (path.relative_to(folders[0]).parts[0] + ".py")
    if owner in protected or any(folder in protected for folder in owner.parents):
        return False
    return any(home == root or root in home.parents for root in below)


def finish(
    config: pytest.Config, report: Ledger, passed: set[str], failed: set[str], exitstatus: int
) -> list[str]:
    """Prune and delete as ``--synth-update`` does; the lines that report it."""
    from ..storage.pruning import delete, prune

    lines: list[str] = []
    recorded = []
    pruned = []
    kept: list[tuple[Path, str]] = []
    for path in sorted(report.uses):
        use = report.uses[path]
        if use.written:
            recorded.append((path, use.written))
        owners = report.inventory.owners.get(str(path))
        if path in report.inventory.narrowed:
            kept.append((path, "some of its tests were not selected"))
            continue
        if owners is not None and any(n not in passed or n in failed for n in owners):
            kept.append((path, "a test that uses it did not pass"))
            continue
        exchanges = None if use.unknown else use.exchanges
        try:
            done = prune(path, use.datasets, use.states, exchanges)
        except SynthError as exc:
            kept.append((path, str(exc)))
            continue
        if done is not None:
            pruned.append(done)
    deleted: list[Path] = []
    whole = whole_suite(config, exitstatus, report)
    if whole:
        deleted = delete(stale(config, report))
    summary = (
        f"update: {len(recorded)} cassette(s) recorded into, {len(pruned)} pruned, "
        f"{len(deleted)} stale cassette file(s) deleted"
    )
    lines.append(summary)
    for path, written in recorded:
        lines.append(f"  recorded  {_shown(config, path)} ({'; '.join(written)})")
    for done in pruned:
        lines.append(f"  pruned    {_shown(config, done.path)} ({done.describe()})")
    for path in deleted:
        lines.append(f"  deleted   {_shown(config, path)}")
    for path, why in kept:
        lines.append(f"  not pruned {_shown(config, path)}: {why}")
    if not whole:
        lines.append(
            "  no stale cassette file was looked for: only a run of the whole suite (no -k, "
            "-m, --lf, --deselect, -x, files or node ids, no collection error) deletes them"
        )
    return lines


class Uncollected:
    """What the run leaves uncollected on purpose: paths ignored (``--ignore``,
    ``collect_ignore`` in a conftest, any plugin) and modules skipped as a whole
    (``pytest.skip(allow_module_level=True)``, ``importorskip``). Their cassettes are not
    stale: another run (another platform, another Python) collects them."""

    def __init__(self, inventory: Inventory, rootpath: Path) -> None:
        self.inventory = inventory
        self.rootpath = rootpath

    @pytest.hookimpl(wrapper=True)
    def pytest_ignore_collect(self, collection_path: Path) -> Generator[None, object, object]:
        ignored = yield
        if ignored:
            self.inventory.protected.add(Path(os.path.abspath(collection_path)))
        return ignored

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped and report.nodeid:
            module = report.nodeid.split("::", 1)[0]
            self.inventory.protected.add(Path(os.path.abspath(self.rootpath / module)))


class Outcomes:
    """Which items passed (their call) and which failed or were skipped in any phase; on
    xdist's controller, from the reports the workers send."""

    def __init__(self, passed: set[str], failed: set[str]) -> None:
        self.passed = passed
        self.failed = failed

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed or (report.skipped and report.when in ("setup", "call")):
            self.failed.add(report.nodeid)
        elif report.when == "call" and report.passed:
            self.passed.add(report.nodeid)


def narrowed_by_args(config: pytest.Config) -> set[Path]:
    """The cassettes of tests a node id with parameters selects only some items of
    (``test_a.py::test_x[1]``)."""
    from ..storage.paths import cassette_for_test, name_from_nodeid

    found = set()
    for arg in config.args:
        if "::" in arg and "[" in arg:
            file = arg.split("::", 1)[0]
            module = Path(os.path.abspath(Path(config.invocation_params.dir, file)))
            found.add(cassette_for_test(module, name_from_nodeid(arg)))
    return found
