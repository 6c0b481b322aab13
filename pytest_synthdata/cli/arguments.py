"""The ``synthdata`` command's arguments: its subcommands, and one flag per declared setting
(:mod:`pytest_synthdata.settings`), named as the plugin's without ``synth-``."""

from __future__ import annotations

import argparse

from ..settings import ENV_PREFIX, SESSION_SETTINGS, SETTINGS, Setting, env_name
from .batchargs import add_batch_commands, add_batch_flags
from .inputs import DEFAULT_CACHE, PRICE_ENV

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
address.city; a list is one cell holding its JSON, None is null, and a string that is empty
or starts with [, {{ or " is written as a JSON string, so the file reads back as it was
written). Without -o, JSON Lines go to standard output. The file is written once the
dataset is complete, and never when it holds a secret the run uses (an echoed API key).

resume: answers are kept as they arrive in a response cache ({DEFAULT_CACHE}/ in the current
folder; --cache-dir or {env_name("cache_dir")} to move it, --no-cache to turn it off). A run
that was interrupted (Ctrl-C, kill) and is started again with the same arguments replays
the answers it already has and pays only for the rest; a finished dataset is served whole.
On Ctrl-C the answers already on their way are waited for (a few seconds at most; Ctrl-C
again stops at once) and kept.

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
    generate = _generate(commands)
    _text(commands)
    add_batch_flags(generate)
    add_batch_commands(commands, generate)
    return parser


def _generate(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
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
    from .diversity import add_flags

    add_flags(generate)  # --sample, --cover, --near-duplicates
    generate.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing: print the planned requests, their estimated prompt and completion "
        "tokens, and the cost when prices are given",
    )
    _common(generate)
    return generate


def _text(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        "--spreadsheet-safe",
        action="store_true",
        help="CSV only: put a ' before every cell that starts with =, +, -, @, a tab or a "
        "carriage return, so a spreadsheet shows it rather than runs it as a formula (OWASP). "
        "Off by default: it changes the data (-5 becomes the text '-5)",
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
    for setting in SESSION_SETTINGS:
        if setting.command and setting.name not in ("dry_run", "price_in", "price_out"):
            _add(storage, setting)  # (those three are above, with the command's own help)
    group = parser.add_argument_group("settings (each also SYNTHDATA_<NAME>)")
    for setting in SETTINGS:
        _add(group, setting)


_NOTES = {
    "record_mode": "; needs --cassette",
    "no_cache": ": nothing to resume from",
}
_HELP = {
    "cache_dir": f"response cache folder, relative to the current folder (default {DEFAULT_CACHE}"
    ", which is what lets a run resume)",
}
"""The command's own help of a setting whose declared help speaks of pytest."""


def _add(group: argparse._ArgumentGroup, setting: Setting) -> None:
    """One flag, typed and documented by its declaration (the values are checked later,
    with the environment's, so that errors name their source)."""
    help_text = _HELP.get(setting.name, setting.help_text)
    text = f"{help_text} ({setting.env}{_NOTES.get(setting.name, '')})"
    text = text.replace("%", "%%")
    if setting.switch:
        group.add_argument(setting.command_flag, action="store_true", default=None, help=text)
    elif setting.allowed:
        group.add_argument(setting.command_flag, choices=setting.allowed, help=text)
    else:
        group.add_argument(
            setting.command_flag, metavar=setting.metavar or setting.name.upper(), help=text
        )
