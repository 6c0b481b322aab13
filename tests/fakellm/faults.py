"""Injected misbehaviour: the faults the fake server can be told to commit.

A :class:`Fault` is one misbehaviour, queued for the next request or applied to every one;
a :class:`FaultMix` draws faults at random, in seeded proportions, like a flaky hosted model.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "FAULT_KINDS",
    "HTTP_FAULTS",
    "BreakRule",
    "Fault",
    "FaultMix",
    "MutateFn",
    "RandomFaults",
    "pattern_holding",
]

Records = list[dict[str, Any]]
MutateFn = Callable[[Records], Records]

FAULT_KINDS: frozenset[str] = frozenset(
    {
        "429",
        "500",
        "503",
        "reset",
        "crash",
        "timeout",
        "malformed",
        "truncated",
        "refusal",
        "empty_choices",
        "fewer",
        "more",
        "mutate",
        "duplicate",
        "html",
        "html_json",
        "trickle",
        "chatty",
        "huge",
        "deep_body",
        "deep_content",
        "echo_key",
    }
)


HTTP_FAULTS = frozenset({"429", "500", "503"})


def pattern_holding(node: Any, text: str) -> bool:
    """Whether a request body sends a schema ``pattern`` that contains ``text`` (what makes
    llama-cpp-python 0.3 crash when ``text`` is ``\\.``)."""
    if isinstance(node, list):
        return any(pattern_holding(item, text) for item in node)
    if not isinstance(node, dict):
        return False
    found = node.get("pattern")
    if isinstance(found, str) and text in found:
        return True
    return any(pattern_holding(value, text) for value in node.values())


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour.

    ``kind`` is one of :data:`FAULT_KINDS`; ``fn`` is the record transformer of a ``"mutate"``
    fault; ``delay`` overrides ``FakeLLM.timeout_delay`` for a ``"timeout"`` fault. Plain
    strings (``"429"``), ints (``429``) and bare callables (a mutate function) are accepted
    wherever a fault is, and converted with :meth:`coerce`.
    """

    kind: str
    fn: MutateFn | None = field(default=None, compare=False)
    delay: float | None = None

    RATE_LIMIT: ClassVar[str] = "429"
    SERVER_ERROR: ClassVar[str] = "500"
    UNAVAILABLE: ClassVar[str] = "503"
    RESET: ClassVar[str] = "reset"
    CRASH: ClassVar[str] = "crash"
    """The request is read, then the server dies before answering, as a local server that
    segfaults on a schema does: ``python -m fakellm`` exits at once, a server started with
    ``FakeLLM.start`` resets the connection and stops listening."""
    TIMEOUT: ClassVar[str] = "timeout"
    MALFORMED: ClassVar[str] = "malformed"
    TRUNCATED: ClassVar[str] = "truncated"
    REFUSAL: ClassVar[str] = "refusal"
    EMPTY_CHOICES: ClassVar[str] = "empty_choices"
    FEWER: ClassVar[str] = "fewer"
    MORE: ClassVar[str] = "more"
    MUTATE: ClassVar[str] = "mutate"
    DUPLICATE: ClassVar[str] = "duplicate"
    HTML: ClassVar[str] = "html"
    """HTTP 200 with a proxy's HTML error page (``text/html``)."""
    HTML_JSON: ClassVar[str] = "html_json"
    """HTTP 200 with an HTML page that claims to be ``application/json``."""
    TRICKLE: ClassVar[str] = "trickle"
    """The right answer, one byte every ``FakeLLM.trickle_delay`` seconds."""
    CHATTY: ClassVar[str] = "chatty"
    """The right JSON inside a Markdown code fence, between two sentences, as models in JSON
    mode without a grammar write it."""

    HUGE: ClassVar[str] = "huge"
    """HTTP 200 with a JSON completion of ``FakeLLM.huge_bytes`` bytes (a content string)."""
    DEEP_BODY: ClassVar[str] = "deep_body"
    """HTTP 200 whose JSON body nests ``FakeLLM.deep_levels`` arrays in ``choices``."""
    DEEP_CONTENT: ClassVar[str] = "deep_content"
    """A well-formed completion whose content is JSON nested ``FakeLLM.deep_levels`` deep."""
    ECHO_KEY: ClassVar[str] = "echo_key"
    """The right answer, with the first string field of every record replaced by the API
    key the request carried (its bearer token, or ``api-key``), and every ``/`` of the
    model's JSON written with JSON's ``\\/`` escape."""

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}"
            )
        if self.kind == "mutate" and not callable(self.fn):
            raise ValueError("a 'mutate' fault needs a callable fn(records) -> records")

    @classmethod
    def mutate(cls, fn: MutateFn) -> Fault:
        """A fault that passes the generated records through ``fn`` before serialisation."""
        return cls("mutate", fn=fn)

    @classmethod
    def timeout(cls, delay: float | None = None) -> Fault:
        """A fault that stalls ``delay`` seconds (default ``FakeLLM.timeout_delay``)."""
        return cls("timeout", delay=delay)

    @classmethod
    def coerce(cls, value: Fault | str | int | MutateFn) -> Fault:
        if isinstance(value, Fault):
            return value
        if isinstance(value, bool):
            raise TypeError(f"not a fault: {value!r}")
        if isinstance(value, (str, int)):
            return cls(str(value))
        if callable(value):
            return cls.mutate(value)
        raise TypeError(f"not a fault: {value!r}")


