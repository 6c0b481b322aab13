"""The ``synthdata`` command (also ``python -m pytest_synthdata``): datasets outside pytest.

Built on the library (:mod:`.api`, :mod:`.texts`) and :mod:`.storage`, never on the pytest
plugin. Every setting is a flag and an environment variable with the names the plugin uses
(``--concurrency`` / ``SYNTHDATA_CONCURRENCY``); flags win over the environment, which wins
over the defaults. Bad input fails before any request, with a message that names the input
and the fix.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from .errors import SynthConfigError, SynthError
from .inputs import (
    DEFAULT_CACHE,
    PRICE_ENV,
    check_key,
    endpoint,
    import_model,
    output_of,
    prices_of,
    read_preferences,
    settings_of,
    storage_of,
)
from .llm.modes import structured_values
from .options import ENV_PREFIX, HELP, RECORD_MODES, SETTING_NAMES, STORAGE_HELP, env_name

EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130

_INTS = ("concurrency", "max_retries", "max_tokens", "http_retries", "max_n")
_FLOATS = ("temperature", "timeout")

DESCRIPTION = """\
Generate synthetic datasets with an LLM (any OpenAI-compatible endpoint), validated by
your pydantic model, outside pytest: the same engine as the pytest-synthdata plugin."""

EPILOG = f"""\
examples:
  synthdata generate billing:MedicalBilling -n 500 --examples seeds.jsonl -o bills.csv
  synthdata generate billing:MedicalBilling -n 2000 --concurrency 32 --dry-run \\
      --price-in 0.15 --price-out 0.60
  synthdata text fields.jsonl --preferences '{{"style": "tweet"}}' -o texts.jsonl
  python -m pytest_synthdata generate models/billing.py:MedicalBilling -n 10

settings: every setting flag of a command (synthdata generate --help lists them) has an
environment variable of the same name ({ENV_PREFIX}CONCURRENCY for --concurrency ...), as
in the pytest plugin; a flag wins over the variable, which wins over the default. The
endpoint is OPENAI_BASE_URL (or --base-url), the key OPENAI_API_KEY (never written anywhere).

output: the format follows the extension of -o: .jsonl (one record a line), .json (an
array) or .csv (one column per field; a nested model's fields become dotted columns such as
address.city, a list is one cell holding its JSON, None an empty cell). Without -o, JSON
Lines go to standard output. The file is written once the dataset is complete.

resume: answers are kept as they arrive in a response cache ({DEFAULT_CACHE}/ in the current
folder; --cache-dir or {env_name("cache_dir")} to move it, --no-cache to turn it off). A run
that was interrupted (Ctrl-C, kill) and is started again with the same arguments replays
the answers it already has and pays only for the rest; a finished dataset is served whole.

rate limits: requests follow the endpoint's retry-after and x-ratelimit-* headers; a 429
halves the requests in flight and answers bring them back; each request's max_tokens is
sized to its records, so it reserves about what it uses.

