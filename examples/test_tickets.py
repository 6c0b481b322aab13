"""Support tickets: a named session fixture from conftest.py and several datasets per test."""

from __future__ import annotations

import pytest
from domain import SupportTicket

ORDER = {"low": 0, "normal": 1, "high": 2, "urgent": 3}


def triage(tickets: list[SupportTicket]) -> list[SupportTicket]:
    """The code under test: most urgent first, oldest first within a priority."""
    return sorted(tickets, key=lambda t: (-ORDER[t.priority], t.opened_on, t.ticket_id))


def test_triage_puts_urgent_first(support_tickets: list[SupportTicket]) -> None:
    ranked = triage(support_tickets)
    priorities = [ORDER[t.priority] for t in ranked]
    assert priorities == sorted(priorities, reverse=True)


def test_ticket_ids_are_unique(support_tickets: list[SupportTicket]) -> None:
    assert len({t.ticket_id for t in support_tickets}) == len(support_tickets)


@pytest.mark.synth(SupportTicket, n=3, name="open_tickets", extra="all about login problems")
@pytest.mark.synth(SupportTicket, n=2, name="vip_tickets", extra="all urgent, from VIP customers")
def test_two_queues_merge(
    open_tickets: list[SupportTicket], vip_tickets: list[SupportTicket]
) -> None:
    merged = triage(open_tickets + vip_tickets)
    assert len(merged) == 5
    assert sorted(map(id, merged)) == sorted(map(id, open_tickets + vip_tickets))
    ranks = [ORDER[t.priority] for t in merged]
    assert ranks == sorted(ranks, reverse=True)
