"""The live progress line: records done of n, requests, tokens and retries, while a dataset
is generated.

Only on a terminal: the line is drawn over the current terminal line (``\\r``) and that line
is written back when the line goes, so pytest's own output (``-q`` included) reads exactly as
without it; output that is not a terminal never gets it. In one process the line lives while
a dataset is generated inside a test's setup or call (with pytest's capture suspended, as
pytest's live logging does). Under xdist each worker writes where it stands to a small file
in a folder the controller names, and a thread of the controller shows the workers' lines,
one after the other; pytest writes to the terminal only from inside hooks, so the controller
takes its line away before any hook that writes and draws it again afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..progress import Progress, ProgressDisplay
from ..terminal_safe import escape_controls
from .state import SessionState

POLL_SECONDS = 0.2
"""How often the controller looks at the workers' progress files."""


def describe(progress: Progress) -> str:
    """``MedicalBilling 40/100 records, 2 requests, 5321 tokens, 0 retries``."""
    usage = progress.usage
    tokens = usage.prompt_tokens + usage.completion_tokens
    return (
        f"{escape_controls(progress.label)} {progress.done}/{progress.total} records, "
        f"{usage.requests} request(s), "
        f"{tokens} tokens, {usage.retries} retry(ies)"
    )


class Line:
    """The terminal line itself: drawn over pytest's current line, which it restores.

    It finds pytest's terminal writer on first use (the terminal reporter is registered
    after this plugin is configured)."""

    def __init__(self, config: pytest.Config, *, in_tests: bool) -> None:
        self._config = config
        self._in_tests = in_tests
        self._writer: Any = None
        self._file: Any = None
        self._capture: Any = None
        self._enabled: bool | None = None
        self._shown = False
        self._lock = threading.RLock()

    @property
    def enabled(self) -> bool:
        """On a terminal, and not under ``-qq``."""
        if self._enabled is None:
            config = self._config
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            if reporter is None:
                return False  # not yet: ask again later
            self._writer = getattr(reporter, "_tw", None)
            self._file = getattr(self._writer, "_file", None)
            if self._in_tests:
                self._capture = config.pluginmanager.get_plugin("capturemanager")
            with self._uncaptured():  # while pytest captures, stdout is not the terminal
                terminal = _isatty(self._file)
            self._enabled = (
                terminal and hasattr(self._writer, "_current_line") and config.get_verbosity() >= -1
            )
        return self._enabled

    def _uncaptured(self) -> contextlib.AbstractContextManager[Any]:
        if self._capture is None:
            return contextlib.nullcontext()
        return self._capture.global_and_fixture_disabled()  # type: ignore[no-any-return]

    def _write(self, text: str) -> None:
        with self._uncaptured():
            self._file.write(text)
            self._file.flush()

    @property
    def _width(self) -> int:
        width = int(getattr(self._writer, "fullwidth", 80))
        return max(20, width - 1)

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        text = escape_controls(text)  # a terminal never acts on what a model wrote
        with self._lock:
            width = self._width
            if len(text) > width:
                text = text[: width - 3] + "..."
            self._write("\r" + text.ljust(width))
            self._shown = True

    def hide(self) -> None:
        """Put pytest's current line back where the live line was."""
        with self._lock:
            if not self._shown:
                return
            current = str(getattr(self._writer, "_current_line", ""))
            self._write("\r" + " " * self._width + "\r" + current)
            self._shown = False


class LiveLine:
    """The live line as a :class:`~pytest_synthdata.progress.ProgressDisplay`: each report
    redraws it, closing it puts pytest's line back."""

    def __init__(self, line: Line) -> None:
        self.line = line

    def __call__(self, progress: Progress) -> None:
        self.line.show("synthdata: " + describe(progress))

    def close(self) -> None:
        self.line.hide()


