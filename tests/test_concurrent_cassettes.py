"""Library calls running at the same time (tasks of one ``asyncio.gather``, threads) that
share a cassette take turns on it: each records and replays what it would alone, the
cassette ends as a run of the same calls one after the other leaves it, and nothing of one
call's cassette stays in force after it. Calls on different cassettes run at the same time,
each recording into its own. Real ``agenerate`` calls, real HTTP to the loopback server."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import Any

import pytest
from fakellm import FakeLLM
from models import MedicalBilling

from pytest_synthdata import agenerate, generate
from pytest_synthdata.errors import SynthConfigError, SynthRecordingError

SEEDS = (10, 11, 12, 13)


def _options(tmp_path: Path, cache: str | None) -> dict[str, Any]:
    return {"cache_dir": tmp_path / cache} if cache else {}


async def _together(cassettes: list[Path], mode: str, **options: Any) -> list[Any]:
    calls = [
        agenerate(MedicalBilling, 3, seed=seed, cassette=path, record_mode=mode, **options)
        for seed, path in zip(SEEDS, cassettes, strict=True)
    ]
    return list(await asyncio.gather(*calls, return_exceptions=True))


def _one_after_the_other(cassettes: list[Path], mode: str, **options: Any) -> list[Any]:
    return [
        asyncio.run(
            agenerate(MedicalBilling, 3, seed=seed, cassette=path, record_mode=mode, **options)
        )
        for seed, path in zip(SEEDS, cassettes, strict=True)
    ]


@pytest.mark.parametrize("cache", [None, "cache"])
def test_calls_sharing_a_cassette_record_and_replay_as_one_after_the_other(
    llm_env: FakeLLM, tmp_path: Path, cache: str | None
) -> None:
    shared = tmp_path / "shared.synth.yaml"
    serial = tmp_path / "serial.synth.yaml"
    alone = _one_after_the_other([serial] * 4, "new_episodes", **_options(tmp_path, "c1"))

    recorded = asyncio.run(_together([shared] * 4, "new_episodes", **_options(tmp_path, cache)))
    assert [len(result) for result in recorded] == [3, 3, 3, 3]  # no exception among them
    assert recorded == alone
    assert shared.read_bytes() == serial.read_bytes()  # every call's recording, in order

    sent = llm_env.request_count
    replayed = asyncio.run(_together([shared] * 4, "none", **_options(tmp_path, cache)))
    assert replayed == recorded
    assert llm_env.request_count == sent
    assert shared.read_bytes() == serial.read_bytes()  # a replay leaves the file alone

    # Nothing of those cassettes answers a later call without one.
    later = asyncio.run(agenerate(MedicalBilling, 2, seed=99))
    assert len(later) == 2 and llm_env.request_count == sent + 1


def test_calls_sharing_a_cassette_in_once_mode_fail_as_one_after_the_other_would(
    llm_env: FakeLLM, tmp_path: Path
) -> None:
    """``once`` records a cassette that does not exist yet: the first call records it, and
    the others, which it does not hold, get the error they get one after the other."""
    shared = tmp_path / "shared.synth.yaml"
    results = asyncio.run(_together([shared] * 3 + [tmp_path / "own.synth.yaml"], "once"))
    first, *others, own = results
    assert len(first) == 3 and len(own) == 3
    for error in others:
        assert isinstance(error, SynthRecordingError), repr(error)
        assert f"cassette {shared} has no recording of this request" in str(error)
        assert "record_mode='new_episodes'" in str(error)
    assert asyncio.run(_together([shared] * 3 + [tmp_path / "own.synth.yaml"], "none"))[0] == first


def test_calls_on_different_cassettes_run_together_and_record_into_their_own(
    llm_env: FakeLLM, tmp_path: Path
) -> None:
    serial = [tmp_path / f"serial{i}.synth.yaml" for i in range(4)]
    apart = [tmp_path / f"apart{i}.synth.yaml" for i in range(4)]
    alone = _one_after_the_other(serial, "once")

    llm_env.response_delay = 0.5
    recorded = asyncio.run(_together(apart, "once"))
    assert recorded == alone
    assert llm_env.max_in_flight > 1  # they did not wait for each other
    for mine, reference in zip(apart, serial, strict=True):
        assert mine.read_bytes() == reference.read_bytes()  # its own exchange, no other's

    llm_env.reset()
    llm_env.response_delay = 0.5
    shared = tmp_path / "shared.synth.yaml"
    assert asyncio.run(_together([shared] * 4, "new_episodes")) == alone
    assert llm_env.max_in_flight == 1  # one cassette: one call at a time


def test_threads_sharing_a_cassette_take_turns(llm_env: FakeLLM, tmp_path: Path) -> None:
    shared = tmp_path / "shared.synth.yaml"

    def one(seed: int, mode: str) -> Any:
        return generate(MedicalBilling, 3, seed=seed, cassette=shared, record_mode=mode)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        recorded = list(pool.map(one, SEEDS, ["new_episodes"] * 4))
    sent = llm_env.request_count
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        replayed = list(pool.map(one, SEEDS, ["none"] * 4))
    assert [len(result) for result in recorded] == [3, 3, 3, 3]
    assert replayed == recorded and llm_env.request_count == sent
    assert len(generate(MedicalBilling, 2, seed=99)) == 2


def test_a_blocking_call_that_would_wait_for_its_own_event_loop_is_refused(
    llm_env: FakeLLM, tmp_path: Path
) -> None:
    """A blocking ``generate`` inside a running loop stops that loop until it ends, so it
    cannot wait for a task of that loop to finish with the cassette: it is refused before
    anything is sent, and the task finishes."""
    shared = tmp_path / "shared.synth.yaml"

    llm_env.response_delay = 0.5

    async def blocking() -> Any:
        while llm_env.request_count == 0:  # the other task has the cassette and is sending
            await asyncio.sleep(0.01)
        return generate(MedicalBilling, 3, seed=11, cassette=shared, record_mode="new_episodes")

    async def main() -> list[Any]:
        first = agenerate(MedicalBilling, 3, seed=10, cassette=shared, record_mode="new_episodes")
        return list(await asyncio.gather(first, blocking(), return_exceptions=True))

    first, second = asyncio.run(main())
    assert len(first) == 3
    assert isinstance(second, SynthConfigError), repr(second)
    assert f"cassette {shared} is in use by another call of this process" in str(second)
    assert llm_env.request_count == 1


def test_a_call_cancelled_while_it_waits_gives_up_its_turn(
    llm_env: FakeLLM, tmp_path: Path
) -> None:
    shared = tmp_path / "shared.synth.yaml"

    async def main() -> Any:
        first = asyncio.create_task(
            agenerate(MedicalBilling, 3, seed=10, cassette=shared, record_mode="new_episodes")
        )
        waiting = asyncio.create_task(
            agenerate(MedicalBilling, 3, seed=11, cassette=shared, record_mode="new_episodes")
        )
        await asyncio.sleep(0)  # both started: the first has the cassette, the other waits
        waiting.cancel()
        recorded = await first
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert llm_env.request_count == 1  # the cancelled call sent nothing
        after = agenerate(MedicalBilling, 3, seed=12, cassette=shared, record_mode="new_episodes")
        return recorded, await asyncio.wait_for(after, timeout=120)

    recorded, after = asyncio.run(main())
    assert len(recorded) == 3 and len(after) == 3


def test_a_compressed_answer_is_recorded_as_the_same_answer_uncompressed(
    llm_env: FakeLLM, tmp_path: Path
) -> None:
    """The cassette records the answer the transport read (decoded), as vcrpy did."""
    plain, packed = tmp_path / "plain.synth.yaml", tmp_path / "gzip.synth.yaml"
    first = generate(MedicalBilling, 3, seed=1, cassette=plain)
    llm_env.gzip = True
    assert generate(MedicalBilling, 3, seed=1, cassette=packed) == first
    assert llm_env.request_count == 2
    assert packed.read_bytes() == plain.read_bytes()
    assert b"content-encoding" not in packed.read_bytes()
