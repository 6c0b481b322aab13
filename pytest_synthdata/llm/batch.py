"""The Batch API through the official openai SDK: upload request files, create batches, poll
them with progress, download their output and error files, cancel and list them.

:class:`BatchAPI` makes each call and turns the SDK's errors into
:class:`~pytest_synthdata.errors.SynthAPIError` with a message saying what failed and what to
do (never a key). The functions below it keep every step in a
:class:`~pytest_synthdata.storage.batchjobs.BatchJobs` folder as soon as it happened, so a
run killed at any moment and run again picks up its batches and never submits the same
requests twice::

    api = BatchAPI.connect(base_url, api_key)
    jobs = BatchJobs(cache_dir)
    job = submit(api, jobs, Path("requests.jsonl"), label="claims wave 1")
    job = wait(api, jobs, job, progress=print)     # polls, then downloads the results
    results = collect_results(job.result_paths)    # pytest_synthdata.batchfiles

:func:`submit` looks before it sends: a job saved for the same content (the file's sha256)
is returned as it is; an uploaded file or a created batch that the run did not live to save
is found again by its file name (``synthdata-<digest>.jsonl``) and its input file id (the
job says ``uploading`` or ``creating`` while a call is under way, so only a run killed
during one lists the endpoint's files or batches).
"""

from __future__ import annotations

import ssl
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx2
import openai
from openai.types import Batch, FileObject

from ..batchfiles import file_digest
from ..errors import SynthAPIError, SynthConfigError
from ..storage.batchjobs import TERMINAL, BatchJob, BatchJobs
from ..storage.credentials import MISSING_KEY, OPENAI_HOST, needs_key

POLL_INTERVAL = 30.0
"""Seconds between two polls of a batch by default (batches take minutes to hours)."""
UPLOAD_PREFIX = "synthdata-"


@dataclass(frozen=True)
class BatchStatus:
    """A batch as the API last described it."""

    id: str
    status: str
    input_file_id: str
    total: int = 0
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def line(self) -> str:
        """``batch_abc: in_progress, 120/1000 done, 3 failed``: what progress shows."""
        return (
            f"{self.id}: {self.status}, {self.completed + self.failed}/{self.total} done, "
            f"{self.failed} failed"
        )


Progress = Callable[[BatchStatus], None]


