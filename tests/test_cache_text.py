"""A dataset kept in the response cache is the same text, byte for byte, as the JSON of its
stored entry, though it is joined from each item's escaped line: with quotes, backslashes,
control characters, the characters YAML reads as line breaks, and text beyond ASCII, in the
items and in the label; and a run reads it back from the cache as the records it stored."""

from __future__ import annotations

import json
import random
from pathlib import Path

from fakellm import FakeLLM
from models import EXAMPLES, MedicalBilling

from pytest_synthdata import generate
from pytest_synthdata.storage.datasets import (
    EncodedItem,
    cache_text,
    encode,
    from_cache,
    to_cache,
)

TRICKY = ['a', 'Z', '"', "\\", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "\x85", "\u2028",
          "\u2029", "é", "😀", "/", " ", "{", "}", "\\u0085"]  # fmt: skip


def text_of(rng: random.Random, most: int = 12) -> str:
    return "".join(rng.choice(TRICKY) for _ in range(rng.randint(0, most)))


def test_the_cached_text_is_the_json_of_the_stored_entry() -> None:
    rng = random.Random(7)
    for _ in range(300):
        items: list[object] = []
        for _ in range(rng.randint(0, 8)):
            item = {"name": text_of(rng), "x": rng.random(), "list": [1, None, True, text_of(rng)]}
            as_sent = json.dumps(item, ensure_ascii=False)
            items.append(EncodedItem(as_sent) if rng.random() < 0.5 else item)
        label, usage = text_of(rng, 6), {"prompt_tokens": rng.randint(0, 99), 'odd"name': 3}
        expected = json.dumps(encode(label, items, usage), ensure_ascii=False)
        assert cache_text(label, items, usage) == expected


def test_a_cached_dataset_reads_back_as_its_items(tmp_path: Path) -> None:
    items: list[object] = [{"name": 'say "hi"\u2028now', "n": 1}, EncodedItem('{"name": "é"}')]
    to_cache(tmp_path, "key", cache_text("Thing", items, {"prompt_tokens": 5}))
    stored = from_cache(tmp_path, "key")
    assert stored is not None
    assert [json.loads(line) for line in stored.lines] == [
        {"name": 'say "hi"\u2028now', "n": 1},
        {"name": "é"},
    ]
    assert stored.usage == {"prompt_tokens": 5}


def test_a_run_reads_its_dataset_back_from_the_cache(llm_env: FakeLLM, tmp_path: Path) -> None:
    first = generate(MedicalBilling, 12, examples=EXAMPLES, seed=5, cache_dir=tmp_path)
    sent = llm_env.request_count
    assert sent > 0
    again = generate(MedicalBilling, 12, examples=EXAMPLES, seed=5, cache_dir=tmp_path)
    assert [r.model_dump() for r in again] == [r.model_dump() for r in first]
    assert llm_env.request_count == sent  # read from the cache, nothing asked again