def record_faults(records: list[Any], fault: Fault | None) -> list[Any]:
    """``records`` as a ``duplicate`` or ``mutate`` fault leaves them (unchanged otherwise)."""
    if fault is None:
        return records
    if fault.kind == "duplicate" and records:
        return [json.loads(json.dumps(records[0])) for _ in records]
    if fault.kind == "mutate" and fault.fn is not None:
        return list(fault.fn(json.loads(json.dumps(records))))
    return records


def item_faults(items: list[Any], fault: Fault | None) -> list[Any]:
    """Answer items after a fault: ``fewer`` keeps half, ``more`` repeats the first two."""
    kind = fault.kind if fault is not None else None
    if kind == "fewer":
        return items[: len(items) // 2]
    if kind == "more":
        repeated: list[Any] = json.loads(json.dumps(items[:2]))
        return items + repeated
    return record_faults(items, fault)


class FaultMix:
    """Seeded random faults, the way a flaky hosted model fails.

    Of all requests, a share ``errors`` is answered with HTTP 429 or 500 (half each) and a
    share ``broken`` with malformed JSON or output truncated at the token limit (half each).
    The fate of request k depends only on ``seed`` and k, so two clients sending their
    requests in the same order meet the same faults.
    """

    def __init__(self, broken: float = 0.0, errors: float = 0.0, seed: int = 0) -> None:
        if not (0.0 <= broken <= 1.0 and 0.0 <= errors <= 1.0 and broken + errors <= 1.0):
            raise ValueError(
                f"broken={broken} and errors={errors} must be shares between 0 and 1 "
                "that add up to at most 1"
            )
        self.broken = broken
        self.errors = errors
        self.seed = seed
        self._rnd = random.Random(f"faults-{seed}")

    def draw(self) -> Fault | None:
        """The fault of the next request (``None``: answer it properly)."""
        draw, coin = self._rnd.random(), self._rnd.random()
        if draw < self.errors:
            return Fault("429" if coin < 0.5 else "500")
        if draw < self.errors + self.broken:
            return Fault("malformed" if coin < 0.5 else "truncated")
        return None

    def __repr__(self) -> str:
        return f"FaultMix(broken={self.broken}, errors={self.errors}, seed={self.seed})"


class RandomFaults(FaultMix):
    """Seeded random faults of any kinds: a share ``rate`` of requests meets one of
    ``kinds``, drawn evenly. Like :class:`FaultMix`, request k's fate depends only on
    ``seed`` and k."""

    def __init__(self, rate: float, kinds: tuple[str, ...], seed: int = 0) -> None:
        if not 0.0 <= rate <= 1.0 or not kinds or set(kinds) - FAULT_KINDS:
            raise ValueError(f"rate={rate} must be a share and kinds={kinds} fault kinds")
        super().__init__(seed=seed)
        self.rate = rate
        self.kinds = kinds

    def draw(self) -> Fault | None:
        draw, coin = self._rnd.random(), self._rnd.random()
        if draw < self.rate:
            return Fault(self.kinds[min(int(coin * len(self.kinds)), len(self.kinds) - 1)])
        return None

    def __repr__(self) -> str:
        return f"RandomFaults(rate={self.rate}, kinds={self.kinds}, seed={self.seed})"


class BreakRule:
    """A model that gets a cross-field rule right only some of the time.

    ``rule`` is ``"low<=high"`` over two numeric fields of a record (``"insurance_claim_amount
    <=total_charge"``); each record breaks it with probability ``share`` (``low`` above
    ``high``) and keeps it otherwise. A record's fate depends only on ``seed`` and the record
    itself, so the same answer always breaks the same way, whatever order requests arrive
    in. Records without both fields as numbers pass unchanged. Use it as a ``mutate`` fault
    (``server.always(Fault.mutate(BreakRule(...)))``) or through ``FakeLLM.configure(
    invalid=share, invalid_rule=rule)``.
    """

    def __init__(self, rule: str, share: float, seed: int = 0) -> None:
        low, sep, high = rule.replace(" ", "").partition("<=")
        if not sep or not low or not high:
            raise ValueError(f"rule={rule!r} must read 'low_field<=high_field'")
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share={share} must be between 0 and 1")
        self.low, self.high, self.share, self.seed = low, high, share, seed
        self.broken = self.kept = 0

    def __call__(self, records: Records) -> Records:
        for record in records:
            if not isinstance(record, dict):
                continue
            low, high = record.get(self.low), record.get(self.high)
            if not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)
            ):
                continue
            assert isinstance(low, (int, float)) and isinstance(high, (int, float))
            if self._draw(record) < self.share:
                record[self.low] = round(high + 1 + abs(high) * 0.1, 2)
                self.broken += 1
            else:
                if low > high:
                    record[self.low] = round(high * 0.8, 2) if high > 0 else high
                self.kept += 1
        return records

    def _draw(self, record: dict[str, Any]) -> float:
        text = f"{self.seed}|{json.dumps(record, sort_keys=True)}"
        return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / float(16**12)

    def __repr__(self) -> str:
        return f"BreakRule({self.low}<={self.high}, share={self.share}, seed={self.seed})"
