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

**Follow-ups ask for more when answers are often invalid**: a batch's follow-up asks for
its missing records divided by the share of valid records seen so far (in earlier waves and
in the batch's own answers, never in a sibling's, so requests depend only on earlier
answers), bounded by what one request may hold and four times the missing count; the first
valid records fill the batch and the rest are not kept. With nothing invalid, nothing
changes.

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
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from .batching import Batcher, Job, Outcome, Verdict, auto_batch_size
from .dataset import Dataset
from .errors import SynthConfigError, SynthGenerationError
from .estimate import largest_request, output_budget, tokens_per_record
from .jsonread import nonfinite_problem
from .planning import Planner, Wave, asking
from .prompts import avoid_values, batch_messages
from .schema import schema_name, wrapper_schema
from .settings import Settings
from .spec import SynthSpec, format_validation_error

M = TypeVar("M", bound=BaseModel)

MAX_AUTO_BATCH = 20
MAX_FOLLOW_UP = 4 * MAX_AUTO_BATCH
"""Most records a follow-up asks for with an automatic batch size (when they fit)."""

Accepted = tuple[Any, dict[str, Any]]
"""A validated record and its JSON form (what duplicates are judged on)."""


def record_batch_size(
    model: type[BaseModel], settings: Settings, examples: Sequence[object] = ()
) -> int:
    """Records per request: ``batch_size``, or as many as fit, at most 20."""
    return settings.batch_size or auto_batch_size(
        tokens_per_record(model, examples), settings.max_tokens, MAX_AUTO_BATCH
    )


