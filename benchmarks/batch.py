"""Section 9 of the benchmark: datasets through batches (``synthdata generate --batch``,
``--batch-file`` and ``synthdata collect``), the command in subprocesses against the fake
server in its own process (``/v1/files``, ``/v1/batches``, counted at ``/_batches``).

Targets, n = 10,000 MedicalBilling: exactly n; a kill -9 during polling and a rerun submit
nothing twice; with 10% of lines failing, at most two follow-up batches; the cost at batch
prices at most 55% of the sync run's; peak memory at most the import baseline plus twice the
dataset's JSON size. Through a ``--batch-file`` answered by the loopback runner in vLLM's
format: exactly n.

Run alone: ``python benchmarks/batch.py [--n 10000]``; ``benchmarks/run.py`` runs it as a
section and appends its report.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PRICES = (0.15, 0.60)  # USD per million prompt / completion tokens, gpt-4o-mini's list price
MODULE = """
from pydantic import BaseModel


class MedicalBilling(BaseModel):
    patient_id: int
    patient_name: str
    diagnosis_code: str
    procedure_code: str
    total_charge: float
    insurance_claim_amount: float
"""
EXAMPLES = [
    "Patient ID: 123456, Patient Name: John Doe, Diagnosis Code: J20.9, Procedure Code: "
    "99203, Total Charge: $500, Insurance Claim Amount: $350",
    "Patient ID: 789012, Patient Name: Johnson Smith, Diagnosis Code: M54.5, Procedure Code: "
    "99213, Total Charge: $150, Insurance Claim Amount: $120",
    "Patient ID: 345678, Patient Name: Emily Stone, Diagnosis Code: E11.9, Procedure Code: "
    "99214, Total Charge: $300, Insurance Claim Amount: $250",
]
SUBJECT = "medical_billing"
EXTRA = "the name must be chosen at random. Make it something you wouldn't normally choose."
WRAPPER = (
    "import atexit, importlib, os, sys\n"
    "def _peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            open(os.environ['PEAK_FILE'], 'w').write(line.split()[1])\n"
    "    if os.environ.get('MODULES_FILE'):\n"
    "        open(os.environ['MODULES_FILE'], 'w').write('\\n'.join(sorted(sys.modules)))\n"
    "atexit.register(_peak)\n"
    "if sys.argv[1:2] == ['--baseline']:\n"
    "    for name in open(sys.argv[2]).read().split():\n"
    "        if not name.startswith('__'):\n"
    "            try:\n"
    "                importlib.import_module(name)\n"
    "            except Exception:\n"
    "                pass  # a name no import gives (a compiled module's alias)\n"
    "    sys.exit(0)\n"
    "if sys.argv[1:] == ['--baseline-listed']:\n"
    "    import billing, openai, pydantic, diskcache\n"
    "    import pytest_synthdata.api, pytest_synthdata.cli, pytest_synthdata.llm.batch\n"
    "    import pytest_synthdata.storage.recorder, pytest_synthdata.records, vcr, httpx2\n"
    "    import pytest_synthdata.storage.transport, pytest_synthdata.cli.batchcmd, tqdm\n"
    "    sys.exit(0)\n"
    "from pytest_synthdata.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
"""Runs the command (``--baseline MODULES``: imports every module named in the file MODULES
and does nothing else; ``--baseline-listed``: the imports this section used to call its
baseline) and writes its peak memory, and the modules it loaded, at exit."""


FLOOR = (
    "import array, bisect, importlib, json, sys\n"
    "def hwm():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            return int(line.split()[1])\n"
    "import asyncio\n"
    "for name in open(sys.argv[1]).read().split():\n"
    "    if not name.startswith('__'):\n"
    "        try:\n"
    "            importlib.import_module(name)\n"
    "        except Exception:\n"
    "            pass\n"
    "from pytest_synthdata.diversity import record_text\n"
    "from pytest_synthdata.judging import canonical, record_key\n"
    "base = hwm()\n"
    "texts, keys, compact = [], set(), array.array('Q')\n"
    "with open(sys.argv[2], encoding='utf-8') as rows:\n"
    "    for line in rows:\n"
    "        data = json.loads(line)\n"
    "        texts.append(record_text(data))\n"
    "        key = record_key(canonical(data))\n"
    "        if sys.argv[3] == 'compact':\n"
    "            value = int.from_bytes(key[:8], 'little')\n"
    "            compact.insert(bisect.bisect_left(compact, value), value)\n"
    "        else:\n"
    "            keys.add(key)\n"
    "print(hwm() - base)\n"
)
"""Imports what a batch run loads, then holds only what judging the records of a JSON Lines
file needs to give the same records: each record's near-duplicate text and its duplicate
key (16 bytes in a set, or with ``compact`` 8 bytes in a sorted array); prints the KiB that
costs above the imports."""


@dataclass
class Step:
    what: str
    code: int
    records: int
    seconds: float
    peak_kib: int
    stderr: str
    counters: dict[str, Any] = field(default_factory=dict)

    def cost(self) -> float:
        found = re.findall(r"cost \$([\d.]+)", self.stderr)
        return float(found[-1]) if found else float("nan")


class Server:
    def __init__(self) -> None:
        sys.path.insert(0, str(ROOT / "tests"))
        from fakellm.process import FakeLLMProcess

        self.proc = FakeLLMProcess(seed=0)
        self.url = self.proc.url

    def batches(self, **changes: Any) -> dict[str, Any]:
        data = json.dumps(changes).encode() if changes else None
        request = urllib.request.Request(
            self.proc.origin + "/_batches",
            data=data,
            method="POST" if changes else "GET",
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result

    def stop(self) -> None:
        self.proc.stop()


class Workspace:
    def __init__(self, server: Server, n: int) -> None:
        self.server, self.n = server, n
        self.folder = Path(tempfile.mkdtemp(prefix="synthdata-batch-bench-"))
        (self.folder / "billing.py").write_text(MODULE)
        (self.folder / "seeds.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EXAMPLES))
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SYNTHDATA_", "OPENAI"))
        }
        self.env.update(
            OPENAI_BASE_URL=server.url,
            OPENAI_API_KEY="sk-benchmark-not-a-real-key",
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            PEAK_FILE=str(self.folder / "peak"),
        )

    def spec(self, cache: str, n: int | None = None) -> list[str]:
        return [
            *("generate", "billing:MedicalBilling", "-n", str(n or self.n), "--seed", "1"),
            *("--examples", "seeds.jsonl", "--subject", SUBJECT, "--extra", EXTRA),
            *("--cache-dir", cache, "-q", "--max-n", str(max(self.n, 5000))),
            *("--price-in", str(PRICES[0])),
            *("--price-out", str(PRICES[1])),
        ]

    def start(self, args: list[str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", WRAPPER, *args],
            cwd=self.folder,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, what: str, args: list[str], output: str | None = None) -> Step:
        peak = self.folder / "peak"
        peak.unlink(missing_ok=True)
        started = time.perf_counter()
        process = self.start(args)
        _, err = process.communicate(timeout=3600)
        seconds = time.perf_counter() - started
        rows = 0
        if output and (self.folder / output).exists():
            rows = sum(1 for line in (self.folder / output).read_text().splitlines() if line)
        kib = int(peak.read_text()) if peak.exists() else 0
        step = Step(what, process.returncode, rows, seconds, kib, err)
        print(
            f"  {what}: exit {step.code}, {rows} records, {seconds:.1f} s, peak {kib} KiB",
            file=sys.stderr,
        )
        if step.code != 0:
            print(err[-3000:], file=sys.stderr)
        return step


def measure(n: int = 10_000) -> dict[str, Any]:
    """Every figure of the section, as a dict the report formats."""
    server = Server()
    try:
        return _measure(server, n)
    finally:
        server.stop()


def _measure(server: Server, n: int) -> dict[str, Any]:
    work = Workspace(server, n)
    out: dict[str, Any] = {"n": n}
    server.batches(processing_time=0, fail_fraction=0.0, lines_per_poll=None)
    modules = work.folder / "modules.txt"
    work.env["MODULES_FILE"] = str(modules)
    small = work.run("batch run, n = 20", [*work.spec("cache-small", 20), "--batch"])
    del work.env["MODULES_FILE"]
    out["small_kib"] = small.peak_kib
    # The import baseline: a process that imports every module a batch run loads (the
    # package, openai, pydantic, diskcache, vcrpy, yaml, sqlite3, asyncio, httpx2 ...:
    # sys.modules at the end of the n = 20 run) and does nothing else.
    baseline = work.run("import baseline", ["--baseline", str(modules)])
    out["baseline_kib"] = baseline.peak_kib
    out["modules"] = len(modules.read_text().split())
    listed = work.run("import baseline (listed imports only)", ["--baseline-listed"])
    out["listed_kib"] = listed.peak_kib
    sync = work.run(
        "sync run",
        [*work.spec("cache-sync"), "--concurrency", "32", "-o", "sync.jsonl"],
        "sync.jsonl",
    )
    out["sync"] = sync
    _killed(work, server, out)
    _floor(work, modules, out)
    _failing(work, server, out)
    _file(work, out)
    return out


def _floor(work: Workspace, modules: Path, out: dict[str, Any]) -> None:
    """What any run must hold to judge the batch run's records as this one does."""
    for kind in ("keys", "compact"):
        done = subprocess.run(
            [sys.executable, "-c", FLOOR, str(modules), str(work.folder / "batch.jsonl"), kind],
            cwd=work.folder,
            env=work.env,
            capture_output=True,
            text=True,
            check=True,
        )
        out[f"floor_{kind}_kib"] = int(done.stdout.split()[-1])


