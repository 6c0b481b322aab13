"""The requests a record dataset plans, and what they should cost, without sending any.

The plan is the run's own (:class:`.planning.Planner`): ``ceil(n / batch_size)`` batches,
sent in waves of at most ``concurrency``; batches after the first wave are shown values
already taken. Each planned request is built as the run would build it (the same prompt, the same
structured mode's schema), so its prompt tokens are counted, not guessed; its completion
tokens are the estimate of :mod:`.estimate` for the records it asks for. Re-asks of invalid
answers are not in the plan: they happen only when answers are invalid, and ``max_retries``
bounds them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .estimate import WRAPPER_TOKENS, output_budget, tokens_of, tokens_per_record
from .llm.modes import AUTO, MODES, ladder
from .planning import Planner
from .prompts import avoid_values, batch_messages, slot_schema
from .records import record_batch_size, sampled_keys
from .schema import schema_name
from .settings import Settings
from .spec import SynthSpec


@dataclass(frozen=True)
class Plan:
    """What a run of one record dataset plans to send."""

    requests: int
    batch_size: int
    waves: int
    in_flight: int
    prompt_tokens: int
    completion_tokens: int
    reserved_tokens: int
    """``max_tokens`` of every planned request, added up (what a tokens-per-minute limit
    counts on top of the prompts)."""
    most_reasks: int
    mode: str

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def plan_records(spec: SynthSpec, settings: Settings) -> Plan:
    """The requests generating ``spec`` plans under ``settings``, and their tokens."""
    omit = sampled_keys(spec)  # sampled fields: code sets them, no output tokens
    size = record_batch_size(spec.model, settings, spec.examples, omit)
    planner = Planner(spec.n, size, settings.max_retries, settings.concurrency)
    mode_name = settings.structured if settings.structured != AUTO else ladder()[0]
    mode = MODES[mode_name]
    schema = slot_schema(spec)
    name = schema_name(spec.model)
    taken = _placeholder_records(spec)
    prompt = completion = reserved = waves = in_flight = 0
    missing = spec.n
    while missing > 0 and (wave := planner.wave(missing)) is not None:
        # every answer good: each wave takes what it asks for
        done = spec.n - missing
        avoid = avoid_values(spec, taken[:done]) if done else {}
        for i, count in enumerate(wave.sizes):
            first = done + sum(wave.sizes[:i])
            messages = batch_messages(
                spec,
                count,
                batch_index=wave.first + i,
                batch_total=wave.total,
                avoid=avoid,
                slots=spec.slots.slots(first, first + count) if spec.slotted else None,
            )
            request = mode.request(messages, name, schema, count)
            prompt += _prompt_tokens(request.messages, request.params)
            per_record = tokens_per_record(spec.model, spec.examples, omit)
            completion += count * per_record + WRAPPER_TOKENS // 4
            budget = output_budget(spec.model, count, spec.examples, omit)
            reserved += min(budget, settings.max_tokens)
        missing -= sum(wave.sizes)
        waves += 1
        in_flight = max(in_flight, len(wave.sizes))
    return Plan(
        requests=planner.sent,
        batch_size=size,
        waves=waves,
        in_flight=in_flight,
        prompt_tokens=prompt,
        completion_tokens=completion,
        reserved_tokens=reserved,
        most_reasks=planner.budget,
        mode=mode_name,
    )


def _prompt_tokens(messages: list[dict[str, str]], params: dict[str, Any]) -> int:
    """A request's prompt as a model reads it: the messages' text, and the schema or the
    function it is told to answer with."""
    chars = sum(len(message.get("content") or "") for message in messages)
    format_ = params.get("response_format") or {}
    definition = format_.get("json_schema") or format_.get("schema")
    if definition is None and params.get("tools"):
        definition = params["tools"][0].get("function")
    if definition is not None:
        chars += len(json.dumps(definition))
    return tokens_of(chars)


def _placeholder_records(spec: SynthSpec) -> list[dict[str, Any]]:
    """Stand-ins for the records earlier waves will have produced: the values later
    batches are told to avoid take about as much room as real ones."""
    fields = spec.model.model_fields
    return [
        {
            name: f"value-{number:06d}-xy" if info.annotation is str else 100000 + number
            for name, info in fields.items()
        }
        for number in range(spec.n)
    ]


def cost(prompt_tokens: int, completion_tokens: int, price_in: float, price_out: float) -> float:
    """USD for the tokens at ``price_in`` / ``price_out`` USD per million tokens."""
    return (prompt_tokens * price_in + completion_tokens * price_out) / 1_000_000


def dollars(value: float) -> str:
    """A cost as ``$0.000312`` (six decimals below a dollar) or ``$12.34``."""
    return f"${value:.6f}" if value < 1 else f"${value:,.2f}"
