"""Ctrl-C without losing what is paid for: the answers already on their way are waited for
(briefly) and kept in the resumable cache before the command stops."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

R = TypeVar("R")

GRACE = 10.0
"""Seconds at most to wait, after Ctrl-C, for the answers already on their way."""


class Stopped(Exception):
    """The run was interrupted (after keeping the answers it could)."""


async def stoppable(
    make: Callable[[], Awaitable[R]], notice: Callable[[str], None], grace: float = GRACE
) -> R:
    """Run ``make()``; on the first Ctrl-C send no new request, wait up to ``grace`` seconds
    for those in flight (so their answers are judged and cached), then stop with
    :class:`Stopped`. A second Ctrl-C stops at once."""
    from ..llm.pacing import hold, in_flight

    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(make())
    stopping: list[asyncio.Task[None]] = []

    async def drain() -> None:
        deadline = loop.time() + grace
        while in_flight() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for _ in range(50):  # let the answers just received be judged and cached
            await asyncio.sleep(0)
        task.cancel()

    def interrupted() -> None:
        if stopping or grace <= 0:
            task.cancel()
            return
        hold(True)
        waiting = in_flight()
        if waiting:
            notice(
                f"stopping: waiting up to {grace:g} s for the {waiting} answer(s) on their way, "
                "to keep them (Ctrl-C again to stop at once)"
            )
        stopping.append(loop.create_task(drain()))

    try:
        loop.add_signal_handler(signal.SIGINT, interrupted)
    except (NotImplementedError, RuntimeError):  # pragma: no cover (Windows, other threads)
        return await task
    try:
        return await task
    except asyncio.CancelledError:
        if task.cancelled():
            raise Stopped() from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        hold(False)
