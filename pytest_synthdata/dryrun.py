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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
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


def plan_records(
    spec: SynthSpec, settings: Settings, stored: Sequence[dict[str, Any]] = ()
) -> Plan:
    """The requests generating ``spec`` plans under ``settings``, and their tokens; with
    ``stored`` records (what a cassette holds of the dataset), only the missing ones, as a
    run that grows the dataset asks for them. Sampled fields cost no output tokens."""
    start = min(len(stored), spec.n)
    omit = sampled_keys(spec)  # sampled fields: code sets them, no output tokens
    size = record_batch_size(spec.model, settings, spec.examples, omit)
    planner = Planner(spec.n - start, size, settings.max_retries, settings.concurrency)
    mode_name = settings.structured if settings.structured != AUTO else ladder()[0]
    mode = MODES[mode_name]
    schema = slot_schema(spec)
    name = schema_name(spec.model)
    taken = [*stored[:start], *_placeholder_records(spec)[start:]]
    prompt = completion = reserved = waves = in_flight = 0
    missing = spec.n - start
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
                stored=start,
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


def cost_text(prompt_tokens: int, completion_tokens: int, prices: tuple[float, float]) -> str:
    """``$0.000150 prompt + $0.000600 completion = $0.000750 (at $0.15 / $0.6 per million
    tokens)``: the cost of the tokens at ``prices`` (USD per million prompt and completion
    tokens)."""
    prompt_cost = cost(prompt_tokens, 0, *prices)
    completion_cost = cost(0, completion_tokens, *prices)
    return (
        f"{dollars(prompt_cost)} prompt + {dollars(completion_cost)} completion = "
        f"{dollars(prompt_cost + completion_cost)} (at ${prices[0]:g} / ${prices[1]:g} per "
        "million tokens)"
    )


@dataclass(frozen=True)
class Outlook:
    """What a run would do for one record dataset, and what it would send.

    ``action`` is ``replay`` (the cassette holds it: nothing is sent), ``grow`` (it holds
    ``stored`` records of the ``n`` asked for, and the rest is recorded), ``record`` (all
    ``n`` are asked for) or ``fail`` (the record mode does not let the missing records be
    recorded: ``why`` says so, and nothing is sent)."""

    action: str
    n: int
    stored: int = 0
    plan: Plan | None = None
    why: str = ""


def outlook(
    spec: SynthSpec, settings: Settings, cassette: Path | None, record_mode: str
) -> Outlook:
    """What a run in ``record_mode`` would do for ``spec`` whose cassette is ``cassette``,
    decided as :func:`.store.run_stored` decides it (the stored dataset first, then growth,
    then the record mode), and the plan of what it would send."""
    from .storage.datasets import from_cassette
    from .storage.recorder import REPLAYING_MODES
    from .store import dataset_key, record_recipe, stored_key
    from .usage import Usage

    recipe = record_recipe(spec, settings)
    exists = cassette is not None and cassette.is_file()
    stored = None
    if cassette is not None and exists and record_mode in REPLAYING_MODES:
        stored = from_cassette(cassette, stored_key(dataset_key(recipe.material, settings)))
    if stored is not None:
        if recipe.read(stored, Usage()) is not None:
            return Outlook("replay", spec.n, spec.n)
        have = len(stored.lines)
        grows = have < spec.n and recipe.grow is not None and recipe.grow(stored) is not None
        if grows and record_mode == "new_episodes":
            kept = [json.loads(line) for line in stored.lines]
            return Outlook("grow", spec.n, have, plan_records(spec, settings, kept))
        if grows:
            why = (
                f"the cassette holds {have} of the {spec.n} records and record mode "
                f"{record_mode!r} does not record the {spec.n - have} missing one(s)"
            )
            return Outlook("fail", spec.n, have, why=why)
    if record_mode == "none" or (record_mode == "once" and exists):
        why = f"the cassette has no recording of it and record mode {record_mode!r} " + (
            "records nothing" if record_mode == "none" else "records only a missing cassette"
        )
        return Outlook("fail", spec.n, why=why)
    return Outlook("record", spec.n, plan=plan_records(spec, settings))
