"""Names, help texts and environment variables of the options (plain constants).

Kept apart from :mod:`pytest_synthdata.settings` so that loading the pytest plugin, which
needs them for ``--help``, costs next to nothing. The ``structured`` help comes from the mode
registry (:mod:`pytest_synthdata.llm.modes`), which imports nothing heavy either.
"""

from __future__ import annotations

from .llm.modes import structured_help

DEFAULT_MODEL = "gpt-4o-mini"

SETTING_NAMES: tuple[str, ...] = (
    "model",
    "base_url",
    "temperature",
    "batch_size",
    "concurrency",
    "structured",
    "max_retries",
    "max_tokens",
    "timeout",
    "http_retries",
    "max_n",
)
"""The fields of :class:`~pytest_synthdata.settings.Settings`, in order."""

SPEC_WORDS = ("n", "examples", "subject", "extra", "seed", "unique")
"""The keywords that describe a dataset rather than how it is produced."""

STORAGE_NAMES = ("record_mode", "cache_dir", "no_cache", "update", "show", "export")
"""Session-wide cassette, cache and reporting options (not settable per dataset)."""

BOOLEAN_STORAGE_NAMES = ("no_cache", "update", "show")
"""The session-wide options that are switches (``--synth-no-cache``, ini ``true``/``false``)."""

HELP: dict[str, str] = {
    "model": f"LLM model or Azure deployment name (default {DEFAULT_MODEL})",
    "base_url": "OpenAI-compatible endpoint URL (default: OPENAI_BASE_URL, else api.openai.com)",
    "temperature": "sampling temperature 0-2 (default: the endpoint's own)",
    "batch_size": "records asked for per request (default: chosen from the schema, at most 20)",
    "concurrency": "most requests in flight at once (default 8)",
    "structured": structured_help(),
    "max_retries": "follow-up requests per planned batch, pooled for the whole dataset, to "
    "replace invalid, duplicate or missing records (default 3)",
    "max_tokens": "largest output-token limit of a request; each asks for what its records "
    "should take, with headroom (default 4096)",
    "timeout": "seconds one try of a request may take, first byte to last; a request is "
    "abandoned after two tries time out (default 60)",
    "http_retries": "retries of a request after 429, 5xx, a lost connection, a timeout or a "
    "body that is not JSON, honouring retry-after (default 5)",
    "max_n": "largest n accepted per dataset (default 5000)",
}

ENV_PREFIX = "SYNTHDATA_"


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


RECORD_MODES = ("none", "once", "new_episodes", "all", "rewrite")

STORAGE_HELP: dict[str, str] = {
    "record_mode": "cassette record mode: none (replay only), once (record when the cassette "
    "is missing; default), new_episodes (replay, record what is new), all (always record), "
    "rewrite (delete the cassette, then record)",
    "cache_dir": "response cache folder (default: synthdata under pytest's cache directory)",
    "no_cache": "do not read or write the response cache",
    "update": "replay what matches and record only what is missing (a larger n records just "
    "the new records); afterwards rewrite each cassette the run used to hold only what it "
    "used, and, when the whole suite was collected, delete the cassette files no test or "
    "fixture uses",
    "show": "print the first rows of each dataset the run used, as a table",
    "export": "write each dataset the run used as JSON Lines under this folder (relative to "
    "the current directory), one file per test or fixture",
}