def _killed(work: Workspace, server: Server, out: dict[str, Any]) -> None:
    """A batch run killed during polling, then the same command again."""
    server.batches(processing_time=6.0)
    before = server.batches()
    args = [*work.spec("cache-batch"), "--batch", "--poll-interval", "0.5", "-o", "batch.jsonl"]
    process = work.start(args)
    deadline = time.monotonic() + 600
    while server.batches()["creations"] == before["creations"] and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = server.batches()
    rerun = work.run("batch run, rerun after kill -9", args, "batch.jsonl")
    after = server.batches()
    out["batch"] = rerun
    out["kill"] = {
        "uploads_before_kill": killed_at["uploads"] - before["uploads"],
        "creations_before_kill": killed_at["creations"] - before["creations"],
        "uploads_total": after["uploads"] - before["uploads"],
        "creations_total": after["creations"] - before["creations"],
    }
    out["json_bytes"] = (work.folder / "batch.jsonl").stat().st_size


def _failing(work: Workspace, server: Server, out: dict[str, Any]) -> None:
    """10% of lines failing: the follow-up batches."""
    server.batches(processing_time=0.0, fail_fraction=0.1, fail_seed=5)
    before = server.batches()
    failing = work.run(
        "batch run, 10% of lines failing",
        [*work.spec("cache-failing"), "--batch", "--poll-interval", "0.2", "-o", "fail.jsonl"],
        "fail.jsonl",
    )
    after = server.batches()
    out["failing"] = failing
    out["failing_creations"] = after["creations"] - before["creations"]
    server.batches(fail_fraction=0.0)


