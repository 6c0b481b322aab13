"""The one batch loop: job -> request -> parse -> validate -> accept, or ask again.

Every kind of generation runs on it: record datasets (:mod:`.records`), single texts, text
datasets and extraction (:mod:`.texts`). A :class:`Job` says what a batch owes (numbered
slots), how to ask for it, how to judge each returned item and how to word a follow-up;
:meth:`Batcher.run` does the rest, always the same way:

1. send the request (structured with the job's schema, or plain text), under the call's
   concurrency bound, and count it in the usage;
2. read the items out of the answer (:func:`parse_items`: the one place that handles no
   choices, refusals, empty and truncated answers, broken JSON and wrong shapes);
3. judge each item with the job's ``accept``; keep what passes, note what does not;
4. when every slot is filled, confirm the answer (it may be cached) and stop; otherwise ask
   afresh for what is still owed (:func:`followup`), within the job's allowance.

A follow-up is a fresh request, never the failed conversation resent: the job asks for just
the slots it still owes (a record job lists the values already taken), with a short summary
of what went wrong and a seed that differs per attempt (``seed + attempt``), so a model that
repeated itself is steered elsewhere, and a replay makes the very same requests.

A job never raises for bad output or for an endpoint that keeps failing transiently: a
spent allowance is reported in its :class:`Outcome` (with the failure, if any), so sibling
batches finish and the caller decides: a record dataset tops the batch up later, from its
dataset-wide budget (see :mod:`.records`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic_core import from_json

from . import jsonread
from .errors import SynthAPIError, SynthError
from .progress import Answer, emit
from .settings import Settings
from .usage import Usage

if TYPE_CHECKING:
    from .llm import LLM, Completion

T = TypeVar("T")

Message = dict[str, str]


def auto_batch_size(per_item_tokens: int, max_tokens: int, cap: int) -> int:
    """Items per request: as many as fit in ~60% of the output-token limit, at most ``cap``."""
    return max(1, min(cap, int(max_tokens * 0.6) // max(1, per_item_tokens)))


class RequestDeferred(SynthError):
    """A request is answered later, by a batch (see :mod:`.cli.batchrun`): the job stops at
    it, and the record loop stops once its wave has reached such requests."""


@dataclass(frozen=True)
class Verdict(Generic[T]):
    """What one returned item amounts to.

    ``slot`` is the slot the item answers (``None``: the next free one, for jobs whose items
    are interchangeable, such as records); ``value`` the accepted value; ``problems`` why it
    was not accepted (counted as one invalid item, or a duplicate when ``duplicate`` is set).
    ``raw`` is what the model sent for it, kept with accepted values so a stored dataset
    holds the model's own words.
    """

    value: T | None = None
    slot: int | None = None
    problems: list[str] = field(default_factory=list)
    duplicate: bool = False
    raw: object = None


@dataclass
class Job(Generic[T]):
    """One batch: what it owes and how to ask for it.

    ``slots`` are the numbers it owes (entry numbers for texts and extraction, ``0..n-1``
    for records). ``ask(owed, attempt)`` builds a request for the slots still owed (all of
    them at attempt 0). ``schema`` and ``name`` make a structured request whose answer is
    ``{key: [...]}``; without them the request is plain text and the whole answer is the
    one item. ``indexed`` items say which slot they answer (``{"index": i, ...}``);
    ``max_tokens`` bounds a request's output by the number of slots it still owes; after an
    answer cut off at that bound (``finish_reason == "length"``) the job's later requests
    allow twice as much, and so on (never more than the ``max_tokens`` setting).
    """

    ask: Callable[[list[int], int], list[Message]]
    slots: list[int]
    accept: Callable[[object, int], Verdict[T]]
    name: str | None = None
    schema: dict[str, Any] | None = None
    key: str = "records"
    noun: str = "record"
    indexed: bool = False
    max_tokens: Callable[[int], int] | None = None
    follow_up: bool = False
    """A top-up batch, replacing what earlier batches dropped: every request it makes is a
    follow-up, counted in ``usage.retries`` (otherwise only its re-asks are)."""
    asking: Callable[[int], int] | None = None
    """Items to ask for while ``owed`` are still owed (default: ``owed``), for jobs whose
    items are interchangeable: a request may ask for more than it needs when answers are
    often invalid, and the first valid items fill the slots; ``ask`` words the same count."""
    shrinkable: bool = False
    """A request of this job that runs past the deadline is not tried again as it is: the
    caller asks for fewer items instead (see :mod:`.records`)."""


@dataclass
class Outcome(Generic[T]):
    """What a job produced: accepted values by slot (with the raw items), the problems of
    its last answer, that answer, the follow-up requests it made, whether its allowance ran
    out, and the transient failure that ended it, if one did."""

    done: dict[int, T] = field(default_factory=dict)
    raw: dict[int, object] = field(default_factory=dict)
    extra: list[tuple[T, object]] = field(default_factory=list)
    """Accepted items beyond the slots (with the raw items), from an answer that was asked
    for more than it owed (see ``Job.asking``), in the order the model sent them."""
    problems: list[str] = field(default_factory=list)
    last_output: str | None = None
    """The last answer's text, when it had problems or left something owed (``None`` once
    the job has all it owes from a faultless answer: a wave of hundreds of batches would
    hold every answer until it ends)."""
    retries: int = 0
    exhausted: bool = False
    failure: SynthAPIError | None = None
    deferred: bool = False
    """The job stopped at a request that a batch answers later."""


class Batcher:
    """Runs jobs for one call: its LLM, settings, seed, usage and concurrency bound."""

    def __init__(
        self,
        llm: LLM,
        settings: Settings,
        usage: Usage,
        seed: int | None,
        *,
        label: str = "",
        total: int = 0,
    ) -> None:
        self.llm = llm
        self.settings = settings
        self.usage = usage
        self.seed = seed
        self.label = label
        self.total = total
        self.done = 0
        """Items accepted so far, across jobs (for progress reports)."""
        self._semaphore = asyncio.Semaphore(settings.concurrency)

    def seed_for(self, attempt: int) -> int | None:
        """The seed of an attempt: the call's seed first, then a different one each time."""
        if attempt == 0:
            return self.seed
        return (self.seed or 0) + attempt

    async def ask(
        self, job: Job[Any], messages: list[Message], owed: int, attempt: int, scale: int = 1
    ) -> Completion:
        """One request for ``owed`` items, counted in the usage; ``scale`` multiplies the
        job's ``max_tokens``."""
        seed = self.seed_for(attempt)
        async with self._semaphore:
            if job.schema is None or job.name is None:
                completion = await self.llm.complete_text(messages, seed=seed)
            else:
                completion = await self.llm.complete(
                    messages,
                    name=job.name,
                    schema=job.schema,
                    seed=seed,
                    count=owed,
                    max_tokens=job.max_tokens(owed) * scale if job.max_tokens is not None else None,
                    shrinkable=job.shrinkable and owed > 1,
                )
        completion.count_in(self.usage, retry=attempt > 0 or job.follow_up)
        return completion

    async def run(self, job: Job[T], allowance: int | None = None) -> Outcome[T]:
        """Ask for the batch, keep what passes, ask afresh for the rest, at most
        ``allowance`` times (default ``max_retries``)."""
        budget = self.settings.max_retries if allowance is None else allowance
        outcome: Outcome[T] = Outcome()
        messages = job.ask(list(job.slots), 0)
        scale = 1  # doubles after an answer cut off at max_tokens (earlier answers only)
        why = "top_up"  # why the next request is a follow-up (usage.RETRY_REASONS)
        for attempt in range(budget + 1):
            owed = [slot for slot in job.slots if slot not in outcome.done]
            asked = job.asking(len(owed)) if job.asking is not None else len(owed)
            outcome.retries = attempt
            try:
                completion = await self.ask(job, messages, asked, attempt, scale)
            except RequestDeferred as deferred:
                # its traceback holds every frame down to the transport, in a reference
                # cycle (asyncio's wait_for); let go of it now, not at the next full
                # collection: a pass defers hundreds of requests at once
                deferred.__traceback__ = None
                outcome.deferred = True
                return outcome
            except SynthAPIError as exc:
                if not exc.transient:
                    raise
                outcome.failure = exc  # the endpoint kept failing: the caller decides
                outcome.problems = [str(exc)]
                break
            if attempt or job.follow_up:
                self.usage.note_retry(why)
            if completion.finish_reason == "length":
                scale *= 2
            items, problems = parse_items(
                completion,
                asked,
                key=job.key if job.schema is not None else None,
                noun=job.noun,
            )
            if job.indexed:
                items = _by_position(items, owed)
            before, dropped = len(outcome.done), self.usage.as_dict()
            answered = self._judge(job, items, owed, outcome, problems, asked > len(owed))
            why = _why(completion, problems, dropped, self.usage)
            self.done += len(outcome.done) - before
            emit(self.label, min(self.done, self.total), self.total, self.usage, answer(completion))
            owed = [slot for slot in owed if slot not in outcome.done]
            if job.indexed and items:
                problems += [
                    f"{job.noun.capitalize()} #{slot} was missing from the answer."
                    for slot in owed
                    if slot not in answered
                ]
            self.llm.settle(completion, valid=not problems)
            outcome.problems = problems
            outcome.last_output = completion.text if problems or owed else None
            if not owed:
                return outcome
            messages = followup(job, owed, problems, attempt + 1)
        outcome.exhausted = True
        return outcome

    def _judge(
        self,
        job: Job[T],
        items: list[object],
        owed: list[int],
        outcome: Outcome[T],
        problems: list[str],
        surplus: bool = False,
    ) -> set[int]:
        """Accept what passes into ``outcome`` (with ``surplus``, also what passes once
        every slot is filled); the slots the items said they answer."""
        answered: set[int] = set()
        free = iter(owed)
        for position, item in enumerate(items, 1):
            if not job.indexed and len(outcome.done) >= len(job.slots) and not surplus:
                break
            verdict = job.accept(item, position)
            if verdict.slot is not None:
                answered.add(verdict.slot)
            if verdict.problems:
                if verdict.duplicate:
                    self.usage.dropped_duplicate += 1
                else:
                    self.usage.dropped_invalid += 1
                problems += verdict.problems
                continue
            slot = verdict.slot if verdict.slot is not None else next(free, None)
            if slot is None and surplus and not job.indexed:
                outcome.extra.append((verdict.value, verdict.raw))  # type: ignore[arg-type]
                continue
            if slot is None or slot in outcome.done:
                continue
            outcome.done[slot] = verdict.value  # type: ignore[assignment]
            outcome.raw[slot] = verdict.raw
        return answered


