"""The marker and the command read an examples file the same way: the same file gives the
same examples in the prompt (dotted columns nest, a JSON cell is its value)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from command import synthdata
from fakellm import FakeLLM

MODELS = """
from pydantic import BaseModel


class Address(BaseModel):
    street: str
    city: str


class Customer(BaseModel):
    name: str
    address: Address
    tags: list[str]
    note: str | None = None
"""

ROWS = [
    {"name": "Ada", "address": {"street": "1 Rue", "city": "Paris"}, "tags": ["a"]},
    {"name": "Bo", "address": {"street": "2 Way", "city": "Oslo"}, "tags": [], "note": "[x]"},
]

FILES = {
    "seeds.csv": "name,address.street,address.city,tags,note\r\n"
    'Ada,1 Rue,Paris,"[""a""]",\r\n'
    'Bo,2 Way,Oslo,[],"""[x]"""\r\n',
    "seeds.json": json.dumps(ROWS),
    "seeds.jsonl": "".join(json.dumps(row) + "\n" for row in ROWS),
}


def examples_of(prompt: str) -> list[str]:
    lines = prompt.split("Examples of records (follow their style, do not copy them):\n")[1]
    return lines.split("\n\n")[0].splitlines()


@pytest.mark.parametrize("name", sorted(FILES))
def test_marker_and_command_read_a_file_alike(
    pytester: pytest.Pytester, llm_env: FakeLLM, tmp_path: Path, name: str
) -> None:
    for folder in (pytester.path, tmp_path):
        (folder / "shop.py").write_text(MODELS)
        (folder / name).write_text(FILES[name], newline="")
    pytester.makepyfile(
        test_marked=f"""
        import pytest
        from shop import Customer

        @pytest.mark.synth(Customer, n=2, examples={name!r})
        def test_customers(synth_data):
            assert len(synth_data) == 2
        """
    )
    pytester.syspathinsert()
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    marker = examples_of(llm_env.chat_requests[-1].messages[-1]["content"])

    run = synthdata(
        llm_env, tmp_path, "generate", "shop:Customer", "-n", "2", "--examples", name, "--no-cache"
    )
    assert run.code == 0, run
    command = examples_of(llm_env.chat_requests[-1].messages[-1]["content"])
    assert marker == command
    assert command == [
        '1. {"name": "Ada", "address": {"street": "1 Rue", "city": "Paris"}, "tags": ["a"], '
        '"note": null}',
        '2. {"name": "Bo", "address": {"street": "2 Way", "city": "Oslo"}, "tags": [], '
        '"note": "[x]"}',
    ]
