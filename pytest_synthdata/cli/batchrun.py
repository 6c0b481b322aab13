"""``synthdata generate --batch``, ``--batch-file`` and ``synthdata collect``: the record loop's
requests answered by batches instead of one by one.

There is one loop (:mod:`..records`). A batch run goes through it in *passes*: each pass runs
the ordinary generation with a :data:`~..storage.transport.DEFERRAL` hook in front of the
network. Requests the cache answers (earlier batches' answers, put there by
:func:`~..storage.batchjobs.cache_answer`) are replayed and judged as usual; a request
nothing answers yet is collected instead of sent, its job stops there, and the loop stops
once its wave has reached such requests (:class:`~..batching.RequestDeferred`). The
collected requests are the next batch: exactly what the sync loop would have sent, the same
bodies, so the answers land where a sync run (or a ``--cassette`` run) finds them. A
request whose batch line failed, or that an expired, cancelled or failed batch never
answered, fails as a transient failure would: the loop tops it up in a later wave, within
its retry budget. The pass that meets no new request returns the dataset.

Everything is keyed by content: a wave's request file is written in the order of the
bodies' digests, with ``custom_id`` ``<dataset>-w<wave>-b<i>``, so a rerun (against any
endpoint) writes the same bytes and :func:`~..llm.batch.submit` finds the batch it submitted
(never twice).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..batchfiles import (
    CHAT_URL,
    MAX_BYTES,
    MAX_REQUESTS,
    RequestFile,
    custom_id,
    read_requests,
    stream_results,
    write_request_files,
)
from ..batching import RequestDeferred
from ..errors import SynthAPIError
from ..storage.batchjobs import BatchJob, BatchJobs, answer_key, put_answer
from ..storage.cache import ResponseCache

WAVE = " wave "
"""Between a dataset's name and its wave number in a job's label."""
FAILED = "failed.json"
"""In a job's results folder: the request keys its batch did not answer, and why."""


def dataset_name(material: str, model_name: str) -> str:
    """A short, stable name for a dataset's batches: the model and the spec's digest."""
    digest = hashlib.sha256(material.encode()).hexdigest()[:10]
    safe = "".join(c if c.isalnum() else "-" for c in model_name)[:30]
    return f"{safe}-{digest}"


def chat_url(base_url: str) -> str:
    """The URL the sync path posts chat completions to (what its cache keys hold)."""
    return base_url.rstrip("/") + "/chat/completions"


@dataclass
class Wave:
    """A wave's requests, collected by a pass: its number, and its bodies by request key."""

    number: int
    bodies: dict[str, bytes] = field(default_factory=dict)
    """Body digest -> the body as sent (parsed one at a time, as the file is written)."""

    def lines(self, dataset: str) -> Iterable[tuple[str, dict[str, Any]]]:
        """``(custom_id, body)`` in an order that depends on the bodies alone (not on the
        endpoint's address, which request keys hold): the same requests, the same file."""
        for i, key in enumerate(sorted(self.bodies)):
            yield custom_id(dataset, self.number, i), json.loads(self.bodies[key])


