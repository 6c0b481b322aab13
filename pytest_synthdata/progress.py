"""Live progress of a generation, for whoever shows it (the plugin, the command line).

The batch loop reports after every answer; nothing is shown unless a listener is set for
the current context with :func:`listening`. Reports are cheap and synchronous: a listener
must not block.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class ProgressDisplay(Protocol):
    """A live display of where generations stand: the plugin's live line on pytest's
    terminal, the ``synthdata`` command's bar. It is a :data:`Listener` (called with every
    report, from the thread that runs the generation: it must not block) that is closed
    once, when the generations it shows are over, and then leaves the terminal as it was
    (no half-drawn line). Values it shows go through
    :func:`pytest_synthdata.terminal_safe.escape_controls`."""

    def __call__(self, progress: Progress) -> None: ...

    def close(self) -> None: ...


@dataclass
class Spent:
    """What the answers reported so far came to, split by whether they were paid for
    (sent to the endpoint) or replayed (a cassette, the cache): counted from the reports
    themselves, one per answer. ``transient`` counts the tries lost to 429s, 5xx and other
    transient failures before an answer came. Safe to add to from several threads."""

    sent: int = 0
    sent_prompt_tokens: int = 0
    sent_completion_tokens: int = 0
    replayed: int = 0
    transient: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __call__(self, progress: Progress) -> None:
        answer = progress.answer
        if answer is None:
            return
        with self._lock:
            self.transient += answer.tries - 1
            if answer.paid:
                self.sent += 1
                self.sent_prompt_tokens += answer.prompt_tokens
                self.sent_completion_tokens += answer.completion_tokens
            else:
                self.replayed += 1


def fan_out(*listeners: Listener | None) -> Listener:
    """One listener that tells each of ``listeners`` (``None`` ones are left out)."""
    chosen = [listener for listener in listeners if listener is not None]

    def listener(progress: Progress) -> None:
        for each in chosen:
            each(progress)

    return listener


_LISTENER: ContextVar[Listener | None] = ContextVar("synthdata_progress", default=None)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send the progress of generations run in this context to ``listener``."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


def emit(label: str, done: int, total: int, usage: Usage, answer: Answer | None = None) -> None:
    """Tell the current listener, if any, where a generation stands."""
    listener = _LISTENER.get()
    if listener is not None:
        spent = Usage(**usage.as_dict())
        listener(Progress(label, done, total, spent, answer))