class WorkerFile:
    """An xdist worker's :class:`~pytest_synthdata.progress.ProgressDisplay`: where its
    generations stand goes to a file the controller reads; closing it removes the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, progress: Progress) -> None:
        _write_json(self.path, {"text": describe(progress)})

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


@contextlib.contextmanager
def _displayed(display: ProgressDisplay | None) -> Iterator[ProgressDisplay | None]:
    try:
        yield display
    finally:
        if display is not None:
            display.close()


class Local:
    """The live line of this process's own generations (no xdist, or xdist's ``-n 0``)."""

    def __init__(self, config: pytest.Config) -> None:
        self.line = Line(config, in_tests=True)

    def generating(self) -> contextlib.AbstractContextManager[ProgressDisplay | None]:
        return _displayed(LiveLine(self.line) if self.line.enabled else None)


class Worker:
    """An xdist worker: where its generations stand goes to a file the controller reads."""

    def __init__(self, folder: str, worker: str) -> None:
        self.path = Path(folder) / f"{worker}.json"

    def generating(self) -> contextlib.AbstractContextManager[ProgressDisplay | None]:
        return _displayed(WorkerFile(self.path))


class Controller:
    """xdist's controller: shows the workers' lines, taken away around pytest's output.

    :meth:`start` (at the session's start, before the workers are set up) decides: on a
    terminal it names the folder the workers write to and starts the thread that reads it."""

    def __init__(self, config: pytest.Config) -> None:
        self.line = Line(config, in_tests=False)
        self.folder: str | None = None
        self._paused = 0
        self._shown: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None or not self.line.enabled:
            return
        self.folder = tempfile.mkdtemp(prefix="synthdata-progress-")
        self._thread = threading.Thread(target=self._run, name="synthdata-progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self.refresh()

    def refresh(self) -> None:
        """Read the workers' files and draw the line if it changed."""
        if self.folder is None:
            return
        entries: dict[str, str] = {}
        with contextlib.suppress(OSError):
            for path in sorted(Path(self.folder).glob("*.json")):
                with contextlib.suppress(OSError, ValueError):
                    entries[path.stem] = str(json.loads(path.read_text())["text"])
        with self.line._lock:
            if entries == self._shown or self._paused:
                return
            self._shown = entries
            if entries:
                text = "; ".join(f"[{worker}] {text}" for worker, text in entries.items())
                self.line.show("synthdata: " + text)
            else:
                self.line.hide()

    @contextlib.contextmanager
    def around_output(self) -> Iterator[None]:
        """While pytest writes: the line is away and is not drawn."""
        with self.line._lock:
            self._paused += 1
            self.line.hide()
            self._shown = {}
        try:
            yield
        finally:
            with self.line._lock:
                self._paused -= 1

    def close(self) -> None:
        if self._thread is None or self.folder is None:
            return
        self._stop.set()
        self._thread.join()
        with self.line._lock:
            self._paused += 1
            self.line.hide()
        shutil.rmtree(self.folder, ignore_errors=True)


def attach_live(config: pytest.Config, state: SessionState, workerinput: Any) -> None:
    """The live progress line: this process's own, a worker's report to its controller,
    or (on xdist's controller) the workers' lines."""
    if workerinput is not None:
        folder = workerinput.get("synthdata_progress")
        if folder:
            state.live = Worker(folder, str(workerinput.get("workerid", "gw")))
        return
    if getattr(config.option, "numprocesses", None) and config.option.dist != "no":
        controller = Controller(config)
        state.live = controller
        config.pluginmanager.register(ControllerHooks(controller), "synthdata-live")
    else:
        state.live = Local(config)


class ControllerHooks:
    """Hooks around every hook that makes pytest write to the terminal during the run."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self) -> None:
        self.controller.start()  # before xdist sets its workers up

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logstart(self) -> Iterator[None]:
        with self.controller.around_output():
            return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logreport(self) -> Iterator[None]:
        with self.controller.around_output():
            return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logfinish(self) -> Iterator[None]:
        with self.controller.around_output():
            return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_collectreport(self) -> Iterator[None]:
        with self.controller.around_output():
            return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True, optionalhook=True)
    def pytest_testnodedown(self) -> Iterator[None]:
        with self.controller.around_output():
            return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_internalerror(self) -> Iterator[None]:
        with self.controller.around_output():
            return (yield)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        self.controller.close()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` at once, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(OSError):
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)


def _isatty(file: Any) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError, OSError):
        return False