exit status: 0 done, 1 the generation failed, 2 bad input, 130 interrupted."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthdata",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    generate = commands.add_parser(
        "generate",
        help="records of a pydantic model",
        description="Generate exactly N valid, distinct records of MODULE:MODEL.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    generate.add_argument(
        "target",
        metavar="MODULE:MODEL",
        help="the pydantic model: a module importable from the current folder (billing, "
        "pkg.models) or a .py file (models/billing.py), a colon, and the class name",
    )
    generate.add_argument(
        "-n", type=int, required=True, metavar="N", help="number of records (exactly N)"
    )
    generate.add_argument(
        "--examples",
        metavar="FILE",
        help="seed examples: a .jsonl, .json (array) or .csv file of records, or strings",
    )
    generate.add_argument("--subject", help="what the records are about (default: the model)")
    generate.add_argument("--extra", help="extra instructions, e.g. 'names must be unusual'")
    generate.add_argument("--seed", type=int, help="sent as the request seed, and in the prompt")
    generate.add_argument(
        "--unique",
        action="append",
        metavar="FIELD",
        help="a field whose values must differ across records (repeat for several)",
    )
    generate.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing: print the planned requests, their estimated prompt and completion "
        "tokens, and the cost when prices are given",
    )
    _common(generate)

    text = commands.add_parser(
        "text",
        help="texts written from field values",
        description="Write one text per entry of FIELDS, mentioning every value of the entry.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    text.add_argument(
        "fields",
        metavar="FIELDS",
        help="a .jsonl or .json (array) file of field sets: JSON objects or arrays, one per text",
    )
    text.add_argument(
        "--preferences",
        metavar="JSON",
        help="preferences for every text: a JSON object, or a .json file holding one "
        '(e.g. \'{"style": "tweet", "max_length": 280}\')',
    )
    text.add_argument("--seed", type=int, help="sent as the request seed")
    _common(text)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    """Output, progress, prices, storage and settings flags (both commands)."""
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output file; the format follows the extension: .jsonl, .json or .csv "
        "(default: JSON Lines on standard output)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress, only the final line"
    )
    for name in ("price_in", "price_out"):
        kind = "prompt" if name == "price_in" else "completion"
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=float,
            metavar="USD",
            help=f"USD per million {kind} tokens, for the cost ({PRICE_ENV[name]})",
        )
    storage = parser.add_argument_group("recording and cache")
    storage.add_argument(
        "--cassette",
        metavar="FILE",
        help="record the HTTP exchanges into this vcrpy cassette (.synth.yaml) and replay "
        "them on later runs, as the library's cassette= does",
    )
    storage.add_argument(
        "--record-mode",
        choices=RECORD_MODES,
        help=STORAGE_HELP["record_mode"] + f" ({env_name('record_mode')}; needs --cassette)",
    )
    storage.add_argument(
        "--cache-dir",
        metavar="DIR",
        help=f"response cache folder, which is what lets a run resume (default {DEFAULT_CACHE} "
        f"in the current folder; {env_name('cache_dir')})",
    )
    storage.add_argument(
        "--no-cache",
        action="store_true",
        default=None,
        help=f"neither read nor write the cache: nothing to resume from ({env_name('no_cache')})",
    )
    settings = parser.add_argument_group("settings (each also SYNTHDATA_<NAME>)")
    for name in SETTING_NAMES:
        flag = f"--{name.replace('_', '-')}"
        help_text = f"{HELP[name]} ({env_name(name)})"
        if name == "structured":
            settings.add_argument(flag, choices=structured_values(), help=help_text)
        elif name == "batch_size":
            settings.add_argument(flag, type=_batch_size, metavar="N|auto", help=help_text)
        elif name in _INTS:
            settings.add_argument(flag, type=int, metavar="N", help=help_text)
        elif name in _FLOATS:
            settings.add_argument(flag, type=float, metavar="X", help=help_text)
        else:
            metavar = "URL" if name == "base_url" else name.upper()
            settings.add_argument(flag, metavar=metavar, help=help_text)