class BatchAPI:
    """The Batch API of one endpoint, through an ``openai.OpenAI`` client."""

    def __init__(self, client: openai.OpenAI) -> None:
        self.client = client

    @classmethod
    def connect(
        cls,
        base_url: str | None,
        api_key: str | None,
        *,
        timeout: float = 600.0,
        max_retries: int = 3,
    ) -> BatchAPI:
        """A client of ``base_url`` (OpenAI's when None). Transient errors (429, 5xx, a lost
        connection) are tried again by the SDK, ``max_retries`` times. A plain ``http://``
        endpoint gets a client that loads no CA certificates until a request goes to an
        ``https://`` URL (:class:`TLSWhenNeeded`). Without ``api_key``, a local endpoint
        gets the placeholder key the sync path sends (it needs none); OpenAI's own is
        refused before anything is sent."""
        if not api_key and needs_key(base_url or "https://api.openai.com/v1"):
            raise SynthConfigError(
                f"OPENAI_API_KEY is not set, and the Batch API of {OPENAI_HOST} needs it; set "
                "it to your key, or point OPENAI_BASE_URL (--base-url) at another "
                "OpenAI-compatible endpoint"
            )
        try:
            client = openai.OpenAI(
                base_url=base_url,
                api_key=api_key or MISSING_KEY,
                timeout=timeout,
                max_retries=max_retries,
                http_client=_http_client(base_url),
            )
        except openai.OpenAIError as exc:  # the SDK's own checks of its settings
            raise SynthConfigError(f"cannot use the Batch API of {base_url}: {exc}") from None
        return cls(client)

    def close(self) -> None:
        self.client.close()

    def upload(self, path: Path, filename: str | None = None) -> str:
        """Upload a request file (``purpose="batch"``); its file id."""
        name = filename or path.name
        try:
            with open(path, "rb") as handle:
                uploaded = self.client.files.create(
                    file=(name, handle, "application/jsonl"), purpose="batch"
                )
        except OSError as exc:
            raise SynthConfigError(f"cannot read request file {str(path)!r}: {exc}") from None
        except openai.OpenAIError as exc:
            raise api_error(exc, f"uploading {path.name}") from None
        if not isinstance(uploaded, FileObject):
            raise not_an_object(f"uploading {path.name}", uploaded, "file")
        return _text(uploaded, "id", f"uploading {path.name}")

    def find_upload(self, filename: str) -> str | None:
        """The id of a batch file already uploaded under ``filename``, if the API lists one."""
        try:
            for item in self.client.files.list(purpose="batch"):
                found = getattr(item, "id", None)
                if getattr(item, "filename", None) != filename or not isinstance(found, str):
                    continue  # another file, or not a file object at all
                if found and getattr(item, "status", None) != "error":
                    return found
        except openai.OpenAIError as exc:
            raise api_error(exc, "listing uploaded files") from None
        return None

    def create(self, file_id: str, metadata: dict[str, str] | None = None) -> BatchStatus:
        """Create a batch of the uploaded file's chat-completion requests (24 h window)."""
        try:
            batch = self.client.batches.create(
                completion_window="24h",
                endpoint="/v1/chat/completions",
                input_file_id=file_id,
                metadata=metadata,
            )
        except openai.OpenAIError as exc:
            raise api_error(exc, f"creating a batch of file {file_id}") from None
        return status_of(batch, f"creating a batch of file {file_id}")

    def retrieve(self, batch_id: str) -> BatchStatus:
        try:
            batch = self.client.batches.retrieve(batch_id)
        except openai.OpenAIError as exc:
            raise api_error(exc, f"reading batch {batch_id}") from None
        return status_of(batch, f"reading batch {batch_id}")

    def cancel(self, batch_id: str) -> BatchStatus:
        """Ask the API to cancel a batch (it says ``cancelling``, then ``cancelled``)."""
        try:
            batch = self.client.batches.cancel(batch_id)
        except openai.OpenAIError as exc:
            raise api_error(exc, f"cancelling batch {batch_id}") from None
        return status_of(batch, f"cancelling batch {batch_id}")

    def list(self, limit: int = 100) -> list[BatchStatus]:
        """The endpoint's batches, newest first, at most ``limit``."""
        found: list[BatchStatus] = []
        try:
            for batch in self.client.batches.list(limit=min(limit, 100)):
                found.append(status_of(batch, "listing batches"))
                if len(found) >= limit:
                    break
        except openai.OpenAIError as exc:
            raise api_error(exc, "listing batches") from None
        return found

    def find_batch(self, file_id: str) -> BatchStatus | None:
        """A batch already created for the uploaded file, if the API lists one that is not
        over without answers (a failed or expired one is not reused)."""
        for batch in self.list(limit=1000):
            if batch.input_file_id == file_id and batch.status not in ("failed", "expired"):
                return batch
        return None

    def download(self, file_id: str, path: Path) -> Path:
        """Stream a file's content to ``path`` (through a temporary file, then a rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        try:
            with self.client.files.with_streaming_response.content(file_id) as response:
                response.stream_to_file(partial)
        except openai.OpenAIError as exc:
            partial.unlink(missing_ok=True)
            raise api_error(exc, f"downloading file {file_id}") from None
        partial.replace(path)
        return path

    def poll(
        self,
        batch_id: str,
        *,
        progress: Progress | None = None,
        interval: float = POLL_INTERVAL,
        sleep: Callable[[float], None] = time.sleep,
    ) -> BatchStatus:
        """Retrieve the batch every ``interval`` seconds until it is over, telling
        ``progress`` each status; the last one."""
        while True:
            status = self.retrieve(batch_id)
            if progress is not None:
                progress(status)
            if status.finished:
                return status
            sleep(interval)


class TLSWhenNeeded(httpx2.BaseTransport):
    """The SDK's transport, with its TLS context made for the first ``https://`` request
    rather than up front: loading the CA certificates costs about 1 MiB of memory that a
    run against a plain ``http://`` endpoint (a local server) never uses. An ``https://``
    request (a redirect, say) goes through a transport made exactly as the SDK makes its
    own, verifying certificates as always; a plain one through a transport whose TLS
    context trusts no certificate, so it could never connect over TLS unverified."""

    def __init__(self) -> None:
        self._plain: httpx2.HTTPTransport | None = None
        self._tls: httpx2.HTTPTransport | None = None

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.scheme == "http":
            if self._plain is None:
                trusts_nothing = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, no CAs
                self._plain = httpx2.HTTPTransport(
                    verify=trusts_nothing, limits=openai.DEFAULT_CONNECTION_LIMITS
                )
            return self._plain.handle_request(request)
        if self._tls is None:
            self._tls = httpx2.HTTPTransport(limits=openai.DEFAULT_CONNECTION_LIMITS)
        return self._tls.handle_request(request)

    def close(self) -> None:
        for transport in (self._plain, self._tls):
            if transport is not None:
                transport.close()


def _http_client(base_url: str | None) -> httpx2.Client | None:
    """The HTTP client of a Batch API client: the SDK's own (``None``) unless the endpoint
    is plain ``http://`` and no proxy is set in the environment (a client given a transport
    reads no proxy settings), then the SDK's defaults on :class:`TLSWhenNeeded`."""
    if not (base_url or "").lower().startswith("http://") or urllib.request.getproxies():
        return None
    return openai.DefaultHttpxClient(transport=TLSWhenNeeded())


