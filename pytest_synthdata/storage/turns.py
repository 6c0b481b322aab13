"""Turns on a cassette: in one process, one generation at a time has a cassette open.

A generation reads its cassette when it opens it and writes it back when it ends, so two
generations with one cassette open at once would each write back only what they recorded
(the last one would win). Calls that share a cassette therefore take turns, in the order
they asked for it, whether they are threads, tasks of one event loop, or tasks of several.
A turn is taken before the cassette's file lock (which other processes wait on), so a
process never holds that lock twice. Calls on other cassettes never wait.

When waiting would never end (the turn is held, or will be, by the event loop that the
waiting call blocks), the call is refused with a :class:`~..errors.SynthConfigError` before
anything is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SynthConfigError

_HELD: ContextVar[frozenset[str]] = ContextVar("synthdata_cassette_turns", default=frozenset())
"""The cassettes whose turn the current task (or thread) holds."""

BLOCKED_LOOPS: ContextVar[frozenset[int]] = ContextVar(
    "synthdata_blocked_loops", default=frozenset()
)
"""The threads whose event loop waits, blocked, for the current code to end (a blocking
call made inside a running loop runs in a helper thread): a turn held by one of their tasks
cannot end before this code does."""


@dataclass(eq=False)
class _Waiter:
    thread: int
    """The thread the call runs in."""
    wake: Callable[[], None]


@dataclass
class _Turn:
    current: _Waiter
    queue: deque[_Waiter] = field(default_factory=deque)

    def threads(self) -> list[_Waiter]:
        return [self.current, *self.queue]


_GUARD = threading.Lock()
_TURNS: dict[str, _Turn] = {}


def _key(path: Path) -> str:
    return str(path.resolve())


def _take_or_queue(
    path: Path, key: str, waiter: _Waiter, blocked: frozenset[int], why: str
) -> bool:
    """Take the free turn on ``key`` (``True``), or queue for it; refused (``why``) when a
    call that has it or waits for it runs in one of the ``blocked`` threads' event loops,
    which could never let it go."""
    with _GUARD:
        turn = _TURNS.get(key)
        if turn is None:
            _TURNS[key] = _Turn(waiter)
            return True
        if any(w.thread in blocked for w in turn.threads()):
            raise _refuse(path, why)
        turn.queue.append(waiter)
        return False


def _hand_on(key: str) -> None:
    """Under ``_GUARD``: give the turn to the next waiter (one whose event loop has closed
    is skipped), or free it."""
    turn = _TURNS[key]
    while turn.queue:
        turn.current = turn.queue.popleft()
        try:
            turn.current.wake()
        except RuntimeError:  # its event loop is closed: nobody waits there any more
            continue
        return
    del _TURNS[key]


def _leave(key: str) -> None:
    with _GUARD:
        _hand_on(key)


def _refuse(path: Path, why: str) -> SynthConfigError:
    return SynthConfigError(
        f"cassette {path} is in use by another call of this process, and {why}. Run the "
        "calls that share a cassette one after the other, or give each its own cassette= "
        "(calls on different cassettes run at the same time)"
    )


@contextlib.asynccontextmanager
async def cassette_turn(path: Path | None) -> AsyncIterator[None]:
    """Wait, without blocking the event loop, until no other call of this process has the
    cassette at ``path`` open, and keep it for the block (nothing when ``path`` is None)."""
    if path is None:
        yield
        return
    key = _key(path)
    if key in _HELD.get():
        raise _refuse(path, "this call is part of it (a call cannot wait for itself)")
    loop = asyncio.get_running_loop()
    granted: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not granted.done():
            granted.set_result(None)

    def wake_there() -> None:  # from the thread that hands the turn on
        loop.call_soon_threadsafe(wake)

    waiter = _Waiter(threading.get_ident(), wake_there)
    blocked = BLOCKED_LOOPS.get()
    if not _take_or_queue(path, key, waiter, blocked, "it waits for this blocking call to end"):
        try:
            await granted
        except BaseException:
            _withdraw(key, waiter)
            raise
    with _holding(key):
        yield


def _withdraw(key: str, waiter: _Waiter) -> None:
    """A waiter was cancelled: leave the queue, or hand on the turn it was just given."""
    with _GUARD:
        turn = _TURNS[key]
        if turn.current is waiter:
            _hand_on(key)
        else:
            turn.queue.remove(waiter)


@contextlib.contextmanager
def _holding(key: str) -> Iterator[None]:
    """The turn just taken on ``key``, known as held by this task (or thread), then handed
    on."""
    token = _HELD.set(_HELD.get() | {key})
    try:
        yield
    finally:
        _HELD.reset(token)
        _leave(key)


@contextlib.contextmanager
def held(path: Path) -> Iterator[None]:
    """The turn on the cassette at ``path`` for blocking code: the caller's already (taken
    with :func:`cassette_turn`), or waited for. Refused when a task of this thread's event
    loop has it or waits for it: blocking the loop would keep that task from ever ending."""
    key = _key(path)
    if key in _HELD.get():
        yield
        return
    event = threading.Event()
    waiter = _Waiter(threading.get_ident(), event.set)
    blocked = BLOCKED_LOOPS.get() | {waiter.thread}
    why = "the call that has it (or waits for it) waits for this one"
    if not _take_or_queue(path, key, waiter, blocked, why):
        event.wait()
    with _holding(key):
        yield
