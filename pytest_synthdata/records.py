"""Record datasets: exactly ``n`` valid, distinct records, in waves of batches.

The run is a sequence of *waves*. A wave sends up to ``concurrency`` batches at once; each
batch is a :class:`~.batching.Job` that asks for up to ``batch_size`` records and asks
afresh for what is missing (invalid records, duplicates, a short count) until it has them
or its allowance is spent. Records are merged in batch order, exact duplicates and repeated
``unique`` values are dropped, and the next wave (steered away from the values already
used) tops up what is missing. Nothing depends on which response arrives first, so the same
inputs always produce the same request bodies and the same records.

**The retry budget is per dataset**: ``max_retries`` follow-up requests per planned batch
(``ceil(n / batch_size)``), shared by all of them. A batch may use up to ``max_retries`` of
it in a row; what it still lacks then, or what a transient failure cost it, is asked for by
a top-up batch in a later wave, which draws on the same budget (one request each). So one
stubborn batch borrows what the others did not need, and the run fails only when the
dataset's budget is spent, or when every request of two waves in a row failed after all
their tries: the endpoint is down. The plan and the budget are :mod:`.planning`'s.
Shares are fixed at the start of each wave, so the requests never depend on timing.

**The batches of a wave pool what they lack**: when a wave holds two or more batches, each
makes one request and what they still lack after the wave is asked for by the next wave's
top-ups, together, instead of by a follow-up of each batch (a lone batch follows up on its
own). The top-ups' requests say what the wave before got wrong. Records are merged in batch
order, then what batches got beyond their own share (in the same order), so the first
valid records fill the dataset whichever batch they came from.

**Follow-ups ask for more when answers are often invalid**: a follow-up or a top-up asks for
the records it owes divided by the share of valid records seen so far (in earlier waves and
in the batch's own answers, never in a sibling's, so requests depend only on earlier
answers), bounded by what one request may hold and four times what it owes; once invalid
records were seen, a top-up owes as many records as make its request that large. With
nothing invalid, nothing changes.

**A slow model gets smaller requests**: a request that runs past the deadline is not sent
again as it is; the batch size halves (down to one record) and one batch at a time probes
the new size. Only when every request of a wave of one-record batches timed out is the
endpoint given up on. Time-outs are not answers, so a replay of a run that met them asks
at the smaller size only once it reaches that point (its stored dataset is read whole).

**A dataset is a stable prefix.** Given the records already stored for the same spec (the
``prefix``), the engine keeps them first, in order, and asks only for the missing ones:
the requests say how many records the dataset already holds and list values already used,
so the new records differ from the old ones, and they depend only on the stored records,
so a replay makes the very same requests. Duplicates of stored records are dropped too.

**Near-copies are replaced**: a record whose text (the fields the model writes) nearly
repeats a kept record's or a seed example's (``near_duplicates``, 0.9 by default; see
:mod:`.diversity`) is dropped like a duplicate, and the follow-up says what it copied. So is
a record that breaks a variety rule (an example's name copied, a name used too often), but
only within its :class:`~.judging.Leeway`: fewer than n such drops and less than half of the
retry budget spent.

**When code chooses per record** (``sample=``, ``cover=``, ``edge_cases=``), record ``i`` is
slot ``i`` (:mod:`.coverage`): a batch owes a list of slot indices and each request lists the
slots still owed with their sampled values and attributes; the k-th record of an answer
answers the k-th of them, merged with its sampled values before validation (and stored
merged). A record dropped for any reason is asked for again for the same slot; later waves
ask for the slots still missing. Slotted requests never ask for more than they owe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from .batching import Batcher, Job, Outcome, RequestDeferred, auto_batch_size, problem_notes
from .coverage import Slot
from .dataset import Dataset
from .diversity import (
    NearDuplicates,
    distinctive_values,
    example_texts,
    record_text,
    repeat_limits,
    variety_warning,
)
from .errors import SynthConfigError, SynthGenerationError, warn
from .estimate import largest_request, output_budget, tokens_per_record
from .judging import (
    Accepted,
    AcceptedRecords,
    Judge,
    Leeway,
    canonical,
    describe_records,
    fork,
    near_problem,
    sampled_keys,
)
from .planning import MOST_PER_MISSING, Planner, Wave, asking
from .prompts import avoid_values, batch_messages, slot_schema
from .schema import schema_name
from .settings import Settings
from .spec import SynthSpec

M = TypeVar("M", bound=BaseModel)

KEPT_FORM: ContextVar[Callable[[Any, object], Any] | None] = ContextVar(
    "synthdata_kept_form", default=None
)
"""What a record dataset keeps of each record it accepts, in place of the validated instance
(``None``: the instance), made from the instance and what the model sent for it (kept to be
stored). The ``synthdata`` command keeps the record's output line, so that a run of many
records does not hold them all as pydantic instances. Records asked for per slot
(``sample=``, ``cover=``, ``edge_cases=``) and a stored prefix stay instances."""

MAX_AUTO_BATCH = 20
MAX_FOLLOW_UP = 4 * MAX_AUTO_BATCH
"""Most records a follow-up asks for with an automatic batch size (when they fit)."""

__all__ = [
    "Engine",
    "canonical",
    "describe_records",
    "output_budget",
    "record_batch_size",
    "sampled_keys",
]


def record_batch_size(
    model: type[BaseModel],
    settings: Settings,
    examples: Sequence[object] = (),
    omit: Sequence[str] = (),
) -> int:
    """Records per request: ``batch_size``, or as many as fit, at most 20 (``omit``: the
    JSON keys of sampled fields, which the model does not write)."""
    return settings.batch_size or auto_batch_size(
        tokens_per_record(model, examples, omit), settings.max_tokens, MAX_AUTO_BATCH
    )


class Engine(Generic[M]):
    """Produces one dataset. Create one per generation; it is not reusable.

    After :meth:`run`, :attr:`raw` holds what the model sent for each returned record, in
    the same order (what a stored dataset keeps).
    """

    def __init__(
        self,
        spec: SynthSpec,
        settings: Settings,
        batcher: Batcher,
        *,
        prefix: list[tuple[Any, object]] | None = None,
    ) -> None:
        """``prefix``: the records already stored for this spec (validated) with what the
        model sent for each; they stay the first records, and only the rest is asked for."""
        self.spec = spec
        self.settings = settings
        self.batcher = batcher
        self.model: type[M] = spec.model  # type: ignore[assignment]
        self.schema = slot_schema(spec)  # the whole record unless fields are sampled
        self.name = schema_name(spec.model)
        self.omit = sampled_keys(spec)
        self.batch_size = record_batch_size(spec.model, settings, spec.examples, self.omit)
        needed = self.batch_size * tokens_per_record(spec.model, spec.examples, self.omit)
        if settings.batch_size and needed > settings.max_tokens:
            raise SynthConfigError(
                f"batch_size={settings.batch_size} needs about {needed} output tokens per request "
                f"for {spec.model_name} records, but max_tokens={settings.max_tokens}; lower "
                "batch_size or raise max_tokens"
            )
        self.most = settings.batch_size or max(
            self.batch_size,
            min(
                MAX_FOLLOW_UP,
                largest_request(spec.model, settings.max_tokens, spec.examples, self.omit),
            ),
        )
        """Records one request may ask for: the batch size when set, otherwise as many as
        fit in ``max_tokens`` (a follow-up asks for more when answers are often invalid)."""
        self.usage = batcher.usage
        self.prefix = list(prefix or [])[: spec.n]
        self.raw: list[object] = [raw for _, raw in self.prefix]
        self.valid = self.invalid = 0
        """Records of this run's answers judged valid and invalid so far (after each wave)."""
        self.last_problems: list[str] = []
        self.last_output: str | None = None
        self.planner: Planner | None = None
        plan = spec.slots
        self.written = plan.written_fields
        """The fields the model writes: what near-duplicates are judged on."""
        copies = distinctive_values(spec.examples, plan.text_fields)
        self.finder = (
            None
            if spec.near_duplicates is None
            else NearDuplicates(
                spec.near_duplicates,
                example_texts(spec.examples, plan.written_fields),
                copies,
                repeat_limits(spec.examples, copies, spec.n),
            )
        )
        self.leeway = Leeway(spec.n)
        """How long records that break a variety rule are asked again."""
        self.copied: set[str] = set()
        """Fields in which records of earlier waves copied an example's value: from then on
        the examples a request shows leave them out, so the model cannot copy them again."""
        self.fallback: set[int] = set()
        """Edge-case slots whose boundary values the model's validators rejected: asked
        again with the boundaries left to the model."""
        self._slots: dict[int, Slot] = {}

    def describe(self) -> str:
        llm = self.batcher.llm
        return (
            f"{self.spec.n} {self.spec.model_name} record(s) from {self.settings.model!r} at "
            f"{llm.endpoint} (batches of {self.batch_size}, mode {llm.mode})"
        )

    async def run(self) -> Dataset[M]:

        n = self.spec.n
        accepted = AcceptedRecords(self.spec.unique, self.prefix)
        start = len(accepted.records)
        if self.finder is not None:
            for data in accepted.data:  # the stored prefix first, in order
                self.finder.add(record_text(data, self.written), data)
        if self.spec.slotted:
            added = await self._run_slots(accepted)
            return self._finish(accepted.records[:start] + added)
        planner = self._planner(n - start)
        failed_rounds = 0
        notes: list[str] = []
        while len(accepted.records) < n:
            need = n - len(accepted.records)
            wave = planner.wave(need, top_up=self._top_up(), pool=True)
            if wave is None:
                raise self._spent(planner, len(accepted.records))
            avoid = avoid_values(self.spec, accepted.data)
            seen = (self.valid, self.invalid)
            shares = self.leeway.shares(wave.sizes)
            batches = [
                self._job(
                    wave.first + i,
                    wave.total,
                    size,
                    accepted.data,
                    avoid,
                    start,
                    follow_up=wave.top_up(i),
                    seen=seen,
                    notes=notes if wave.top_up(i) else [],
                    share=shares[i],
                )
                for i, size in enumerate(wave.sizes)
            ]
            outcomes = await self._send(batches, wave, planner)
            self._learn(batches)
            for (_, judge), outcome in zip(batches, outcomes, strict=True):
                if outcome.problems:
                    self.last_problems, self.last_output = outcome.problems, outcome.last_output
                self._merge(_in_order(outcome), accepted, n)
                self.valid += judge.valid
                self.invalid += judge.invalid
            for outcome in outcomes:  # then what batches asked for beyond their own share
                self._merge(outcome.extra, accepted, n)
            notes = _wave_notes(outcomes)
            missing = n - len(accepted.records)
            failed_rounds = self._judge_failures(wave, outcomes, missing, failed_rounds)
            del batches, outcomes  # merged: the wave's judges and answers are let go now
        return self._finish(accepted.records, accepted.data)

    def _planner(self, missing: int) -> Planner:
        """The planner of this run's ``missing`` records, which the variety rules' leeway
        reads the retry budget from."""
        planner = Planner(
            missing, self.batch_size, self.settings.max_retries, self.settings.concurrency
        )
        self.planner = self.leeway.planner = planner
        return planner

    def _learn(self, batches: Sequence[tuple[Job[Accepted], Judge]]) -> None:
        """After a wave: what its batches dropped for the variety rules, and which fields
        their records copied from the examples (later requests leave those out)."""
        self.leeway.dropped += sum(judge.broke for _, judge in batches)
        self.copied.update(*(judge.copied for _, judge in batches))

    async def _run_slots(self, accepted: AcceptedRecords) -> list[Any]:
        """The records after the stored prefix when code chooses per record (sampled values,
        axes, edge cases): record ``i`` is slot ``i``; a batch asks for a list of slots, a
        record dropped for any reason is asked again for the same slot, and later waves ask
        for the slots still missing. Returns the new records in slot order."""

        n, start = self.spec.n, len(accepted.records)
        planner = self._planner(n - start)
        placed: dict[int, tuple[Any, object]] = {}
        failed_rounds = 0
        while len(placed) < n - start:
            missing = [i for i in range(start, n) if i not in placed]
            wave = planner.wave(len(missing))
            if wave is None:
                raise self._spent(planner, start + len(placed))
            avoid = avoid_values(self.spec, accepted.data)
            chunks, at = [], 0
            for size in wave.sizes:
                chunks.append(missing[at : at + size])
                at += size
            shares = self.leeway.shares(wave.sizes)
            batches = [
                self._slot_job(
                    wave.first + i,
                    wave.total,
                    chunk,
                    accepted.data,
                    avoid,
                    start,
                    follow_up=wave.top_up(i),
                    share=shares[i],
                )
                for i, chunk in enumerate(chunks)
            ]
            outcomes = await self._send(batches, wave, planner)
            self._learn(batches)
            for (_, judge), outcome in zip(batches, outcomes, strict=True):
                if outcome.problems:
                    self.last_problems, self.last_output = outcome.problems, outcome.last_output
                for slot in sorted(outcome.done):
                    record, data = outcome.done[slot]
                    if self._admit(record, data, accepted) is True:
                        placed[slot] = (record, outcome.raw[slot])
                self.valid += judge.valid
                self.invalid += judge.invalid
            left = n - start - len(placed)
            failed_rounds = self._judge_failures(wave, outcomes, left, failed_rounds)
        ordered = [placed[i] for i in range(start, n)]
        self.raw.extend(raw for _, raw in ordered)
        return [record for record, _ in ordered]

    async def _send(
        self, batches: list[tuple[Job[Accepted], Judge]], wave: Wave, planner: Planner
    ) -> list[Outcome[Accepted]]:
        """A wave's batches, sent at once, each with its follow-up allowance; the follow-ups
        they made are spent. Raises :class:`RequestDeferred` when a batch file answers them."""
        import asyncio

        outcomes = await asyncio.gather(
            *(
                self.batcher.run(job, allowance)
                for (job, _), allowance in zip(batches, wave.allowances, strict=True)
            )
        )
        if any(outcome.deferred for outcome in outcomes):
            raise RequestDeferred("this wave's requests are answered by a batch")
        planner.spend(sum(outcome.retries for outcome in outcomes))
        return list(outcomes)

    def _slot(self, index: int) -> Slot:
        """Slot ``index`` as it is asked for (its boundaries dropped after a rejection)."""
        slot = self._slots.get(index)
        if slot is None:
            slot = self._slots[index] = self.spec.slots.slot(index)
        return slot.without_boundaries() if index in self.fallback else slot

    def _finish(self, records: list[Any], data: list[dict[str, Any]] | None = None) -> Dataset[M]:
        """The dataset with its coverage and diversity report (from ``data``, the records'
        JSON forms, when they are at hand); a warning when free-text fields show little
        variety."""
        dropped = self.usage.dropped_near_duplicate
        coverage, report = describe_records(self.spec, records, dropped, data)
        message = variety_warning(
            report, self.spec.slots.text_fields, f"{self.spec.model_name} dataset"
        )
        if message is not None:
            warn(message)
        return Dataset(records, self.usage, coverage=coverage, diversity=report)

    def _judge_failures(
        self, wave: Wave, outcomes: list[Outcome[Accepted]], missing: int, failed_rounds: int
    ) -> int:
        """Raise when the endpoint is down; halve the batches after a time-out. Returns how
        many waves in a row failed entirely."""
        failures = [o.failure for o in outcomes if o.failure is not None]
        timed_out = [f for f in failures if f.timed_out]
        assert self.planner is not None
        if self.planner.settle(wave, bool(timed_out), missing):
            return 0  # a slow model: smaller requests, planned afresh
        if len(failures) < len(outcomes) or any(o.done for o in outcomes):
            return 0
        # every request of the wave failed after its tries: one more wave, unless the
        # endpoint hangs even for one record (each try cost a whole deadline) or failed before
        if failed_rounds + 1 >= 2 or len(timed_out) == len(failures):
            raise failures[0]
        return failed_rounds + 1

    def _merge(
        self, records: list[tuple[Accepted, object]], accepted: AcceptedRecords, n: int
    ) -> None:
        """Keep a batch's records in order: duplicates dropped, at most ``n`` in all."""
        for (record, data), raw in records:
            kept = self._admit(record, data, accepted, full=len(accepted.records) >= n)
            if kept is None:
                return
            if kept:
                self.raw.append(raw)

    def _admit(
        self, record: Any, data: dict[str, Any], accepted: AcceptedRecords, *, full: bool = False
    ) -> bool | None:
        """Keep ``record`` unless it repeats (exactly, by a ``unique`` value, or nearly) a
        kept record or an example (``False``, counted) or the dataset is ``full`` (``None``)."""
        clash = accepted.clash(data)
        text = record_text(data, self.written) if self.finder is not None else ""
        if clash is None and self.finder is not None:
            match = self.finder.check(text, data, rules=self.leeway.allows())
            if match is not None:
                self.usage.dropped_near_duplicate += 1
                self.leeway.dropped += match.field is not None
                clash = near_problem("A record", match)
        if clash is not None:
            self.usage.dropped_duplicate += 1
            self.last_problems = [clash]
            return False
        if full:
            return None
        accepted.add(record, data)
        if self.finder is not None:
            self.finder.add(text, data)
        return True

    def _spent(self, planner: Planner, have: int) -> SynthGenerationError:
        return self._error(
            f"the retry budget ({planner.budget} follow-up requests for this dataset: "
            f"max_retries={self.settings.max_retries} x {planner.budgeted} "
            f"planned batch(es) of up to {self.batch_size} records) ran out with {have} of "
            f"{self.spec.n} records; fix the problems below (constraints the model cannot "
            "meet, a model that repeats itself, a too-small max_tokens) or raise max_retries",
            self.last_output,
            self.last_problems,
        )

    def _job(
        self,
        index: int,
        total: int,
        count: int,
        accepted: list[dict[str, Any]],
        avoid: dict[str, list[str]],
        start: int = 0,
        *,
        follow_up: bool = False,
        seen: tuple[int, int] = (0, 0),
        notes: Sequence[str] = (),
        share: int = 0,
    ) -> tuple[Job[Accepted], Judge]:
        """Batch ``index`` of ``total``: ``count`` records, and its judge; ``seen`` is how
        many records of earlier waves were valid and invalid (what follow-ups scale by);
        ``notes``, what went wrong in the wave before, for a top-up's first request;
        ``share``, how many records it may drop for the variety rules."""
        judge = self._judge(share)

        def asked(owed: int) -> int:
            return asking(owed, seen[0] + judge.valid, seen[1] + judge.invalid, self.most)

        def ask(owed: list[int], attempt: int) -> list[dict[str, str]]:
            judge.attempt = attempt
            taken = avoid if not attempt else avoid_values(self.spec, accepted + judge.kept)
            messages = batch_messages(
                self.spec,
                asked(len(owed)),
                batch_index=index,
                batch_total=total,
                avoid=taken,
                attempt=attempt,
                stored=start,
                hide=self.copied | judge.copied,
            )
            if notes and not attempt:  # a top-up: what the wave before it got wrong
                messages[-1]["content"] += "\n\n" + "\n".join(notes)
            return messages

        job = Job(
            ask=ask,
            slots=list(range(count)),
            accept=_keeping(judge, KEPT_FORM.get()),
            name=self.name,
            schema=self.schema,
            max_tokens=self._budget,
            follow_up=follow_up,
            asking=asked,
            shrinkable=True,
        )
        return job, judge

    def _top_up(self) -> int | None:
        """The most records a top-up batch owes once answers were found invalid: as many as
        make its request ask for all one request may hold (``None``: the batch size, also
        once a slow model made the batches smaller)."""
        if not self.invalid or (self.planner and self.planner.size < self.batch_size):
            return None
        share = max(self.valid / (self.valid + self.invalid), 1 / MOST_PER_MISSING)
        return max(1, int(self.most * share))

    def _judge(self, share: int) -> Judge:
        return Judge(
            self.model,
            self.usage,
            fork(self.finder),
            self.written,
            self.fallback,
            leeway=self.leeway,
            share=share,
        )

    def _budget(self, asked_for: int) -> int:
        return output_budget(self.spec.model, asked_for, self.spec.examples, self.omit)

    def _slot_job(
        self,
        index: int,
        total: int,
        chunk: list[int],
        accepted: list[dict[str, Any]],
        avoid: dict[str, list[str]],
        start: int,
        *,
        follow_up: bool = False,
        share: int = 0,
    ) -> tuple[Job[Accepted], Judge]:
        """Batch ``index`` of ``total`` for the record slots ``chunk``: each request lists
        the slots it still owes, and the answer's k-th record is the k-th of them."""
        judge = self._judge(share)

        def ask(owed: list[int], attempt: int) -> list[dict[str, str]]:
            slots = [self._slot(i) for i in owed]
            judge.owed, judge.attempt = slots, attempt
            taken = avoid if not attempt else avoid_values(self.spec, accepted + judge.kept)
            return batch_messages(
                self.spec,
                len(owed),
                batch_index=index,
                batch_total=total,
                avoid=taken,
                attempt=attempt,
                stored=start,
                slots=slots,
                hide=self.copied | judge.copied,
            )

        job = Job(
            ask=ask,
            slots=list(chunk),
            accept=judge,
            name=self.name,
            schema=self.schema,
            max_tokens=self._budget,
            follow_up=follow_up,
            shrinkable=True,
        )
        return job, judge

    def _error(
        self, message: str, last_output: str | None, problems: list[str]
    ) -> SynthGenerationError:
        return SynthGenerationError(
            f"could not generate {self.spec.n} valid {self.spec.model_name} records: {message}",
            asked=self.describe(),
            last_output=last_output,
            errors=problems,
            usage=self.usage,
        )


def _wave_notes(outcomes: list[Outcome[Accepted]]) -> list[str]:
    """What the answers of a wave got wrong, briefly, for the top-ups of the next one (not
    the errors of requests that failed: they say nothing about records)."""
    problems = [p for outcome in outcomes if outcome.failure is None for p in outcome.problems]
    return problem_notes(problems, numbered=False)


def _in_order(outcome: Outcome[Accepted]) -> list[tuple[Accepted, object]]:
    """A batch's records by slot, each with what the model sent for it."""
    return [(outcome.done[slot], outcome.raw[slot]) for slot in sorted(outcome.done)]


def _keeping(
    judge: Judge, form: Callable[[Any, object], Any] | None
) -> Callable[[object, int], Any]:
    """``judge``, keeping ``form`` of each record it accepts in place of the instance (see
    :data:`KEPT_FORM`)."""
    if form is None:
        return judge

    def accept(item: object, position: int) -> Any:
        verdict = judge(item, position)
        if verdict.value is None:
            return verdict
        record, data = verdict.value
        return dataclasses.replace(verdict, value=(form(record, verdict.raw), data))

    return accept
