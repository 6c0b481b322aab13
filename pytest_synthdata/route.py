"""Where a call's answers come from and go to, decided once, at the API boundary.

A :class:`Route` names the endpoint's client, the cassette (and its record mode), the
cache folder and the command that re-records what is missing. It is resolved once per call
by :func:`resolve`:

* a library call that names a ``cassette=`` or ``cache_dir=`` gets a route of its own (a
  :class:`~.storage.recorder.Storage` is opened for the call and closed after it);
* a call that names neither, made inside a test, takes the test's route, which the pytest
  plugin sets with :func:`using` around a fixture's library calls (the session's storage,
  the test's cassette); :func:`default_route` is the one reader of it;
* otherwise the route touches no storage at all.

Everything below the boundary (the dataset store, the LLM's recording) is handed the route
and reads no context. Importing this module loads neither vcrpy nor diskcache.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import surface
from .storage.owners import Owner, current_test

if TYPE_CHECKING:
    from .storage.datasets import StoredDataset
    from .storage.recorder import Recording, Storage
    from .usage import Usage

__all__ = ["Route", "calling_test", "default_route", "library_rerecord", "resolve", "using"]


@dataclass(frozen=True)
class Route:
    """Where one call's answers come from and go to.

    ``storage`` is set for a test's route only (the session's cassettes and cache, shared by
    the whole run); a library call's route has none and opens its own when it names a
    ``cassette`` or a ``cache`` folder. ``cache`` is a library call's cache folder, which
    also keeps whole datasets when there is no cassette (a test's cache is its storage's).
    ``rerecord`` is the command that records what the cassette is missing. ``owner`` is
    who the call belongs to (a test, a conftest fixture, or a library call and the test it
    runs in), written into the cassette whenever the call records into it.
    """

    client: object | None = None
    cassette: Path | None = None
    record_mode: str = "once"
    cache: Path | None = None
    rerecord: str = ""
    storage: Storage | None = None
    owner: Owner | None = field(default=None, compare=False)
    """Who the call belongs to; not where its answers come from or go to (not compared)."""

    @classmethod
    def for_test(
        cls,
        storage: Storage,
        cassette: Path | None,
        rerecord: str,
        owner: Owner | None = None,
    ) -> Route:
        """The route of a test: the session's ``storage``, the test's ``cassette``, recorded
        into by ``owner`` (by default the test pytest is running)."""
        if owner is None:
            test = current_test()
            owner = Owner.of_test(test) if test else None
        return cls(
            cassette=cassette,
            record_mode=storage.record_mode,
            rerecord=rerecord,
            storage=storage,
            owner=owner,
        )

    def checked(self) -> Route:
        """This route, once its cassette and cache are known to be usable (before any
        request; see :func:`~.storage.paths.check_storage`)."""
        from .storage.paths import check_storage

        what = "the cassette" if self.in_test else None
        check_storage(self.cassette, self.record_mode, self.cache, what=what)
        return self

    @property
    def in_test(self) -> bool:
        """Whether this is a test's route (the session's storage counts and notes uses)."""
        return self.storage is not None

    @property
    def stores(self) -> bool:
        """Whether the call goes through storage at all (a cassette, a cache or a test's)."""
        return self.in_test or self.cassette is not None or self.cache is not None

    def dataset_cache(self) -> Path | None:
        """The folder that keeps whole datasets in the response cache: a library call's
        cache folder without a cassette (with one, the recording stays the single source of
        what is replayed), in a record mode that reads what is stored."""
        if self.cassette is not None or self.record_mode in ("all", "rewrite"):
            return None
        return self.cache

    def stored(self, key: str) -> StoredDataset | None:
        """The dataset stored under ``key`` in the cassette this call would replay, if any
        (read before any cassette is opened: a replay of a whole dataset opens none)."""
        if self.storage is not None:
            return self.storage.stored_dataset(self.cassette, key, self.rerecord)
        if self.cassette is None:
            return None
        from .errors import SynthRecordingError
        from .storage import datasets
        from .storage.cassettes import with_command
        from .storage.footprint import opened

        opened(self.cassette)
        if self.record_mode not in ("none", "once", "new_episodes"):  # the modes that replay
            return None
        try:
            return datasets.from_cassette(self.cassette, key)
        except SynthRecordingError as exc:
            raise with_command(exc, self.rerecord) from None

    def count_replay(self, usage: Usage) -> None:
        """Count the requests a stored dataset stands for as replayed (a test's route: the
        session's summary says where its answers came from)."""
        if self.storage is not None:
            self.storage.counters.bump("replayed", usage.requests)

    def note_replay(self, key: str, profile_key: str, total: int, stored: StoredDataset) -> None:
        """A test's dataset was read from its cassette: it counts as used (``--synth-update``)."""
        if self.storage is not None and self.cassette is not None:
            self.storage.note_use(self.cassette, key, profile_key, total, stored.steps)

    @contextlib.contextmanager
    def recording(self, profile_key: str) -> Iterator[Recording | None]:
        """The cassette and cache opened for one generation (``None``: no storage). The
        recording's endpoint profile is kept under ``profile_key``."""
        if not self.stores:
            yield None
            return
        with (
            self._storage() as storage,
            storage.recording(self.cassette, profile_key, self.rerecord, self.owner) as recording,
        ):
            yield recording

    @contextlib.contextmanager
    def _storage(self) -> Iterator[Storage]:
        """The test's storage, or one opened for this library call and closed after it."""
        if self.storage is not None:
            yield self.storage
            return
        from .storage.recorder import Storage

        storage = Storage(
            record_mode=self.record_mode, cache_dir=self.cache, use_cache=self.cache is not None
        )
        try:
            yield storage
        finally:
            storage.close()


_TEST_ROUTE: ContextVar[Route | None] = ContextVar("synthdata_test_route", default=None)
"""The route a library call made inside a test takes when it names no storage of its own."""


def default_route() -> Route | None:
    """The route of the test being run (set by the pytest plugin), or ``None``."""
    return _TEST_ROUTE.get()


@contextlib.contextmanager
def using(route: Route) -> Iterator[None]:
    """Library calls in this block that name no ``cassette=`` or ``cache_dir=`` take
    ``route`` (the plugin sets a test's route around the library calls of its fixtures)."""
    token = _TEST_ROUTE.set(route)
    try:
        yield
    finally:
        _TEST_ROUTE.reset(token)


def resolve(
    call: str,
    *,
    client: object | None = None,
    cassette: str | Path | None = None,
    record_mode: str = "once",
    cache_dir: str | Path | None = None,
) -> Route:
    """The route of a library call named ``call`` (``generate``, ``extract`` ...), checked
    before any request: its own ``cassette``/``cache_dir`` when it names one, else the
    test's route, else none. A cassette or cache path that cannot be used fails here (see
    :func:`~.storage.paths.check_storage`)."""
    from .storage.paths import check_storage

    _check_arguments(cassette, record_mode, cache_dir)
    if cassette is None and cache_dir is None:
        route = default_route()
        if route is None:
            return Route(client=client)
        return replace(route.checked(), client=client)
    check_storage(cassette, record_mode, cache_dir)
    return Route(
        client=client,
        cassette=Path(cassette) if cassette is not None else None,
        record_mode=record_mode,
        cache=Path(cache_dir) if cache_dir is not None else None,
        rerecord=library_rerecord(call, cassette) if cassette is not None else "",
        owner=Owner.of_library(call, calling_test()),
    )


def _check_arguments(cassette: object, record_mode: object, cache_dir: object) -> None:
    """A :class:`SynthConfigError` for a ``cassette`` or ``cache_dir`` that is no path, or a
    ``record_mode`` that is no record mode or that nothing of the call would follow: a
    record mode is about the call's own cassette (``all`` and ``rewrite`` also skip the
    reads of its ``cache_dir``); without one, a call inside a test follows the session's."""
    from .errors import SynthConfigError, did_you_mean
    from .settings import RECORD_MODES

    for name, value in (("cassette", cassette), ("cache_dir", cache_dir)):
        if value is not None and not (
            isinstance(value, (str, os.PathLike)) and isinstance(os.fspath(value), str)
        ):
            fix = "; decode it first" if isinstance(value, bytes) else ""
            raise SynthConfigError(
                f"{name} must be a path (a str or a pathlib.Path), got {type(value).__name__}{fix}"
            )
    if not isinstance(record_mode, str) or record_mode not in RECORD_MODES:
        raise SynthConfigError(
            f"record_mode must be one of {', '.join(RECORD_MODES)}, got {record_mode!r:.80}"
            + (did_you_mean(record_mode, RECORD_MODES) if isinstance(record_mode, str) else "")
        )
    if cassette is None and (
        record_mode in ("none", "new_episodes") or (record_mode != "once" and cache_dir is None)
    ):
        raise SynthConfigError(
            f"record_mode={record_mode!r} applies to the call's own cassette, and it names "
            "none: add cassette='data.synth.yaml', or drop record_mode (a call inside a test "
            "without a cassette follows the session's --synth-record-mode)"
        )


def calling_test() -> str | None:
    """The node id of the test a library call is made in: the test whose route is set
    (a fixture's library calls), else the test pytest is running, else ``None``."""
    route = default_route()
    if route is not None and route.owner is not None and route.owner.calling_test:
        return route.owner.calling_test
    return current_test()


def library_rerecord(call: str, cassette: str | Path) -> str:
    """The library call (or the command's flags) that re-records ``cassette``."""
    if surface() == "command":
        return (
            f"the same command with --cassette {str(cassette)!r} --record-mode rewrite (or "
            "--record-mode new_episodes to record only what is missing)"
        )
    return (
        f"{call}(..., cassette={str(cassette)!r}, record_mode='rewrite') (or "
        "record_mode='new_episodes' to record only what is missing)"
    )
