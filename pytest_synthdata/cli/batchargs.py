"""The batch flags of ``synthdata generate`` and the ``collect`` and ``batches`` commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import SynthConfigError

BATCH_HELP = """\
--batch plans the requests as an ordinary run would, sends them through the
endpoint's Batch API (POST /v1/files, POST /v1/batches, 24-hour window), polls them and
validates every answer like an ordinary one; what is still missing (invalid or duplicate
records, failed or expired requests) goes into follow-up batches within the retry budget,
until exactly N. Submitted batches are kept in the cache folder the moment they exist: run
the same command again after a kill, or after --detach, and it picks them up (nothing is
submitted twice). Costs use batch prices (--price-in/--price-out x --batch-discount)."""


def add_batch_flags(parser: argparse.ArgumentParser) -> None:
    """``--batch`` and its companions (``generate`` and ``collect``)."""
    group = parser.add_argument_group("batches", BATCH_HELP)
    group.add_argument(
        "--batch",
        action="store_true",
        help="send the requests as Batch API jobs (half the price on OpenAI) instead of one "
        "by one; the command polls them, shows their status and writes the dataset",
    )
    group.add_argument(
        "--detach",
        action="store_true",
        help="with --batch: submit the batches and exit, printing their ids and the command "
        "that collects them (the same command without --detach)",
    )
    group.add_argument(
        "--batch-followups",
        choices=("batch", "sync"),
        help="how what is missing after the first batch is asked for: in follow-up batches "
        "(default) or as ordinary requests (sync: faster when few are missing)",
    )
    group.add_argument(
        "--batch-file",
        metavar="FILE",
        help="write the requests as a Batch input file (.jsonl; large ones split into "
        "FILE, FILE.2.jsonl ...) and send nothing: answer it with vllm run-batch, Ray Data or "
        "any Batch runner, then run synthdata collect on the output",
    )
    group.add_argument(
        "--batch-discount",
        type=float,
        default=0.5,
        metavar="X",
        help="batch prices are --price-in/--price-out times X (default 0.5: OpenAI's 50%% off)",
    )
    group.add_argument(
        "--batch-max-requests",
        type=int,
        default=50_000,
        metavar="N",
        help="most requests a batch file holds (default 50000, OpenAI's limit)",
    )
    group.add_argument(
        "--batch-max-mb",
        type=float,
        default=200.0,
        metavar="MB",
        help="largest batch file in MB (default 200, OpenAI's limit)",
    )
    group.add_argument(
        "--poll-interval",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="seconds between two status reads of a running batch (default 30)",
    )


def add_batch_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    generate: argparse.ArgumentParser,
) -> None:
    """``synthdata collect`` (generate's arguments after the results files) and
    ``synthdata batches``."""
    collect = commands.add_parser(
        "collect",
        help="read Batch output files (OpenAI's or vLLM's format) into the dataset",
        description="Validate the answers of Batch output files written by a runner from a "
        "--batch-file request file, and write the dataset of exactly N records; or, when some "
        "are still missing, write the follow-up request file and say how to go on. Give the "
        "same MODULE:MODEL, -n and spec flags as the generate command that wrote the requests.",
        conflict_handler="resolve",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  synthdata collect results.jsonl billing:MedicalBilling -n 10000 "
        "-o claims.jsonl",
    )
    collect.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS",
        help="Batch output file(s): one JSON line per request (custom_id, response, error)",
    )
    collect._add_container_actions(generate)
    batches = commands.add_parser(
        "batches",
        help="list the batches this cache folder knows, with their status",
        description="List the batches submitted from this cache folder (dataset and wave, "
        "batch id, status, answered and failed requests); --cancel cancels those still running.",
    )
    batches.add_argument("--cancel", action="store_true", help="cancel the running batches")
    batches.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="the cache folder (default: SYNTHDATA_CACHE_DIR or .synthdata)",
    )
    batches.add_argument("--base-url", metavar="URL", help="the endpoint (OPENAI_BASE_URL)")


def check_batch_flags(args: Any, cache_dir: Path | None) -> None:
    """Batch flags that cannot work together, before anything is sent."""
    if not (args.batch or args.batch_file or args.command == "collect"):
        for flag in ("detach", "batch_followups"):
            if getattr(args, flag, None):
                name = "--" + flag.replace("_", "-")
                raise SynthConfigError(f"{name} applies to --batch; add --batch, or drop it")
        return
    if cache_dir is None:
        raise SynthConfigError(
            "--batch, --batch-file and collect keep their requests and answers in the cache "
            "folder; drop --no-cache (or give --cache-dir)"
        )
    if args.batch_max_requests < 1 or args.batch_max_mb <= 0 or args.poll_interval < 0:
        raise SynthConfigError(
            "--batch-max-requests must be at least 1, --batch-max-mb above 0 and "
            "--poll-interval at least 0"
        )
    if args.batch and args.batch_file:
        raise SynthConfigError(
            "--batch sends the requests and --batch-file writes them for another runner; "
            "give one of them"
        )
    if args.dry_run and args.command == "collect":
        raise SynthConfigError("collect sends nothing anyway; drop --dry-run")