def status_of(batch: object, doing: str = "reading a batch") -> BatchStatus:
    """A :class:`BatchStatus` of what the SDK made of the endpoint's batch object. The SDK
    builds its objects without checking them, so an endpoint that is not a Batch API (or a
    hostile one) could hand over anything: every field read is checked here, and what is
    not a batch is a :class:`SynthAPIError` saying so."""
    if not isinstance(batch, Batch):
        raise not_an_object(doing, batch, "batch")
    counts = batch.request_counts
    errors = batch.errors.data if batch.errors is not None and batch.errors.data else []
    said = tuple(_said(error) for error in errors if error is not None)[:20]
    metadata = batch.metadata if isinstance(batch.metadata, dict) else {}
    return BatchStatus(
        id=_text(batch, "id", doing),
        status=_text(batch, "status", doing),
        input_file_id=_optional_text(batch, "input_file_id", doing) or "",
        total=_count(counts, "total"),
        completed=_count(counts, "completed"),
        failed=_count(counts, "failed"),
        output_file_id=_optional_text(batch, "output_file_id", doing),
        error_file_id=_optional_text(batch, "error_file_id", doing),
        errors=said,
        metadata=tuple(sorted((str(k), str(v)) for k, v in metadata.items())),
    )


def not_an_object(doing: str, value: object, kind: str) -> SynthAPIError:
    """The endpoint answered ``doing`` with something that is not a ``kind`` object."""
    return SynthAPIError(
        f"{doing} failed: the endpoint answered with {type(value).__name__!r} data, not a "
        f"{kind} object; check that OPENAI_BASE_URL is an OpenAI-compatible Batch API"
    )


def _text(obj: object, name: str, doing: str) -> str:
    """Field ``name`` of an SDK object: a string that is not empty."""
    value = _optional_text(obj, name, doing)
    if value:
        return value
    raise _no_string(obj, name, doing)


def _optional_text(obj: object, name: str, doing: str) -> str | None:
    """Field ``name`` of an SDK object: a string, or None."""
    value = getattr(obj, name, None)
    if value is None or isinstance(value, str):
        return value
    raise _no_string(obj, name, doing)


def _no_string(obj: object, name: str, doing: str) -> SynthAPIError:
    kind = "file" if isinstance(obj, FileObject) else "batch"
    return SynthAPIError(
        f"{doing} failed: the endpoint's {kind} object has no {name!r} string; check that "
        "OPENAI_BASE_URL is an OpenAI-compatible Batch API"
    )