def canonical(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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
        self.schema = wrapper_schema(spec.model)
        self.name = schema_name(spec.model)
        self.batch_size = record_batch_size(spec.model, settings, spec.examples)
        needed = self.batch_size * tokens_per_record(spec.model, spec.examples)
        if settings.batch_size and needed > settings.max_tokens:
            raise SynthConfigError(
                f"batch_size={settings.batch_size} needs about {needed} output tokens per request "
                f"for {spec.model_name} records, but max_tokens={settings.max_tokens}; lower "
                "batch_size or raise max_tokens"
            )
        self.most = settings.batch_size or max(
            self.batch_size,
            min(MAX_FOLLOW_UP, largest_request(spec.model, settings.max_tokens, spec.examples)),
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

    def describe(self) -> str:
        llm = self.batcher.llm
        return (
            f"{self.spec.n} {self.spec.model_name} record(s) from {self.settings.model!r} at "
            f"{llm.endpoint} (batches of {self.batch_size}, mode {llm.mode})"
        )

    async def run(self) -> Dataset[M]:
        import asyncio

        n = self.spec.n
        accepted = _Accepted(self.spec.unique, self.prefix)
        start = len(accepted.records)
        planner = Planner(
            n - start, self.batch_size, self.settings.max_retries, self.settings.concurrency
        )
        self.planner = planner
        failed_rounds = 0
        while len(accepted.records) < n:
            need = n - len(accepted.records)
            wave = planner.wave(need)
            if wave is None:
                raise self._spent(planner, len(accepted.records))
            avoid = avoid_values(self.spec, accepted.data)
            seen = (self.valid, self.invalid)
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
                )
                for i, size in enumerate(wave.sizes)
            ]
            outcomes = await asyncio.gather(
                *(
                    self.batcher.run(job, allowance)
                    for (job, _), allowance in zip(batches, wave.allowances, strict=True)
                )
            )
            planner.spend(sum(outcome.retries for outcome in outcomes))
            for (_, judge), outcome in zip(batches, outcomes, strict=True):
                if outcome.problems:
                    self.last_problems, self.last_output = outcome.problems, outcome.last_output
                self._merge(_in_order(outcome), accepted, n)
                self.valid += judge.valid
                self.invalid += judge.invalid
            for outcome in outcomes:  # then what batches asked for beyond their own share
                self._merge(outcome.extra, accepted, n)
            missing = n - len(accepted.records)
            failed_rounds = self._judge_failures(wave, outcomes, missing, failed_rounds)
        return Dataset(accepted.records, self.usage)

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

    def _merge(self, records: list[tuple[Accepted, object]], accepted: _Accepted, n: int) -> None:
        """Keep a batch's records in order: duplicates dropped, at most ``n`` in all."""
        for (record, data), raw in records:
            clash = accepted.clash(data)
            if clash is not None:
                self.usage.dropped_duplicate += 1
                self.last_problems = [clash]
                continue
            if len(accepted.records) >= n:
                return
            accepted.add(record, data)
            self.raw.append(raw)

    def _spent(self, planner: Planner, have: int) -> SynthGenerationError:
        return self._error(
            f"the retry budget ({planner.budget} follow-up requests for this dataset: "
            f"max_retries={self.settings.max_retries} x {planner.first_planned} "
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
    ) -> tuple[Job[Accepted], _Judge]:
        """Batch ``index`` of ``total``: ``count`` records, and its judge; ``seen`` is how
        many records of earlier waves were valid and invalid (what follow-ups scale by)."""
        judge = _Judge(self.model)

        def asked(owed: int) -> int:
            return asking(owed, seen[0] + judge.valid, seen[1] + judge.invalid, self.most)

        def ask(owed: list[int], attempt: int) -> list[dict[str, str]]:
            taken = avoid if not attempt else avoid_values(self.spec, accepted + judge.kept)
            return batch_messages(
                self.spec,
                asked(len(owed)),
                batch_index=index,
                batch_total=total,
                avoid=taken,
                attempt=attempt,
                stored=start,
            )

        job = Job(
            ask=ask,
            slots=list(range(count)),
            accept=judge,
            name=self.name,
            schema=self.schema,
            max_tokens=lambda asked_for: output_budget(
                self.spec.model, asked_for, self.spec.examples
            ),
            follow_up=follow_up,
            asking=asked,
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


class _Judge:
    """Judges a batch's records: valid, and not repeated within the batch; counts how many
    were valid and invalid (what the batch's follow-ups scale their request by)."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model
        self.local: set[str] = set()
        self.kept: list[dict[str, Any]] = []
        self.valid = self.invalid = 0

    def __call__(self, item: object, position: int) -> Verdict[Accepted]:
        try:  # as JSON: what the model sent is JSON (strict models accept its dates ...)
            record = self.model.model_validate_json(json.dumps(item))
        except ValidationError as exc:
            self.invalid += 1
            return Verdict(
                problems=[
                    f"Record {position} was invalid and was dropped:\n"
                    + format_validation_error(exc)
                ]
            )
        problem = nonfinite_problem(record, position)  # JSON cannot carry NaN, Infinity
        if problem is not None:
            self.invalid += 1
            return Verdict(problems=[problem])
        self.valid += 1
        data = record.model_dump(mode="json")
        key = canonical(data)
        if key in self.local:
            return Verdict(
                problems=[f"Record {position} repeated an earlier record."], duplicate=True
            )
        self.local.add(key)
        self.kept.append(data)
        return Verdict((record, data), raw=item)


class _Accepted:
    """The records kept so far, in order, and what duplicates are judged on."""

    def __init__(self, unique: tuple[str, ...], prefix: list[tuple[Any, object]]) -> None:
        self.unique = unique
        self.records: list[Any] = []
        self.data: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        self.values: dict[str, set[str]] = {name: set() for name in unique}
        for record, _ in prefix:
            self.add(record, record.model_dump(mode="json"))

    def clash(self, data: dict[str, Any]) -> str | None:
        """Why ``data`` is a duplicate of a kept record (``None``: it is not)."""
        key = canonical(data)
        if key in self.seen:
            return f"duplicate record dropped: {key[:200]}"
        clash = [name for name in self.unique if canonical(data.get(name)) in self.values[name]]
        if clash:
            return f"record with an already used {', '.join(clash)} dropped"
        return None

    def add(self, record: Any, data: dict[str, Any]) -> None:
        self.records.append(record)
        self.data.append(data)
        self.seen.add(canonical(data))
        for name in self.unique:
            self.values[name].add(canonical(data.get(name)))


def _in_order(outcome: Outcome[Accepted]) -> list[tuple[Accepted, object]]:
    """A batch's records by slot, each with what the model sent for it."""
    return [(outcome.done[slot], outcome.raw[slot]) for slot in sorted(outcome.done)]
