"""A loopback batch runner: reads a Batch request file and writes an output file in vLLM's
format, each line answered as the fake server's chat-completions endpoint answers its body,
the way ``vllm run-batch -i in.jsonl -o out.jsonl`` does with a real model::

    python -m fakellm.runner -i requests.jsonl -o results.jsonl [--fail-fraction 0.1]

Like vLLM, every line (a failed one too) goes to the output file; a failed line has
``error`` set and no body. It reads and writes one line at a time.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .batches import Answer, answer_line, failure_of


def run_batch_file(
    answer: Answer,
    source: str | Path,
    target: str | Path,
    *,
    failures: Mapping[str, str] | None = None,
    fail_fraction: float = 0.0,
    fail_seed: int = 0,
) -> int:
    """Answer every line of request file ``source`` into vLLM-format output file ``target``;
    the lines written. ``failures`` (``custom_id`` -> ``"4xx"`` or ``"error"``) and
    ``fail_fraction`` make lines fail, as :class:`~fakellm.batches.BatchService` does."""
    written = 0
    with open(source, "rb") as reading, open(target, "w", encoding="utf-8") as writing:
        for raw in reading:
            if not raw.strip():
                continue
            line = json.loads(raw)
            cid = str(line.get("custom_id"))
            failure = (failures or {}).get(cid) or failure_of(cid, fail_fraction, fail_seed, "4xx")
            out, _ = answer_line(answer, line, failure, vllm=True)
            writing.write(json.dumps(out) + "\n")
            written += 1
    return written


def main(argv: Sequence[str] | None = None) -> int:
    from .server import FakeLLM

    parser = argparse.ArgumentParser(prog="python -m fakellm.runner", description=__doc__)
    parser.add_argument("-i", "--input-file", required=True)
    parser.add_argument("-o", "--output-file", required=True)
    parser.add_argument("--fail-fraction", type=float, default=0.0)
    parser.add_argument("--fail-seed", type=int, default=0)
    args = parser.parse_args(argv)
    written = run_batch_file(
        FakeLLM().chat_answer,
        args.input_file,
        args.output_file,
        fail_fraction=args.fail_fraction,
        fail_seed=args.fail_seed,
    )
    print(f"answered {written} requests into {args.output_file}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
