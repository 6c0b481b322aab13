"""The ``synthdata`` command (also ``python -m pytest_synthdata``): datasets outside pytest.

Built on the library (:mod:`..api`, :mod:`..texts`), :mod:`..examples` and :mod:`..storage`,
never on the pytest plugin. Every setting is a flag and an environment variable with the
names the plugin uses (``--concurrency`` / ``SYNTHDATA_CONCURRENCY``); flags win over the
environment, which wins over the defaults. Bad input fails before any request, with a
message that names the input and the fix.

- :mod:`.arguments`: the parser, its flags derived from the settings' declarations;
- :mod:`.inputs`: what the command is given, checked before any request;
- :mod:`.dryrun`: ``--dry-run``'s printout; :mod:`.display`: progress, warnings, last line;
- :mod:`.stopping`: Ctrl-C that keeps the answers already on their way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from ..errors import SynthConfigError, SynthError, set_surface, surface
from .arguments import build_parser
from .batchargs import check_batch_flags
from .inputs import (
    DEFAULT_CACHE,
    check_key,
    import_model,
    output_of,
    prices_of,
    read_preferences,
    settings_of,
    storage_of,
)

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_USAGE", "build_parser", "main"]

EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; the exit status (0 done, 1 failed, 2 bad input, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    before = surface()
    set_surface("command")  # advice in messages names this command's flags
    try:
        return _main(args, dict(os.environ))
    finally:
        set_surface(before)


def _main(args: argparse.Namespace, env: dict[str, str]) -> int:
    if args.command == "batches":
        from .batchcmd import run_batches

        try:
            return run_batches(args, env, sys.stdout)
        except SynthError as exc:
            _say(sys.stderr, f"error: {exc}")
            return EXIT_USAGE if isinstance(exc, SynthConfigError) else EXIT_FAILED
    run = run_generate if args.command in ("generate", "collect") else run_text
    from .display import Warnings

    shown = Warnings(sys.stderr)
    out = sys.stdout  # the records' only writer: what the model's module prints goes to stderr
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("always")  # each distinct one is shown once, by ``shown``
        warnings.showwarning = shown.show
        try:
            return run(args, env, out, sys.stderr)
        except SynthConfigError as exc:
            _say(sys.stderr, f"error: {exc}")
            return EXIT_USAGE
        except KeyboardInterrupt:  # before the run began (importing the model, say)
            _say(sys.stderr, "interrupted before any request was sent")
            return EXIT_INTERRUPTED


def run_generate(
    args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO
) -> int:
    """``synthdata generate``: check everything, then plan (``--dry-run``) or generate."""
    from ..examples import read_items
    from ..spec import make_spec

    settings = settings_of(args, env)
    record_mode, cache_dir = storage_of(args, env)
    prices = prices_of(args, env)
    model = import_model(args.target)
    examples = None if args.examples is None else read_items(args.examples, "examples file")
    output = output_of(args)
    from .diversity import spec_options

    given: dict[str, Any] = {  # what shapes the dataset, for the spec and the run alike
        "examples": examples,
        "subject": args.subject,
        "extra": args.extra,
        "seed": args.seed,
        "unique": args.unique,
        **spec_options(args),  # --sample, --cover
    }
    spec = make_spec(model, args.n, max_n=settings.max_n, **given)
    batched = args.batch or args.batch_file or args.command == "collect"
    check_batch_flags(args, cache_dir)
    if batched:
        from ..batchfiles import batch_prices, check_discount

        discount = check_discount(args.batch_discount)
        prices = None if prices is None else batch_prices(*prices, discount)
    if args.dry_run:
        from .dryrun import print_plan

        print_plan(spec, settings, env, prices, stdout)
        return 0
    if not (args.batch_file or args.command == "collect"):
        check_key(settings, env, args.cassette)

    def work(effective: Any = settings) -> Awaitable[Any]:
        from ..api import agenerate
        from .lines import kept_as_lines

        return kept_as_lines(
            agenerate(
                model,
                args.n,
                **given,
                settings=effective,
                cassette=args.cassette,
                record_mode=record_mode,
                cache_dir=cache_dir,
            )
        )

    run = Run(args, output, cache_dir, prices, "records", stdout, stderr)
    if batched:
        return _batched(run, work, spec, settings, env, cache_dir)
    return run.go(work, grace=min(settings.timeout, 10.0))


def _batched(
    run: Run,
    work: Callable[..., Awaitable[Any]],
    spec: Any,
    settings: Any,
    env: Mapping[str, str],
    cache_dir: Path | None,
) -> int:
    """A batch run: the same generation in passes, each wave answered by a batch."""
    from .batchcmd import BatchFlow, batch_settings

    assert cache_dir is not None  # check_batch_flags
    passes = batch_settings(spec, settings, sync_followups=run.args.batch_followups == "sync")
    say = run.say if not run.args.quiet else (lambda message: None)
    flow = BatchFlow(run.args, env, spec, passes, cache_dir, say, run.display.tally)
    run.display.quiet = True  # each pass replays the answers: the batches' lines are the progress

    def batched() -> Awaitable[Any]:
        return flow.run(lambda: work(passes))

    return run.go(batched, grace=min(settings.timeout, 10.0))


def run_text(
    args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO
) -> int:
    """``synthdata text``: one text per entry of the fields file."""
    from ..examples import read_items
    from ..texts.fidelity import check_collection, check_preferences

    settings = settings_of(args, env)
    record_mode, cache_dir = storage_of(args, env)
    prices = prices_of(args, env)
    entries = read_items(args.fields, "fields file", item="entry", items="entries")
    preferences = read_preferences(args.preferences)
    output = output_of(args)
    check_collection(entries)
    check_preferences(preferences)
    check_key(settings, env, args.cassette)

    def work() -> Awaitable[Any]:
        from ..texts import agenerate_dataset

        return agenerate_dataset(
            entries,
            preferences,
            seed=args.seed,
            settings=settings,
            cassette=args.cassette,
            record_mode=record_mode,
            cache_dir=cache_dir,
        )

    run = Run(args, output, cache_dir, prices, "texts", stdout, stderr, named=False)
    return run.go(work, grace=min(settings.timeout, 10.0))


class Run:
    """One generation of the command: progress on ``stderr``, the output written at the
    end, and a last line that says what it produced, or how far it got and how to go on."""

    def __init__(
        self,
        args: argparse.Namespace,
        output: Path | None,
        cache_dir: Path | None,
        prices: tuple[float, float] | None,
        noun: str,
        stdout: TextIO,
        stderr: TextIO,
        *,
        named: bool = True,
    ) -> None:
        from .display import Display

        self.args, self.output, self.cache_dir, self.prices = args, output, cache_dir, prices
        self.noun, self.stdout, self.stderr = noun, stdout, stderr
        self.display = Display(stderr, quiet=args.quiet, noun=noun, named=named)

    def go(self, work: Callable[[], Awaitable[Any]], *, grace: float) -> int:
        from ..progress import listening
        from .stopping import Stopped, stoppable

        if self.cache_dir is not None:
            ignored(self.cache_dir)
        notice = self.say
        try:
            with listening(self.display):
                dataset = asyncio.run(_own_loop(stoppable(work, notice, grace)))
        except (KeyboardInterrupt, Stopped):
            self.display.close()
            self.say(f"interrupted: {self.how_far()}; {self.resume_hint()}")
            return EXIT_INTERRUPTED
        except SynthConfigError:
            self.display.close()
            raise
        except SynthError as exc:
            self.display.close()
            self.say(f"error: {exc}")
            self.say(f"stopped after {self.how_far()}; {self.resume_hint()}")
            return EXIT_FAILED
        self.display.close()
        return self.write(dataset)

    def write(self, dataset: Any) -> int:
        from ..examples import write_rows
        from .display import summary
        from .lines import output_rows

        handed = getattr(dataset, "handed", None)
        if handed is not None:  # a batch run that wrote or submitted requests
            self.say(handed)
            return 0

        try:
            write_rows(
                output_rows(dataset),
                self.output,
                self.stdout,
                spreadsheet_safe=self.args.spreadsheet_safe,
            )
        except SynthError as exc:
            self.say(f"error: {exc}")
            if isinstance(exc.__cause__, OSError):
                self.say(self.resume_hint())
            return EXIT_FAILED
        report = getattr(dataset, "diversity", None)
        if report is not None and not self.args.quiet:  # the report, then the final line
            from ..terminal_safe import escape_controls

            self.stderr.write("".join(f"{escape_controls(line)}\n" for line in report.lines()))
        where = str(self.output) if self.output is not None else "standard output"
        tally = self.display.tally
        line = summary(
            tally, dataset.usage, len(dataset), self.noun, where, self.display.elapsed, self.prices
        )
        self.stderr.write(line + "\n")
        self.stderr.flush()
        return 0

    def say(self, message: str) -> None:
        self.display.close()  # a bar would be drawn over the message
        _say(self.stderr, message)

    def how_far(self) -> str:
        tally = self.display.tally
        noun = self.noun
        got = f"{tally.done} of {tally.total} {noun}" if tally.total else f"no {noun} yet"
        return f"{got} ({tally.sent} request(s) sent, {tally.reused} replayed)"

    def resume_hint(self) -> str:
        if self.cache_dir is None:
            return "nothing was kept (--no-cache): a new run starts over"
        return (
            f"the answers received so far are kept in {self.cache_dir}; run the same command "
            "again to go on from there"
        )


async def _own_loop(coro: Awaitable[Any]) -> Any:
    """The library's blocking calls mark the loop as theirs alone; so does the command."""
    from ..llm import LOOP_OF_ITS_OWN

    LOOP_OF_ITS_OWN.set(True)
    return await coro


def ignored(folder: Path) -> None:
    """A cache folder the command creates gets a ``.gitignore`` holding ``*`` (as pytest's
    own cache folder does), so it is never committed; a folder the user already has is left
    alone unless it is the default one."""
    ignore = folder / ".gitignore"
    if folder.exists() and (folder.name != DEFAULT_CACHE or ignore.exists()):
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        ignore.write_text("# Created by the synthdata command.\n*\n", encoding="utf-8")
    except OSError:
        return  # the cache reports a folder it cannot use itself


def _say(stream: TextIO, message: str) -> None:
    """Every line the command writes on standard error but the report: secrets masked,
    control characters shown, never acted on (a line break of the layout kept)."""
    from ..storage.secrets import mask
    from ..terminal_safe import escape_controls

    stream.write(f"synthdata: {escape_controls(mask(message), keep=chr(10))}\n")
    stream.flush()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