class BatchTracker:
    """What a dataset's batches asked for and what came of it, by request key; the
    :data:`~..storage.transport.DEFERRAL` hook of a pass."""

    def __init__(self, jobs: BatchJobs, cache: ResponseCache, dataset: str, base_url: str) -> None:
        self.jobs, self.cache, self.dataset = jobs, cache, dataset
        self.base_url = base_url
        self.known: dict[str, int] = {}
        """Body digest -> the wave that asked it."""
        self.failed: dict[str, str] = {}
        """Body digest -> why no batch answered it."""
        self.waves = 0
        self.send_new = False
        """Send requests no batch asked for (``--batch-followups sync``)."""
        self.pending: dict[str, bytes] = {}
        self.tokens = [0, 0]
        """Prompt and completion tokens of the answers absorbed by this tracker."""
        self.answered = 0
        """Lines of this process's batches that came back answered (paid at batch prices)."""
        self.reasons: Counter[str] = Counter()
        """Why the requests of the job absorbed last got no answer, with how many each."""
        self.load()

    def ours(self) -> list[BatchJob]:
        return [job for job in self.jobs if job.label.startswith(self.dataset + WAVE)]

    def load(self) -> None:
        for job in self.ours():
            wave = int(job.label.rsplit(" ", 1)[1])
            self.waves = max(self.waves, wave)
            for _, body in read_requests(job.request_file):
                self.known[self.key(body)] = wave
            failed = self.jobs.results_folder(job.digest) / FAILED
            if failed.exists():
                self.failed.update(json.loads(failed.read_text(encoding="utf-8")))
            elif job.downloaded:
                self.absorb(job, job.result_paths)

    @staticmethod
    def key(body: dict[str, Any]) -> str:
        """What the tracker knows a request by: its body's digest (not its request key, which
        holds the endpoint's address: a file written for one endpoint is the same file)."""
        return digest_of(body)

    def absorb(self, job: BatchJob, paths: Iterable[Path]) -> tuple[int, int]:
        """Cache a finished job's answers and note the requests it did not answer; the
        counts of both. Noted once, in the job's results folder. Of each request only its
        two keys are held (the cache's and the tracker's), not its body."""
        keys = {
            cid: (answer_key(self.base_url, body), self.key(body))
            for cid, body in read_requests(job.request_file)
        }
        seen: set[str] = set()
        failed: dict[str, str] = {}
        answered = 0
        for result in stream_results(list(paths)):
            known = keys.get(result.custom_id)
            if known is None:
                continue
            seen.add(result.custom_id)
            if result.ok and result.body is not None:
                put_answer(self.cache, known[0], result.body)
                answered += 1
                self.answered += 1
                usage = result.body.get("usage")
                if isinstance(usage, dict):
                    self.tokens[0] += _count(usage.get("prompt_tokens"))
                    self.tokens[1] += _count(usage.get("completion_tokens"))
            else:
                failed[known[1]] = result.error or "failed"
        for cid, (_, key) in keys.items():
            if cid not in seen:  # expired, cancelled, or a batch that failed as a whole
                failed[key] = f"no answer: the batch ended {job.status}"
        folder = self.jobs.results_folder(job.digest)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / FAILED).write_text(json.dumps(failed), encoding="utf-8")
        self.failed.update(failed)
        self.reasons = Counter(failed.values())
        return answered, len(failed)

    def __call__(self, method: str, url: str, body: bytes) -> None:
        """The hook: fail what a batch could not answer, collect what none asked yet."""
        if method.upper() != "POST" or not url.endswith("/chat/completions"):
            return
        key = digest_of(json.loads(body))
        reason = self.failed.get(key)
        if reason is not None:
            raise SynthAPIError(f"a batch did not answer this request ({reason})", transient=True)
        if key in self.known or not self.send_new:
            self.pending[key] = bytes(body)
            raise RequestDeferred("answered by a batch")

    def wave(self) -> Wave:
        """The requests the pass collected, as a wave: the wave that asked them before
        (a rerun), or the next one."""
        known = [self.known[key] for key in self.pending if key in self.known]
        number = min(known) if known else self.waves + 1
        return Wave(number, dict(self.pending))

    def write(
        self,
        wave: Wave,
        path: Path,
        *,
        max_requests: int = MAX_REQUESTS,
        max_bytes: int = MAX_BYTES,
    ) -> list[tuple[RequestFile, BatchJob]]:
        """Write the wave's request files at ``path`` and open their jobs (saved at once)."""
        files = write_request_files(
            wave.lines(self.dataset),
            path,
            max_requests=max_requests,
            max_bytes=max_bytes,
            url=CHAT_URL,
        )
        label = f"{self.dataset}{WAVE}{wave.number}"
        return [(f, self.jobs.open(f.digest, f.path, f.requests, label)) for f in files]


def digest_of(body: object) -> str:
    """A request body's digest: its canonical JSON's sha256."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def progress_printer(write: Callable[[str], None]) -> Callable[[Any], None]:
    """One line per change of a batch's status or counts."""
    last: dict[str, str] = {}

    def show(status: Any) -> None:
        line = status.line()
        if last.get(status.id) != line:
            last[status.id] = line
            write(line)

    return show
