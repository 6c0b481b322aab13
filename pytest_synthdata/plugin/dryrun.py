"""``--synth-dry-run``: what the collected tests would replay, record or grow, and what that
would send, worked out after collection; then the session ends without running a test.

The session ends after collection (rather than skipping each test) so that nothing of the
suite runs: no fixture is set up and no test body runs, so nothing can send a request. What
only a running fixture or test body can say is therefore not known: a ``synth_config`` or
``synth_cassette_dir`` fixture of the project (the estimate uses the session's settings and
the usual cassette), and ``synth_factory`` and text calls inside test bodies (listed as not
estimated). Each dataset's fate is :func:`pytest_synthdata.dryrun.outlook`'s, decided from
its cassette as a run decides it; its plan is the run's own planner's.

One process only: under xdist the workers collect and the controller reports, so ``-n``
is refused with the fix (``-n 0``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..errors import SynthError
from .state import RESERVED, cassette_of, requests_of, rerecord_hint, state_of

if TYPE_CHECKING:
    from ..dryrun import Outlook
    from ..settings import SessionSettings
    from .markers import DatasetRequest

IN_BODY = ("synth_factory", "synth_text_factory", "synth_extract", "synth_round_trip")
"""Fixtures whose datasets are asked for inside the test body: not known at collection."""


@dataclass
class Entry:
    """One dataset the collected tests would use, and what a run would do for it."""

    where: str
    label: str
    outlook: Outlook | None = None
    problem: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class DryRun:
    """The session's dry run: the prices, the datasets found, what cannot be estimated."""

    prices: tuple[float, float] | None
    record_mode: str
    entries: dict[Any, Entry] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)


DRY = pytest.StashKey[DryRun]()


def start(config: pytest.Config, session: SessionSettings | None) -> None:
    """Check what a dry run needs (one process, both prices or none) before collection."""
    from ..settings import SessionSettings

    session = session or SessionSettings()
    workers = getattr(config.option, "numprocesses", None)
    if workers and not hasattr(config, "workerinput"):
        raise pytest.UsageError(
            "pytest-synthdata: --synth-dry-run runs in one process, and -n asks xdist for "
            f"{workers} workers; add -n 0 (the estimate is the same: datasets are planned, "
            "not generated)"
        )
    prices = (session.price_in, session.price_out)
    if (prices[0] is None) != (prices[1] is None):
        given, missing = ("in", "out") if prices[0] is not None else ("out", "in")
        raise pytest.UsageError(
            f"pytest-synthdata: --synth-price-{given} is given but not --synth-price-{missing}: "
            f"a cost needs both (USD per million tokens; or set the ini key "
            f"synth_price_{missing} or SYNTHDATA_PRICE_{missing.upper()})"
        )
    both = None if prices[0] is None or prices[1] is None else (prices[0], prices[1])
    config.stash[DRY] = DryRun(both, session.record_mode)


def survey(session: pytest.Session) -> None:
    """Work out, for every dataset the collected items would use, what a run would do."""
    dry = session.config.stash[DRY]
    for item in session.items:
        base = item.nodeid.split("[")[0]
        names = set(getattr(item, "fixturenames", ()))
        for name in sorted(names & set(IN_BODY)):
            dry.unknown.setdefault(
                base, f"{name} calls inside the test body are only known when it runs"
            )
        if item.get_closest_marker("synth_text") is not None:
            dry.unknown.setdefault(base, "synth_text texts are not estimated")
        if item.get_closest_marker("synth") is not None:
            _markers(dry, item, names)
        for name in sorted(names - set(RESERVED)):
            found = _synth_fixture(item, name)
            if found is not None:
                _fixture(dry, item, name, *found)


def _markers(dry: DryRun, item: pytest.Item, names: set[str]) -> None:
    base = item.nodeid.split("[")[0]
    notes = [
        f"its {name} fixture is only known when it runs: estimated without it"
        for name in ("synth_config", "synth_cassette_dir")
        if _overridden(item, name)
    ]
    for entry in requests_of(item):
        if isinstance(entry, SynthError):
            dry.entries.setdefault(("error", base), Entry(base, "", problem=str(entry)))
            continue
        if entry.name not in names:
            continue  # the marker does nothing (a run warns): nothing is generated
        what = entry.name + (", each=True" if entry.each else "")
        _add(dry, item, base, f"{base} ({what})", entry, cassette_of(item), notes)


def _fixture(dry: DryRun, item: pytest.Item, name: str, parsed: Any, caller: str) -> None:
    from ..storage.paths import fixture_cassette

    if isinstance(parsed, SynthError):
        dry.entries.setdefault(
            ("error", name, caller), Entry(f"fixture {name}", "", problem=str(parsed))
        )
        return
    try:
        shown = Path(caller).relative_to(item.config.rootpath).as_posix()
    except ValueError:
        shown = caller
    owner = f"fixture:{name}@{caller}"
    cassette = fixture_cassette(Path(caller), name)
    _add(dry, item, owner, f"fixture {name} ({shown})", parsed, cassette, [], name)


