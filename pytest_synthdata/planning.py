"""The plan of a record dataset: batches, waves, the retry budget, and how much to ask for.

One planner serves the run (:mod:`.records`) and the dry run (:mod:`.dryrun`), so what a dry
run shows is what a run sends when every answer is good. It holds only arithmetic: no
prompts, no HTTP.

* ``ceil(missing / batch_size)`` *planned* batches, sent in *waves* of at most
  ``concurrency``; a wave asks for what is still missing, cut into batches.
* **The retry budget is per dataset**: ``max_retries`` follow-up requests per planned batch,
  shared by all of them. Each batch of a wave gets an even share of what is left (at most
  ``max_retries``); a batch beyond the planned ones (a *top-up*, for what earlier batches
  dropped) costs one request of it. A wave that cannot send a single batch means the
  budget is spent.
* **A slow model gets smaller batches**: after a wave in which a request ran past the
  deadline, the batch size halves (down to one record), what is missing is planned again
  at the new size without drawing on the budget, and one batch is sent at a time until a
  wave comes back in time (:meth:`Planner.settle`). The batches this adds bring their
  share of the budget with them (``max_retries`` each), as the first planned ones did. A
  hung server so costs one deadline per halving, then two for a request of one record, and
  the run ends.
* **A wave's batches may pool their follow-ups** (``pool``): in a wave of two or more
  batches each makes one request, and what they lack is planned as the next wave's top-ups
  (each one request of the budget), so the records are asked for together, in as few
  requests as hold them, instead of in a follow-up per batch; a lone batch follows up on its
  own. When answers are often invalid a top-up owes more than a batch (``top_up``).
* **Follow-ups ask for more when answers are often invalid** (:func:`asking`): the missing
  records divided by the share of valid ones seen so far, at most four times the missing
  count and at most what one request may hold. With nothing invalid, exactly the missing
  records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MOST_PER_MISSING = 4
"""A follow-up asks for at most this many records per missing one."""


@dataclass(frozen=True)
class Wave:
    """Batches sent at once: the first one's index, each one's records and follow-up
    allowance, the batches planned so far (what prompts number against) and how many of
    the planned batches come before this wave."""

    first: int
    sizes: tuple[int, ...]
    allowances: tuple[int, ...]
    total: int
    planned: int

    def top_up(self, position: int) -> bool:
        """Whether batch ``position`` of the wave is beyond the planned batches."""
        return self.first + position >= self.planned


class Planner:
    """Waves of batches for ``missing`` records under one dataset-wide retry budget."""

    def __init__(self, missing: int, batch_size: int, max_retries: int, concurrency: int) -> None:
        self.size = batch_size
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.planned = math.ceil(missing / batch_size)
        self.budgeted = self.planned
        """Planned batches the budget counts: the first plan's, and those a halving added."""
        self.budget = max_retries * self.planned
        """Follow-up requests the dataset may make: ``max_retries`` per budgeted batch."""
        self.left = self.budget
        self.sent = 0
        """Batches sent so far."""
        self.width = concurrency
        """Batches a wave may hold: one after a time-out, doubling after each wave without."""

    def wave(self, missing: int, *, top_up: int | None = None, pool: bool = False) -> Wave | None:
        """The next wave for ``missing`` records, or ``None`` when the budget is spent.

        ``top_up``: the most records a batch beyond the planned ones owes (default: the batch
        size; more when answers are often invalid, so that one request asks for as many as it
        may hold), the missing records spread evenly over the fewest such batches. ``pool``:
        the batches of a wave of two or more make one request each and leave their
        follow-ups to the next wave, so that what they lack is asked for together; a lone
        batch follows up on its own."""
        regular = max(0, self.planned - self.sent)
        per = max(self.size, top_up or self.size)
        covered = min(missing, regular * self.size)
        wanted = math.ceil(covered / self.size) + math.ceil((missing - covered) / per)
        count = min(wanted, self.width, regular + self.left)
        if count <= 0:
            return None
        if count > regular:
            self.left -= count - regular  # top-ups: one request of the budget each
        sizes = _cut(missing, count, self.size, per if top_up else None, regular)
        allowances = tuple(
            0
            if pool and count > 1
            else min(self.max_retries, self.left // count + (1 if i < self.left % count else 0))
            for i in range(count)
        )
        wave = Wave(
            self.sent, sizes, allowances, max(self.planned, self.sent + count), self.planned
        )
        self.sent += count
        return wave

    def spare(self, follow_ups: int = 0) -> bool:
        """Whether less than half of the budget is spent, counting a batch's own
        ``follow_ups`` in this wave: what a dataset's variety rules may draw on (they must
        never cost it exactly n)."""
        return self.budget - self.left + follow_ups < self.budget / 2

    def spend(self, retries: int) -> None:
        """Follow-up requests the batches of a wave made."""
        self.left -= retries

    def settle(self, wave: Wave, timed_out: bool, missing: int) -> bool:
        """After a wave: when a request of it ran past the deadline, halve the size of its
        largest batch, plan the ``missing`` records again at that size and send one batch
        at a time until a wave comes back in time (the width doubles after each such wave).
        Whether the batch size shrank (``False`` once batches are of one record)."""
        if not timed_out:
            self.width = min(self.concurrency, 2 * self.width)
            return False
        self.width = 1
        largest = min(self.size, max(wave.sizes))
        if largest <= 1 or missing <= 0:
            return False
        self.size = math.ceil(largest / 2)
        replanned = self.sent + math.ceil(missing / self.size)
        added = max(0, replanned - max(self.planned, self.sent))
        self.budgeted += added
        self.budget += added * self.max_retries  # each brings its follow-ups, at any size
        self.left += added * self.max_retries
        self.planned = replanned
        return True


def _cut(missing: int, count: int, size: int, per: int | None, regular: int) -> tuple[int, ...]:
    """``count`` batches for ``missing`` records: the planned ones (``regular``) of ``size``
    each, then the top-ups: of ``size`` each too, or with ``per``, what is left spread
    evenly (at most ``per`` each)."""
    sizes = [min(size, missing - i * size) for i in range(count)]
    if per is None or count <= regular:
        return tuple(sizes)
    sizes = sizes[:regular]
    rest, top_ups = missing - sum(sizes), count - regular
    base, extra = divmod(rest, top_ups)
    sizes += [min(per, base + (1 if i < extra else 0)) for i in range(top_ups)]
    return tuple(sizes)


def asking(missing: int, valid: int, invalid: int, most: int) -> int:
    """Records to ask for when ``missing`` are missing, after ``valid`` valid and ``invalid``
    invalid records seen so far: the missing count divided by the valid share (rounded), at most
    :data:`MOST_PER_MISSING` times it and at most ``most`` (never less than ``missing``)."""
    if missing <= 0 or invalid <= 0:
        return max(missing, 0)
    ceiling = max(missing, min(most, MOST_PER_MISSING * missing))
    if valid <= 0:
        return ceiling
    wanted = math.floor(missing * (valid + invalid) / valid + 0.5)  # rounded half up
    return max(missing, min(ceiling, wanted))
