"""Counters describing what producing a dataset cost."""

from __future__ import annotations

from dataclasses import dataclass, fields

RETRY_REASONS = ("truncated", "invalid", "duplicate", "missing", "top_up")
"""Why a follow-up request was made: the answer before it was cut off at the token limit;
held something invalid (an item, broken JSON, a refusal, no answer); held duplicates and
nothing invalid; held valid items only, too few of them; or the request is a top-up batch
replacing records earlier batches dropped or lacked (invalid ones included, when a wave of
several batches pooled what they lacked)."""


@dataclass
class Usage:
    """What one generation (or a whole test session) cost.

    ``requests`` counts chat-completion calls answered by the endpoint, a cassette or the
    cache (``cache_hits`` of them by the cache); ``retries`` counts the follow-up requests
    made to replace invalid, duplicate or missing output (re-asks, and top-up batches), and
    ``retries_truncated`` ... ``retries_top_up`` why each was made (see
    :data:`RETRY_REASONS`; usage stored before they were counted has them all 0);
    ``dropped_invalid`` and ``dropped_duplicate`` count records thrown away. Tokens are as
    the endpoint reported them (0 when it did not); ``unknown_usage`` counts the answers
    whose usage values were not token counts (``"n/a"``, ``-1``, ``1e40``), ignored.
    """

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    dropped_invalid: int = 0
    dropped_duplicate: int = 0
    cache_hits: int = 0
    unknown_usage: int = 0
    retries_truncated: int = 0
    retries_invalid: int = 0
    retries_duplicate: int = 0
    retries_missing: int = 0
    retries_top_up: int = 0
    dropped_near_duplicate: int = 0
    """Of ``dropped_duplicate``, the records dropped for nearly repeating an earlier record
    or a seed example (see :mod:`.diversity`)."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Usage) -> None:
        """Add another usage's counters to this one, in place."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        counts = {f.name: getattr(self, f.name) for f in fields(self)}
        if not counts["unknown_usage"]:
            del counts["unknown_usage"]  # as stored before it existed
        if not counts["dropped_near_duplicate"]:
            del counts["dropped_near_duplicate"]
        return counts

    def note_retry(self, reason: str) -> None:
        """Count why a follow-up request was made (one of :data:`RETRY_REASONS`)."""
        if reason in RETRY_REASONS:
            name = f"retries_{reason}"
            setattr(self, name, getattr(self, name) + 1)

    def retry_reasons(self) -> str:
        """``1 truncated, 2 invalid``: why the retries were made ("" without retries);
        those whose reason was not counted (older stored usage) are ``other``."""
        counts = {reason: getattr(self, f"retries_{reason}") for reason in RETRY_REASONS}
        parts = [f"{n} {reason.replace('_', '-')}" for reason, n in counts.items() if n]
        other = self.retries - sum(counts.values())
        if other > 0:
            parts.append(f"{other} other")
        return ", ".join(parts) if self.retries else ""

    def summary(self) -> str:
        reasons = self.retry_reasons()
        return (
            f"{self.requests} request(s), {self.prompt_tokens} prompt + "
            f"{self.completion_tokens} completion tokens, {self.retries} retry(ies)"
            + (f" ({reasons})" if reasons else "")
            + f", {self.dropped_invalid} invalid and {self.dropped_duplicate} duplicate "
            "record(s) dropped"
            + (f", usage unknown for {self.unknown_usage} answer(s)" if self.unknown_usage else "")
        )
