"""Deterministic offline runs: vcrpy cassettes, the diskcache response cache, the transport."""
