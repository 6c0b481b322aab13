"""Live progress of a generation, for whoever shows it (the plugin, the command line).

The batch loop reports after every answer; nothing is shown unless a listener is set for
the current context with :func:`listening`. Reports are cheap and synchronous: a listener
must not block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from .usage import Usage


@dataclass(frozen=True)
class Answer:
    """The answer a report follows: where it came from (``network``, ``recorded``,
    ``cached`` or ``replayed``), its tokens, and the tries it took (more than one after a
    429, a 5xx or another transient failure)."""

    source: str
    prompt_tokens: int
    completion_tokens: int
    tries: int = 1

    @property
    def paid(self) -> bool:
        """Whether the endpoint was asked for it (rather than a cassette or the cache)."""
        return self.source in ("network", "recorded")


@dataclass(frozen=True)
class Progress:
    """Where one generation stands: ``done`` of ``total`` items of ``label``, what it has
    cost so far (requests, tokens, retries), and the answer that moved it (every answer is
    reported once)."""

    label: str
    done: int
    total: int
    usage: Usage
    answer: Answer | None = None


Listener = Callable[[Progress], None]

_LISTENER: ContextVar[Listener | None] = ContextVar("synthdata_progress", default=None)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send the progress of generations run in this context to ``listener``."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


def report(label: str, done: int, total: int, usage: Usage, answer: Answer | None = None) -> None:
    """Tell the current listener, if any, where a generation stands."""
    listener = _LISTENER.get()
    if listener is not None:
        spent = Usage(**usage.as_dict())
        listener(Progress(label, done, total, spent, answer))
