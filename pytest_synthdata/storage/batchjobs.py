"""Batch jobs kept in the command's cache folder, so that a run killed at any moment, and run
again, finds what it had submitted and never submits the same requests twice.

One JSON file a request file, ``<cache>/batches/<digest>.json``, keyed by the sha256 of the
request file's content: the same requests make the same key whatever the file is called. A
job is saved (atomically: a temporary file, then a rename) as soon as each thing exists: the
request file, the uploaded file's id, the batch's id, each status polled, the downloaded
output and error files. :func:`cache_answer` puts an answered line in the response cache
where a sync request would find it. A batch that expired, was cancelled or failed keeps the lines it
completed: its output file is downloaded like a completed batch's.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SynthRecordingError
from .cache import ResponseCache, request_key
from .cassettes import write_atomically

FOLDER = "batches"
"""The folder of the cache folder that holds the jobs."""

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
"""Statuses after which a batch changes no more."""
UNFINISHED = frozenset({"failed", "expired", "cancelled"})
"""Terminal statuses of a batch that did not answer every request."""


@dataclass
class BatchJob:
    """What is known of one request file's trip through a Batch API.

    ``status`` is ``"written"`` before anything is sent, ``"uploading"`` while the file is
    sent, ``"uploaded"`` once it is, ``"creating"`` while the batch is asked for, then the
    batch's own status (``validating``, ``in_progress``, ``finalizing``,
    ``completed``, ``failed``, ``expired``, ``cancelling``, ``cancelled``). ``label`` says
    what the requests are for (the dataset and wave); ``output_path`` and ``error_path`` are
    the downloaded files, once they are."""

    digest: str
    request_file: str
    requests: int
    label: str = ""
    status: str = "written"
    file_id: str | None = None
    batch_id: str | None = None
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    output_path: str | None = None
    error_path: str | None = None
    errors: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @property
    def finished(self) -> bool:
        """The batch reached a terminal status (it changes no more)."""
        return self.status in TERMINAL

    @property
    def downloaded(self) -> bool:
        """The batch finished and every file it produced is on disk."""
        return (
            self.finished
            and (self.output_file_id is None or self.output_path is not None)
            and (self.error_file_id is None or self.error_path is not None)
        )

    @property
    def result_paths(self) -> list[Path]:
        """The downloaded output and error files."""
        return [Path(p) for p in (self.output_path, self.error_path) if p is not None]


class BatchJobs:
    """The jobs of one cache folder: ``<cache_dir>/batches/*.json``."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.folder = Path(cache_dir) / FOLDER

    def path_of(self, digest: str) -> Path:
        return self.folder / f"{digest}.json"

    def results_folder(self, digest: str) -> Path:
        """Where a job's output and error files are downloaded."""
        return self.folder / digest

    def get(self, digest: str) -> BatchJob | None:
        """The job of the request file whose content has this sha256, if one was saved."""
        path = self.path_of(digest)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return _decode(path, text)

    def save(self, job: BatchJob) -> BatchJob:
        """Write ``job`` at once (atomically), stamped with the time."""
        job.updated_at = time.time()
        text = json.dumps(dataclasses.asdict(job), indent=2, sort_keys=True) + "\n"
        write_atomically(self.path_of(job.digest), text)
        return job

    def open(self, digest: str, request_file: str | Path, requests: int, label: str) -> BatchJob:
        """The saved job of this content, or a new one saved now."""
        known = self.get(digest)
        if known is not None:
            return known
        job = BatchJob(digest, str(request_file), requests, label)
        return self.save(job)

    def __iter__(self) -> Iterator[BatchJob]:
        """Every saved job, oldest first."""
        if not self.folder.is_dir():
            return iter(())
        jobs = [
            _decode(path, path.read_text(encoding="utf-8")) for path in self.folder.glob("*.json")
        ]
        return iter(sorted(jobs, key=lambda job: (job.created_at, job.digest)))

    def labelled(self, label: str) -> list[BatchJob]:
        """The jobs saved under ``label`` (a dataset and wave), oldest first: how a rerun whose
        requests came out different (a prompt changed) finds the batches it left running."""
        return [job for job in self if job.label == label]

    def forget(self, digest: str) -> None:
        """Remove a job's file (its downloaded results stay)."""
        self.path_of(digest).unlink(missing_ok=True)


def _decode(path: Path, text: str) -> BatchJob:
    try:
        data: Any = json.loads(text)
        names = {f.name for f in dataclasses.fields(BatchJob)}
        return BatchJob(**{k: v for k, v in data.items() if k in names})
    except (ValueError, TypeError, AttributeError) as exc:
        raise SynthRecordingError(
            f"batch job file {str(path)!r} is not one pytest-synthdata wrote ({exc}); "
            "delete it to forget that job (its batch, if any, is left as it is)",
            corrupt=True,
        ) from None


def cache_answer(
    cache: ResponseCache, base_url: str, body: Mapping[str, Any], answer: Mapping[str, Any]
) -> str:
    """Keep a batch line's answer in the response cache under the key the sync path gives the
    same request (``POST <base_url>/chat/completions`` with ``body``), so a later sync run,
    or a ``--cassette`` run, of the same spec replays it; the key."""
    key = answer_key(base_url, body)
    put_answer(cache, key, answer)
    return key


def answer_key(base_url: str, body: Mapping[str, Any]) -> str:
    """The response cache's key for a batch line's request: the key the sync path gives
    ``POST <base_url>/chat/completions`` with ``body``."""
    url = base_url.rstrip("/") + "/chat/completions"
    return request_key("POST", url, json.dumps(body).encode())


def put_answer(cache: ResponseCache, key: str, answer: Mapping[str, Any]) -> None:
    """Keep a batch line's answer under its request's :func:`answer_key`."""
    cache.put(key, 200, "application/json", json.dumps(answer))