def _file(work: Workspace, out: dict[str, Any]) -> None:
    """A request file for another runner, answered in vLLM's format, then collected."""
    spec = work.spec("cache-file")
    wrote = work.run("--batch-file", [*spec, "--batch-file", "requests.jsonl"])
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fakellm.runner",
            "-i",
            str(work.folder / "requests.jsonl"),
            "-o",
            str(work.folder / "results.jsonl"),
        ],
        cwd=ROOT / "tests",
        check=True,
        capture_output=True,
    )
    runner_seconds = time.perf_counter() - started
    collect_args = ["collect", "results.jsonl", *spec[1:], "-o", "collected.jsonl"]
    collected = work.run("collect (vLLM format)", collect_args, "collected.jsonl")
    out["file"] = {
        "wrote": wrote,
        "collected": collected,
        "runner_seconds": runner_seconds,
        "requests": len((work.folder / "requests.jsonl").read_text().splitlines()),
    }


def report(result: dict[str, Any] | None) -> list[str]:
    if not result:
        return []
    n = result["n"]
    sync, batch, failing = result["sync"], result["batch"], result["failing"]
    kill = result["kill"]
    file = result["file"]
    ratio = batch.cost() / sync.cost() if sync.cost() else float("nan")
    limit_kib = result["baseline_kib"] + 2 * result["json_bytes"] / 1024
    followups = result["failing_creations"] - 1

    def ok(flag: bool) -> str:
        return "met" if flag else "**missed**"

    lines = [
        "## 9. Datasets through batches",
        "",
        f"n = {n:,} MedicalBilling (the seeds, subject and extra of section 1), the `synthdata` "
        "command in subprocesses against the fake server in its own process (Batch API at "
        "`/v1/files` and `/v1/batches`); prices $0.15 / $0.60 per million tokens, batch "
        "discount 50%.",
        "",
        "| what | result | target | |",
        "|---|---|---|---|",
        f"| `--batch`, killed with -9 during polling, then rerun | {batch.records:,} records, "
        f"exit {batch.code}, {batch.seconds:.1f} s (rerun) | exactly n | "
        f"{ok(batch.records == n and batch.code == 0)} |",
        f"| uploads / batch creations (kill after {kill['uploads_before_kill']} / "
        f"{kill['creations_before_kill']}) | {kill['uploads_total']} / "
        f"{kill['creations_total']} | nothing submitted twice (1 / 1) | "
        f"{ok(kill['uploads_total'] == 1 and kill['creations_total'] == 1)} |",
        f"| cost at batch prices vs the sync run | ${batch.cost():.4f} vs ${sync.cost():.4f} = "
        f"{ratio:.1%} | <= 55% | {ok(ratio <= 0.55)} |",
        f"| peak memory of the batch run | {batch.peak_kib / 1024:.1f} MiB (import baseline "
        f"{result['baseline_kib'] / 1024:.1f} MiB: the {result['modules']} modules a batch run "
        f"loads; the listed imports alone {result['listed_kib'] / 1024:.1f} MiB; dataset JSON "
        f"{result['json_bytes'] / 1024 / 1024:.2f} MiB) | <= {limit_kib / 1024:.1f} MiB | "
        f"{ok(0 < batch.peak_kib <= limit_kib)} |",
        f"| 10% of lines failing | {failing.records:,} records, {followups} follow-up "
        f"batch(es), {failing.seconds:.1f} s | exactly n, <= 2 follow-ups | "
        f"{ok(failing.records == n and followups <= 2)} |",
        f"| `--batch-file` ({file['requests']} requests) + loopback runner (vLLM format, "
        f"{file['runner_seconds']:.1f} s) + `collect` | {file['collected'].records:,} records, "
        f"collect {file['collected'].seconds:.1f} s | exactly n | "
        f"{ok(file['collected'].records == n)} |",
        f"| the sync run, for reference | {sync.records:,} records, {sync.seconds:.1f} s, peak "
        f"{sync.peak_kib / 1024:.1f} MiB | | |",
        f"| a batch run of n = 20, for reference (the fixed cost of a run) | peak "
        f"{result['small_kib'] / 1024:.1f} MiB; the n = {n:,} batch run is "
        f"{(batch.peak_kib - result['small_kib']) / 1024:.1f} MiB above it | | |",
        f"| what judging {n:,} records needs at the least (each one's near-duplicate text "
        "and duplicate key, nothing else), for reference | "
        f"{result['floor_keys_kib'] / 1024:.2f} MiB ({result['floor_compact_kib'] / 1024:.2f} "
        "MiB with 8-byte keys in a sorted array); with the n = 20 run's fixed cost, "
        f"{(result['small_kib'] - result['baseline_kib'] + result['floor_compact_kib']) / 1024:.2f}"
        f" MiB above the baseline, against {2 * result['json_bytes'] / 1024 / 1024:.2f} MiB "
        "allowed | | |",
        "",
        "The kill comes 1.5 s after the first batch is created (the fake batch takes 6 s); the "
        "rerun finds the batch by its request file's digest in the cache folder and only polls "
        "it. The cost is what the final line of each run reports (the batch run's tokens at "
        "the batch prices).",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args(argv)
    print("\n".join(report(measure(args.n))))


if __name__ == "__main__":
    main()
