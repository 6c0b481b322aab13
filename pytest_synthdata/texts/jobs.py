"""Texts and extraction as jobs of the one batch loop (:mod:`..batching`)."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Any, cast

from pydantic import BaseModel, Field, ValidationError, create_model

from ..batching import Batcher, Job, Outcome, Verdict, auto_batch_size
from ..errors import SynthError, SynthGenerationError, UnsupportedModelError
from ..estimate import tokens_per_record
from ..jsonread import nonfinite_problem
from ..judging import raised
from ..schema import schema_name, wrapper_schema
from ..spec import format_validation_error
from .fidelity import Fields, Rules, dumps, leaves, short, text_problems
from .prompts import batch_messages, extract_messages, single_messages

TEXT_BATCH = 10
"""Most texts (and extracted records) asked for per request unless ``batch_size`` is set."""


class IndexedText(BaseModel):
    index: int = Field(description="The number of the entry the text was written for.")
    text: str


@lru_cache(maxsize=256)
def indexed(model: type[BaseModel]) -> type[BaseModel]:
    """``{"index": int, "record": model}``: one extracted record and the text it came from."""
    return create_model(
        f"{model.__name__}FromText",
        index=(int, Field(description="The number of the text the record was extracted from.")),
        record=(model, ...),
    )


def check_target(model: object) -> None:
    if not (isinstance(model, type) and issubclass(model, BaseModel)) or model is BaseModel:
        raise UnsupportedModelError(
            "extraction needs a pydantic BaseModel subclass (the record type to extract), "
            f"got {short(repr(model))}"
        )
    wrapper_schema(indexed(model))  # raises UnsupportedModelError before any request


def budget_error(
    batcher: Batcher,
    what: str,
    message: str,
    outcome: Outcome[Any],
    *,
    asked: str,
    batch: int | None = None,
) -> SynthError:
    """The budget ran out: ``what`` could not be done, ``message`` says how far it got (or
    the endpoint kept failing: then that failure)."""
    if outcome.failure is not None:
        return outcome.failure
    how = f"batches of {batch}, mode {batcher.llm.mode}" if batch else "plain text"
    return SynthGenerationError(
        f"could not {what}: the retry budget ({batcher.settings.max_retries} follow-up "
        f"requests{'' if batch is None else ' per batch'}) ran out {message}; fix the "
        "problems below (requirements the LLM cannot meet together, a too-small "
        "max_tokens) or raise max_retries",
        asked=f"{asked} from {batcher.settings.model!r} at {batcher.llm.endpoint} ({how})",
        last_output=outcome.last_output,
        errors=outcome.problems,
        usage=batcher.usage,
    )


# --------------------------------------------------------------------------- writing texts


async def write_one(batcher: Batcher, fields: Fields, rules: Rules) -> tuple[str, object]:
    """One plain-text request (and its follow-ups) for a text of ``fields``."""

    def accept(item: object, position: int) -> Verdict[str]:
        text = cast(str, item)
        problems = text_problems(text, fields, rules, "The text")
        return Verdict(problems=problems) if problems else Verdict(text, raw=text)

    job: Job[str] = Job(
        ask=lambda owed, attempt: single_messages(fields, rules, attempt),
        slots=[0],
        accept=accept,
        noun="text",
    )
    outcome = await batcher.run(job)
    if outcome.exhausted:
        raise budget_error(
            batcher,
            "write a text that mentions every field value and follows the preferences",
            "without an acceptable text",
            outcome,
            asked="1 text",
        )
    return outcome.done[0], outcome.raw[0]


def text_batch_size(entries: list[Fields], rules: Rules, batcher: Batcher) -> int:
    """Texts per request: ``batch_size``, or as many as fit in ~60% of the output-token
    limit, at most 10."""
    values = max(sum(len(dumps(leaf)) for leaf in leaves(fields)) for fields in entries)
    per_text = 30 + max(rules.expected_chars(), 2 * values) // 3
    settings = batcher.settings
    return settings.batch_size or auto_batch_size(per_text, settings.max_tokens, TEXT_BATCH)


def text_accept(entry: dict[int, Fields], rules: Rules, item: object) -> Verdict[str]:
    """Judge one ``{"index", "text"}`` item against the entries it may answer."""
    try:
        parsed = IndexedText.model_validate(item)
    except ValidationError as exc:
        return Verdict(problems=["An item was invalid:\n" + format_validation_error(exc)])
    except Exception as exc:  # what a validation error is not: still this item's fault
        return Verdict(problems=[f"An item was invalid: {raised(IndexedText, exc)}"])
    if parsed.index not in entry:
        return Verdict(problems=[f"Index {parsed.index} is not an entry of this request."])
    text = parsed.text.strip()
    problems = text_problems(text, entry[parsed.index], rules, f"Text #{parsed.index}")
    if problems:
        return Verdict(slot=parsed.index, problems=[" ".join(problems)])
    return Verdict(text, slot=parsed.index, raw={"index": parsed.index, "text": parsed.text})


async def write_many(
    batcher: Batcher, entries: list[Fields], rules: Rules
) -> tuple[list[str], list[object]]:
    """A text for each entry, in batches; a batch that keeps failing gets one more round,
    one text per request (small models manage a single text where a batch defeats them).
    Returns the texts and the items they came from, in entry order."""
    size = text_batch_size(entries, rules, batcher)
    numbered = list(enumerate(entries, 1))
    chunks = [numbered[i : i + size] for i in range(0, len(numbered), size)]
    schema = wrapper_schema(IndexedText, "texts")

    def make_job(chunk: list[tuple[int, Fields]]) -> Job[str]:
        by_index = dict(chunk)
        return Job(
            ask=lambda owed, attempt: batch_messages(
                [(i, by_index[i]) for i in owed], rules, attempt
            ),
            slots=list(by_index),
            accept=lambda item, position: text_accept(by_index, rules, item),
            name="texts",
            schema=schema,
            key="texts",
            noun="text",
            indexed=True,
        )

    texts: dict[int, str] = {}
    raw: dict[int, object] = {}
    jobs = [make_job(chunk) for chunk in chunks]
    for last_round in (False, True):
        outcomes = await asyncio.gather(*(batcher.run(job) for job in jobs))
        retry: list[Job[str]] = []
        for job, outcome in zip(jobs, outcomes, strict=True):
            texts.update(outcome.done)
            raw.update(outcome.raw)
            if not outcome.exhausted:
                continue
            if last_round or len(job.slots) == 1:
                raise budget_error(
                    batcher,
                    f"write {len(entries)} text(s) that mention every field value and follow "
                    "the preferences",
                    f"with {len(outcome.done)} of {len(job.slots)} text(s) of a batch accepted",
                    outcome,
                    asked=f"{len(entries)} text(s)",
                    batch=size,
                )
            owed = [index for index in job.slots if index not in outcome.done]
            retry += [make_job([(index, entries[index - 1])]) for index in owed]
        if not retry:
            break
        jobs = retry
    order = range(1, len(entries) + 1)
    return [texts[index] for index in order], [raw[index] for index in order]


# --------------------------------------------------------------------------- extraction


def extract_accept(model: type[BaseModel], item: object) -> Verdict[BaseModel]:
    """Judge one ``{"index", "record"}`` item."""
    index = item.get("index") if isinstance(item, dict) else None
    where = f"The record for text #{index}" if isinstance(index, int) else "A record"
    try:
        parsed = indexed(model).model_validate(item)
    except ValidationError as exc:
        return Verdict(problems=[f"{where} was invalid:\n" + format_validation_error(exc)])
    except Exception as exc:  # a validator of the model that fails another way
        return Verdict(problems=[f"{where} was invalid: {raised(model, exc)}"])
    index = int(getattr(parsed, "index"))  # noqa: B009 (a dynamic model)
    record = cast(BaseModel, getattr(parsed, "record"))  # noqa: B009
    problem = nonfinite_problem(record, index)  # JSON cannot carry NaN, Infinity
    if problem is not None:
        return Verdict(problems=[problem.replace("Record ", "The record for text #", 1)])
    return Verdict(record, slot=index, raw=item)


def extract_batch_size(model: type[BaseModel], batcher: Batcher) -> int:
    settings = batcher.settings
    return settings.batch_size or auto_batch_size(
        tokens_per_record(model), settings.max_tokens, TEXT_BATCH
    )


async def extract_records(
    batcher: Batcher, model: type[BaseModel], texts: list[tuple[int, str]]
) -> tuple[dict[int, BaseModel], dict[int, object]]:
    """Records extracted from ``(index, text)`` pairs, and the items they came from, by
    index."""
    schema = wrapper_schema(indexed(model))
    size = extract_batch_size(model, batcher)
    chunks = [texts[i : i + size] for i in range(0, len(texts), size)]

    def make_job(chunk: list[tuple[int, str]]) -> Job[BaseModel]:
        by_index = dict(chunk)
        return Job(
            ask=lambda owed, attempt: extract_messages(
                model, [(i, by_index[i]) for i in owed], attempt
            ),
            slots=list(by_index),
            accept=lambda item, position: extract_accept(model, item),
            name=schema_name(model),
            schema=schema,
            key="records",
            noun="record",
            indexed=True,
        )

    jobs = [make_job(chunk) for chunk in chunks]
    outcomes = await asyncio.gather(*(batcher.run(job) for job in jobs))
    found: dict[int, BaseModel] = {}
    raw: dict[int, object] = {}
    for job, outcome in zip(jobs, outcomes, strict=True):
        if outcome.exhausted:
            raise budget_error(
                batcher,
                f"extract {len(texts)} valid {model.__name__} record(s)",
                f"with {len(outcome.done)} of {len(job.slots)} record(s) of a batch valid",
                outcome,
                asked=f"{len(texts)} {model.__name__} record(s)",
                batch=size,
            )
        found.update(outcome.done)
        raw.update(outcome.raw)
    return found, raw
