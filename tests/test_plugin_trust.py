"""The plugin on inputs nobody listed: an examples path that is a pipe or a device, a key
that pytest's assertion message cuts in its middle, a model nested too deeply for a schema.
Each is a clear report, never a hang, a traceback from inside the package or half a key."""

from __future__ import annotations

import os
import textwrap

import pytest
from fakellm import FakeLLM

KEY = "sk-trust-plugin-0123456789abcdefXYZ"


def test_an_examples_path_that_is_a_pipe_or_a_device_is_refused_at_collection(
    pytester: pytest.Pytester,
) -> None:
    os.mkfifo(pytester.path / "pipe.jsonl")
    (pytester.path / "zero.jsonl").symlink_to("/dev/zero")
    pytester.makepyfile(
        textwrap.dedent(
            """
            import pytest
            from pydantic import BaseModel

            class Ticket(BaseModel):
                subject: str

            @pytest.mark.synth(Ticket, n=2, examples="pipe.jsonl")
            def test_pipe(synth_data):
                pass

            @pytest.mark.synth(Ticket, n=2, examples="zero.jsonl")
            def test_zero(synth_data):
                pass

            def test_other():
                pass
            """
        )
    )
    selected = pytester.runpytest_subprocess("-k", "other", timeout=120)  # read, not waited on
    selected.assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess(timeout=120)
    out = result.stdout.str() + result.stderr.str()
    assert "pipe.jsonl is not a regular file" in out, out
    assert "zero.jsonl is not a regular file" in out, out
    assert "MemoryError" not in out and "Traceback" not in out


def test_a_key_cut_by_an_assertion_message_is_masked(
    pytester: pytest.Pytester, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
    pytester.makepyfile(
        textwrap.dedent(
            """
            import os

            def test_local_key(synth_factory):
                key = os.environ["OPENAI_API_KEY"]
                assert key == "nope"
            """
        )
    )
    result = pytester.runpytest("-l", "--junitxml=report.xml")
    out = result.stdout.str() + (pytester.path / "report.xml").read_text()
    assert "...' == 'nope'" in out or "REDACTED" in out
    for start, end in ((0, 12), (len(KEY) - 13, len(KEY))):
        assert KEY[start:end] not in out, out  # neither half of a cut key


def test_a_model_nested_too_deeply_is_a_clear_error(
    pytester: pytest.Pytester, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
    pytester.makepyfile(
        textwrap.dedent(
            """
            from pydantic import BaseModel, create_model

            class Deep0(BaseModel):
                v: int

            DEEP = Deep0
            for i in range(1, 60):
                DEEP = create_model(f"Deep{i}", inner=(DEEP, ...), tag=(str, ...))

            def test_deep(synth_factory):
                synth_factory(DEEP, n=1)
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Deep59: its models nest too deeply for a JSON schema*"])
    assert "RecursionError" not in result.stdout.str()
    assert llm.request_count == 0


def test_the_rerecord_command_runs_from_the_folder_pytest_was_started_in(
    pytester: pytest.Pytester, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    pytester.makeini("[pytest]\n")  # the rootdir: the project, above the tests' folder
    deeper = pytester.path / "sub" / "deeper"
    deeper.mkdir(parents=True)
    (deeper / "test_same.py").write_text(
        textwrap.dedent(
            """
            import pytest
            from pydantic import BaseModel

            class Ticket(BaseModel):
                subject: str

            @pytest.mark.synth(Ticket, n=2)
            def test_x(synth_data):
                pass
            """
        )
    )
    monkeypatch.chdir(deeper)
    replay = pytester.runpytest("--synth-record-mode=none", "test_same.py")
    replay.assert_outcomes(errors=1)
    replay.stdout.fnmatch_lines(["*Record it with: pytest test_same.py::test_x --synth-record*"])
    hinted = pytester.runpytest("test_same.py::test_x", "--synth-record-mode=rewrite")
    hinted.assert_outcomes(passed=1)  # the command as printed, from the same folder
    assert llm.request_count == 1
