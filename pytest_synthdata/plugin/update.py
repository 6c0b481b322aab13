"""``--synth-update`` at the end of a session: cassettes cut down to what the run used, stale
cassette files deleted, and the report of what was recorded, pruned and deleted.

What may be pruned, and what deleted:

* A cassette the run used is rewritten to hold only what the run used (datasets, their
  records up to the largest ``n`` asked for, the exchanges that made them, their endpoint
  states), but only when every collected test that records into it passed, and none of its
  items was left out (deselected, or not selected by a node id with parameters): a test that
  failed half-way, or did not run, may still need what it did not get to use. A conftest
  fixture's cassette is pruned whenever the run produced the fixture.
* A cassette file that no collected test or fixture uses, and that nothing opened, is
  deleted only after a run that collected the whole suite: no ``-k``, ``-m``, ``--lf``,
  ``--deselect``, node ids or test files on the command line, no deselection by any plugin,
  no collection error, no ``-x``/``--maxfail``; only in the folders below the directories
  collected, never for a module the run ignored (``--ignore``, ``collect_ignore``) or
  skipped as a whole; and only when the run proves that nobody owns it any more. Each
  cassette names its owners (``storage/owners.py``): a test, gone when the collection no
  longer has it (or its cassette is another file); a conftest fixture, gone when no
  fixture of that name is defined; a library call, gone only when the test it ran in is
  gone (never when it was merely not opened, and never for a call outside any test). A
  file that names no owner (recorded by an older version) or that this package did not
  write is never deleted; the report says why each such file was kept.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..errors import SynthError
from ..storage.owners import Owner
from .ledger import Inventory, Ledger

if TYPE_CHECKING:
    from ..storage.pruning import Pruned
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
    """The cassette files ``--synth-update`` deletes after a run of the whole suite: those
    :func:`judge` proves nobody owns any more."""
    return judge(config, report)[0]


def judge(config: pytest.Config, report: Ledger) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The cassette files, in the folders below the collected directories, that no
    collected test or fixture uses and that nothing opened: those nobody owns any more
    (to delete), and the others with why they are kept.

    A file is deleted only when it names its owners and each of them is gone: a test the
    collection no longer has (or whose cassette is another file), a fixture no longer
    defined, a library call whose test the collection no longer has. A file that names no
    owner, or that this package did not write, is kept."""
    below = roots(config) or []
    inventory = report.inventory
    gone: list[Path] = []
    kept: list[tuple[Path, str]] = []
    for path in report.stale():
        if not _in_scope(path, below, inventory.protected):
            continue
        from ..storage.owners import recorded_owners

        owners, why = recorded_owners(path)
        for owner in owners:
            why = why or _still_owned(owner, path, config.rootpath, inventory, below)
        if why:
            kept.append((path, why))
        else:
            gone.append(path)
    return gone, kept


def _still_owned(
    owner: Owner, path: Path, rootpath: Path, inventory: Inventory, below: list[Path]
) -> str:
    """Why ``owner`` may still record into the cassette at ``path`` ("": it cannot)."""
    from ..storage.paths import cassette_for_test, name_from_nodeid

    if owner.kind == "fixture":
        if not inventory.gathered:
            return "the fixtures defined are only gathered with --synth-update"
        if owner.id in inventory.fixtures or owner.id in inventory.fixture_names:
            return f"its owner, fixture {owner.id!r}, is still defined"
        return ""
    test = owner.calling_test
    if test is None:
        return f"its owner is {owner.describe()}"
    module = Path(os.path.abspath(rootpath / test.split("::", 1)[0]))
    if module in inventory.protected or any(f in inventory.protected for f in module.parents):
        return f"its owner, {owner.describe()}, is in a module this run left out on purpose"
    if not any(root == module or root in module.parents for root in below):
        return f"its owner, {owner.describe()}, is outside the directories collected"
    cassette = cassette_for_test(module, name_from_nodeid(test))
    collected = test in inventory.tests or cassette in inventory.expected
    if collected and (owner.kind == "library" or cassette == path):
        return f"its owner, {owner.describe()}, is still collected"
    return ""


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


def _prune(
    report: Ledger, passed: set[str], failed: set[str]
) -> tuple[list[tuple[Path, list[str]]], list[Pruned], list[tuple[Path, str]]]:
    """Prune each cassette the run used, when it may be: what was recorded into, what was
    pruned, and what was not pruned (with why)."""
    from ..storage.pruning import prune

    recorded: list[tuple[Path, list[str]]] = []
    pruned: list[Pruned] = []
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
            done = prune(path, use.datasets, use.profiles, exchanges)
        except SynthError as exc:
            kept.append((path, str(exc)))
            continue
        if done is not None:
            pruned.append(done)
    return recorded, pruned, kept


def finish(
    config: pytest.Config, report: Ledger, passed: set[str], failed: set[str], exitstatus: int
) -> list[str]:
    """Prune and delete as ``--synth-update`` does; the lines that report it."""
    from ..storage.pruning import delete, leftovers
    from .state import state_of

    removed = delete(leftovers(report.inventory.folders, state_of(config).start))
    recorded, pruned, kept = _prune(report, passed, failed)
    lines: list[str] = []
    deleted: list[Path] = []
    kept_files: list[tuple[Path, str]] = []
    whole = whole_suite(config, exitstatus, report)
    if whole:
        doomed, kept_files = judge(config, report)
        deleted = delete(doomed)
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
    for path in removed:
        lines.append(f"  removed   {_shown(config, path)} (left by an interrupted write)")
    for path, why in kept_files:
        lines.append(f"  kept      {_shown(config, path)}: {why}")
    for path, why in kept:
        lines.append(f"  not pruned {_shown(config, path)}: {why}")
    if not whole:
        lines.append(
            "  no stale cassette file was looked for: only a run of the whole suite (no -k, "
            "-m, --lf, --deselect, -x, files or node ids, no collection error) deletes them"
        )
    return lines


_FIXTURE_TABLES = ("_arg2nodeid2fixturedefs", "_arg2node2fixturedefs", "_arg2fixturedefs")
"""Where pytest's fixture manager keeps every fixture defined, by name (no public API)."""


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

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Every collected test (without parameters) and every fixture defined: an owner
        named in a cassette that is in neither is gone."""
        from ..storage.owners import base_nodeid

        self.inventory.gathered = True
        self.inventory.tests |= {base_nodeid(item.nodeid) for item in session.items}
        manager = getattr(session, "_fixturemanager", None)
        for table in _FIXTURE_TABLES:  # by fixture name; named differently across pytest
            self.inventory.fixtures |= {str(name) for name in getattr(manager, table, {})}

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
