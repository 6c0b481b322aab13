"""Counters describing what producing a dataset cost."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class Usage:
    """What one generation (or a whole test session) cost.

    ``requests`` counts chat-completion calls answered by the endpoint, a cassette or the
    cache (``cache_hits`` of them by the cache); ``retries`` counts the follow-up requests
    made to replace invalid, duplicate or missing output (re-asks, and top-up batches);
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
        return counts

    def summary(self) -> str:
        return (
            f"{self.requests} request(s), {self.prompt_tokens} prompt + "
            f"{self.completion_tokens} completion tokens, {self.retries} retry(ies), "
            f"{self.dropped_invalid} invalid and {self.dropped_duplicate} duplicate "
            "record(s) dropped"
            + (f", usage unknown for {self.unknown_usage} answer(s)" if self.unknown_usage else "")
        )
