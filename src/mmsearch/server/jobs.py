"""Ingest jobs: queued, run one at a time in a child process, polled, cancellable.

The library takes one writer at a time (a file lock), so jobs run in order. Each
runs :func:`mmsearch.server.job_worker.run_job` in a spawned process; this side
reads its messages and keeps the job's state for ``GET /api/jobs/{id}``.
Cancelling sends SIGINT (the ingest stops after its current batch and saves)
and SIGKILL if it has not ended within a grace period; either way the items
committed before are kept.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing as mp
import os
import secrets
import signal
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

from mmsearch.errors import MMSearchError
from mmsearch.ingest.pipeline import IngestOptions
from mmsearch.server.job_worker import run_job

log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINAL_STATES = ("done", "failed", "cancelled")
CANCEL_GRACE_S = 5.0
KEEP_FINISHED = 200


class JobNotFound(MMSearchError):
    """No job with that id (or it was forgotten)."""


@dataclass
class Job:
    id: str
    paths: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = "paths"
    """``paths`` (server-side folders) or ``upload``."""
    state: JobState = "queued"
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    error: str | None = None
    pid: int | None = None
    cancel_requested: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "source": self.source,
            "paths": self.paths,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "progress": dict(self.progress),
            "report": self.report,
            "error": self.error,
        }


class JobManager:
    """Runs add jobs for one library, one at a time, each in its own process."""

    def __init__(
        self,
        library: Path,
        open_args: dict[str, Any] | None = None,
        *,
        workers: int | None = 0,
        batch_size: int = 64,
    ) -> None:
        """``open_args`` are passed (pickled) to ``Library.open`` in each job process:
        encoder objects, or a ``model`` spec; by default the library's own models."""
        self.library = library
        self.open_args = dict(open_args or {})
        self.workers = workers
        self.batch_size = batch_size
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: list[str] = []
        self._lock = threading.Condition()
        self._ids = itertools.count(1)
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="mmsearch-jobs", daemon=True)
        self._thread.start()

    # -- public ------------------------------------------------------------------------
    def submit(
        self,
        paths: list[str],
        *,
        metadata: dict[str, Any] | None = None,
        source: str = "paths",
        job_id: str | None = None,
    ) -> Job:
        with self._lock:
            if self._closed:
                raise MMSearchError("the server is shutting down")
            job = Job(job_id or self.new_id(), list(paths), dict(metadata or {}), source)
            self._jobs[job.id] = job
            self._queue.append(job.id)
            self._forget_old()
            self._lock.notify_all()
            return job

    def new_id(self) -> str:
        """Unique across restarts too (upload folders are named after jobs)."""
        return f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._ids)}-{secrets.token_hex(3)}"

    def get(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise JobNotFound(f"no job {job_id!r}")
            return job.to_dict()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [j.to_dict() for j in reversed(self._jobs.values())]

    def counts(self) -> dict[str, int]:
        with self._lock:
            out: dict[str, int] = {}
            for j in self._jobs.values():
                out[j.state] = out.get(j.state, 0) + 1
            return out

    def cancel(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise JobNotFound(f"no job {job_id!r}")
            if job.state == "queued":
                self._queue.remove(job_id)
                self._finish(job, "cancelled")
            elif job.state == "running" and not job.cancel_requested:
                job.cancel_requested = True
                threading.Thread(target=self._stop_process, args=(job,), daemon=True).start()
            return job.to_dict()

    def wait(self, job_id: str, timeout: float) -> dict[str, Any]:
        """The job once it has finished (or as it is when ``timeout`` runs out)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                job = self._jobs.get(job_id)
                if job is None:
                    raise JobNotFound(f"no job {job_id!r}")
                left = deadline - time.monotonic()
                if job.state in FINAL_STATES or left <= 0:
                    return job.to_dict()
                self._lock.wait(min(left, 0.5))

    def running_pid(self) -> int | None:
        with self._lock:
            return next((j.pid for j in self._jobs.values() if j.state == "running"), None)

    def close(self) -> None:
        """Cancel what is queued, stop what runs (committed work is kept)."""
        with self._lock:
            self._closed = True
            for job_id in list(self._queue):
                self._finish(self._jobs[job_id], "cancelled")
            self._queue.clear()
            running = [j for j in self._jobs.values() if j.state == "running"]
            self._lock.notify_all()
        for job in running:
            job.cancel_requested = True
            self._stop_process(job)
        self._thread.join(timeout=CANCEL_GRACE_S + 5)

    # -- the runner thread -------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                job = self._jobs[self._queue.pop(0)]
                job.state, job.started_at = "running", time.time()
            try:
                self._run(job)
            except Exception as exc:  # the runner must survive anything a job does
                log.exception("job %s failed", job.id)
                with self._lock:
                    self._finish(job, "failed", error=f"{type(exc).__name__}: {exc}")

    def _run(self, job: Job) -> None:
        ctx = mp.get_context("spawn")
        recv, send = ctx.Pipe(duplex=False)
        options = IngestOptions(
            batch_size=self.batch_size, workers=self.workers, metadata=dict(job.metadata)
        )
        proc = ctx.Process(
            target=run_job,
            args=(str(self.library), job.paths, options, self.open_args, send),
            name=f"mmsearch-job-{job.id}",
            daemon=True,
        )
        proc.start()
        send.close()
        with self._lock:
            job.pid = proc.pid
        outcome = self._read(job, recv)
        proc.join()
        recv.close()
        with self._lock:
            if outcome is not None:
                kind, payload = outcome
                if kind == "done":
                    self._finish(job, "done", report=payload)
                elif kind == "cancelled":
                    self._finish(job, "cancelled")
                else:
                    self._finish(job, "failed", error=str(payload))
            elif job.cancel_requested:
                self._finish(job, "cancelled")
            else:
                self._finish(
                    job,
                    "failed",
                    error=f"the job process ended unexpectedly (exit code {proc.exitcode}); "
                    "items committed before are kept; add the same paths again to resume",
                )

    def _read(self, job: Job, conn: Connection) -> tuple[str, Any] | None:
        """Messages until the final one, or None if the process died first."""
        while True:
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                return None
            if kind == "progress":
                with self._lock:
                    job.progress = payload
            else:
                return kind, payload

    def _stop_process(self, job: Job) -> None:
        pid = job.pid
        if pid is None:
            return
        _signal(pid, signal.SIGINT)
        deadline = time.monotonic() + CANCEL_GRACE_S
        while time.monotonic() < deadline:
            with self._lock:
                if job.state in FINAL_STATES:
                    return
            time.sleep(0.05)
        _signal(pid, signal.SIGKILL)

    def _finish(
        self, job: Job, state: JobState, *, report: Any = None, error: str | None = None
    ) -> None:
        job.state, job.finished_at = state, time.time()
        job.report, job.error = report, error
        self._lock.notify_all()

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.state in FINAL_STATES]
        for job_id in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job_id]


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
