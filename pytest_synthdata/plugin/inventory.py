"""What the collected tests would use of the cassettes: the stale-cassette report and
``--synth-update`` read it (see :class:`~.report.Inventory`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .state import SessionState, cassette_of, state_of


def note_collected(config: pytest.Config, items: list[pytest.Item]) -> None:
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
        inventory.fixture_names |= set(getattr(item, "fixturenames", ()))
        path = cassette_of(item)
        inventory.expected.add(path)
        if update:
            inventory.owners.setdefault(str(path), set()).add(item.nodeid)


def note_deselected(items: list[pytest.Item]) -> None:
    """A deselected item (``-k``, ``-m``, ``--lf``, ``--deselect``, any plugin) narrows the
    run: nothing is stale, and its test's cassette is not pruned."""
    if not items:
        return
    state = state_of(items[0].config)
    state.inventory.deselected = True
    if state.update:
        state.inventory.narrowed |= {cassette_of(item) for item in items}


def note_moved(state: SessionState, item: pytest.Item, cassette: Path) -> None:
    """A test's cassette lives elsewhere (a ``synth_cassette_dir`` fixture): for
    ``--synth-update`` it has the owners and the narrowing of the usual place, so it is
    pruned only when every item of the test passed. (Its folder is never searched for
    stale files: the tests that would use them are only known when they run.)"""
    inventory = state.inventory
    default = cassette_of(item)
    if cassette == default:
        return
    inventory.expected.add(cassette)
    if not state.update:
        return
    owners = inventory.owners.get(str(default), {item.nodeid})
    inventory.owners.setdefault(str(cassette), set()).update(owners)
    if default in inventory.narrowed:
        inventory.narrowed.add(cassette)
