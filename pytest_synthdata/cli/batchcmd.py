"""The batch runs of the command: ``generate --batch`` (and ``--detach``, ``--batch-file``),
``collect`` and ``batches``. How a pass of the loop collects a wave is :mod:`.batchrun`'s."""

from __future__ import annotations

import argparse
import asyncio
import math
import shlex
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..errors import SynthAPIError, SynthConfigError
from .batchargs import check_batch_flags
from .batchrun import BatchTracker, Wave, dataset_name, progress_printer


class Sleeper:
    """The pause between two status reads, cut short (with an error) once ``stop`` is set."""

    def __init__(self) -> None:
        self.stop = threading.Event()

    def __call__(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise SynthAPIError("stopped while waiting for a batch")


@dataclass
class Handed:
    """A batch run that ends without a dataset: what it wrote or submitted, and what next."""

    handed: str


def batch_settings(spec: Any, settings: Any, *, sync_followups: bool = False) -> Any:
    """The run's settings for passes: the whole plan is the first wave (every planned
    request in one batch), and a request a batch did not answer is topped up, not retried
    (unless follow-ups go out as ordinary requests, which keep their HTTP retries)."""
    from ..records import record_batch_size

    planned = math.ceil(spec.n / record_batch_size(spec.model, settings, spec.examples))
    concurrency = max(settings.concurrency, planned)
    if sync_followups:
        return settings.replace(concurrency=concurrency)
    return settings.replace(concurrency=concurrency, http_retries=0)


def base_url_of(settings: Any, env: Mapping[str, str]) -> str:
    return str(settings.base_url or env.get("OPENAI_BASE_URL") or "https://api.openai.com/v1")


class BatchFlow:
    """One batch run: passes of the loop, each wave written, submitted and waited for (or
    handed over), until a pass returns the dataset."""

    def __init__(
        self,
        args: argparse.Namespace,
        env: Mapping[str, str],
        spec: Any,
        settings: Any,
        cache_dir: Path,
        say: Callable[[str], None],
        tally: Any = None,
    ) -> None:
        from ..storage.batchjobs import BatchJobs
        from ..storage.cache import ResponseCache
        from ..store import dataset_key, growing_key

        self.args, self.env, self.spec, self.settings, self.say = args, env, spec, settings, say
        self.cache_dir = cache_dir
        self.jobs = BatchJobs(cache_dir)
        self.cache = ResponseCache(cache_dir)
        self.name = dataset_name(dataset_key(growing_key(spec), settings), spec.model_name)
        self.base_url = base_url_of(settings, env)
        self.api: Any = None
        self.tally = tally
        """The run's tally: the tokens of the batch answers this process received are the
        ones it paid for (priced at batch prices on the final line)."""

    def paid(self, tracker: BatchTracker) -> None:
        if self.tally is not None:
            self.tally.paid_prompt += tracker.tokens[0]
            self.tally.paid_completion += tracker.tokens[1]
            self.tally.batched += tracker.answered
        tracker.tokens = [0, 0]
        tracker.answered = 0

    def tracker(self) -> BatchTracker:
        tracker = BatchTracker(self.jobs, self.cache, self.name, self.base_url)
        tracker.send_new = self.args.batch_followups == "sync" and tracker.waves >= 1
        return tracker

    async def run(self, generate: Callable[[], Awaitable[Any]]) -> Any:
        from ..batching import RequestDeferred
        from ..storage.transport import DEFERRAL

        if self.args.command == "collect":
            self.collect([Path(p) for p in self.args.results])
        before: set[str] | None = None
        while True:
            tracker = self.tracker()
            self.paid(tracker)  # answers of jobs that finished while no process waited
            token = DEFERRAL.set(tracker)
            try:
                return await generate()
            except RequestDeferred:
                pass
            finally:
                DEFERRAL.reset(token)
            handed, before = await self.next_wave(tracker, before)
            if handed is not None:
                return handed

    async def next_wave(
        self, tracker: BatchTracker, before: set[str] | None
    ) -> tuple[Handed | None, set[str]]:
        """Answer the wave a pass collected (its request bodies are let go before the next
        pass); what was handed over, if anything, and the wave's request keys."""
        wave = tracker.wave()
        tracker.pending.clear()
        if set(wave.bodies) == before:
            raise SynthAPIError(
                f"wave {wave.number}'s batches are over but left the same requests "
                "unanswered; see `synthdata batches`"
            )
        asked = set(wave.bodies)
        handed = await self.answer(tracker, wave)
        self.paid(tracker)
        return handed, asked

    async def answer(self, tracker: BatchTracker, wave: Wave) -> Handed | None:
        """Write the wave's requests; hand them over (a file, or --detach), or submit them
        and wait for their answers, which go to the cache."""
        limits = {
            "max_requests": self.args.batch_max_requests,
            "max_bytes": int(self.args.batch_max_mb * 1024 * 1024),
        }
        if self.args.batch_file or self.args.command == "collect":
            path = self.file_path(wave.number)
            pairs = tracker.write(wave, path, **limits)
            return Handed(self.handed_files([f for f, _ in pairs], wave))
        folder = self.jobs.folder / "requests"
        pairs = tracker.write(wave, folder / f"{self.name}-w{wave.number}.jsonl", **limits)
        from ..llm import batch as api

        if self.api is None:
            self.api = await asyncio.to_thread(
                api.BatchAPI.connect, self.base_url, self.env.get("OPENAI_API_KEY")
            )
        jobs = []
        for request_file, job in pairs:
            fresh = job.batch_id is None
            job = await asyncio.to_thread(
                api.submit, self.api, self.jobs, request_file.path, label=job.label
            )
            verb = "submitted" if fresh else "picked up"
            plural = "" if job.requests == 1 else "s"
            self.say(
                f"wave {wave.number}: {verb} batch {job.batch_id} ({job.requests} request{plural})"
            )
            jobs.append(job)
        if self.args.detach:
            return Handed(self.detached(jobs))
        show = progress_printer(self.say)
        for job in jobs:
            sleeper = Sleeper()
            try:  # polled in a thread; a stopped run (Ctrl-C) stops its polling too
                job = await asyncio.to_thread(
                    api.wait,
                    self.api,
                    self.jobs,
                    job,
                    progress=show,
                    interval=self.args.poll_interval,
                    sleep=sleeper,
                )
            finally:
                sleeper.stop.set()
            answered, failed = tracker.absorb(job, job.result_paths)
            errors = f"; {'; '.join(map(_one_line, job.errors[:3]))}" if job.errors else ""
            self.say(
                f"batch {_one_line(str(job.batch_id))} {_one_line(job.status)}: {answered} "
                f"answered, {failed} not{_why(tracker)}{errors}"
            )
        return None

    def results(self) -> list[str]:
        """The results files this command was given (``collect``'s), as given."""
        return list(self.args.results) if self.args.command == "collect" else []

    def file_path(self, wave: int) -> Path:
        if self.args.command == "collect":
            first = Path(self.args.results[0])
            return first.with_name(f"{first.stem}.followup-w{wave}.jsonl")
        return Path(self.args.batch_file)

    def handed_files(self, files: list[Any], wave: Wave) -> str:
        written = ", ".join(f"{f.path} ({f.requests} requests)" for f in files)
        model = self.settings.model
        outputs = [f"{Path(f.path).stem}.results.jsonl" for f in files]
        again = _command_line(drop=("--batch-file",), collect=outputs, results=self.results())
        runs = "; ".join(
            f"vllm run-batch -i {shlex.quote(str(f.path))} -o "
            f"{shlex.quote(Path(f.path).stem + '.results.jsonl')} --model {shlex.quote(model)}"
            for f in files
        )
        return (
            f"wrote wave {wave.number}'s requests, nothing sent: {written}\n"
            f"answer them with a Batch runner, e.g.: {runs}\n"
            f"then collect the answers with: {again}"
        )

    def detached(self, jobs: list[Any]) -> str:
        ids = ", ".join(str(job.batch_id) for job in jobs)
        return (
            f"submitted batch(es) {ids}; collect them with: {_command_line(drop=('--detach',))}"
            "\n(`synthdata batches` shows their status)"
        )

    def collect(self, paths: list[Path]) -> None:
        """Read the runner's output files into the jobs of the request files they answer."""
        from ..batchfiles import stream_results

        for path in paths:
            if not path.is_file():
                raise SynthConfigError(f"results file {str(path)!r} does not exist")
        ids = {result.custom_id for result in stream_results(paths)}
        tracker = BatchTracker(self.jobs, self.cache, self.name, self.base_url)
        matched = 0
        for job in tracker.ours():
            if job.finished or not ids.intersection(_ids_of(job.request_file)):
                continue
            answered, failed = tracker.absorb(job, paths)
            self.paid(tracker)
            matched += 1
            job.status, job.output_path = "completed", str(paths[0])
            job.completed, job.failed = answered, failed
            self.jobs.save(job)
            self.say(f"{job.label}: {answered} answered, {failed} not{_why(tracker)}")
        if not matched and ids:
            raise SynthConfigError(
                f"none of the {len(ids)} answers in {', '.join(map(str, paths))} is for a request "
                f"file this spec wrote (or they were collected already); give the same "
                "MODULE:MODEL, -n, spec flags and --model as the generate --batch-file command"
            )


def _ids_of(path: str) -> set[str]:
    from ..batchfiles import read_requests

    return {cid for cid, _ in read_requests(path)}


def _command_line(
    drop: tuple[str, ...] = (),
    collect: list[str] | None = None,
    results: list[str] | None = None,
) -> str:
    """The command this process runs, without the flags in ``drop`` (and their value); with
    ``collect``, as ``synthdata collect <collect> ...``: a ``generate`` command becomes a
    ``collect`` one, and a ``collect`` command gets ``collect``'s files in place of the
    ``results`` files it was given (those answers are in the cache already)."""
    argv = list(sys.argv[1:])
    given = list(results or [])
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in drop:
            skip = "=" not in arg and name == "--batch-file"
            continue
        if collect is not None and arg in given:
            given.remove(arg)  # a results file: replaced by the new ones
            continue
        kept.append(arg)
    if collect is not None and kept and kept[0] in ("generate", "collect"):
        kept = ["collect", *collect, *kept[1:]]
    return "synthdata " + shlex.join(kept)


def _one_line(text: str) -> str:
    """Text an endpoint or a results file gave, as one line that a terminal only shows."""
    from ..terminal_safe import escape_controls

    return escape_controls(text)


def _why(tracker: BatchTracker, most: int = 3) -> str:
    """`` (2 x HTTP 400: ...; 1 x ...)``: why the requests of the job absorbed last got no
    answer, the commonest reasons first; empty when all were answered."""
    if not tracker.reasons:
        return ""
    common = tracker.reasons.most_common(most)
    said = "; ".join(f"{count} x {_one_line(reason)[:200]}" for reason, count in common)
    more = len(tracker.reasons) - len(common)
    return f" ({said}{f'; {more} other reason(s)' if more else ''})"


def run_batches(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    """``synthdata batches [--cancel]``: every known batch with its status."""
    from ..llm import batch as api
    from ..storage.batchjobs import BatchJobs
    from .inputs import DEFAULT_CACHE

    folder = Path(args.cache_dir or env.get("SYNTHDATA_CACHE_DIR") or DEFAULT_CACHE)
    jobs = BatchJobs(folder)
    known = list(jobs)
    if not known:
        stdout.write(f"no batches are known in {folder}\n")
        return 0
    if any(job.batch_id is not None and not job.finished for job in known):
        base = args.base_url or env.get("OPENAI_BASE_URL")
        client = api.BatchAPI.connect(base, env.get("OPENAI_API_KEY"))
        try:
            known = api.refresh(client, jobs)
            if args.cancel:
                known = [api.cancel(client, jobs, job) for job in known]
        finally:
            client.close()
    for job in known:  # the batch ids and statuses are the endpoint's words: shown, not acted on
        batch = _one_line(job.batch_id or "(file only, not submitted)")
        stdout.write(
            f"{job.label}\t{batch}\t{_one_line(job.status)}\t{job.completed}/{job.requests} "
            f"done\t{job.failed} failed\t{job.request_file}\n"
        )
    return 0


__all__ = ["BatchFlow", "Handed", "batch_settings", "check_batch_flags", "run_batches"]
