"""A loopback, OpenAI-compatible chat-completions server for the test suite and benchmarks.

It reads a request the way a real model does (the response schema, counts stated in plain
words, JSON values quoted at the ends of prompt lines) and never the wording of one
client's prompts, so it answers any OpenAI-compatible client.

Modules: :mod:`~fakellm.server` (the HTTP server, :class:`FakeLLM`),
:mod:`~fakellm.reading` (what a request asks for), :mod:`~fakellm.faults` (:class:`Fault`
and the fault kinds), :mod:`~fakellm.schema_faker` (values for a JSON schema, strings for a
regex) and :mod:`~fakellm.texts` (texts written from fields, records read back from them).
"""

from __future__ import annotations

from . import reading
from .faults import FAULT_KINDS, Fault, MutateFn
from .schema_faker import (
    CONSTRAINT_KEYS,
    SchemaFaker,
    parse_description_constraints,
    string_for_pattern,
)
from .server import MODES, FakeLLM, RecordedRequest
from .texts import leaf_phrases, read_phrases, write_text

__all__ = [
    "CONSTRAINT_KEYS",
    "FAULT_KINDS",
    "MODES",
    "FakeLLM",
    "Fault",
    "MutateFn",
    "RecordedRequest",
    "SchemaFaker",
    "leaf_phrases",
    "parse_description_constraints",
    "read_phrases",
    "reading",
    "string_for_pattern",
    "write_text",
]
