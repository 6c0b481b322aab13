"""The openai client an :class:`~.client.LLM` sends through: one of its own, or the caller's,
put on the cassette's and cache's pool when a recording is open. The SDK never retries on its
own (``max_retries=0``): the client's loop does, under the endpoint's rate limits."""

from __future__ import annotations

import os
import sys
from contextvars import ContextVar
from typing import TYPE_CHECKING

import httpx2
import openai

from ..errors import SynthConfigError
from ..settings import Settings, environment_base_url
from ..storage.credentials import MISSING_KEY, missing_key_error, needs_key

if TYPE_CHECKING:
    from ..storage.recorder import Recording

LOOP_OF_ITS_OWN: ContextVar[bool] = ContextVar("synthdata_loop_of_its_own", default=False)
"""Set in the task of a blocking call's own event loop, which ends with the call."""

Client = openai.OpenAI | openai.AsyncOpenAI


def wired_client(
    settings: Settings, client: object | None, recording: Recording | None
) -> tuple[Client, bool]:
    """The client to send through, and whether it is ours to close."""
    wired, ours = _wired(settings, client, recording)
    return _platform_known(wired), ours


def _wired(
    settings: Settings, client: object | None, recording: Recording | None
) -> tuple[Client, bool]:
    if client is None:
        return _own_client(settings, recording), True
    if not isinstance(client, (openai.OpenAI, openai.AsyncOpenAI)):
        raise SynthConfigError(
            f"client must be an openai.OpenAI or openai.AsyncOpenAI instance (AzureOpenAI "
            f"works too), got {type(client).__name__}"
        )
    if recording is not None:
        # The same client, with the cassette and cache in front of its connection pool.
        if isinstance(client, openai.AsyncOpenAI):
            async_pool = httpx2.AsyncClient(transport=recording.async_transport())
            return client.copy(http_client=async_pool, max_retries=0), True
        sync_pool = httpx2.Client(transport=recording.sync_transport())
        return client.copy(http_client=sync_pool, max_retries=0), True
    if isinstance(client, openai.AsyncOpenAI) and LOOP_OF_ITS_OWN.get():
        # The caller's async client, from a blocking call: its pool would keep connections
        # of an event loop that ends with this call and break the caller's next use. The
        # same client on a pool of its own, closed before the loop ends.
        return client.copy(http_client=httpx2.AsyncClient(), max_retries=0), True
    return client.with_options(max_retries=0), False  # a copy on the same pool


def _platform_known(client: Client) -> Client:
    """``client`` with the SDK's description of this platform (its request headers) looked
    up now, once per process. An async client otherwise looks it up in a worker thread on
    its first requests, and every request started before that lookup ends waits there with
    all its state: a batch pass starts hundreds at once (about 10 KB each)."""
    # a private SDK helper: without it (another SDK version) the SDK looks it up as before
    lookup = getattr(sys.modules.get("openai._base_client"), "get_platform", None)
    unknown = isinstance(client, openai.AsyncOpenAI) and getattr(client, "_platform", "") is None
    if unknown and lookup is not None:
        client._platform = lookup()
    return client


def _own_client(settings: Settings, recording: Recording | None) -> openai.AsyncOpenAI:
    """A client from the settings and ``OPENAI_API_KEY``/``OPENAI_BASE_URL``."""
    http_client = None
    if recording is not None:
        http_client = httpx2.AsyncClient(transport=recording.async_transport())
    base_url = settings.base_url or environment_base_url()
    api_key = os.environ.get("OPENAI_API_KEY") or MISSING_KEY
    if (
        api_key == MISSING_KEY
        and recording is None
        and needs_key(base_url or "https://api.openai.com/v1")
    ):
        raise missing_key_error("every request of this call (no cassette or cache)")
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        timeout=settings.timeout,
        max_retries=0,
        http_client=http_client,
    )