def _why(completion: Completion, problems: list[str], before: dict[str, int], now: Usage) -> str:
    """Why a follow-up of this answer is made: it was cut off; something in it was invalid
    (an item, the JSON, a refusal); its only faults were duplicates; or it was short."""
    if completion.finish_reason == "length":
        return "truncated"
    if now.dropped_invalid > before["dropped_invalid"]:
        return "invalid"
    if now.dropped_duplicate > before["dropped_duplicate"]:
        return "duplicate"
    return "invalid" if problems else "missing"


def answer(completion: Completion) -> Answer:
    """What a progress report says about the answer it follows."""
    source = completion.exchange.source if completion.exchange is not None else "network"
    return Answer(source, completion.prompt_tokens, completion.completion_tokens, completion.tries)


def followup(job: Job[Any], owed: list[int], problems: list[str], attempt: int) -> list[Message]:
    """A fresh request for the slots still owed, with a short summary of what went wrong."""
    messages = [dict(message) for message in job.ask(owed, attempt)]
    notes = problem_notes(problems)
    if notes:
        last = messages[-1]
        last["content"] = last["content"] + "\n\n" + "\n".join(notes)
    return messages


_DROPPED = re.compile(r"Record (\d+) was invalid and was dropped: (.*)", re.DOTALL)
_GOT = re.compile(r" \(got (?:[^()]|\([^()]*\))*\)")
_CUT = re.compile(r" \(got (?:[^()]|\([^()]*\))*\.\.\.\)")
"""A value shown cut short (``format_validation_error`` cuts at 80 characters)."""


