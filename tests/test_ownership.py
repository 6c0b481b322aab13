"""Who owns a cassette, and what ``--synth-update`` may delete, over real runs (pytester
subprocesses, so nothing a run opened is remembered by the next) and real files on disk.

Each cassette names its owner whenever it is recorded into: the test, the conftest fixture,
or the library call and the test it runs in. A file no collected test or fixture uses is
deleted only when every owner it names is gone from a full collection; a file that names no
owner, or that pytest-synthdata did not write, is kept and reported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakellm import FakeLLM

from pytest_synthdata.storage.cassettes import YamlSerializer

MODEL = """
import os
import pathlib

import pytest
from pydantic import BaseModel
from pytest_synthdata import generate


class Bill(BaseModel):
    patient_id: int
    patient_name: str


SHARED = pathlib.Path(__file__).parent / "cassettes" / "shared" / "bills.synth.yaml"
SKIP = os.environ.get("SKIP_LIBRARY") == "1"
"""

BILLING = (
    MODEL
    + """

@pytest.mark.synth(Bill, n=2)
def test_bills(synth_data):
    assert len(synth_data) == 2


def test_factory(synth_factory):
    assert len(synth_factory(Bill, n=2, extra="from the factory")) == 2
"""
)

LIBRARY = {
    "skipif": """
@pytest.mark.skipif(SKIP, reason="not on this run")
def test_library():
    assert len(generate(Bill, 2, cassette=SHARED)) == 2
""",
    "skip inside": """
def test_library():
    if SKIP:
        pytest.skip("not on this run")
    assert len(generate(Bill, 2, cassette=SHARED)) == 2
""",
    "parametrized": """
@pytest.mark.parametrize(
    "size", [pytest.param(1, marks=pytest.mark.skipif(SKIP, reason="not here")), 2]
)
def test_library(size):
    if size == 2 and SKIP:
        pytest.skip("not on this run")
    assert len(generate(Bill, 2, cassette=SHARED)) == 2
""",
    "importorskip": """
if SKIP:
    pytest.importorskip("no_such_module_here")


def test_library():
    assert len(generate(Bill, 2, cassette=SHARED)) == 2