def _add(
    dry: DryRun,
    item: pytest.Item,
    owner: str,
    where: str,
    request: DatasetRequest,
    cassette: Path,
    notes: list[str],
    fixture: str = "",
) -> None:
    """The dataset of ``request`` (once per owner, name, spec and settings, as a run
    shares it) and what a run would do for it."""
    from ..dryrun import outlook
    from ..spec import make_spec

    label = f"{request.n} {request.model.__name__} record(s)"
    try:
        state = state_of(item.config)
        settings = state.settings.replace(**request.overrides)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a run gives them when the dataset is made
            spec = make_spec(request.model, max_n=settings.max_n, **request.spec_kwargs)
    except SynthError as exc:
        dry.entries.setdefault(
            (owner, request.name, "error"), Entry(where, label, problem=str(exc))
        )
        return
    key = (owner, request.name, spec.key(), settings)
    if key in dry.entries:
        return
    entry = Entry(where, label, notes=notes)
    dry.entries[key] = entry
    try:
        entry.outlook = outlook(spec, settings, cassette, dry.record_mode)
    except SynthError as exc:
        entry.problem = str(exc)
        return
    if entry.outlook.action == "fail":
        hint = rerecord_hint(f"<a test that uses {fixture}>") if fixture else None
        entry.problem = f"a run would fail: {entry.outlook.why}; record with: " + (
            hint or rerecord_hint(owner, item.config)
        )


def _synth_fixture(item: pytest.Item, name: str) -> tuple[Any, str] | None:
    """The request and defining file of the ``synth_fixture`` that answers to ``name`` for
    ``item``, if that is one."""
    definitions = _definitions(item, name)
    if not definitions:
        return None
    found: tuple[Any, str] | None = getattr(definitions[-1].func, "synth_dataset", None)
    return found


def _overridden(item: pytest.Item, name: str) -> bool:
    """Whether a fixture of the project replaces the plugin's ``name`` for ``item``."""
    definitions = _definitions(item, name)
    if not definitions:
        return False
    module = str(getattr(definitions[-1].func, "__module__", "") or "")
    return not module.startswith("pytest_synthdata")


def _definitions(item: pytest.Item, name: str) -> list[Any]:
    manager = getattr(item.session, "_fixturemanager", None)
    found = manager.getfixturedefs(name, item) if manager is not None else None
    return list(found or ())


def lines(dry: DryRun) -> list[str]:
    """The section's lines: one per dataset, the total, what is not estimated (masked and
    escaped, as the summary's are)."""
    from ..dryrun import cost, cost_text, dollars
    from ..storage.secrets import redact
    from ..terminal_safe import escape_controls

    out = [f"dry run: no test ran and nothing was sent (record mode {dry.record_mode!r})"]
    requests = prompt = completion = reasks = 0
    for entry in dry.entries.values():
        found = entry.outlook
        head = f"{entry.where}: {entry.label}" if entry.label else entry.where
        if entry.problem:
            out.append(f"{head}: {entry.problem}")
            continue
        assert found is not None
        plan = found.plan
        if found.action == "replay" or plan is None:
            text = "replay (the cassette holds them): nothing to send"
        else:
            verb = (
                f"grow by {found.n - found.stored} (the cassette holds {found.stored})"
                if found.action == "grow"
                else f"record {found.n}"
            )
            text = (
                f"{verb}: {plan.requests} request(s), {plan.prompt_tokens} prompt + "
                f"{plan.completion_tokens} completion tokens"
            )
            if dry.prices is not None:
                text += (
                    f", {dollars(cost(plan.prompt_tokens, plan.completion_tokens, *dry.prices))}"
                )
            requests += plan.requests
            prompt += plan.prompt_tokens
            completion += plan.completion_tokens
            reasks += plan.most_reasks
        out.append(f"{head}: {text}" + "".join(f"; {note}" for note in entry.notes))
    out.append(
        f"total: {requests} request(s), {prompt} prompt + {completion} completion = "
        f"{prompt + completion} tokens (plus at most {reasks} re-ask(s) if answers are invalid)"
    )
    if dry.prices is not None:
        out.append(f"estimated cost: {cost_text(prompt, completion, dry.prices)}")
    if not dry.entries:
        out.insert(1, "no collected test uses a synth marker or a synth_fixture")
    for where, why in sorted(dry.unknown.items()):
        out.append(f"not estimated: {where}: {why}")
    return [escape_controls(redact(line)) for line in out]
