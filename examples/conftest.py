"""Named synthetic datasets shared by the example tests."""

from __future__ import annotations

from domain import SupportTicket

from pytest_synthdata import synth_fixture

# One generation for the whole session, recorded in cassettes/conftest/support_tickets.synth.yaml
support_tickets = synth_fixture(
    SupportTicket,
    n=8,
    examples="data/tickets.jsonl",
    unique="ticket_id",
    scope="session",
)
