"""A model instance holding sets gives the same prompts in every Python process.

Python orders the elements of a set of strings by their hashes, which change with every
process (``PYTHONHASHSEED``). A cassette recorded in one process must still replay in the
next, CI included: these tests record in a process with one hash seed, then replay with
others, with nothing listening at the endpoint's address.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fakellm import FakeLLM

FAKE_KEY = "sk-test-fake-key-0123456789"
NOBODY = "http://127.0.0.1:9/v1"  # nothing listens there: a replay must not need it

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pydantic import BaseModel, Field
    from pytest_synthdata import generate, samplers
    from pytest_synthdata.texts import generate_text, round_trip

    WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"]

    class Venue(BaseModel):
        name: str
        features: frozenset[str]

    class Event(BaseModel):
        title: str
        tags: set[str]
        venue: Venue

    class Note(BaseModel):
        text: str
        labels: frozenset[str]

    class Ticket(BaseModel):
        name: str
        tags: frozenset[str]
        notes: list[Note]

    class Kit(BaseModel):
        name: str
        parts: set[str] = Field(default=set(WORDS), examples=[frozenset(WORDS[:5])])
        colours: frozenset[str]

    def plain(record):  # what the test compares: the sets as sorted lists
        return json.loads(json.dumps(record.model_dump(), sort_keys=True, default=sorted))

    folder, mode, call = sys.argv[1:]
    event = Event(
        title="Gala",
        tags=set(WORDS),
        venue=Venue(name="Hall", features=frozenset(w.upper() for w in WORDS)),
    )
    common = {"cassette": f"{folder}/{call}.synth.yaml", "record_mode": mode, "seed": 3}
    if call == "text":
        out = generate_text(event, **common)
    elif call == "trip":
        report = round_trip([event], **common)
        out = [report.texts, [plain(r) for r in report.extracted], report.accuracy]
    elif call == "examples":
        example = Ticket(
            name="Ada",
            tags=frozenset(WORDS),
            notes=[Note(text="first", labels=frozenset(WORDS[:6]))],
        )
        out = [plain(t) for t in generate(Ticket, n=3, examples=[example], **common)]
    elif call == "unique":  # later batches are shown the values records already took
        notes = generate(Note, n=8, batch_size=2, concurrency=1, unique="labels", **common)
        out = [plain(t) for t in notes]
    else:  # a default, a field's example and a sampled value that are sets
        colours = samplers.values([set(WORDS[3:])], cycle=True)
        out = [plain(k) for k in generate(Kit, n=2, sample={"colours": colours}, **common)]
    print(json.dumps(out))
    """
)
CALLS = ["text", "trip", "examples", "unique", "schema"]


