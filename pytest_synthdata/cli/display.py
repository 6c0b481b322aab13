"""What the ``synthdata`` command shows while it runs, and the line it ends with.

Progress goes to standard error: a bar (tqdm) when it is a terminal, otherwise one plain
line per answer, so a log or CI shows each step. The final line says what the run produced
and cost; answers replayed from a cassette or the cache are counted but not paid for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..progress import Progress
from ..usage import Usage


@dataclass
class Tally:
    """What the answers of a run cost: counted from the progress reports, one per answer."""

    sent: int = 0
    reused: int = 0
    batched: int = 0
    """Requests a batch of this run answered (the run then reads them from the cache)."""
    paid_prompt: int = 0
    paid_completion: int = 0
    failed_tries: int = 0
    done: int = 0
    total: int = 0
    label: str = ""
    last: Usage = field(default_factory=Usage)

    def add(self, progress: Progress) -> None:
        self.done, self.total, self.label, self.last = (
            progress.done,
            progress.total,
            progress.label,
            progress.usage,
        )
        answer = progress.answer
        if answer is None:
            return
        self.failed_tries += answer.tries - 1
        if answer.paid:
            self.sent += 1
            self.paid_prompt += answer.prompt_tokens
            self.paid_completion += answer.completion_tokens
        else:
            self.reused += 1


class Display:
    """The progress listener: a bar on a terminal, a plain line per answer elsewhere, or
    nothing (``quiet``)."""

    def __init__(
        self,
        stream: TextIO,
        *,
        quiet: bool = False,
        noun: str = "records",
        named: bool = True,
    ) -> None:
        self.stream = stream
        self.quiet = quiet
        self.noun = noun
        self.named = named
        """Whether a report's label names the data (a model's name) and is shown; the
        label of other datasets names the function that made them, which is no news."""
        self.tally = Tally()
        self.started = time.perf_counter()
        self._bar: Any = None
        self._terminal = bool(getattr(stream, "isatty", lambda: False)())

    def __call__(self, progress: Progress) -> None:
        self.tally.add(progress)
        if self.quiet:
            return
        usage = progress.usage
        tokens = usage.prompt_tokens + usage.completion_tokens
        if self._terminal:
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(
                    total=progress.total,
                    desc=progress.label if self.named else self.noun,
                    unit=self.noun[:3],
                    file=self.stream,
                    dynamic_ncols=True,
                    leave=False,
                )
            self._bar.n = progress.done
            self._bar.set_postfix_str(f"{usage.requests} req, {tokens} tok", refresh=False)
            self._bar.refresh()
            return
        retried = f", {self.tally.failed_tries} retried" if self.tally.failed_tries else ""
        label = f"{progress.label} " if self.named and progress.label else ""
        self.stream.write(
            f"synthdata: {label}{progress.done}/{progress.total} {self.noun}, "
            f"{usage.requests} requests, {tokens} tokens{retried}\n"
        )
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def summary(
    tally: Tally,
    usage: Usage,
    count: int,
    noun: str,
    where: str,
    elapsed: float,
    prices: tuple[float, float] | None,
) -> str:
    """The final line: records, requests (answered by batches, sent and reused), tokens,
    retries, time, cost."""
    batched = min(tally.batched, max(usage.requests - tally.sent, 0))
    reused = usage.requests - tally.sent - batched
    if usage.requests == 0 and usage.cache_hits:
        requests = "0 requests (the finished dataset was in the cache)"
    elif reused or batched:
        parts = [f"{batched} answered by batches"] if batched else []
        parts.append(f"{tally.sent} sent")
        if reused:
            parts.append(f"{reused} replayed from the cassette or the cache")
        requests = f"{usage.requests} requests ({', '.join(parts)})"
    else:
        requests = f"{usage.requests} requests"
    tokens = f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens"
    if reused and (tally.sent or batched):
        tokens += f" ({tally.paid_prompt} + {tally.paid_completion} paid for)"
    retries = (
        f"retries: {usage.retries} re-asks of invalid answers, {tally.failed_tries} after "
        "429/5xx/timeouts"
    )
    line = f"synthdata: {count} {noun} -> {where}; {requests}, {tokens}; {retries}; "
    line += f"{elapsed:.1f} s"
    if prices is not None:
        from ..dryrun import cost, dollars

        paid = cost(tally.paid_prompt, tally.paid_completion, *prices)
        line += f"; cost {dollars(paid)}"
    return line


def warning_line(message: Warning | str, category: type[Warning]) -> str:
    """A warning as the command shows it: one line, no source line of Python's."""
    text = " ".join(str(message).split())
    kind = (
        "" if category.__name__ in ("SynthDataWarning", "UserWarning") else f"{category.__name__}: "
    )
    return f"synthdata: warning: {kind}{text}\n"


class Warnings:
    """Shows each distinct warning once, on one line of ``stream``, while installed."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.seen: set[str] = set()

    def show(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        from ..storage.secrets import mask

        text = mask(warning_line(message, category))
        if text in self.seen:
            return
        self.seen.add(text)
        self.stream.write(text)
        self.stream.flush()
