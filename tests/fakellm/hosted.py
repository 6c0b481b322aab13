"""The settings that make the fake behave like a hosted model, read and changed together.

:class:`Latency` is how long answers take; :data:`CONFIG_KEYS` names every setting
``POST /_config`` takes (latency, a seeded mix of faults, a sampling seed, a rate limit, a
rule records break); :class:`HostedSettings`, a base of :class:`~fakellm.server.FakeLLM`,
reads them (:meth:`~HostedSettings.config`) and changes them
(:meth:`~HostedSettings.configure`, :meth:`~HostedSettings.set_rate_limit`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from .faults import BreakRule, FaultMix
from .ratelimit import RateLimit, RateLimiter

__all__ = ["CONFIG_KEYS", "HostedSettings", "Latency"]

JSONDict = dict[str, Any]

# What ``POST /_config`` and :meth:`HostedSettings.configure` change.
CONFIG_KEYS = (
    *("delay", "per_token", "error_delay", "broken", "errors", "seed", "retry_after_ms"),
    *("round_tokens_up", "limit_requests", "limit_tokens", "limit_window", "limit_headers"),
    *("invalid", "invalid_rule"),
)


@dataclass(frozen=True)
class Latency:
    """How long answers take, the way a hosted model's time grows with its output: ``delay``
    seconds for every answer plus ``per_token`` seconds per completion token; a 429/500/503
    fault is sent after ``error_delay`` seconds instead."""

    delay: float = 0.0
    per_token: float = 0.0
    error_delay: float = 0.0

    def answer(self, completion_tokens: int) -> float:
        return self.delay + self.per_token * completion_tokens


class HostedSettings:
    """The settings of :data:`CONFIG_KEYS`, on the server that defines their defaults (its
    ``_set_defaults``) and how to forget requests and counters (``_forget``)."""

    latency: Latency
    fault_mix: FaultMix | None
    sampling_seed: int | None
    retry_after_ms: float | None
    round_tokens_up: bool
    rate_limit: RateLimit
    break_rule: BreakRule | None
    break_rule_text: str
    _limiter: RateLimiter | None
    _lock: threading.RLock

    def _forget(self) -> None:
        raise NotImplementedError

    def config(self) -> JSONDict:
        """The settings :meth:`configure` changes, as it would take them."""
        mix = self.fault_mix
        return {
            "delay": self.latency.delay,
            "per_token": self.latency.per_token,
            "error_delay": self.latency.error_delay,
            "broken": mix.broken if mix else 0.0,
            "errors": mix.errors if mix else 0.0,
            "seed": self.sampling_seed if self.sampling_seed is not None else 0,
            "retry_after_ms": self.retry_after_ms,
            "round_tokens_up": self.round_tokens_up,
            "limit_requests": self.rate_limit.requests,
            "limit_tokens": self.rate_limit.tokens,
            "limit_window": self.rate_limit.window,
            "invalid": self.break_rule.share if self.break_rule else 0.0,
            "invalid_rule": self.break_rule_text,
        }

    def configure(self, **changes: Any) -> JSONDict:
        """Change some of the :data:`CONFIG_KEYS` (the others keep their values), start the
        value and fault sequences of ``seed`` afresh and forget requests and counters.

        ``delay``, ``per_token`` and ``error_delay`` make the :attr:`latency`; ``broken`` and
        ``errors`` the :attr:`fault_mix`; ``seed`` seeds the fault mix and is the
        :attr:`sampling_seed`; ``retry_after_ms`` is sent with HTTP faults;
        ``invalid_rule`` (``"low<=high"``, "" for none) and ``invalid`` (the share of
        records that break it) make the :attr:`break_rule`; ``round_tokens_up`` is
        :attr:`round_tokens_up`; ``limit_requests`` and
        ``limit_tokens`` per ``limit_window`` seconds make the :attr:`rate_limit` (0: none),
        whose buckets start full, with ``x-ratelimit-*`` headers unless ``limit_headers`` is
        false."""
        unknown = sorted(set(changes) - set(CONFIG_KEYS))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; expected some of {CONFIG_KEYS}")
        merged = {**self.config(), **changes}
        latency = Latency(
            float(merged["delay"]), float(merged["per_token"]), float(merged["error_delay"])
        )
        seed = int(merged["seed"])
        mix = FaultMix(float(merged["broken"]), float(merged["errors"]), seed)
        retry = merged["retry_after_ms"]
        share, rule_text = float(merged["invalid"] or 0.0), str(merged["invalid_rule"])
        rule = BreakRule(rule_text, share, seed) if rule_text else None
        limit = RateLimit(
            int(merged["limit_requests"] or 0),
            int(merged["limit_tokens"] or 0),
            float(merged["limit_window"] or 60.0),
            bool(changes.get("limit_headers", self.rate_limit.headers)),
        )
        with self._lock:
            self.latency, self.fault_mix, self.sampling_seed = latency, mix, seed
            self.retry_after_ms = None if retry is None else float(retry)
            self.round_tokens_up = bool(merged["round_tokens_up"])
            self.rate_limit = limit
            self.break_rule, self.break_rule_text = rule, rule_text
            self._forget()
        return self.config()

    def set_rate_limit(
        self, requests: int = 0, tokens: int = 0, window: float = 60.0, headers: bool = True
    ) -> None:
        """Limit requests and tokens per ``window`` seconds (0: no limit), buckets full;
        ``headers=False``: no ``x-ratelimit-*`` headers, 429s with ``retry-after`` only."""
        with self._lock:
            self.rate_limit = RateLimit(requests, tokens, window, headers)
            self._limiter = RateLimiter(self.rate_limit) if self.rate_limit.active else None