def _batch_size(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'auto', got {text!r}") from None


# --------------------------------------------------------------------------- commands


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; the exit status (0 done, 1 failed, 2 bad input, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    env = dict(os.environ)
    run = run_generate if args.command == "generate" else run_text
    try:
        return run(args, env, sys.stdout, sys.stderr)
    except SynthConfigError as exc:
        _say(sys.stderr, f"error: {exc}")
        return EXIT_USAGE


def run_generate(
    args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO
) -> int:
    """``synthdata generate``: check everything, then plan (``--dry-run``) or generate."""
    from .spec import make_spec

    settings = settings_of(args, env)
    record_mode, cache_dir = storage_of(args, env)
    prices = prices_of(args, env)
    model = import_model(args.target)
    examples = _examples(args.examples)
    output = output_of(args)
    spec = make_spec(
        model,
        args.n,
        examples=examples,
        subject=args.subject,
        extra=args.extra,
        seed=args.seed,
        unique=args.unique,
        max_n=settings.max_n,
    )
    if args.dry_run:
        _dry_run(spec, settings, env, prices, stdout)
        return 0
    check_key(settings, env, args.cassette)

    def work() -> Any:
        from .api import generate

        return generate(
            model,
            args.n,
            examples=examples,
            subject=args.subject,
            extra=args.extra,
            seed=args.seed,
            unique=args.unique,
            settings=settings,
            cassette=args.cassette,
            record_mode=record_mode,
            cache_dir=cache_dir,
        )

    return _run(work, args, output, cache_dir, prices, "records", stdout, stderr)


def run_text(
    args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO, stderr: TextIO
) -> int:
    """``synthdata text``: one text per entry of the fields file."""
    from .datafiles import read_items
    from .texts.fidelity import check_collection, check_preferences

    settings = settings_of(args, env)
    record_mode, cache_dir = storage_of(args, env)
    prices = prices_of(args, env)
    entries = read_items(Path(args.fields), "fields file")
    preferences = read_preferences(args.preferences)
    output = output_of(args)
    if not entries:
        raise SynthConfigError(f"fields file {args.fields} holds no entries")
    check_collection(entries)
    check_preferences(preferences)
    check_key(settings, env, args.cassette)

    def work() -> Any:
        from .texts import generate_dataset

        return generate_dataset(
            entries,
            preferences,
            seed=args.seed,
            settings=settings,
            cassette=args.cassette,
            record_mode=record_mode,
            cache_dir=cache_dir,
        )

    return _run(work, args, output, cache_dir, prices, "texts", stdout, stderr)


def _run(
    work: Callable[[], Any],
    args: argparse.Namespace,
    output: Path | None,
    cache_dir: Path | None,
    prices: tuple[float, float] | None,
    noun: str,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Generate with progress on ``stderr``, write the output, end with the summary line;
    an interruption or a failure says how far the run got and how to go on."""
    from .datafiles import as_rows, write_rows
    from .progress import listening
    from .terminal import Display, summary

    display = Display(stderr, quiet=args.quiet, noun=noun)
    try:
        with listening(display):
            dataset = work()
    except KeyboardInterrupt:
        display.close()
        _say(stderr, f"interrupted: {_how_far(display, noun)}; {_resume_hint(cache_dir)}")
        return EXIT_INTERRUPTED
    except SynthConfigError:
        display.close()
        raise
    except SynthError as exc:
        display.close()
        _say(stderr, f"error: {exc}")
        _say(stderr, f"stopped after {_how_far(display, noun)}; {_resume_hint(cache_dir)}")
        return EXIT_FAILED
    display.close()
    write_rows(as_rows(dataset), output, stdout)
    where = str(output) if output is not None else "standard output"
    line = summary(display.tally, dataset.usage, len(dataset), noun, where, display.elapsed, prices)
    stderr.write(line + "\n")
    stderr.flush()
    return 0


def _how_far(display: Any, noun: str) -> str:
    tally = display.tally
    got = f"{tally.done} of {tally.total} {noun}" if tally.total else f"no {noun} yet"
    return f"{got} ({tally.sent} request(s) sent, {tally.reused} replayed)"


def _resume_hint(cache_dir: Path | None) -> str:
    if cache_dir is None:
        return "nothing was kept (--no-cache): a new run starts over"
    return (
        f"the answers received so far are kept in {cache_dir}; run the same command again "
        "to go on from there"
    )


def _examples(path: str | None) -> list[Any] | None:
    from .datafiles import read_items

    return None if path is None else read_items(Path(path), "examples file")


def _dry_run(
    spec: Any,
    settings: Any,
    env: Mapping[str, str],
    prices: tuple[float, float] | None,
    stdout: TextIO,
) -> None:
    """Print the plan and its estimated tokens (and cost); send nothing."""
    from .dryrun import cost, dollars, plan_records

    plan = plan_records(spec, settings)
    lines = [
        "dry run: nothing was sent",
        f"{spec.n} {spec.model_name} record(s) from {settings.model!r} at "
        f"{endpoint(settings, env)}, structured mode {plan.mode}",
        f"planned requests: {plan.requests} (batches of {plan.batch_size}, {plan.waves} "
        f"wave(s), at most {plan.in_flight} in flight), plus at most {plan.most_reasks} "
        "re-ask(s) if answers are invalid",
        f"estimated tokens: {plan.prompt_tokens} prompt + {plan.completion_tokens} completion "
        f"= {plan.total_tokens} (max_tokens reserved: {plan.reserved_tokens})",
    ]
    if prices is not None:
        prompt_cost = cost(plan.prompt_tokens, 0, *prices)
        completion_cost = cost(0, plan.completion_tokens, *prices)
        lines.append(
            f"estimated cost: {dollars(prompt_cost)} prompt + {dollars(completion_cost)} "
            f"completion = {dollars(prompt_cost + completion_cost)} (at ${prices[0]:g} / "
            f"${prices[1]:g} per million tokens)"
        )
    stdout.write("\n".join(lines) + "\n")


def _say(stream: TextIO, message: str) -> None:
    stream.write(f"synthdata: {message}\n")
    stream.flush()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