def _run(
    folder: Path, call: str, mode: str, hash_seed: int, base_url: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNTHDATA_", "OPENAI_"))}
    env.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY=FAKE_KEY, PYTHONHASHSEED=str(hash_seed))
    script = folder / "calls.py"
    script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), str(folder), mode, call],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _result(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


WORDS = '["alpha", "beta", "delta", "epsilon", "eta", "gamma", "iota", "theta", "zeta"]'
SHOWN = {  # what the model is shown of each call's sets: their elements in order
    "text": [f'"tags": {WORDS}', '"features": ["ALPHA", "BETA", "DELTA", "EPSILON", "ETA", '],
    "trip": [f'"tags": {WORDS}', '"IOTA", "THETA", "ZETA"]'],
    "examples": [f'"tags": {WORDS}', '"labels": ["alpha", "beta", "delta", "epsilon", "gamma"'],
    "unique": ["These fields must be unique across all records: labels."],
    "schema": [
        f"default {WORDS}",  # a field's default
        'Examples: ["alpha", "beta", "delta", "epsilon", "gamma"]',  # and its example
        '"colours": ["delta", "epsilon", "eta", "iota", "theta", "zeta"]',  # a sampled value
    ],
}


def _prompts(llm: FakeLLM) -> str:
    return "\n".join(
        message["content"]
        for request in llm.chat_requests
        for message in request.body["messages"]
        if isinstance(message.get("content"), str)
    )


@pytest.mark.parametrize("call", CALLS)
def test_sets_in_instances_replay_in_processes_of_other_hash_seeds(
    llm: FakeLLM, tmp_path: Path, call: str
) -> None:
    recorded = _result(_run(tmp_path, call, "once", 1, llm.url))
    sent = llm.request_count
    assert sent > 0
    assert (tmp_path / f"{call}.synth.yaml").is_file()
    prompts = _prompts(llm)
    for text in SHOWN[call]:
        assert text in prompts
    for hash_seed in (2, 3):
        replayed = _run(tmp_path, call, "none", hash_seed, NOBODY)
        assert _result(replayed) == recorded, f"PYTHONHASHSEED={hash_seed}"
    assert llm.request_count == sent


def test_a_rerecording_in_another_process_sends_the_same_requests(
    llm: FakeLLM, tmp_path: Path
) -> None:
    """Recording again (as a re-record does) sends the very same requests: later batches
    are shown the values the records already took, sets among them, in one order."""
    sent: list[list[Any]] = []
    for hash_seed in (1, 2, 3):
        llm.reset()
        folder = tmp_path / str(hash_seed)
        folder.mkdir()
        _result(_run(folder, "unique", "once", hash_seed, llm.url))
        sent.append([request.body for request in llm.chat_requests])
    assert len(sent[0]) > 1
    assert "Values already used by earlier records" in _prompts(llm)
    assert "\n- labels: [" in _prompts(llm)
    assert sent[1] == sent[0]
    assert sent[2] == sent[0]


FORMS = textwrap.dedent(
    """
    import datetime, enum, json
    from pydantic import BaseModel, ConfigDict, Field, RootModel
    from pytest_synthdata.jsonform import json_form

    W = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]

    class Colour(enum.Enum):
        RED = "red"
        GREEN = "green"
        BLUE = "blue"

    class Pin(BaseModel):
        model_config = ConfigDict(frozen=True)
        label: str
        marks: frozenset[str]

    class Tags(RootModel[set[str]]):
        pass

    class Box(BaseModel):
        pairs: frozenset[tuple[str, int]]
        by_id: dict[int, set[str]]
        pins: set[Pin]
        tagged: set[str] = Field(alias="tagSet")
        root: Tags
        days: set[datetime.date]
        colours: set[Colour]

    class Plain(BaseModel):
        name: str
        words: list[str]
        by_key: dict[str, tuple[int, str]]

    box = Box(
        pairs=frozenset((w, i) for i, w in enumerate(W)),
        by_id={2: set(W), 1: set(W[:3])},
        pins={Pin(label=w, marks=frozenset(W[:4])) for w in W[:4]},
        tagSet=set(W),
        root=Tags(set(W)),
        days={datetime.date(2020, 1, i) for i in range(1, 9)},
        colours=set(Colour),
    )
    plain = Plain(name="x", words=W, by_key={w: (i, w) for i, w in enumerate(W)})
    print(json.dumps([
        json.dumps(json_form(box)),
        json.dumps(json_form(box, by_alias=True)),
        json.dumps(json_form([set(W), {"k": frozenset(W)}])),
        json.dumps(json_form(plain)) == json.dumps(plain.model_dump(mode="json")),
    ]))
    """
)


def test_the_json_form_of_a_value_is_the_same_in_every_process(tmp_path: Path) -> None:
    script = tmp_path / "forms.py"
    script.write_text(FORMS)
    outputs = []
    for hash_seed in (1, 2, 3):
        env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
        )
        outputs.append(_result(done))
    assert outputs[1] == outputs[0] and outputs[2] == outputs[0]
    box, by_alias, loose, unchanged = outputs[0]
    words = '["alpha", "beta", "delta", "epsilon", "eta", "gamma", "theta", "zeta"]'
    assert json.loads(box) == {
        "pairs": [["alpha", 0], ["beta", 1], ["delta", 3], ["epsilon", 4], ["eta", 6],
                  ["gamma", 2], ["theta", 7], ["zeta", 5]],
        "by_id": {"2": json.loads(words), "1": ["alpha", "beta", "gamma"]},
        "pins": [
            {"label": label, "marks": ["alpha", "beta", "delta", "gamma"]}
            for label in ("alpha", "beta", "delta", "gamma")
        ],
        "tagged": json.loads(words),
        "root": json.loads(words),
        "days": [f"2020-01-0{i}" for i in range(1, 9)],
        "colours": ["blue", "green", "red"],
    }  # fmt: skip
    assert f'"tagSet": {words}' in by_alias
    assert loose == f'[{words}, {{"k": {words}}}]'
    assert unchanged is True  # without sets: exactly what pydantic writes
