"""What the plugin does while pytest collects and sets tests up: the fixtures named by
``synth(..., name=...)``, ``each=True`` as one test per record, markers that cannot work
(an error) or do nothing (a warning), and the collection error of ``synth(Model)``."""

from __future__ import annotations

from typing import Any

import pytest

from ..errors import SynthDataWarning, SynthError
from .fixtures import defined_at, fixture_taken, named_dataset
from .state import RESERVED, STATE, fail, label_of, requests_of, state_of

_REGISTERED = pytest.StashKey[set[str]]()

MARKER_DOC = (
    "synth(Model, n=10, examples=None, subject=None, extra=None, seed=None, unique=None, "
    "sample=None, cover=None, edge_cases=None, near_duplicates=0.9, "
    "name='synth_data', each=False, model=..., temperature=..., ...): generate n validated "
    "records of the pydantic Model with an LLM and inject them into the test as the list "
    "fixture `synth_data` (or the fixture called `name`); each=True makes one test per "
    "record, injected as `synth_record`. See the pytest-synthdata README."
)


TEXT_MARKER_DOC = (
    "synth_text(fields_collection, preferences=None, **options): write one text per entry "
    "of fields_collection (a list of field lists or dicts) with an LLM, each mentioning every "
    "field value and following the preferences, and inject them as the list fixture "
    "`synth_texts` of TextRecord(fields, preferences, text). See the pytest-synthdata README."
)


def register_named(collector: pytest.Collector, obj: object) -> None:
    """Register the fixtures named by ``synth(..., name=...)`` before the test is built."""
    marks = _synth_marks(obj)
    if isinstance(collector, pytest.Module):  # module-level ``pytestmark``
        marks += [mark for mark in collector.own_markers if mark.name == "synth"]
    if marks:
        state_of(collector.config).marked = True
    for mark in marks:
        inject = mark.kwargs.get("name")
        if isinstance(inject, str) and inject.isidentifier() and inject not in RESERVED:
            registered = collector.stash.setdefault(_REGISTERED, set())
            if inject not in registered and fixture_taken(collector, inject) is None:
                registered.add(inject)
                pytest.register_fixture(name=inject, func=_at(obj, collector), node=collector)


def _at(obj: object, collector: pytest.Collector) -> Any:
    """``named_dataset``, defined (for ``--fixtures``) where the marked test is."""
    code = getattr(obj, "__code__", None)
    if code is None:
        return named_dataset
    module = str(getattr(obj, "__module__", None) or collector.name)
    fixture = defined_at(code.co_filename, code.co_firstlineno, module, named_dataset)
    fixture.__doc__ = named_dataset.__doc__
    return fixture


def _synth_marks(obj: object) -> list[pytest.Mark]:
    """The ``synth`` marks stored on a function or class (any object is tolerated)."""
    try:
        stored = getattr(obj, "pytestmark", [])
    except Exception:
        return []
    if not isinstance(stored, (list, tuple)):
        stored = [stored]
    marks = [getattr(mark, "mark", mark) for mark in stored]
    return [mark for mark in marks if isinstance(mark, pytest.Mark) and mark.name == "synth"]


def parametrize_each(metafunc: pytest.Metafunc) -> None:
    """Turn ``each=True`` into one test per record (ids ``Model-i``); never calls the LLM."""
    if not state_of(metafunc.config).marked:
        return
    if metafunc.definition.get_closest_marker("synth") is None:
        return
    requests = requests_of(metafunc.definition)
    each = [r for r in requests if not isinstance(r, SynthError) and r.each]
    state = state_of(metafunc.config)
    if (
        len(each) == 1
        and each[0].name in metafunc.fixturenames
        and fixture_taken(metafunc.definition, each[0].name) is None
        and state.valid(each[0])
    ):
        request = each[0]  # (an invalid one stays one test, which fails with the reason)
        metafunc.parametrize(
            request.name,
            range(request.n),
            ids=[f"{request.model.__name__}-{i}" for i in range(request.n)],
            indirect=True,
        )


def check_markers(item: pytest.Item) -> None:
    """A marker that cannot work is a mistake, not a no-op, whether or not the test asks for
    its fixture: invalid arguments, a taken ``name``, an ``each=True`` fixture not asked for.
    A marker whose list the test does not ask for does nothing: a warning says so."""
    if not state_of(item.config).marked or item.get_closest_marker("synth") is None:
        return
    asked = getattr(item, "fixturenames", ())
    for entry in requests_of(item):
        if isinstance(entry, SynthError):
            fail(item.nodeid, entry)  # even when the test asks for none of its fixtures
        taken = fixture_taken(item, entry.name)
        if taken is not None:
            fail(
                item.nodeid,
                f"{label_of(entry)}: the name {entry.name!r} is already {taken}, so the "
                f"records could never reach the test; choose a name no fixture uses, e.g. "
                f"name={entry.name + '_records'!r}",
            )
        if entry.name in asked:
            continue
        if entry.each:
            fail(
                item.nodeid,
                f"{label_of(entry)} gives one record per test through the {entry.name!r} "
                f"fixture, but the test does not ask for it; add a {entry.name} argument "
                "or drop each=True",
            )
        item.warn(
            SynthDataWarning(
                f"pytest-synthdata: {item.nodeid}: {label_of(entry)} injects its records "
                f"as the {entry.name!r} fixture, but the test does not ask for it, so the "
                f"marker does nothing; add a {entry.name} argument or drop the marker"
            )
        )


def explain_collect_error(collector: pytest.Collector, report: pytest.CollectReport) -> None:
    """A module that cannot be imported because of ``@pytest.mark.synth(Model)`` (the
    model alone) gets an error that says what to write instead; any collection error
    means no cassette can be taken for stale."""
    if not report.failed:
        return
    state = collector.config.stash.get(STATE, None)
    if state is not None:
        state.inventory.collect_errors = True
    if isinstance(collector, pytest.Module):
        from .diagnostics import SYMPTOMS, single_class_markers, single_class_message

        if any(symptom in str(report.longrepr) for symptom in SYMPTOMS):
            found = single_class_markers(collector.path)
            if found:
                report.longrepr = single_class_message(collector.nodeid, found)