def _count(counts: object, name: str) -> int:
    """A request count (shown in progress only): 0 unless a whole number of at least 0."""
    value = getattr(counts, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _said(error: object) -> str:
    """One of a batch's errors as one line: ``line 3: code: message``."""
    code, message, line = (getattr(error, name, None) for name in ("code", "message", "line"))
    text = f"{code}: {message}"[:500]
    return f"line {line}: {text}" if isinstance(line, int) and line else text


def api_error(exc: openai.OpenAIError, doing: str) -> SynthAPIError:
    """The SDK's error while ``doing`` something, as a :class:`SynthAPIError` saying what to
    do about it."""
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = _message(exc.body) or exc.message
        hint = {
            401: "check OPENAI_API_KEY (the endpoint refused the key)",
            403: "the key may not use the Batch API of this endpoint",
            404: (
                "this endpoint may have no Batch API: write a request file with --batch-file "
                "and run it with `vllm run-batch`, or drop --batch"
            ),
            429: "the batch queue limit is reached: wait for running batches, or cancel some",
        }.get(status, "")
        transient = status == 429 or status >= 500
        message = f"{doing} failed: HTTP {status}: {detail}" + (f"; {hint}" if hint else "")
        return SynthAPIError(
            message,
            status_code=status,
            body=exc.body,
            transient=transient,
            headers=dict(exc.response.headers),
        )
    if isinstance(exc, openai.APITimeoutError):
        return SynthAPIError(
            f"{doing} failed: the endpoint did not answer in time", transient=True, timed_out=True
        )
    if isinstance(exc, openai.APIConnectionError):
        return SynthAPIError(
            f"{doing} failed: cannot reach the endpoint ({exc.message}); check OPENAI_BASE_URL",
            transient=True,
        )
    return SynthAPIError(f"{doing} failed: {exc}")


def _message(body: object) -> str:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return ""


# -- tracked jobs ---------------------------------------------------------------------------


def upload_name(digest: str) -> str:
    """The name a request file is uploaded under: its content's digest, so a rerun finds it."""
    return f"{UPLOAD_PREFIX}{digest[:32]}.jsonl"


def submit(api: BatchAPI, jobs: BatchJobs, request_file: Path, *, label: str = "") -> BatchJob:
    """Upload ``request_file`` and create its batch, unless that was done already: the job is
    looked up by the file's content, and every id is saved the moment it exists. A job whose
    batch is over and answered nothing (failed at validation, say) is submitted again only
    by :func:`resubmit`."""
    digest = file_digest(request_file)
    requests = _count_lines(request_file)
    job = jobs.open(digest, request_file, requests, label)
    if job.batch_id is not None:
        return job
    if job.file_id is None:
        # Killed while uploading before: the upload may have arrived, so look for it.
        if job.status == "uploading":
            job.file_id = api.find_upload(upload_name(digest))
        if job.file_id is None:
            job.status = "uploading"
            jobs.save(job)
            job.file_id = api.upload(request_file, upload_name(digest))
        job.status = "uploaded"
        jobs.save(job)
    # Killed while creating the batch before: it may exist, so look for it.
    found = api.find_batch(job.file_id) if job.status == "creating" else None
    if found is None:
        job.status = "creating"
        jobs.save(job)
        found = api.create(job.file_id, {"synthdata": digest[:32], "label": label[:500]})
    job.batch_id = found.id
    return jobs.save(_update(job, found))


def resubmit(api: BatchAPI, jobs: BatchJobs, job: BatchJob) -> BatchJob:
    """A new batch of the same uploaded file, for a job whose batch failed as a whole (the
    old one's results, if any, stay where they were downloaded)."""
    if job.file_id is None:
        return submit(api, jobs, Path(job.request_file), label=job.label)
    found = api.create(job.file_id, {"synthdata": job.digest[:32], "label": job.label[:500]})
    job.batch_id, job.output_path, job.error_path = found.id, None, None
    return jobs.save(_update(job, found))


def wait(
    api: BatchAPI,
    jobs: BatchJobs,
    job: BatchJob,
    *,
    progress: Progress | None = None,
    interval: float = POLL_INTERVAL,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchJob:
    """Poll ``job``'s batch until it is over (saving each status), then download its output
    and error files next to the job; the job, with ``result_paths`` to read."""
    if job.batch_id is None:
        raise SynthConfigError(f"batch job {job.digest[:12]} was never submitted")
    while not job.finished:
        status = api.retrieve(job.batch_id)
        jobs.save(_update(job, status))
        if progress is not None:
            progress(status)
        if not job.finished:
            sleep(interval)
    return download(api, jobs, job)


def download(api: BatchAPI, jobs: BatchJobs, job: BatchJob) -> BatchJob:
    """Download a finished job's output and error files (those not on disk yet)."""
    folder = jobs.results_folder(job.digest)
    if job.output_file_id is not None and job.output_path is None:
        job.output_path = str(api.download(job.output_file_id, folder / "output.jsonl"))
        jobs.save(job)
    if job.error_file_id is not None and job.error_path is None:
        job.error_path = str(api.download(job.error_file_id, folder / "errors.jsonl"))
        jobs.save(job)
    return job


def cancel(api: BatchAPI, jobs: BatchJobs, job: BatchJob) -> BatchJob:
    """Cancel a job's batch if it is still running; the job with the status the API gave."""
    if job.batch_id is None or job.finished:
        return job
    return jobs.save(_update(job, api.cancel(job.batch_id)))


def refresh(api: BatchAPI, jobs: BatchJobs) -> list[BatchJob]:
    """Every known job, those still running with their status read again (what ``synthdata
    batches`` lists)."""
    known = list(jobs)
    for job in known:
        if job.batch_id is not None and not job.finished:
            jobs.save(_update(job, api.retrieve(job.batch_id)))
    return known


def _update(job: BatchJob, status: BatchStatus) -> BatchJob:
    job.status = status.status
    job.completed, job.failed = status.completed, status.failed
    job.output_file_id, job.error_file_id = status.output_file_id, status.error_file_id
    job.errors = list(status.errors)
    return job


def _count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as handle:
        for raw in handle:
            count += bool(raw.strip())
    return count
