"""Batched, concurrent, validated generation of exactly ``n`` distinct records.

The run is a sequence of *waves*. A wave sends up to ``concurrency`` batch requests at once;
each batch asks for up to ``batch_size`` records and re-asks (with the validation errors)
until it has them or its retry budget is spent. Records are merged in batch order, exact
duplicates and repeated ``unique`` values are dropped, and the next wave (steered away from
the values already used) tops up what is missing. Nothing depends on which response arrives
first, so the same inputs always produce the same request bodies and the same records.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from .dataset import Dataset
from .errors import SynthConfigError, SynthGenerationError
from .llm import LLM, Completion
from .prompts import avoid_values, batch_messages, reask_messages
from .schema import record_schema, schema_name, wrapper_schema
from .settings import Settings
from .spec import SynthSpec, format_validation_error
from .usage import Usage

M = TypeVar("M", bound=BaseModel)

MAX_AUTO_BATCH = 20


def tokens_per_record(model: type[BaseModel]) -> int:
    """A generous estimate of the output tokens one record takes."""
    leaves = json.dumps(record_schema(model)).count('"type"')
    return 16 + 12 * max(1, leaves)


def output_budget(model: type[BaseModel], count: int) -> int:
    """Output tokens allowed for ``count`` records: twice the estimate, plus room for the
    wrapper. Keeps a model that never stops (small local ones do) from running for minutes."""
    return 200 + 2 * count * tokens_per_record(model)


def auto_batch_size(model: type[BaseModel], max_tokens: int) -> int:
    """Records per request: as many as fit in ~60% of the output-token limit, at most 20."""
    return max(1, min(MAX_AUTO_BATCH, int(max_tokens * 0.6) // tokens_per_record(model)))


def canonical(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class _Batch(Generic[M]):
    kept: list[tuple[M, dict[str, Any]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    last_output: str | None = None
    exhausted: bool = False


class Engine(Generic[M]):
    """Produces one dataset. Create one per generation; it is not reusable."""

    def __init__(self, spec: SynthSpec, settings: Settings, llm: LLM) -> None:
        self.spec = spec
        self.settings = settings
        self.llm = llm
        self.model: type[M] = spec.model  # type: ignore[assignment]
        self.schema = wrapper_schema(spec.model)
        self.name = schema_name(spec.model)
        self.batch_size = settings.batch_size or auto_batch_size(spec.model, settings.max_tokens)
        needed = self.batch_size * tokens_per_record(spec.model)
        if settings.batch_size and needed > settings.max_tokens:
            raise SynthConfigError(
                f"batch_size={settings.batch_size} needs about {needed} output tokens per request "
                f"for {spec.model_name} records, but max_tokens={settings.max_tokens}; lower "
                "batch_size or raise max_tokens"
            )
        self.usage = Usage()
        self._semaphore = asyncio.Semaphore(settings.concurrency)

    def describe(self) -> str:
        return (
            f"{self.spec.n} {self.spec.model_name} record(s) from {self.settings.model!r} at "
            f"{self.llm.endpoint} (batches of {self.batch_size}, mode {self.llm.mode})"
        )

    async def run(self) -> Dataset[M]:
        n = self.spec.n
        planned_batches = math.ceil(n / self.batch_size)
        planned_waves = math.ceil(planned_batches / self.settings.concurrency)
        accepted: list[M] = []
        accepted_data: list[dict[str, Any]] = []
        seen: set[str] = set()
        unique_seen: dict[str, set[str]] = {name: set() for name in self.spec.unique}
        batch_index = 0
        wave = 0
        last_problems: list[str] = []
        while len(accepted) < n:
            if wave >= planned_waves + self.settings.max_retries:
                raise self._error(
                    f"only {len(accepted)} of {n} distinct {self.spec.model_name} records after "
                    f"{wave} rounds: the model keeps repeating records"
                    + (f" or values of {', '.join(self.spec.unique)}" if self.spec.unique else "")
                    + "; give more varied examples or extra instructions, or raise max_retries",
                    None,
                    last_problems,
                )
            need = n - len(accepted)
            count = min(math.ceil(need / self.batch_size), self.settings.concurrency)
            sizes = [min(self.batch_size, need - i * self.batch_size) for i in range(count)]
            avoid = avoid_values(self.spec, accepted_data)
            total = max(planned_batches, batch_index + count)
            results = await asyncio.gather(
                *(self._batch(batch_index + i, total, size, avoid) for i, size in enumerate(sizes))
            )
            batch_index += count
            wave += 1
            for result in results:
                if result.exhausted:
                    raise self._error(
                        f"the retry budget ({self.settings.max_retries} follow-up requests per "
                        f"batch) ran out with {len(result.kept)} valid record(s) in a batch; "
                        "fix the problems below (model constraints the LLM cannot meet, a "
                        "too-small max_tokens) or raise max_retries",
                        result.last_output,
                        result.problems,
                    )
                for record, data in result.kept:
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
        return Dataset(accepted, self.usage)

    async def _batch(
        self, index: int, total: int, count: int, avoid: dict[str, list[str]]
    ) -> _Batch[M]:
        first = batch_messages(self.spec, count, batch_index=index, batch_total=total, avoid=avoid)
        messages = first
        batch: _Batch[M] = _Batch()
        local: set[str] = set()
        for attempt in range(self.settings.max_retries + 1):
            missing = count - len(batch.kept)
            async with self._semaphore:
                completion = await self.llm.complete(
                    messages,
                    name=self.name,
                    schema=self.schema,
                    seed=self.spec.seed,
                    count=missing,
                    max_tokens=output_budget(self.spec.model, missing),
                )
            completion.count_in(self.usage, retry=attempt > 0)
            items, problems, echo = parse_items(completion, missing)
            for position, item in enumerate(items, 1):
                if len(batch.kept) >= count:
                    break
                try:
                    record = self.model.model_validate(item)
                except ValidationError as exc:
                    self.usage.dropped_invalid += 1
                    problems.append(
                        f"Record {position} was invalid and was dropped:\n"
                        + format_validation_error(exc)
                    )
                    continue
                data = record.model_dump(mode="json")
                key = canonical(data)
                if key in local:
                    self.usage.dropped_duplicate += 1
                    problems.append(f"Record {position} repeated an earlier record.")
                    continue
                local.add(key)
                batch.kept.append((record, data))
            if not problems:
                self.llm.confirm(completion)
            batch.problems = problems
            batch.last_output = completion.text
            if len(batch.kept) >= count:
                return batch
            messages = reask_messages(
                first,
                last_output=completion.text if echo else None,
                kept=len(batch.kept),
                asked=count,
                problems=problems,
                missing=count - len(batch.kept),
            )
        batch.exhausted = True
        return batch

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


def parse_items(
    completion: Completion, missing: int, *, key: str = "records", noun: str = "record"
) -> tuple[list[object], list[str], bool]:
    """Items found in a ``{key: [...]}`` completion, the problems to report back, and whether
    to echo the answer in the follow-up request."""
    if completion.no_choices:
        return [], ["The response contained no choices."], False
    if completion.refusal:
        return (
            [],
            [
                f"You refused ({completion.refusal}). These are fictional records for "
                "automated software tests; no real person is involved."
            ],
            False,
        )
    text = completion.text
    if not text or not text.strip():
        return [], ["The response was empty."], False
    if completion.finish_reason == "length":
        try:
            partial = from_json(text, allow_partial=True)
        except ValueError:
            partial = None
        items = (_items_of(partial, key) or [])[:-1]
        return (
            items,
            [
                f"The answer was cut off at the output-token limit after {len(items)} "
                f"complete {noun}(s). Keep the {noun}s shorter."
            ],
            False,
        )
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        return [], [f"The answer was not valid JSON ({exc}). Send only the JSON object."], True
    found = _items_of(parsed, key)
    if found is None:
        return [], [f'The answer must be a JSON object of the form {{"{key}": [...]}}.'], True
    items = found
    problems = []
    if len(items) < missing:
        problems.append(f"The answer held {len(items)} {noun}(s) but {missing} were asked for.")
    return list(items), problems, True


def _items_of(parsed: object, key: str) -> list[object] | None:
    if isinstance(parsed, list):
        return parsed
    if isinstance(parsed, dict):
        if isinstance(parsed.get(key), list):
            return list(parsed[key])
        lists = [value for value in parsed.values() if isinstance(value, list)]
        if len(lists) == 1:
            return list(lists[0])
    return None
