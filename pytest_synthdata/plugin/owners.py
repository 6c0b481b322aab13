"""Who a test's generation belongs to, as written into the cassettes it records into (see
:mod:`..storage.owners`)."""

from __future__ import annotations

from ..storage.owners import Owner

FIXTURE = "fixture:"
"""How the session state names what a conftest fixture produces: ``fixture:<name>@<file>``."""
FACTORY = "::factory"
"""... and what a test's ``synth_factory`` produces: ``<node id>::factory``."""


def owner_of(key: str) -> Owner | None:
    """The owner of what the session state produces under ``key`` (a test's node id, the
    same with ``::factory``, or ``fixture:<name>@<file>``); ``None`` for an empty key."""
    if key.startswith(FIXTURE):
        return Owner.of_fixture(key[len(FIXTURE) :].rsplit("@", 1)[0])
    if key.endswith(FACTORY):
        key = key[: -len(FACTORY)]
    return Owner.of_test(key) if key else None