def problem_notes(problems: list[str], limit: int = 8, *, numbered: bool = True) -> list[str]:
    """What was wrong with earlier answers, each problem once and briefly: records dropped
    for the same validation errors (other values aside) are one line that numbers them
    (``numbered=False``: that counts them, for a request other than the one they answered)."""
    shown: list[str] = []
    groups: dict[str, list[tuple[str, str]]] = {}
    for problem in problems:
        text = " ".join(problem.split())
        dropped = _DROPPED.fullmatch(text)
        if dropped is not None:
            same = groups.setdefault(_GOT.sub("", dropped.group(2)), [])
            if not same:
                shown.append(dropped.group(2))  # a placeholder, replaced below
            same.append((dropped.group(1), dropped.group(2)))
            continue
        text = text if len(text) <= 300 else text[:297] + "..."
        if text not in shown:
            shown.append(text)
    for same in groups.values():
        at = shown.index(same[0][1])
        shown[at] = _dropped_note(same, numbered)
    if not shown:
        return []
    more = len(shown) - limit
    asked = "to this request" if numbered else "for these records"
    lines = [f"Earlier answers {asked} had these problems; avoid them:"]
    lines += [f"- {text}" for text in shown[:limit]]
    if more > 0:
        lines.append(f"- ... and {more} more")
    return lines