""",
}


def cassette(pytester: pytest.Pytester, *parts: str) -> Path:
    return pytester.path.joinpath("cassettes", *parts)


def owner(path: Path) -> Any:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data["metadata"]["owner"]


def run(
    pytester: pytest.Pytester, *args: str, skip: bool = False, **outcomes: int
) -> pytest.RunResult:
    """A pytest run in a subprocess (with ``SKIP_LIBRARY=1`` when ``skip``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKIP_LIBRARY", "1" if skip else "0")
        result = pytester.runpytest_subprocess("--synth-no-cache", *args)
    result.assert_outcomes(**outcomes)
    return result


def snapshot(pytester: pytest.Pytester) -> dict[Path, bytes]:
    """Every file under the cassettes folder, by path."""
    return {p: p.read_bytes() for p in sorted(cassette(pytester).rglob("*")) if p.is_file()}


# --- the owner recorded ------------------------------------------------------------------------


def test_each_cassette_names_its_owner_and_replays_the_same(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makepyfile(test_billing=BILLING + LIBRARY["skipif"])
    run(pytester, passed=3)
    assert owner(cassette(pytester, "test_billing", "test_bills.synth.yaml")) == {
        "kind": "test",
        "id": "test_billing.py::test_bills",
        "test": None,
    }
    assert owner(cassette(pytester, "test_billing", "test_factory.synth.yaml"))["id"] == (
        "test_billing.py::test_factory"
    )
    assert owner(cassette(pytester, "shared", "bills.synth.yaml")) == {
        "kind": "library",
        "id": "generate",
        "test": "test_billing.py::test_library",
    }
    before = snapshot(pytester)
    requests = llm_env.request_count
    # the owner is sealed like the rest: an edit of it is a tampered cassette
    shared = cassette(pytester, "shared", "bills.synth.yaml")
    edited = shared.read_text().replace("test_billing.py::test_library", "elsewhere.py::x")
    shared.write_text(edited)
    broken = run(pytester, "--synth-record-mode=none", passed=2, failed=1)
    assert "does not match its checksum" in broken.stdout.str()
    shared.write_bytes(before[shared])
    # a replay reads past the owner, sends nothing and changes no file
    run(pytester, "--synth-record-mode=none", passed=3)
    assert llm_env.request_count == requests
    assert snapshot(pytester) == before


# --- a library call's cassette -----------------------------------------------------------------


@pytest.mark.parametrize("how", [*LIBRARY, "xdist"])
def test_a_library_cassette_is_kept_while_its_test_is_collected(
    pytester: pytest.Pytester, llm_env: FakeLLM, how: str
) -> None:
    """The test that writes a library call's cassette is skipped on this run (so it does
    not open it): the file is its test's, which is still collected, and stays as it is;
    once the test is gone, the file goes."""
    source = LIBRARY["skipif" if how == "xdist" else how]
    xdist = ["-n", "2"] if how == "xdist" else []
    pytester.makepyfile(test_billing=BILLING, test_library=MODEL + source)
    calls = 2 if how == "parametrized" else 1
    run(pytester, *xdist, passed=2 + calls)
    shared = cassette(pytester, "shared", "bills.synth.yaml")
    assert owner(shared)["test"] == "test_library.py::test_library"
    before = shared.read_bytes()

    skipped = 1 if how == "importorskip" else calls  # a module skipped as a whole: one
    result = run(pytester, *xdist, "--synth-update", skip=True, passed=2, skipped=skipped)
    assert shared.read_bytes() == before
    why = (
        "is in a module this run left out on purpose"
        if how == "importorskip"
        else "is still collected"
    )
    result.stdout.fnmatch_lines(
        [
            "update: *, 0 stale cassette file(s) deleted",
            "  kept      cassettes/shared/bills.synth.yaml: its owner, a library call "
            f"(generate) in test test_library.py::test_library, {why}",
        ]
    )

    (pytester.path / "test_library.py").unlink()
    gone = run(pytester, *xdist, "--synth-update", passed=2)
    gone.stdout.fnmatch_lines(["  deleted   cassettes/shared/bills.synth.yaml"])
    assert not shared.exists()
    assert cassette(pytester, "test_billing", "test_bills.synth.yaml").is_file()


def test_a_library_call_outside_any_test_is_never_deleted(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makepyfile(test_billing=BILLING)
    script = pytester.path / "make_data.py"
    script.write_text(
        MODEL.replace("pathlib.Path(__file__).parent", "pathlib.Path.cwd()")
        + "\nassert len(generate(Bill, 2, cassette=SHARED)) == 2\n"
    )
    outside = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    subprocess.run([sys.executable, str(script)], cwd=pytester.path, env=outside, check=True)
    shared = cassette(pytester, "shared", "bills.synth.yaml")
    assert owner(shared) == {"kind": "library", "id": "generate", "test": None}
    before = shared.read_bytes()
    result = run(pytester, "--synth-update", passed=2)
    result.stdout.fnmatch_lines(
        [
            "update: *, 0 stale cassette file(s) deleted",
            "  kept      cassettes/shared/bills.synth.yaml: its owner is a library call "
            "(generate) outside any test",
        ]
    )
    assert shared.read_bytes() == before


# --- tests and fixtures that are gone ----------------------------------------------------------


def test_a_removed_test_loses_its_cassette_and_unowned_files_are_kept(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makepyfile(test_billing=BILLING)
    run(pytester, passed=2)
    bills = cassette(pytester, "test_billing", "test_bills.synth.yaml")
    factory = cassette(pytester, "test_billing", "test_factory.synth.yaml")
    # a cassette recorded before owners were: the same file, sealed, without its owner
    data = YamlSerializer.deserialize(bills.read_text())
    del data["metadata"]["owner"]
    old = cassette(pytester, "test_billing", "test_old.synth.yaml")
    old.write_text(YamlSerializer.serialize(data))
    # files pytest-synthdata did not write: a hand-written cassette, and other YAML
    hand = cassette(pytester, "test_billing", "test_hand.synth.yaml")
    hand.write_text("interactions: []\nversion: 1\n")
    other = cassette(pytester, "test_billing", "notes.yaml")
    other.write_text("written: by hand\n")
    kept = {path: path.read_bytes() for path in (old, hand, other)}

    pytester.makepyfile(test_billing=BILLING.split("\n\ndef test_factory")[0])
    result = run(pytester, "--synth-update", passed=1)
    result.stdout.fnmatch_lines(
        [
            "update: 0 cassette(s) recorded into, 0 pruned, 1 stale cassette file(s) deleted",
            "  deleted   cassettes/test_billing/test_factory.synth.yaml",
            "  kept      cassettes/test_billing/test_hand.synth.yaml: not a file "
            "pytest-synthdata wrote: it has no checksum line*",
            "  kept      cassettes/test_billing/test_old.synth.yaml: no owner recorded, so it "
            "cannot be proven stale (delete it by hand if unused)",
        ]
    )
    assert not factory.exists() and bills.is_file()
    assert {path: path.read_bytes() for path in kept} == kept
    assert "notes.yaml" not in result.stdout.str()
    # a plain run lists only what --synth-update would delete: nothing now
    plain = run(pytester, passed=1)
    assert "--synth-update deletes them" not in plain.stdout.str()


CONFTEST = """
from pydantic import BaseModel
from pytest_synthdata import synth_fixture


class Bill(BaseModel):
    patient_id: int
    patient_name: str


NAME = synth_fixture(Bill, n=2)
"""


def test_a_renamed_conftest_fixture_loses_its_cassette(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makeconftest(CONFTEST.replace("NAME", "bills"))
    pytester.makepyfile(test_uses="def test_uses(bills):\n    assert len(bills) == 2\n")
    run(pytester, passed=1)
    old = cassette(pytester, "conftest", "bills.synth.yaml")
    assert owner(old) == {"kind": "fixture", "id": "bills", "test": None}
    before = old.read_bytes()
    # no test uses it on this run, but the fixture is still defined: it stays
    pytester.makepyfile(test_uses="def test_uses():\n    pass\n")
    result = run(pytester, "--synth-update", passed=1)
    result.stdout.fnmatch_lines(
        [
            "  kept      cassettes/conftest/bills.synth.yaml: its owner, fixture 'bills', "
            "is still defined"
        ]
    )
    assert old.read_bytes() == before

    pytester.makeconftest(CONFTEST.replace("NAME", "invoices"))
    pytester.makepyfile(test_uses="def test_uses(invoices):\n    assert len(invoices) == 2\n")
    renamed = run(pytester, "--synth-update", passed=1)
    renamed.stdout.fnmatch_lines(["  deleted   cassettes/conftest/bills.synth.yaml"])
    assert not old.exists()
    assert owner(cassette(pytester, "conftest", "invoices.synth.yaml"))["id"] == "invoices"


# --- an interrupted --synth-update -------------------------------------------------------------

KILLER = """
import os
import pathlib
import signal

_AT = int(os.environ.get("KILL_AT", "0"))
_COUNT = os.environ.get("KILL_COUNT", "")
_seen = [0]
_paths = []
_inside = [False]


def _note(target):
    if not _inside[0] and os.fspath(target).endswith(".synth.yaml"):
        _seen[0] += 1
        _paths.append(os.fspath(target))
        if _seen[0] == _AT:
            os.kill(os.getpid(), signal.SIGKILL)


def _wrap(real):
    def changed(path, *args, **kwargs):
        _note(args[0] if args else path)  # os.replace(src, dst): the cassette is dst
        return real(path, *args, **kwargs)

    return changed


def _wrap_path(real):
    # Python 3.10's Path.unlink calls the os.unlink it bound at import: count it here, once
    def changed(self, *args, **kwargs):
        _note(self)
        _inside[0] = True
        try:
            return real(self, *args, **kwargs)
        finally:
            _inside[0] = False

    return changed


os.replace = _wrap(os.replace)
os.unlink = _wrap(os.unlink)
pathlib.Path.unlink = _wrap_path(pathlib.Path.unlink)


def pytest_unconfigure(config):
    if _COUNT:
        with open(_COUNT, "w") as handle:
            handle.write("\\n".join(_paths))
"""


def test_an_update_killed_at_any_moment_leaves_each_cassette_before_or_after(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``kill -9`` before each file change of ``--synth-update`` (prunes, deletions): each
    cassette is byte for byte as it was, or as the finished run leaves it."""
    gone = "\n\ndef test_gone_NAME(synth_factory):\n    synth_factory(Bill, n=1, extra='NAME')\n"
    suite = BILLING.replace("n=2)\ndef test_bills", "n=3)\ndef test_bills").replace(
        "len(synth_data) == 2", "len(synth_data) == 3"
    )
    pytester.makepyfile(
        test_billing=suite + LIBRARY["skipif"] + gone.replace("NAME", "a"),
        test_other=MODEL + gone.replace("NAME", "b"),
    )
    run(pytester, passed=5)
    before = snapshot(pytester)
    # smaller n (pruned), a removed test and a removed module (deleted), a skipped library
    # call (kept)
    pytester.makepyfile(test_billing=BILLING + LIBRARY["skipif"])
    (pytester.path / "test_other.py").unlink()
    pytester.makepyfile(killer=KILLER)
    requests = llm_env.request_count

    counted = pytester.path / "count"
    monkeypatch.setenv("KILL_COUNT", str(counted))
    done = run(pytester, "-p", "killer", "--synth-update", skip=True, passed=2, skipped=1)
    done.stdout.fnmatch_lines(
        ["update: 0 cassette(s) recorded into, 1 pruned, 2 stale cassette file(s) deleted"]
    )
    after = snapshot(pytester)
    changed = counted.read_text().splitlines()
    changes = len(changed)
    assert changes == 3, changed
    assert (
        after[cassette(pytester, "shared", "bills.synth.yaml")]
        == (before[cassette(pytester, "shared", "bills.synth.yaml")])
    )
    monkeypatch.delenv("KILL_COUNT")

    for at in range(1, changes + 1):
        for path in snapshot(pytester):
            path.unlink()
        for path, data in before.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        monkeypatch.setenv("KILL_AT", str(at))
        with monkeypatch.context() as patch:
            patch.setenv("SKIP_LIBRARY", "1")
            killed = pytester.runpytest_subprocess(
                "-p", "killer", "--synth-no-cache", "--synth-update"
            )
        assert killed.ret == -9, killed.stdout.str()
        left = {path: data for path, data in snapshot(pytester).items() if path.suffix != ".tmp"}
        for path in before.keys() | after.keys():
            now = left.get(path)
            assert now in (before.get(path), after.get(path)), (at, path)
        assert set(left) <= before.keys() | after.keys()
        if at == 1:  # killed between writing the pruned file and its rename
            assert [p.name for p in snapshot(pytester) if p.suffix == ".tmp"]
            monkeypatch.delenv("KILL_AT")
            again = run(pytester, "--synth-update", skip=True, passed=2, skipped=1)
            again.stdout.fnmatch_lines(
                ["  removed   cassettes/test_billing/.test_bills.synth.yaml.*.tmp (left by an *"]
            )
            assert snapshot(pytester) == after  # the next run finishes the job, leaves no litter
    assert llm_env.request_count == requests


def test_a_cassette_two_tests_record_into_goes_only_when_both_are_gone(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    two = """
MODE = "new_episodes"


@pytest.mark.skipif(SKIP, reason="not on this run")
def test_march():
    assert len(generate(Bill, 2, extra="march", cassette=SHARED, record_mode=MODE)) == 2


def test_april():
    assert len(generate(Bill, 2, extra="april", cassette=SHARED, record_mode=MODE)) == 2
"""
    pytester.makepyfile(test_billing=BILLING, test_library=MODEL + two)
    run(pytester, passed=4)
    shared = cassette(pytester, "shared", "bills.synth.yaml")
    assert [entry["test"] for entry in owner(shared)] == [
        "test_library.py::test_march",
        "test_library.py::test_april",
    ]
    before = shared.read_bytes()
    pytester.makepyfile(test_library=MODEL + two.split("\n\n\ndef test_april")[0])
    # test_april is gone, test_march is skipped: nothing opens the file, one owner remains
    result = run(pytester, "--synth-update", skip=True, passed=2, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "  kept      cassettes/shared/bills.synth.yaml: its owner, a library call "
            "(generate) in test test_library.py::test_march, is still collected"
        ]
    )
    assert shared.read_bytes() == before
    (pytester.path / "test_library.py").unlink()
    gone = run(pytester, "--synth-update", passed=2)
    gone.stdout.fnmatch_lines(["  deleted   cassettes/shared/bills.synth.yaml"])
