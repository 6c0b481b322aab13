"""Where a call's answers come from and go to: the check of cassette and cache paths (a
function of its arguments alone) and the route a call resolves to (its own cassette or
cache, the test's route, or none), then followed through real files and real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakellm import FakeLLM
from models import MedicalBilling

from pytest_synthdata import SynthConfigError, generate
from pytest_synthdata.route import Route, default_route, resolve, using
from pytest_synthdata.storage.paths import check_storage
from pytest_synthdata.storage.recorder import Storage

pytestmark = pytest.mark.usefixtures("fresh_endpoints")


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    """A session's storage, as the plugin makes one (closed after the test)."""
    made = Storage(record_mode="once", cache_dir=tmp_path / "session-cache", use_cache=False)
    yield made
    made.close()


# --------------------------------------------------------------------------- check_storage


def test_a_cassette_that_is_a_folder_is_named_as_the_call_gave_it(tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    with pytest.raises(SynthConfigError) as info:
        check_storage(str(folder) + "/", "once", None)
    message = str(info.value)
    assert message.startswith(f"cassette={str(folder) + '/'!r}: {folder} is a folder")
    assert repr(str(folder / "data.synth.yaml")) in message


def test_what_names_the_cassette_in_the_message(tmp_path: Path) -> None:
    with pytest.raises(SynthConfigError, match=r"^the cassette: .* is a folder"):
        check_storage(tmp_path, "none", None, what="the cassette")


def test_a_cassette_under_a_file_fails_only_when_it_may_record(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    cassette = blocker / "bills.synth.yaml"
    for mode in ("once", "new_episodes", "all", "rewrite"):
        with pytest.raises(SynthConfigError, match=r"cannot be recorded: .* is a file"):
            check_storage(cassette, mode, None)
    check_storage(cassette, "none", None)  # a replay writes nothing


def test_a_cache_folder_that_is_a_file_fails(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.write_text("")
    with pytest.raises(SynthConfigError, match=r"^cache_dir=.*: .* is a file, not a folder"):
        check_storage(None, "once", cache)
    check_storage(None, "once", tmp_path / "new" / "cache")  # created when missing


def test_check_storage_reads_no_test_route(tmp_path: Path, storage: Storage) -> None:
    """With nothing given it checks nothing, even while a test's route names a folder."""
    with using(Route.for_test(storage, tmp_path, "hint")):
        check_storage(None, "once", None)


# --------------------------------------------------------------------------- resolve


def test_a_library_call_with_a_cassette_has_a_route_of_its_own(
    tmp_path: Path, storage: Storage
) -> None:
    cassette = tmp_path / "bills.synth.yaml"
    client = object()
    with using(Route.for_test(storage, tmp_path / "test.synth.yaml", "pytest hint")):
        route = resolve("generate", client=client, cassette=str(cassette), record_mode="none")
    assert route == Route(
        client=client,
        cassette=cassette,
        record_mode="none",
        rerecord=(
            f"generate(..., cassette={str(cassette)!r}, record_mode='rewrite') (or "
            "record_mode='new_episodes' to record only what is missing)"
        ),
    )
    assert route.stores and not route.in_test
    assert route.dataset_cache() is None  # with a cassette, the recording is the only source


def test_a_library_call_with_a_cache_folder_keeps_datasets_there(tmp_path: Path) -> None:
    route = resolve("extract", cache_dir=tmp_path / "cache")
    assert (route.cassette, route.cache, route.rerecord) == (None, tmp_path / "cache", "")
    assert route.stores and route.dataset_cache() == tmp_path / "cache"
    fresh = resolve("extract", cache_dir=tmp_path / "cache", record_mode="rewrite")
    assert fresh.dataset_cache() is None  # a mode that records afresh reads nothing stored


def test_a_call_inside_a_test_takes_the_tests_route(tmp_path: Path, storage: Storage) -> None:
    cassette = tmp_path / "cassettes" / "test_x.synth.yaml"
    client = object()
    assert default_route() is None
    with using(Route.for_test(storage, cassette, "pytest test_x.py --synth-record-mode=rewrite")):
        route = resolve("generate_text", client=client)
    assert default_route() is None  # set for the block only
    assert route.storage is storage and route.in_test
    assert (route.client, route.cassette, route.record_mode) == (client, cassette, "once")
    assert route.rerecord == "pytest test_x.py --synth-record-mode=rewrite"
    assert route.dataset_cache() is None  # a test's cache is its storage's


def test_the_tests_cassette_is_checked_as_the_cassette(tmp_path: Path, storage: Storage) -> None:
    with (
        using(Route.for_test(storage, tmp_path, "hint")),
        pytest.raises(SynthConfigError, match=r"^the cassette: .* is a folder"),
    ):
        resolve("generate")


def test_a_call_with_no_storage_and_no_test_has_a_route_to_nothing() -> None:
    client = object()
    route = resolve("generate", client=client)
    assert route == Route(client=client)
    assert not route.stores and route.stored("dataset:any") is None
    with route.recording("state") as recording:
        assert recording is None


# --------------------------------------------------------------------------- followed


def test_a_library_cassette_replays_its_dataset_without_a_request(
    llm_env: FakeLLM, tmp_path: Path
) -> None:
    cassette = tmp_path / "bills.synth.yaml"
    first = generate(MedicalBilling, 3, seed=2, cassette=cassette)
    assert llm_env.request_count == 1 and cassette.is_file()
    again = generate(MedicalBilling, 3, seed=2, cassette=cassette, record_mode="none")
    assert again == first and llm_env.request_count == 1
    assert again.usage.requests == 1 and again.usage.cache_hits == 0


def test_a_library_cache_answers_the_second_call(llm_env: FakeLLM, tmp_path: Path) -> None:
    first = generate(MedicalBilling, 2, seed=3, cache_dir=tmp_path / "cache")
    again = generate(MedicalBilling, 2, seed=3, cache_dir=tmp_path / "cache")
    assert again == first and llm_env.request_count == 1
    assert again.usage.cache_hits == 1 and again.usage.requests == 0


def test_a_call_on_the_tests_route_records_and_replays_through_the_sessions_storage(
    llm_env: FakeLLM, tmp_path: Path
) -> None:
    cassette = tmp_path / "cassettes" / "test_x.synth.yaml"
    recording = Storage(record_mode="once", use_cache=False)
    try:
        with using(Route.for_test(recording, cassette, "hint")):
            first = generate(MedicalBilling, 2, seed=4)
    finally:
        recording.close()
    assert cassette.is_file() and recording.counters.recorded == 1
    replaying = Storage(record_mode="none", use_cache=False)
    try:
        with using(Route.for_test(replaying, cassette, "hint")):
            again = generate(MedicalBilling, 2, seed=4)
    finally:
        replaying.close()
    assert again == first and llm_env.request_count == 1
    assert replaying.counters.replayed == 1  # counted where the session's summary reads it
    assert cassette in replaying.used
    assert set(replaying.uses[cassette].datasets.values()) == {2}  # noted for --synth-update
