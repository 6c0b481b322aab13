"""Side-by-side measurements of pytest-synthdata and LangChain's synthetic-data pipeline.

One command reproduces every number and rewrites ``benchmarks/RESULTS.md`` (sections 6 and 7,
rate limits and dry-run estimates, live in ``benchmarks/ratelimit.py``; section 8, invalid
answers and slow models, in ``benchmarks/convergence.py``)::

    benchmarks/.venv/bin/python benchmarks/run.py            # about 6 minutes
    benchmarks/.venv/bin/python benchmarks/run.py --quick    # under 2 minutes

Both tools talk to the same simulated hosted model: the test suite's fake OpenAI server
(``tests/fakellm/``), run as ``python -m fakellm`` in a separate process on 127.0.0.1, which
adds a fixed delay per request and a delay per output token, counts requests, tokens and
requests in flight, and injects a seeded mix of faults. Wall times depend on the machine; the
ratios between tools are measured in the same run and are what to compare.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    API_KEY,
    BILLS,
    EXAMPLES,
    EXTRA,
    HERE,
    LC_ASYNC,
    LC_SYNC,
    OURS,
    ROOT,
    RUNNERS,
    SUBJECT,
    TOOLS,
    MedicalBilling,
    Outcome,
    count_valid,
    run_langchain_async,
    run_ours,
    say,
    status,
)
from pydantic import BaseModel

# ---------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        from fakellm import FakeLLMProcess

        # A 429/500 comes back after 50 ms and asks for a retry after 100 ms; a token is four
        # characters, rounded up.
        self.sim = FakeLLMProcess(
            seed=args.seed, error_delay=0.05, retry_after_ms=100, round_tokens_up=True
        )
        os.environ["OPENAI_BASE_URL"] = self.sim.url
        os.environ["OPENAI_API_KEY"] = API_KEY
        for name in list(os.environ):
            if name.startswith("SYNTHDATA_"):
                del os.environ[name]

    def configure(self, scale: float, faults: bool, seed: int | None = None) -> None:
        self.sim.configure(
            delay=self.args.delay * scale,
            per_token=self.args.per_token * scale,
            broken=self.args.broken if faults else 0.0,
            errors=self.args.errors if faults else 0.0,
            seed=self.args.seed if seed is None else seed,
        )

    def measure(
        self,
        tool: str,
        n: int,
        *,
        scale: float = 1.0,
        faults: bool = False,
        seed: int | None = None,
        **options: Any,
    ) -> Outcome:
        self.configure(scale, faults, seed)
        runner = RUNNERS[tool]
        started = time.perf_counter()
        attempt = runner(self.sim.url, n, **options)
        wall = time.perf_counter() - started
        stats = self.sim.stats()
        valid, distinct = count_valid(attempt.records)
        outcome = Outcome(
            tool=tool,
            n=n,
            scale=scale,
            wall=wall,
            requests=stats["chat_requests"],
            answered=stats["answered"],
            prompt_tokens=stats["prompt_tokens"],
            completion_tokens=stats["completion_tokens"],
            peak=stats["max_in_flight"],
            valid=valid,
            distinct=distinct,
            error=attempt.error,
            left_behind=attempt.left_behind,
            message=attempt.message,
            http_errors=stats["faults"].get("429", 0) + stats["faults"].get("500", 0),
            broken=stats["faults"].get("malformed", 0) + stats["faults"].get("truncated", 0),
            seed=self.args.seed if seed is None else seed,
            options=options,
        )
        say(
            f"  {tool:30} n={n:<5} {wall:7.2f}s  requests={outcome.requests:<5} "
            f"peak={outcome.peak:<5} valid={valid:<5} distinct={distinct:<5}"
            + (
                f" seed={outcome.seed} 429/500={outcome.http_errors} broken={outcome.broken}"
                if faults
                else ""
            )
            + (
                f" error={attempt.error} (left behind {attempt.left_behind})"
                if attempt.error
                else ""
            )
            + (f" options={options}" if options else "")
        )
        return outcome

    def warm_up(self) -> None:
        """Import everything and make one tiny call with each tool before timing anything."""
        self.configure(0.0, False)
        for tool in TOOLS:
            RUNNERS[tool](self.sim.url, 2)

    def close(self) -> None:
        self.sim.stop()


def median_time(fn: Callable[[], Any], reps: int) -> tuple[float, list[float]]:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


# ---------------------------------------------------------------------------------------
# 1 and 2: throughput, cost and resilience
# ---------------------------------------------------------------------------------------


def scale_for(n: int, args: argparse.Namespace) -> float:
    if args.quick:
        return args.quick_scale
    return args.scale_1000 if n >= 1000 else 1.0


def compare(
    bench: Bench, ns: Sequence[int], faults: bool, seeds: Sequence[int] | None = None
) -> list[Outcome]:
    outcomes = []
    for n in ns:
        for tool in TOOLS:
            for seed in seeds or [None]:
                outcomes.append(
                    bench.measure(tool, n, scale=scale_for(n, bench.args), faults=faults, seed=seed)
                )
    return outcomes


def retries_trial(bench: Bench, n: int, seeds: Sequence[int], http_retries: int) -> list[Outcome]:
    return [
        bench.measure(
            OURS,
            n,
            scale=scale_for(n, bench.args),
            faults=True,
            seed=seed,
            http_retries=http_retries,
        )
        for seed in seeds
    ]


def batch_sweep(bench: Bench, n: int, sizes: Sequence[int | None]) -> list[Outcome]:
    scale = bench.args.quick_scale if bench.args.quick else 1.0
    outcomes = []
    for size in sizes:
        options = {"batch_size": size} if size else {}
        outcomes.append(bench.measure(OURS, n, scale=scale, **options))
    return outcomes


# ---------------------------------------------------------------------------------------
# 3: replay cost
# ---------------------------------------------------------------------------------------


@dataclass
class Replay:
    n: int
    reps: int
    medians: dict[str, float]
    samples: dict[str, list[float]]
    requests_during_replay: int
    same_records: bool
    cassette_bytes: int
    recorded_requests: int
    components: dict[str, float]


def replay_cost(bench: Bench, n: int, reps: int) -> Replay:
    from pytest_synthdata import generate

    work = Path(tempfile.mkdtemp(prefix="synthdata-replay-"))
    try:
        bench.configure(0.0, False)
        cassette = work / "bills.synth.yaml"
        kwargs: dict[str, Any] = {"examples": EXAMPLES, "subject": SUBJECT, "extra": EXTRA}
        recorded = generate(MedicalBilling, n, cassette=cassette, record_mode="once", **kwargs)
        cache = work / "cache"
        cached = generate(MedicalBilling, n, cache_dir=cache, **kwargs)
        floor_file = work / "bills.json"
        floor_file.write_bytes(BILLS.dump_json(list(recorded)))
        # The same recording without its stored datasets (sealed again with its checksum, as
        # the tool writes files): a replay has to go through every exchange.
        from pytest_synthdata.storage.integrity import seal, verify

        body = verify(cassette.read_text())
        exchanges = work / "exchanges.synth.yaml"
        exchanges.write_text(seal(body[body.index("\ninteractions:") + 1 :]))
        bench.configure(0.0, False)  # counters to zero: replays must not reach the server

        results: dict[str, Any] = {}
        fresh = iter(range(10_000))

        def from_cassette() -> None:
            results["cassette"] = generate(
                MedicalBilling, n, cassette=cassette, record_mode="none", **kwargs
            )

        def from_exchanges() -> None:
            results["exchanges"] = generate(
                MedicalBilling, n, cassette=exchanges, record_mode="none", **kwargs
            )

        def from_cassette_with_empty_cache() -> None:
            results["cassette+cache"] = generate(
                MedicalBilling,
                n,
                cassette=cassette,
                record_mode="none",
                cache_dir=work / f"empty-cache-{next(fresh)}",
                **kwargs,
            )

        def from_cache() -> None:
            results["cache"] = generate(MedicalBilling, n, cache_dir=cache, **kwargs)

        def from_file() -> None:
            results["floor"] = BILLS.validate_json(floor_file.read_bytes())

        medians: dict[str, float] = {}
        samples: dict[str, list[float]] = {}
        cases = {
            "floor": from_file,
            "cache": from_cache,
            "cassette": from_cassette,
            "cassette+cache": from_cassette_with_empty_cache,
            "exchanges": from_exchanges,
        }
        for name, fn in cases.items():
            medians[name], samples[name] = median_time(fn, reps)
        requests = bench.sim.stats()["chat_requests"]

        def live() -> None:
            generate(MedicalBilling, n, **kwargs)

        medians["live"], samples["live"] = median_time(live, max(3, reps // 2))

        # Fixed costs inside every replay, measured alone.
        import openai
        import yaml

        text = cassette.read_text()
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

        def new_client() -> object:
            return openai.AsyncOpenAI(base_url=bench.sim.url, api_key=API_KEY)

        components = {
            f"parse the whole cassette YAML once ({loader.__name__})": median_time(
                lambda: yaml.load(text, Loader=loader), reps
            )[0],
            "create one `openai.AsyncOpenAI` client, connection pool and TLS context included": (
                median_time(new_client, reps)[0]
            ),
        }

        def dump(records: Sequence[BaseModel]) -> list[dict[str, Any]]:
            return [r.model_dump() for r in records]

        # The cache was filled by a second live run, so it holds other (random) records.
        same = all(
            dump(results[k]) == dump(recorded)
            for k in ("floor", "cassette", "cassette+cache", "exchanges")
        )
        same = same and dump(results["cache"]) == dump(cached)
        return Replay(
            n,
            reps,
            medians,
            samples,
            requests,
            same,
            cassette.stat().st_size,
            recorded.usage.requests,
            components,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# 4: plugin overhead on a suite that does not use it
# ---------------------------------------------------------------------------------------


def write_suite(folder: Path, files: int = 50) -> int:
    """``files`` modules of 10 tests each (plain functions, a parametrized test, a class, a
    conftest fixture), none of which uses the plugin. Returns the number of tests."""
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(
        "import pytest\n\n\n@pytest.fixture\ndef numbers():\n    return list(range(20))\n"
    )
    module = textwrap.dedent(
        """
        import pytest


        @pytest.mark.parametrize("x", [1, 2])
        def test_param(x, numbers):
            assert x in numbers


        class TestGroup:
            def test_a(self):
                assert "abc".upper() == "ABC"

            def test_b(self, numbers):
                assert len(numbers) == 20
        """
    )
    module += "".join(
        f"\n\ndef test_plain_{i}(numbers):\n    assert sum(numbers) == 190 + {i} - {i}\n"
        for i in range(6)
    )
    for f in range(files):
        (folder / f"test_mod_{f:03d}.py").write_text(module)
    return files * 10


@dataclass
class Overhead:
    tests: int
    reps: int
    times: dict[str, dict[str, list[float]]]  # command -> arm -> seconds
    other_plugins_off: list[str]
    imports: dict[str, float]  # statement -> median seconds of `python -c statement`

    def ratio(self, command: str) -> float:
        """Median with the plugin over median without it, minus one."""
        runs = self.times[command]
        return statistics.median(runs["with"]) / statistics.median(runs["without"]) - 1

    def spread(self, command: str) -> tuple[float, float]:
        """Quartiles of the per-round ratios (with / without, run back to back), minus one:
        how much the machine's noise moves a single comparison."""
        runs = self.times[command]
        ratios = sorted(a / b - 1 for a, b in zip(runs["with"], runs["without"], strict=True))
        if len(ratios) < 4:
            return ratios[0], ratios[-1]
        quartiles = statistics.quantiles(ratios, n=4)
        return quartiles[0], quartiles[2]


