"""The ``synthdata`` section of pytest's terminal summary, as lines.

What the session made (datasets, records, texts, extractions), what was sent to the
endpoint (paid for) apart from what was replayed from cassettes or the cache, why requests
were retried, where the answers came from, the cassettes an interrupted recording left or
that nothing uses, what ``--synth-update`` did, the ``--synth-show`` tables and the
``--synth-export`` files. Every line is masked (no secret is printed) and escaped (a
control character a model wrote is shown, never acted on).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from ..terminal_safe import escape_controls
from .ledger import Ledger, Totals
from .state import SessionState


def lines(
    config: Any, state: SessionState, report: Ledger, exitstatus: int, width: int
) -> list[str]:
    """The section's lines (none: the section is left out)."""
    from ..storage.secrets import redact
    from .update import stale as stale_files
    from .update import whole_suite

    stale: list[Path] = []
    if not state.update and whole_suite(config, exitstatus, report):
        stale = stale_files(config, report)
    out = fitted(cost(report.totals), width)
    out += completed(report.completed, records=state.record_mode != "none", width=width)
    out += listed(
        stale,
        f"{len(stale)} cassette file(s) that no collected test or fixture uses "
        "(--synth-update deletes them):",
        width,
    )
    out += state.update_lines
    out += previews(report, width)
    if report.exported:
        out += fitted(
            [f"exported {len(report.exported)} dataset(s) as JSON Lines to {state.session.export}"],
            width,
        )
    return [escape_controls(redact(line)) for line in out]


def fitted(text: list[str], width: int) -> list[str]:
    """``text`` with every line longer than ``width`` columns wrapped between words, its
    continuation lines indented by two spaces (a word longer than a line, such as a path,
    is left whole)."""
    out: list[str] = []
    for line in text:
        if len(line) <= width:
            out.append(line)
            continue
        out += textwrap.wrap(
            line,
            max(width, 20),
            subsequent_indent="  ",
            break_long_words=False,
            break_on_hyphens=False,
        )
    return out


def header(state: SessionState, verbosity: int) -> str | None:
    """The report header's line: the settings that differ from the defaults (the model
    and the structured mode too with ``-v``); secrets masked."""
    if not state.configured and verbosity < 1:
        return None
    settings = state.settings
    changed = settings.non_defaults()
    if not changed and verbosity < 1:
        return None
    shown = changed or {"model": settings.model, "structured": settings.structured}
    from ..storage.secrets import redact

    text = redact("synthdata: " + ", ".join(f"{key}={value!r}" for key, value in shown.items()))
    return escape_controls(text)


def made(totals: Totals) -> str:
    """``2 dataset(s), 5 record(s), 3 text(s), 1 extraction(s)`` (the counts that are not
    0; records are always said when there is a record dataset)."""
    parts = [f"{len(totals.datasets)} dataset(s)"]
    records = totals.records
    if records or not (totals.texts or totals.extractions):
        parts.append(f"{records} record(s)")
    if totals.texts:
        parts.append(f"{totals.texts} text(s)")
    if totals.extractions:
        parts.append(f"{totals.extractions} extraction(s)")
    return ", ".join(parts)


def cost(totals: Totals) -> list[str]:
    """What was made, what was sent (paid) apart from what was replayed, why requests were
    retried, and where the answers came from; nothing when the session made nothing."""
    usage = totals.usage
    if not (totals.datasets or usage.requests or totals.texts or totals.extractions):
        return []
    out = [made(totals)]
    if totals.sent:
        out.append(
            f"sent to the endpoint: {totals.sent} request(s), {totals.sent_prompt_tokens} "
            f"prompt + {totals.sent_completion_tokens} completion tokens"
        )
    else:
        out.append("sent to the endpoint: nothing")
    replayed = usage.requests - totals.sent
    if replayed > 0:
        prompt = max(0, usage.prompt_tokens - totals.sent_prompt_tokens)
        completion = max(0, usage.completion_tokens - totals.sent_completion_tokens)
        out.append(
            f"replayed (not paid for): {replayed} request(s), {prompt} prompt + "
            f"{completion} completion tokens"
        )
    if usage.retries or usage.dropped_invalid or usage.dropped_duplicate or totals.failed:
        reasons = usage.retry_reasons()
        out.append(
            f"{usage.retries} retry(ies)"
            + (f" ({reasons})" if reasons else "")
            + (f", {totals.failed} transient failure(s) tried again" if totals.failed else "")
            + f"; {usage.dropped_invalid} invalid and {usage.dropped_duplicate} duplicate "
            "record(s) dropped"
        )
    out.append(
        f"responses: {totals.replayed} replayed from cassettes, {totals.recorded} recorded, "
        f"{totals.cached} from the cache, {totals.network} live without a cassette"
        + (f", {totals.failed} failed and retried" if totals.failed else "")
    )
    return out


def completed(paths: set[Path], *, records: bool, width: int = 80) -> list[str]:
    """Cassettes an interrupted recording had left, which this run found."""
    how = " were completed:" if records else " (run in record mode 'once' to complete them):"
    head = f"{len(paths)} cassette file(s) left incomplete by an interrupted recording{how}"
    return listed(sorted(paths), head, width)


def listed(paths: list[Path], head: str, width: int = 80) -> list[str]:
    return [*fitted([head], width), *(f"  {path}" for path in paths)] if paths else []


def previews(report: Ledger, width: int) -> list[str]:
    """The ``--synth-show`` tables, by title."""
    if not report.previews:
        return []
    from .show import table

    out: list[str] = []
    for _, preview in sorted(report.previews.items(), key=lambda kv: str(kv[1]["title"])):
        out += table(preview, width)
    return out
