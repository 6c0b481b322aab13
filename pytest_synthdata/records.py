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
their tries (one wave when they all timed out): the endpoint is down.
Shares are fixed at the start of each wave, so the requests never depend on timing.

**A dataset is a stable prefix.** Given the records already stored for the same spec (the
``prefix``), the engine keeps them first, in order, and asks only for the missing ones:
the requests say how many records the dataset already holds and list values already used,
so the new records differ from the old ones, and they depend only on the stored records,
so a replay makes the very same requests. Duplicates of stored records are dropped too.
"""

from __future__ import annotations

import json
import math
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from .batching import Batcher, Job, Outcome, Verdict, auto_batch_size
from .dataset import Dataset
from .errors import SynthConfigError, SynthGenerationError
from .estimate import output_budget, tokens_per_record
from .jsonread import nonfinite_problem
from .prompts import avoid_values, batch_messages
from .schema import schema_name, wrapper_schema
from .settings import Settings
from .spec import SynthSpec, format_validation_error

M = TypeVar("M", bound=BaseModel)

MAX_AUTO_BATCH = 20

Accepted = tuple[Any, dict[str, Any]]
"""A validated record and its JSON form (what duplicates are judged on)."""


def record_batch_size(model: type[BaseModel], settings: Settings) -> int:
    """Records per request: ``batch_size``, or as many as fit, at most 20."""
    return settings.batch_size or auto_batch_size(
        tokens_per_record(model), settings.max_tokens, MAX_AUTO_BATCH
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
        self.batch_size = record_batch_size(spec.model, settings)
        needed = self.batch_size * tokens_per_record(spec.model)
        if settings.batch_size and needed > settings.max_tokens:
            raise SynthConfigError(
                f"batch_size={settings.batch_size} needs about {needed} output tokens per request "
                f"for {spec.model_name} records, but max_tokens={settings.max_tokens}; lower "
                "batch_size or raise max_tokens"
            )
        self.usage = batcher.usage
        self.prefix = list(prefix or [])[: spec.n]
        self.raw: list[object] = [raw for _, raw in self.prefix]

    def describe(self) -> str:
        llm = self.batcher.llm
        return (
            f"{self.spec.n} {self.spec.model_name} record(s) from {self.settings.model!r} at "
            f"{llm.endpoint} (batches of {self.batch_size}, mode {llm.mode})"
        )

    async def run(self) -> Dataset[M]:
        import asyncio

        n = self.spec.n
        accepted: list[M] = [record for record, _ in self.prefix]
        accepted_data: list[dict[str, Any]] = [r.model_dump(mode="json") for r in accepted]
        seen: set[str] = {canonical(data) for data in accepted_data}
        unique_seen: dict[str, set[str]] = {
            name: {canonical(data.get(name)) for data in accepted_data} for name in self.spec.unique
        }
        start = len(accepted)
        planned = math.ceil((n - start) / self.batch_size)
        budget = self.settings.max_retries * planned
        left = budget
        batch_index = 0
        last_problems: list[str] = []
        last_output: str | None = None
        failed_rounds = 0
        while len(accepted) < n:
            need = n - len(accepted)
            count = min(math.ceil(need / self.batch_size), self.settings.concurrency)
            # batches beyond the planned ones exist because of failures: each costs one
            # request of the budget
            regular = max(0, planned - batch_index)
            count = min(count, regular + left)
            if count > regular:
                left -= count - regular
            if count <= 0:
                raise self._error(
                    f"the retry budget ({budget} follow-up requests for this dataset: "
                    f"max_retries={self.settings.max_retries} x {planned} planned batch(es) "
                    f"of up to {self.batch_size} records) ran out with {len(accepted)} of {n} "
                    "records; fix "
                    "the problems below (constraints the model cannot meet, a model that "
                    "repeats itself, a too-small max_tokens) or raise max_retries",
                    last_output,
                    last_problems,
                )
            sizes = [min(self.batch_size, need - i * self.batch_size) for i in range(count)]
            avoid = avoid_values(self.spec, accepted_data)
            total = max(planned, batch_index + count)
            shares = [left // count + (1 if i < left % count else 0) for i in range(count)]
            outcomes = await asyncio.gather(
                *(
                    self.batcher.run(
                        self._job(
                            batch_index + i,
                            total,
                            size,
                            accepted_data,
                            avoid,
                            start,
                            follow_up=batch_index + i >= planned,
                        ),
                        min(self.settings.max_retries, shares[i]),
                    )
                    for i, size in enumerate(sizes)
                )
            )
            batch_index += count
            left -= sum(outcome.retries for outcome in outcomes)
            failures = [o.failure for o in outcomes if o.failure is not None]
            if len(failures) == len(outcomes) and not any(o.done for o in outcomes):
                # every request of the round failed after its tries: one more round, unless
                # the endpoint hangs (each try cost a whole deadline) or it failed before
                failed_rounds += 1
                if failed_rounds >= 2 or all(f.timed_out for f in failures):
                    raise failures[0]
            else:
                failed_rounds = 0
            for outcome in outcomes:
                if outcome.problems:
                    last_problems, last_output = outcome.problems, outcome.last_output
                for slot, (record, data) in _in_order(outcome):
                    key = canonical(data)
                    clash = [
                        name
                        for name in self.spec.unique
                        if canonical(data.get(name)) in unique_seen[name]
                    ]
                    if key in seen or clash:
                        self.usage.dropped_duplicate += 1
                        last_problems = [
                            f"duplicate record dropped: {key[:200]}"
                            if key in seen
                            else f"record with an already used {', '.join(clash)} dropped"
                        ]
                        continue
                    if len(accepted) >= n:
                        break
                    seen.add(key)
                    for name in self.spec.unique:
                        unique_seen[name].add(canonical(data.get(name)))
                    accepted.append(record)
                    accepted_data.append(data)
                    self.raw.append(outcome.raw[slot])
        return Dataset(accepted, self.usage)

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
    ) -> Job[Accepted]:
        local: set[str] = set()
        kept: list[dict[str, Any]] = []

        def accept(item: object, position: int) -> Verdict[Accepted]:
            try:  # as JSON: what the model sent is JSON (strict models accept its dates ...)
                record = self.model.model_validate_json(json.dumps(item))
            except ValidationError as exc:
                return Verdict(
                    problems=[
                        f"Record {position} was invalid and was dropped:\n"
                        + format_validation_error(exc)
                    ]
                )
            problem = nonfinite_problem(record, position)  # JSON cannot carry NaN, Infinity
            if problem is not None:
                return Verdict(problems=[problem])
            data = record.model_dump(mode="json")
            key = canonical(data)
            if key in local:
                return Verdict(
                    problems=[f"Record {position} repeated an earlier record."], duplicate=True
                )
            local.add(key)
            kept.append(data)
            return Verdict((record, data), raw=item)

        def ask(owed: list[int], attempt: int) -> list[dict[str, str]]:
            taken = avoid if not attempt else avoid_values(self.spec, accepted + kept)
            return batch_messages(
                self.spec,
                len(owed),
                batch_index=index,
                batch_total=total,
                avoid=taken,
                attempt=attempt,
                stored=start,
            )

        return Job(
            ask=ask,
            slots=list(range(count)),
            accept=accept,
            name=self.name,
            schema=self.schema,
            max_tokens=lambda owed: output_budget(self.spec.model, owed),
            follow_up=follow_up,
        )

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


def _in_order(outcome: Outcome[Accepted]) -> list[tuple[int, Accepted]]:
    return sorted(outcome.done.items())
