"""The API key a request to OpenAI itself cannot do without.

A client this package builds with no ``OPENAI_API_KEY`` in the environment sends
:data:`MISSING_KEY` instead: answers from a cassette or the cache need no key, and neither
does a local OpenAI-compatible server. A request that would really go to OpenAI's own host
with it fails at once with :func:`missing_key_error`, instead of after a round of failed tries.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import SynthConfigError

MISSING_KEY = "sk-synthdata-no-key-set"
"""The key sent when ``OPENAI_API_KEY`` is not set (it is never a real key)."""

OPENAI_HOST = "api.openai.com"


def needs_key(url: str) -> bool:
    """Whether a request to ``url`` goes to OpenAI's own host, which needs a real key."""
    return (urlsplit(url).hostname or "").lower() == OPENAI_HOST


def sends_missing_key(authorization: str | None) -> bool:
    """Whether an ``Authorization`` header carries :data:`MISSING_KEY`."""
    return authorization == f"Bearer {MISSING_KEY}"


def missing_key_error(what: str) -> SynthConfigError:
    """The error for ``what`` (a request, a generation) that would go to OpenAI unkeyed."""
    return SynthConfigError(
        f"OPENAI_API_KEY is not set, and {what} would go to https://{OPENAI_HOST} without a "
        "key. Set OPENAI_API_KEY to record it; or replay instead: run with the committed "
        "cassettes (--synth-record-mode=none in pytest, record_mode='none' with a cassette= "
        "in a library call), or point OPENAI_BASE_URL (--synth-base-url) at a local "
        "OpenAI-compatible server"
    )
