"""Every Python and shell example of README.md and of the documentation site (docs/) runs,
in order, against the loopback fake server: no key, no network.

Sybil reads the fenced code blocks of each page; one test per page runs them in order, in
an empty folder of its own holding a copy of ``examples/`` (as a clone's root does):

- ```` ```python ```` runs in the page's namespace (one namespace per page, so a later
  block uses what an earlier one defined);
- ```` ```python title="test_bills.py" ```` (any language, with a title) writes that file
  into the folder instead: a test module, a conftest, a ``pyproject.toml`` ...;
- ```` ```bash ```` runs with ``bash -euo pipefail`` in the folder, with ``python``,
  ``pytest`` and ``synthdata`` of this environment first on the ``PATH``;
- other blocks (``text``, ``console``, ``toml`` without a title ...) are output or
  configuration shown to the reader, and are not run.

Both kinds run with ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` pointing at the fake server,
as a reader's shell points them at their endpoint. A block that cannot run here is
preceded by ``<!-- skip: next "REASON" -->``, where REASON is one of ``SKIP_REASONS``
below, which say why; any other reason fails the test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import SkipTest

import pytest

if not os.environ.get("SYNTHDATA_REQUIRE_DOCS"):  # .ci/run sets it: there, a missing extra fails
    pytest.importorskip("sybil", reason="the docs extra is not installed: pip install -e '.[docs]'")

import sybil
from sybil import Document, Example
from sybil.example import NotEvaluated
from sybil.parsers.markdown import SkipParser
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-docs-example-key-0123456789"
PAGES = [
    *(ROOT / name for name in ("README.md", "CONTRIBUTING.md", "CHANGELOG.md")),
    *sorted((ROOT / "docs").rglob("*.md")),
]

SKIP_REASONS = {
    "fresh-machine": "creates a virtual environment and installs into it from the package "
    "index: .ci/run runs these very commands on every CI run (test_ci_runs_the_readme_"
    "commands checks that they are the same)",
    "installed": "installs into the environment the tests run in; tests/test_docs_install.py "
    "runs README.md's install block, as written, in a fresh virtual environment",
    "hosted": "sets up or calls an endpoint CI does not have (OpenAI, Azure OpenAI, Ollama, "
    "vLLM, llama.cpp); the blocks after it run the same calls against the fake server",
    "fake-server": "starts the fake server on a fixed port in the foreground; this test runs "
    "the same server on a free port and sets OPENAI_BASE_URL and OPENAI_API_KEY to it",
    "clone": "clones the repository or works on its checkout; CONTRIBUTING.md's commands are "
    "what .ci/run does",
    "long": "runs the benchmarks (minutes) or the real-model tier (a model download and a "
    "build): .ci/run runs the real-model tier, and the benchmarks are run by hand",
}

INFO = re.compile(r'(?P<language>[\w+-]*)(?:[ \t]+title="(?P<title>[^"]+)")?[^\n]*$\n', re.M)
SHOWN = {"", "text", "console", "toml", "yaml", "ini", "json", "jsonl", "csv", "markdown"}


def evaluate(example: Example) -> None:
    language, title, source = example.parsed
    namespace: dict[str, Any] = example.namespace
    folder: Path = namespace["__folder__"]
    if title:
        path = folder / title
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(source), encoding="utf-8")
    elif language == "python":
        code = compile(str(source), f"{example.path}:{example.line}", "exec")
        exec(code, namespace)
    elif language == "bash":
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", str(source)],
            cwd=folder,
            env=namespace["__env__"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if os.environ.get("SYNTHDATA_DOCS_ECHO"):  # to copy real output into a page
            print(f"$ {source}{done.stdout}{done.stderr}", file=sys.__stderr__)
        if done.returncode != 0:
            raise AssertionError(
                f"exit status {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n"
                f"{done.stderr}"
            )
    elif language not in SHOWN:
        raise AssertionError(f"a ```{language} block: run it (python, bash) or show it as text")


class FenceParser:
    """Every fenced code block, with its language and its ``title="..."``."""

    def __init__(self) -> None:
        self.lexer = RawFencedCodeBlockLexer(info_pattern=INFO)

    def __call__(self, document: Document) -> Any:
        for region in self.lexer(document):
            lexemes = region.lexemes
            region.parsed = (lexemes["language"], lexemes["title"], lexemes["source"])
            region.evaluator = evaluate
            yield region


def parse(page: Path) -> Document:
    return sybil.Sybil(parsers=[FenceParser(), SkipParser()]).parse(page)


def shell_env(url: str, origin: str, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHDATA_")}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    env.update(
        OPENAI_BASE_URL=url,
        OPENAI_API_KEY=KEY,
        AZURE_OPENAI_ENDPOINT=origin,
        AZURE_OPENAI_API_KEY=KEY,
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
        COLUMNS="100",
        HOME=env.get("HOME", str(folder)),
    )
    return env


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_example_runs(
    page: Path, llm_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "work"
    shutil.copytree(
        ROOT / "examples", folder / "examples", ignore=shutil.ignore_patterns("__pycache__")
    )
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", llm_env.origin)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    document = parse(page)
    # a module of its own, so that pydantic resolves the annotations of the page's models
    module = types.ModuleType("docs_example")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    document.namespace = module.__dict__
    document.namespace.update(
        __folder__=folder, __env__=shell_env(llm_env.url, llm_env.origin, folder)
    )
    for example in document:
        try:
            example.evaluate()
        except (SkipTest, NotEvaluated) as skipped:
            reason = str(skipped)
            assert not reason or reason in SKIP_REASONS, (
                f"{page.name}:{example.line}: skip reason {reason!r} is not one of "
                f"{sorted(SKIP_REASONS)}"
            )
            continue
        except Exception as error:
            raise AssertionError(
                f"the example at {page.relative_to(ROOT)}:{example.line} failed: "
                f"{type(error).__name__}: {error}"
            ) from error


def test_every_page_is_in_the_site() -> None:
    """Every page under docs/ is in mkdocs.yml's navigation, and the navigation names no
    page that does not exist (so no page is published unread, nor tested unpublished)."""
    import yaml

    def pages(entries: object) -> Iterator[str]:
        if isinstance(entries, str):
            yield entries
        elif isinstance(entries, list):
            for entry in entries:
                yield from pages(entry)
        elif isinstance(entries, dict):
            for value in entries.values():
                yield from pages(value)

    nav = set(pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]))
    files = {str(p.relative_to(ROOT / "docs")) for p in PAGES if ROOT / "docs" in p.parents}
    assert nav == files


def _commands(text: str) -> list[str]:
    """The fresh-machine commands: the first bash block after the heading that names them."""
    block = text.split("## Two commands on a fresh machine", 1)[1].split("```bash\n", 1)[1]
    return [
        line.split("#", 1)[0].strip()
        for line in block.split("```", 1)[0].splitlines()
        if line.split("#", 1)[0].strip()
    ]


def test_ci_runs_the_readme_commands() -> None:
    """README.md's two commands on a fresh machine are what .ci/run runs, in its own venv."""
    commands = _commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(commands) == 2, commands
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for command in commands:
        create, install, run = (part.strip() for part in command.split("&&"))
        assert create == "python3 -m venv .venv"
        extras = install.removeprefix(".venv/bin/pip install ")
        assert f"python -m pip install --quiet {extras}" in ci, extras
        tests = run.removeprefix(".venv/bin/")
        assert re.search(rf"^{re.escape(tests)}$", ci, re.M), tests
