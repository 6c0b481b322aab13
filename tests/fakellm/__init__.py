"""A loopback, OpenAI-compatible chat-completions server for the test suite and benchmarks.

It reads a request the way a real model does (the response schema, counts stated in plain
words, JSON values quoted at the ends of prompt lines) and never the wording of one
client's prompts, so it answers any OpenAI-compatible client.

It can behave like a hosted model too (a latency per answer and per output token, a
seeded mix of errors and broken answers, answers that vary like a sampling model's), in its
own process: ``python -m fakellm`` or :class:`FakeLLMProcess`. The test suite and
``benchmarks/run.py`` both use it.

Modules: :mod:`~fakellm.server` (the server: switches, counters, faults queue, request
handling), :mod:`~fakellm.completion` (the chat completion an answer is built into),
:mod:`~fakellm.replies` (error, fault and rate-limit replies sent instead of one),
:mod:`~fakellm.hosted` (a hosted model's settings, :class:`Latency`), :mod:`~fakellm.constraints`
(:class:`FakeLLM`: the server with a switch that rejects validation keywords in schemas),
:mod:`~fakellm.reading` (what a request asks for), :mod:`~fakellm.faults` (:class:`Fault`,
:class:`FaultMix`), :mod:`~fakellm.schema_faker` (values for a JSON schema, strings for a
regex), :mod:`~fakellm.texts` (texts written from fields, records read back from them),
:mod:`~fakellm.wire` (HTTP plumbing), :mod:`~fakellm.ratelimit` (a hosted API's requests and
tokens per window, with 429s and ``x-ratelimit-*`` headers) and :mod:`~fakellm.process` (the
server in a child process, ``python -m fakellm``).
"""

from __future__ import annotations

from . import reading
from .constraints import FakeLLM, find_constraint
from .faults import FAULT_KINDS, Fault, FaultMix, MutateFn, RandomFaults
from .process import FakeLLMProcess
from .ratelimit import RateLimit, RateLimiter
from .schema_faker import (
    CONSTRAINT_KEYS,
    SchemaFaker,
    parse_description_constraints,
    string_for_pattern,
)
from .server import CONFIG_KEYS, MODES, Latency, RecordedRequest
from .texts import leaf_phrases, read_phrases, write_text

__all__ = [
    "CONFIG_KEYS",
    "CONSTRAINT_KEYS",
    "FAULT_KINDS",
    "MODES",
    "FakeLLM",
    "FakeLLMProcess",
    "Fault",
    "FaultMix",
    "Latency",
    "MutateFn",
    "RandomFaults",
    "RateLimit",
    "RateLimiter",
    "RecordedRequest",
    "SchemaFaker",
    "find_constraint",
    "leaf_phrases",
    "parse_description_constraints",
    "read_phrases",
    "reading",
    "string_for_pattern",
    "write_text",
]