ARMS = {"with": [], "without": ["-p", "no:synthdata"]}


def plugin_overhead(reps: int) -> Overhead:
    folder = Path(tempfile.mkdtemp(prefix="synthdata-suite-"))
    try:
        tests = write_suite(folder)
        # Other pytest plugins installed in this venv (by LangChain's dependencies) are
        # switched off in every arm, so only pytest-synthdata differs between them.
        others = ["langsmith_plugin", "anyio"]
        common = ["-p", "no:cacheprovider"]
        for name in others:
            common += ["-p", f"no:{name}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNTHDATA_", "PYTEST_"))}
        env.pop("OPENAI_BASE_URL", None)
        # Bytecode as on a normal install: pip byte-compiles what it installs and Python
        # caches what it imports. Without this a PYTHONDONTWRITEBYTECODE=1 environment would
        # recompile the plugin (an editable install here) on every start, a cost users do
        # not pay.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        import pytest_synthdata

        compileall.compile_dir(str(Path(pytest_synthdata.__file__).parent), quiet=1)

        def timed(arm: str, command: list[str]) -> float:
            argv = [sys.executable, "-m", "pytest", *common, *ARMS[arm], *command]
            started = time.perf_counter()
            done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - started
            if done.returncode != 0 or f"{tests} " not in done.stdout:
                raise RuntimeError(f"suite failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
            return elapsed

        statements = ("import pytest", "import pytest, pytest_synthdata.plugin")
        import_runs: dict[str, list[float]] = {stmt: [] for stmt in statements}
        for _ in range(reps + 2):
            for stmt in statements:
                started = time.perf_counter()
                subprocess.run([sys.executable, "-c", stmt], env=env, check=True)
                import_runs[stmt].append(time.perf_counter() - started)
        imports = {stmt: statistics.median(runs) for stmt, runs in import_runs.items()}

        commands = {"collect": ["--collect-only", "-q"], "run": ["-q"]}
        times = {c: {arm: [] for arm in ARMS} for c in commands}
        for arm in ARMS:  # warm the bytecode and OS file caches
            timed(arm, commands["run"])
        for round_ in range(reps):
            for command, extra in commands.items():
                # Back to back, and in alternating order, so drift hits both arms alike.
                arms = list(ARMS) if round_ % 2 == 0 else list(reversed(ARMS))
                for arm in arms:
                    times[command][arm].append(timed(arm, extra))
        return Overhead(tests, reps, times, others, imports)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# 5: memory
# ---------------------------------------------------------------------------------------


def child_memory(what: str, url: str, n: int) -> None:
    """Runs in a subprocess: do ``what`` and print the process's peak RSS (KiB) as JSON."""
    records = 0
    if what == "imports":
        import openai  # noqa: F401

        import pytest_synthdata  # noqa: F401
    elif what == "ours":
        records = len(run_ours(url, n).records)
    elif what == "langchain-async":
        records = len(run_langchain_async(url, n).records)
    print(json.dumps({"maxrss_kib": peak_rss_kib(), "records": records}))


def peak_rss_kib() -> int:
    """This process's peak resident set size. ``VmHWM`` belongs to the program image alone;
    ``ru_maxrss`` survives ``execve`` and so can report the parent's size from before the
    fork, which is why it is only the fallback."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory(bench: Bench, n: int, scale: float) -> dict[str, dict[str, int]]:
    bench.configure(scale, False)
    out = {}
    for what in ("imports", "ours", "langchain-async"):
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child-memory",
                what,
                "--child-url",
                bench.sim.url,
                "--child-n",
                str(n),
            ],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        out[what] = json.loads(done.stdout.strip().splitlines()[-1])
        say(
            f"  {what:16} peak RSS {out[what]['maxrss_kib'] / 1024:7.1f} MiB  "
            f"records={out[what]['records']}"
        )
    return out


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


def fmt_ratio(value: float) -> str:
    return f"{value:.1f}x" if value < 100 else f"{value:.0f}x"


def outcome_table(outcomes: list[Outcome], args: argparse.Namespace) -> list[str]:
    rows = [
        "| n | tool | requests | prompt tok/record | completion tok/record | total tok/record "
        "| peak in flight | wall time | valid | distinct |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by_n: dict[int, dict[str, Outcome]] = {}
    for o in outcomes:
        by_n.setdefault(o.n, {})[o.tool] = o
    for n, tools in by_n.items():
        for tool in TOOLS:
            o = tools[tool]
            rows.append(
                f"| {n} | {tool} | {o.requests} | {o.per_record(o.prompt_tokens):.0f} "
                f"| {o.per_record(o.completion_tokens):.0f} | {o.total_per_record:.0f} | {o.peak} "
                f"| {o.wall:.2f} s | {o.valid} | {o.distinct} |"
            )
        ours, sync, asyn = tools[OURS], tools[LC_SYNC], tools[LC_ASYNC]
        for label, ref in (("LangChain sync ÷ ours", sync), ("LangChain async ÷ ours", asyn)):
            rows.append(
                f"| {n} | *{label}* | {fmt_ratio(ref.requests / max(1, ours.requests))} "
                f"| {fmt_ratio(ref.prompt_tokens / max(1, ours.prompt_tokens))} "
                f"| {fmt_ratio(ref.completion_tokens / max(1, ours.completion_tokens))} "
                f"| {fmt_ratio(ref.total_per_record / max(1e-9, ours.total_per_record))} "
                f"| {ref.peak} vs {ours.peak} | {fmt_ratio(ref.wall / ours.wall)} "
                f"| {ref.valid} vs {ours.valid} | {ref.distinct} vs {ours.distinct} |"
            )
    return rows


def resilience_table(outcomes: list[Outcome]) -> list[str]:
    rows = [
        "| n | tool | valid records returned | what happened | requests sent "
        "| 429/500 served | broken answers served | wall time |",
        "|---:|---|---:|---|---:|---:|---:|---:|",
    ]
    groups: dict[tuple[int, str], list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault((o.n, o.tool), []).append(o)
    for (n, tool), runs in groups.items():

        def each(fn: Callable[[Outcome], str], runs: list[Outcome] = runs) -> str:
            return " / ".join(fn(o) for o in runs)

        def happened(o: Outcome) -> str:
            if o.error:
                text = f"raised {o.error}"
                if o.left_behind:
                    text += f" ({o.left_behind} parsed, kept only in `generator.results`)"
                return text
            return "returned" if o.valid == o.n else f"returned {o.valid} of {o.n}"

        rows.append(
            f"| {n} | {tool} | {each(lambda o: str(o.valid) if not o.error else f'0 ({o.error})')} "
            f"| {each(happened)} | {each(lambda o: str(o.requests))} "
            f"| {each(lambda o: str(o.http_errors))} | {each(lambda o: str(o.broken))} "
            f"| {each(lambda o: f'{o.wall:.2f} s')} |"
        )
    return rows


def package_fingerprint() -> str:
    """A digest of the package's source files, to notice edits made while the run goes on."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "pytest_synthdata").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def revision() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "pytest_synthdata"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "?"
    return (head or "?") + (" with uncommitted changes to pytest_synthdata/" if dirty else "")


def report(
    args: argparse.Namespace,
    clean: list[Outcome],
    faulty: list[Outcome],
    sweep: list[Outcome],
    trial: list[Outcome],
    replay: Replay | None,
    overhead: Overhead | None,
    mem: dict[str, dict[str, int]] | None,
    elapsed: float,
) -> str:
    def version(dist: str) -> str:
        from importlib.metadata import version as installed

        try:
            return installed(dist)
        except Exception:
            return "?"

    from pytest_synthdata import Settings

    defaults = Settings()
    lines: list[str] = []
    add = lines.append
    add("# Benchmarks: pytest-synthdata vs LangChain's synthetic-data generator")
    add("")
    if args.fingerprint != package_fingerprint():
        add(
            "**Warning: the files of `pytest_synthdata/` changed while this run was going on; "
            "its numbers mix two versions of the package. Run it again.**"
        )
        add("")
    add(
        "Generated by `benchmarks/.venv/bin/python benchmarks/run.py"
        f"{' --quick' if args.quick else ''}` in {elapsed / 60:.1f} minutes on {os.cpu_count()} "
        f"cores, Python {platform.python_version()}, pytest-synthdata at {args.revision}, "
        f"langchain-experimental {version('langchain-experimental')}, "
        f"langchain-openai {version('langchain-openai')}, openai {version('openai')}. "
        "Absolute times depend on the machine; compare the ratios, which come from the same run."
    )
    add("")
    add("## Setup")
    add("")
    add(
        "- **Simulated hosted model** (the test suite's fake OpenAI server, `tests/fakellm/`, "
        "run as `python -m fakellm` in its own process on 127.0.0.1): "
        f"every answer takes {args.delay * 1000:.0f} ms plus {args.per_token * 1000:.1f} ms per "
        "completion token. Tokens are estimated as one per 4 characters of the messages plus "
        "the function/tool or response-format schema sent (prompt) and of the JSON produced "
        "(completion); the same rule for both tools. Values are random (names, ICD-like codes, "
        "amounts), so distinctness reflects what each tool does with what it gets, not a "
        "model's tendency to repeat itself."
    )
    add(
        "- **LangChain**, exactly as its documentation shows: `FewShotPromptTemplate` with "
        "`SYNTHETIC_FEW_SHOT_PREFIX`/`SUFFIX`, `OPENAI_TEMPLATE` and the three examples, "
        "`create_openai_data_generator(output_schema=MedicalBilling, llm=ChatOpenAI(base_url=..., "
        'api_key=..., temperature=1), prompt=...)`, then `generate(subject="medical_billing", '
        "extra=..., runs=n)` or `agenerate(...)` (all n requests at once). It sends one "
        "forced legacy function call (`functions` + `function_call`) per record. "
        "`langchain_openai.ChatOpenAI` stands in for the removed `langchain_community` class."
    )
    add(
        "- **pytest-synthdata**: `generate(MedicalBilling, n, examples=<the same three texts>, "
        'subject="medical_billing", extra=<the same text>)` with default settings '
        "(`OPENAI_BASE_URL` points at the simulator): structured outputs (`json_schema`), "
        f"automatic batch size, at most {defaults.concurrency} requests in flight, "
        f"{defaults.max_retries} re-asks per batch, {defaults.http_retries} SDK retries."
    )
    add(
        "- Each tool made one small call before anything was timed (imports and client set-up "
        "are not in the wall times). Both tools use the same openai SDK and its retry policy."
    )
    scaled = sorted({o.n for o in clean + faulty if o.scale != 1.0})
    if scaled:
        scale = {o.n: o.scale for o in clean + faulty}
        add(
            "- **Scaled delays**: for n = "
            + ", ".join(str(n) for n in scaled)
            + f", the simulated delays were multiplied by {scale[scaled[0]]} for *all three tools* "
            "in those rows (LangChain's sync generator would otherwise need about "
            f"{scaled[-1] * (args.delay + 46 * args.per_token) / 60:.1f} minutes at "
            f"n = {scaled[-1]}). "
            "Tokens and requests do not depend on the delays; wall-time ratios in scaled rows "
            "give client-side CPU time more weight than a hosted model would."
        )
    add("")
    add("## 1. MedicalBilling: requests, tokens, time")
    add("")
    lines.extend(outcome_table(clean, args))
    add("")
    add(
        "Ratio rows: LangChain's figure divided by pytest-synthdata's (requests, prompt tokens, "
        "completion tokens, total tokens per record, wall time); peak in flight, valid and "
        "distinct are shown side by side."
    )
    add("")
    add(f"## 2. Resilience: {args.broken:.0%} broken answers, {args.errors:.0%} HTTP 429/500")
    add("")
    seeds = sorted({o.seed for o in faulty})
    add(
        f"Same runs, with the simulator answering {args.broken:.0%} of requests with malformed "
        'JSON or output truncated at the token limit (`finish_reason: "length"`), half each, '
        f"and {args.errors:.0%} with HTTP 429 or 500 (`retry-after-ms: 100`), which "
        "LangChain's client retries through the openai SDK (twice) and pytest-synthdata "
        "through its own `http_retries`. Each cell lists the runs with fault seeds "
        f"{' / '.join(map(str, seeds))}: a seed fixes the sequence of fault draws, so within a "
        "seed every tool meets the same sequence (request k of each run gets the same fate)."
    )
    add("")
    lines.extend(resilience_table(faulty))
    add("")
    if sweep:
        n = sweep[0].n
        add("## Options tried through the public API")
        add("")
        add(f"### `batch_size` (pytest-synthdata, n = {n}, no faults)")
        add("")
        sync100 = next((o for o in clean if o.tool == LC_SYNC and o.n == n), None)
        async100 = next((o for o in clean if o.tool == LC_ASYNC and o.n == n), None)
        add(
            "| batch_size | requests | total tok/record | peak in flight | wall time "
            "| requests: LC ÷ ours | wall: LC sync ÷ ours | wall: ours ÷ LC async |"
        )
        add("|---|---:|---:|---:|---:|---:|---:|---:|")
        for o in sweep:
            size = o.options.get("batch_size", "auto (default)")
            cells = [
                str(size),
                str(o.requests),
                f"{o.total_per_record:.0f}",
                str(o.peak),
                f"{o.wall:.2f} s",
            ]
            if sync100 and async100 and sync100.scale == o.scale:
                cells += [
                    fmt_ratio(sync100.requests / o.requests),
                    fmt_ratio(sync100.wall / o.wall),
                    fmt_ratio(o.wall / async100.wall),
                ]
            else:
                cells += ["", "", ""]
            add("| " + " | ".join(cells) + " |")
        add("")
        add(
            "Wall-time ratios use the LangChain runs of section 1 (same delays, same run). "
            "Passed through the public API: `generate(..., batch_size=k)`."
        )
        add("")
    if trial:
        k = trial[0].options.get("http_retries")
        add(f"### `http_retries={k}` under the fault mix (pytest-synthdata, n = {trial[0].n})")
        add("")
        add(
            "Same fault seeds as section 2, `generate(..., http_retries="
            f"{k})` instead of the default {defaults.http_retries}."
        )
        add("")
        lines.extend(resilience_table(trial)[:2])
        for row in resilience_table(trial)[2:]:
            lines.append(row.replace(OURS, f"{OURS}, http_retries={k}"))
        add("")
    if replay:
        floor = replay.medians["floor"]
        add(f"## 3. Replay cost, n = {replay.n}")
        add("")
        add(
            f"Median of {replay.reps} repetitions in one warm process (after one untimed call). "
            f"The simulator received {replay.requests_during_replay} request(s) during the "
            "replays; every replay returned "
            f"{'the very same' if replay.same_records else 'DIFFERENT'} "
            "records as the run that recorded its source."
        )
        add("")
        add("| source | median | x floor |")
        add("|---|---:|---:|")
        names = {
            "floor": "pre-built JSON file, `TypeAdapter(list[MedicalBilling]).validate_json` "
            "(floor)",
            "cache": "response cache only (`cache_dir=`, filled beforehand, no cassette)",
            "cassette": 'cassette, cold (`cassette=..., record_mode="none"`, no cache)',
            "cassette+cache": "cassette + a new empty `cache_dir` (a fresh CI checkout under "
            "the pytest plugin)",
            "exchanges": "cassette without its stored datasets: every exchange replayed "
            "through the client",
            "live": "for reference: live from the simulator with zero latency, no cassette, "
            "no cache",
        }
        for key, label in names.items():
            value = replay.medians[key]
            add(f"| {label} | {value * 1000:.1f} ms | {fmt_ratio(value / floor)} |")
        for label, value in replay.components.items():
            add(f"| *for scale:* {label} | {value * 1000:.1f} ms | {fmt_ratio(value / floor)} |")
        add("")
        add(
            f"The cassette is {replay.cassette_bytes / 1024:.0f} KiB of YAML: its checksum "
            "line, then the stored dataset (one JSON line per record) ahead of the "
            f"{replay.recorded_requests} recorded exchanges. A replay whose spec and settings "
            "match verifies the checksum and reads only the stored dataset; the row without "
            "it shows what replaying the exchanges costs. The two *for scale* rows are costs "
            "measured alone, to compare with the floor."
        )
        add("")
    if overhead:
        add(f"## 4. Plugin overhead on a {overhead.tests}-test suite that does not use it")
        add("")
        add(
            f"`python -m pytest` in a subprocess, {overhead.reps} rounds; each round runs the "
            "command with the plugin and with `-p no:synthdata`, back to back. Other third-party "
            f"plugins in this venv ({', '.join(overhead.other_plugins_off)}) and the cache "
            "provider were off in both arms. Bytecode is compiled and cached beforehand, as "
            "after a `pip install`. The overhead is the ratio of the medians; the "
            "quartiles of the per-round ratios show how much noise a single comparison carries "
            "on this machine."
        )
        add("")
        add("| command | with plugin | `-p no:synthdata` | overhead | per-round quartiles |")
        add("|---|---:|---:|---:|---:|")
        for command, label in (
            ("collect", "`pytest --collect-only -q`"),
            ("run", "`pytest -q` (full run)"),
        ):
            runs = overhead.times[command]
            low, high = overhead.spread(command)
            add(
                f"| {label} | {statistics.median(runs['with']) * 1000:.0f} ms "
                f"| {statistics.median(runs['without']) * 1000:.0f} ms "
                f"| {overhead.ratio(command) * 100:+.1f}% "
                f"| {low * 100:+.1f}% .. {high * 100:+.1f}% |"
            )
        add("")
        base = overhead.imports["import pytest"]
        add("Start-up alone (`python -c ...`, median of the same number of runs):")
        add("")
        add("| statement | time | over `import pytest` |")
        add("|---|---:|---:|")
        for stmt, value in overhead.imports.items():
            add(f"| `{stmt}` | {value * 1000:.0f} ms | {(value - base) * 1000:+.0f} ms |")
        add("")
    if mem:
        add(f"## 5. Memory, n = {args.memory_n}")
        add("")
        mem_scale = args.quick_scale if args.quick else args.scale_1000
        add(f"Simulated delays x{mem_scale} (memory does not depend on them).")
        add("")
        add(
            "Peak RSS of a fresh Python process (`benchmarks/run.py --child-memory ...`) that "
            "generates against the simulator and then reads its own high-water mark (`VmHWM` in "
            "`/proc/self/status`; `getrusage(...).ru_maxrss` is not used because Linux keeps it "
            "across `execve`, so a child forked from a large parent reports the parent's size)."
        )
        add("")
        add("| process | peak RSS | records |")
        add("|---|---:|---:|")
        labels = {
            "imports": "baseline: `import pytest_synthdata, openai` only",
            "ours": f"pytest-synthdata `generate(n={args.memory_n})`",
            "langchain-async": f"LangChain `agenerate(runs={args.memory_n})` (for comparison)",
        }
        for key, label in labels.items():
            add(f"| {label} | {mem[key]['maxrss_kib'] / 1024:.1f} MiB | {mem[key]['records']} |")
        add("")

    add("## Targets")
    add("")
    lines.extend(targets(clean, faulty, replay, overhead))
    add("")
    lines.extend(explain_failures(faulty))
    add("")
    lines.extend(notes(args, clean))
    return "\n".join(lines)


def explain_failures(faulty: list[Outcome]) -> list[str]:
    failed = [o for o in faulty if o.tool == OURS and o.error]
    if not failed:
        return []
    lines = ["pytest-synthdata raised under the fault mix (and returned no records):", ""]
    for o in failed:
        message = " ".join(o.message.split())
        lines.append(f"- n={o.n}, fault seed {o.seed}: `{o.error}`: {message}")
    lines.append("")
    return lines


def notes(args: argparse.Namespace, clean: list[Outcome]) -> list[str]:
    get = {(o.n, o.tool): o for o in clean}
    if (100, OURS) not in get:
        return []
    ours, asyn = get[100, OURS], get[100, LC_ASYNC]
    delay, per_token = args.delay * ours.scale, args.per_token * ours.scale
    per_record = ours.completion_tokens / ours.n
    fewest = -(-ours.n // 8)
    bound = delay + per_token * fewest * per_record
    one = delay + per_token * asyn.completion_tokens / asyn.n
    return [
        "### Why the agenerate target is out of reach with at most 8 requests in flight",
        "",
        f"LangChain's `agenerate` sends all {asyn.n} requests at once, so its wall time is about "
        f"one single-record request: {delay * 1000:.0f} ms + {asyn.completion_tokens / asyn.n:.0f} "
        f"tokens x {per_token * 1000:.1f} ms = {one:.2f} s (measured {asyn.wall:.2f} s, "
        f"{asyn.peak} requests in flight). With at most 8 requests in flight, some request has "
        f"to carry at least {fewest} of the {ours.n} records, and the simulated model needs "
        f"{delay * 1000:.0f} ms + {fewest} x {per_record:.0f} tokens x {per_token * 1000:.1f} ms = "
        f"{bound:.2f} s to write it: no batching strategy under that bound can be faster. "
        "A hosted API with rate limits pushes back on 100 simultaneous requests: section 6 "
        "runs both generators under one.",
        "",
    ]


def targets(
    clean: list[Outcome], faulty: list[Outcome], replay: Replay | None, overhead: Overhead | None
) -> list[str]:
    rows = ["| target | measured | status |", "|---|---|---|"]
    get = {(o.n, o.tool): o for o in clean}
    if (100, OURS) in get:
        ours, sync, asyn = get[100, OURS], get[100, LC_SYNC], get[100, LC_ASYNC]
        r = sync.requests / ours.requests
        rows.append(
            "| n=100: at least 20x fewer requests than LangChain | "
            f"{sync.requests} vs {ours.requests} "
            f"= {r:.1f}x | {status(r >= 20)} |"
        )
        t = sync.total_per_record / ours.total_per_record
        rows.append(
            f"| n=100: at least 5x fewer total tokens per record | {sync.total_per_record:.0f} vs "
            f"{ours.total_per_record:.0f} = {t:.1f}x | {status(t >= 5)} |"
        )
        w = sync.wall / ours.wall
        rows.append(
            f"| n=100: wall time at least 10x lower than LangChain sync | {sync.wall:.2f} s vs "
            f"{ours.wall:.2f} s = {w:.1f}x | {status(w >= 10)} |"
        )
        ok = ours.wall <= asyn.wall and ours.peak <= 8
        rows.append(
            f"| n=100: wall time no worse than LangChain's unbounded agenerate, with at most 8 "
            f"requests in flight | {ours.wall:.2f} s ({ours.peak} in flight) vs {asyn.wall:.2f} s "
            f"({asyn.peak} in flight) = {ours.wall / asyn.wall:.1f}x slower | {status(ok)} |"
        )
    by_n: dict[int, list[Outcome]] = {}
    for o in faulty:
        if o.tool == OURS:
            by_n.setdefault(o.n, []).append(o)
    for n, runs in by_n.items():
        got = " / ".join(f"{o.valid}" + (f" ({o.error})" if o.error else "") for o in runs)
        ok = all(o.valid == o.n and not o.error for o in runs)
        rows.append(
            f"| exactly n valid records under the fault mix, n={n} ({len(runs)} fault seeds) "
            f"| {got} | {status(ok)} |"
        )
    if replay:
        floor = replay.medians["floor"]
        c = replay.medians["cache"] / floor
        rows.append(
            f"| cache replay at most 3x the floor (n={replay.n}) | "
            f"{replay.medians['cache'] * 1000:.1f} ms "
            f"vs {floor * 1000:.2f} ms = {fmt_ratio(c)} | {status(c <= 3)} |"
        )
        k = replay.medians["cassette"] / floor
        rows.append(
            f"| cold cassette replay, checksum verified, at most 3x the floor (n={replay.n}) | "
            f"{replay.medians['cassette'] * 1000:.1f} ms vs {floor * 1000:.2f} ms = {fmt_ratio(k)} "
            f"| {status(k <= 3)} |"
        )
    if overhead:
        for command, label in (("collect", "collect-only"), ("run", "full run")):
            r = overhead.ratio(command)
            rows.append(
                f"| plugin overhead at most 3% ({label}, {overhead.tests} tests) | {r * 100:+.1f}% "
                f"| {status(r <= 0.03)} |"
            )
    return rows


# ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="n = 10 and 100, delays x0.25, fewer repetitions"
    )
    parser.add_argument(
        "--ns", default="10,100,1000", help="record counts to compare (default 10,100,1000)"
    )
    parser.add_argument(
        "--delay", type=float, default=0.3, help="simulated seconds per request (0.3)"
    )
    parser.add_argument(
        "--per-token", type=float, default=0.004, help="simulated seconds per output token (0.004)"
    )
    parser.add_argument(
        "--scale-1000",
        type=float,
        default=0.2,
        help="factor applied to both delays, for every tool, in rows with n >= 1000 "
        "(0.2; 1 = unscaled)",
    )
    parser.add_argument(
        "--quick-scale", type=float, default=0.25, help="delay factor of --quick (0.25)"
    )
    parser.add_argument(
        "--broken", type=float, default=0.25, help="share of broken answers in part 2 (0.25)"
    )
    parser.add_argument(
        "--errors", type=float, default=0.25, help="share of HTTP 429/500 in part 2 (0.25)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the simulated model's values and faults"
    )
    parser.add_argument("--fault-seeds", default="0,1,2", help="fault seeds for part 2 (0,1,2)")
    parser.add_argument(
        "--try-http-retries",
        type=int,
        default=4,
        help="http_retries tried under the fault mix at the largest n (4)",
    )
    parser.add_argument(
        "--reps", type=int, default=None, help="repetitions for part 3 (7; --quick: 3)"
    )
    parser.add_argument(
        "--overhead-reps", type=int, default=None, help="rounds for part 4 (15; --quick: 5)"
    )
    parser.add_argument("--memory-n", type=int, default=1000)
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated parts to skip: compare,faults,sweep,replay,overhead,memory,"
        "ratelimit,dryrun,convergence",
    )
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--child-memory", help=argparse.SUPPRESS)
    parser.add_argument("--child-url", help=argparse.SUPPRESS)
    parser.add_argument("--child-n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_memory:
        child_memory(args.child_memory, args.child_url, args.child_n)
        return

    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    ns = [int(x) for x in args.ns.split(",")] if not args.quick else [10, 100]
    if args.quick and args.ns != "10,100,1000":
        ns = [int(x) for x in args.ns.split(",")]
    reps = args.reps or (3 if args.quick else 7)
    started = time.perf_counter()
    args.revision = revision()
    args.fingerprint = package_fingerprint()
    bench = Bench(args)
    clean: list[Outcome] = []
    faulty: list[Outcome] = []
    sweep: list[Outcome] = []
    trial: list[Outcome] = []
    replay = None
    overhead = None
    mem = None
    limited: list[Any] = []
    estimates: list[Any] = []
    import convergence  # section 8 (benchmarks/convergence.py, next to this file)
    import ratelimit  # sections 6 and 7 (benchmarks/ratelimit.py, next to this file)

    converged: tuple[list[Any], list[Any]] = ([], [])

    try:
        say("warming up ...")
        bench.warm_up()
        if "compare" not in skip:
            say("1. MedicalBilling, no faults")
            clean = compare(bench, ns, faults=False)
        if "faults" not in skip:
            say(f"2. resilience: {args.broken:.0%} broken, {args.errors:.0%} 429/500")
            seeds = [int(x) for x in args.fault_seeds.split(",")]
            faulty = compare(bench, ns, faults=True, seeds=seeds)
        if "sweep" not in skip and 100 in ns:
            say("   batch sizes, n = 100")
            sweep = batch_sweep(bench, 100, [None, 10, 13, 20, 25])
        if "sweep" not in skip and faulty:
            say(f"   http_retries={args.try_http_retries} under the fault mix, n = {max(ns)}")
            trial = retries_trial(bench, max(ns), seeds, args.try_http_retries)
        if "replay" not in skip:
            say("3. replay cost, n = 1000")
            replay = replay_cost(bench, 1000, reps)
            for key, value in replay.medians.items():
                say(
                    f"  {key:16} {value * 1000:8.2f} ms  "
                    f"({value / replay.medians['floor']:.1f}x floor)"
                )
        if "overhead" not in skip:
            say("4. plugin overhead")
            overhead = plugin_overhead(args.overhead_reps or (5 if args.quick else 15))
            say(
                f"  collect-only {overhead.ratio('collect') * 100:+.1f}%, "
                f"full run {overhead.ratio('run') * 100:+.1f}%"
            )
        if "memory" not in skip:
            say(f"5. memory, n = {args.memory_n}")
            mem = memory(bench, args.memory_n, args.quick_scale if args.quick else args.scale_1000)
        if "ratelimit" not in skip:
            say("6. under a rate limit of 60 requests and 40,000 tokens per 6 s, headers or not")
            limited = ratelimit.rate_limits(bench, args.scale_1000, args.quick)
        if "dryrun" not in skip:
            say("7. dry-run estimates against the run")
            estimates = ratelimit.dry_run_accuracy(
                bench, [100, 1000] if args.quick else [10, 100, 1000, 2000], args.scale_1000
            )
        if "convergence" not in skip:
            say("8. exactly n when many answers are invalid; a slow model")
            converged = convergence.measure(bench.sim, args.quick)
    finally:
        bench.close()
    text = report(
        args, clean, faulty, sweep, trial, replay, overhead, mem, time.perf_counter() - started
    )
    text += "\n" + "\n".join(ratelimit.report(limited, estimates))
    text += "\n" + "\n".join(convergence.report(*converged))
    Path(args.output).write_text(text)
    say()
    say(text)
    say(f"written to {args.output}")
    if args.fingerprint != package_fingerprint():
        say("WARNING: pytest_synthdata/ changed during the run; run it again")


if __name__ == "__main__":
    main()