def _dropped_note(same: list[tuple[str, str]], numbered: bool = True) -> str:
    """One line for records dropped for the same errors: their numbers (or how many), the
    first one's errors (for several records, without values cut short: they tell nothing
    the error does not)."""
    if len(same) > 1:
        same = [(number, _CUT.sub("", errors)) for number, errors in same]
    if not numbered:
        text = (
            f"{len(same)} records were invalid and were dropped, each for: {same[0][1]}"
            if len(same) > 1
            else f"A record was invalid and was dropped: {same[0][1]}"
        )
    elif len(same) == 1:
        text = f"Record {same[0][0]} was invalid and was dropped: {same[0][1]}"
    else:
        numbers = ", ".join(number for number, _ in same[:6])
        more = f" and {len(same) - 6} more" if len(same) > 6 else ""
        text = f"Records {numbers}{more} were invalid and were dropped, each for: {same[0][1]}"
    return text if len(text) <= 300 else text[:297] + "..."


def parse_items(
    completion: Completion, missing: int, *, key: str | None = "records", noun: str = "record"
) -> tuple[list[object], list[str]]:
    """The items of an answer, and the problems to report back.

    ``key`` names the array of a structured answer ``{key: [...]}``; with ``key=None`` the
    answer is plain text and is itself the one item.
    """
    if completion.no_choices:
        return [], ["The response contained no choices."]
    if completion.refusal:
        what = "These are fictional records" if key is not None else f"This is a fictional {noun}"
        return [], [
            f"You refused ({completion.refusal}). {what} for automated software tests; "
            "no real person is involved."
        ]
    text = skip_reasoning(completion.text or "")
    if not text.strip():
        return [], ["The response was empty."]
    if key is None:
        if completion.finish_reason == "length":
            return [], [f"The {noun} was cut off at the output-token limit; write a shorter one."]
        return [text.strip()], []
    if completion.finish_reason == "length":
        try:
            partial = from_json(text[_json_start(text) :], allow_partial=True)
            jsonread.check_depth(partial)
        except ValueError:
            partial = None
        items = (_items_of(partial, key) or [])[:-1]
        return items, [
            f"The answer was cut off at the output-token limit after {len(items)} "
            f"complete {noun}(s). Keep the {noun}s shorter."
        ]
    try:
        parsed = _loads(text)
    except ValueError as exc:
        return [], [f"The answer was not valid JSON ({exc}). Send only the JSON object."]
    found = _items_of(parsed, key)
    if found is None:
        return [], [f'The answer must be a JSON object of the form {{"{key}": [...]}}.']
    problems = []
    if len(found) < missing:
        problems.append(f"The answer held {len(found)} {noun}(s) but {missing} were asked for.")
    return list(found), problems


_REASONING = re.compile(
    r"[\s\ufeff]*<(think|thinking)\s*>.*?</\1\s*>\s*", re.IGNORECASE | re.DOTALL
)
"""A reasoning block, as reasoning models served by Ollama, vLLM or llama.cpp write it
before their answer."""


def skip_reasoning(text: str) -> str:
    """``text`` without the reasoning blocks it starts with (``<think>...</think>`` or
    ``<thinking>...</thinking>``, in any case): the answer follows them, and the JSON a
    model drafted while reasoning is not its answer. A block left open is kept (no answer
    follows it)."""
    at = 0
    while (found := _REASONING.match(text, at)) is not None:
        at = found.end()
    return text[at:]


_FENCE = re.compile(r"```[\w-]*[ \t]*\r?\n(.*?)```", re.DOTALL)


def _json_start(text: str) -> int:
    """Where the JSON of an answer starts: its first ``{`` or ``[`` (0 if neither)."""
    found = [at for at in (text.find("{"), text.find("[")) if at >= 0]
    return min(found, default=0)


def _loads(text: str) -> object:
    """The JSON of an answer, also when a chatty model (JSON mode without a grammar) wrapped
    it in a Markdown code fence or wrote a sentence before or after it. Raises the error of
    the whole text when no JSON value can be read out of it."""
    try:
        return jsonread.loads(text)
    except jsonread.TooDeep:
        raise
    except ValueError as exc:
        error = exc
    for fenced in _FENCE.findall(text):
        try:
            return jsonread.loads(fenced)
        except ValueError:
            pass
    try:
        value, _end = jsonread.raw_decode(text, _json_start(text))
    except ValueError:
        raise error from None
    return value


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


def _by_position(items: list[object], owed: list[int]) -> list[object]:
    """Exactly as many answers as slots owed, but with wrong or repeated indices (small
    models copy the example's number): take them in order."""
    indices = [item.get("index") if isinstance(item, dict) else None for item in items]
    if len(items) != len(owed) or sorted(map(str, indices)) == sorted(map(str, owed)):
        return items
    return [
        {**item, "index": index} if isinstance(item, dict) else item
        for item, index in zip(items, owed, strict=True)
    ]
