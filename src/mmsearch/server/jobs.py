"""Ingest jobs: queued, run one at a time by the warm job worker, polled, cancellable.

The library takes one writer at a time (a file lock), so jobs run in order, each
in the worker process of :mod:`mmsearch.server.job_worker`, which loads the
models once (at server start, or at the first job) and stays warm between jobs.
This side keeps each job's state for ``GET /api/jobs/{id}``; clients can wait
for a job's end without holding a thread (:meth:`JobManager.wait_async`).

Cancelling sends SIGINT to the job's worker through its process handle (the
ingest stops after its current batch and saves, and the worker ends) and
SIGKILL if the job has not ended within a grace period; either way the items
committed before are kept and a fresh worker is started for the next job.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing as mp
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mmsearch.errors import MMSearchError
from mmsearch.ingest.pipeline import IngestOptions
from mmsearch.server.job_worker import serve
from mmsearch.server.worker_proc import WorkerProcess

log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINAL_STATES = ("done", "failed", "cancelled")
CANCEL_GRACE_S = 5.0
KEEP_FINISHED = 200
Outcome = tuple[str, Any]


class JobNotFound(MMSearchError):
    """No job with that id (or it was forgotten)."""


@dataclass
class Job:
    id: str
    paths: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = "paths"
    """``paths`` (server-side folders) or ``upload``."""
    within: tuple[str, ...] = ()
    """Folders the job's discovery may not leave (symlinks out of them are skipped)."""
    state: JobState = "queued"
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    progress: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    error: str | None = None
    worker: WorkerProcess | None = None
    """The process running the job (signals go through this handle, never a raw pid)."""
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
    """Runs add jobs for one library, one at a time, in a warm worker process."""

    def __init__(
        self,
        library: Path,
        open_args: dict[str, Any] | None = None,
        *,
        workers: int | None = 0,
        batch_size: int = 64,
        warm: bool = True,
    ) -> None:
        """``open_args`` are passed (pickled) to ``Library.open`` in the worker: encoder
        objects, or a ``model`` spec; by default the library's own models. ``warm``:
        start the worker (and load its models) now rather than at the first job."""
        self.library = library
        self.open_args = dict(open_args or {})
        self.workers = workers
        self.batch_size = batch_size
        self.warm = warm
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: list[str] = []
        self._lock = threading.Condition()
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._worker: WorkerProcess | None = None
        self._ready = threading.Event()
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
        within: tuple[str, ...] = (),
    ) -> Job:
        with self._lock:
            if self._closed:
                raise MMSearchError("the server is shutting down")
            job = Job(job_id or self.new_id(), list(paths), dict(metadata or {}), source, within)
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
            return self._job(job_id).to_dict()

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
            job = self._job(job_id)
            if job.state == "queued":
                self._queue.remove(job_id)
                self._finish(job, "cancelled")
            elif job.state == "running" and not job.cancel_requested:
                self._interrupt(job)
            return job.to_dict()

    async def wait_async(self, job_id: str, timeout: float) -> dict[str, Any]:
        """The job once it has finished (or as it is when ``timeout`` runs out), waited
        for on the event loop: no thread is held however long it takes."""
        loop = asyncio.get_running_loop()
        ended = asyncio.Event()
        with self._lock:
            job = self._job(job_id)
            if job.state in FINAL_STATES or timeout <= 0:
                return job.to_dict()
            waiter = (loop, ended)
            self._waiters.setdefault(job_id, []).append(waiter)
        try:
            await asyncio.wait_for(ended.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                waiting = self._waiters.get(job_id, [])
                if waiter in waiting:
                    waiting.remove(waiter)
        return self.get(job_id)

    def wait_ready(self, timeout: float) -> bool:
        """Whether a worker has loaded its models (within ``timeout`` seconds)."""
        return self._ready.wait(timeout)

    def running_pid(self) -> int | None:
        """The pid of the process running a job now (for tests and operators)."""
        with self._lock:
            for job in self._jobs.values():
                if job.state == "running" and job.worker is not None:
                    return job.worker.pid
            return None

    def close(self) -> None:
        """Cancel what is queued, stop what runs (committed work is kept)."""
        with self._lock:
            self._closed = True
            for job_id in list(self._queue):
                self._finish(self._jobs[job_id], "cancelled")
            self._queue.clear()
            running = [j for j in self._jobs.values() if j.state == "running"]
            for job in running:
                if not job.cancel_requested:
                    self._interrupt(job)
            self._lock.notify_all()
        if not running:
            self._retire()  # idle or still loading: nothing to wait for
        self._thread.join(timeout=CANCEL_GRACE_S + 5)
        self._retire()

    # -- the runner thread -------------------------------------------------------------
    def _loop(self) -> None:
        if self.warm:
            self._ready_worker()
        while True:
            job = self._next()
            if job is None:
                return
            try:
                self._run(job)
            except Exception as exc:  # the runner must survive anything a job does
                log.exception("job %s failed", job.id)
                with self._lock:
                    self._finish(job, "failed", error=f"{type(exc).__name__}: {exc}")
            if self._worker is None and self.warm and not self._closed:
                self._ready_worker()  # warm up the next worker while nothing waits

    def _next(self) -> Job | None:
        with self._lock:
            while not self._queue and not self._closed:
                self._lock.wait()
            if self._closed:
                return None
            job = self._jobs[self._queue.pop(0)]
            job.state, job.started_at = "running", time.time()
            return job

    def _run(self, job: Job) -> None:
        options = IngestOptions(
            batch_size=self.batch_size,
            workers=self.workers,
            metadata=dict(job.metadata),
            within=job.within,
        )
        for _ in range(2):  # a worker that ended before taking the job gets one successor
            worker, error = self._ready_worker()
            with self._lock:
                if worker is None or job.cancel_requested:
                    state: JobState = "cancelled" if job.cancel_requested else "failed"
                    self._finish(job, state, error=None if job.cancel_requested else error)
                    return
                job.worker = worker
            outcome = self._exchange(job, worker, (job.paths, options))
            if outcome is not None:
                self._settle(job, worker, outcome)
                return
            self._retire()
        with self._lock:
            self._finish(job, "failed", error="the job worker ended before taking the job")

    def _exchange(self, job: Job, worker: WorkerProcess, payload: Any) -> Outcome | None:
        """Run ``payload`` on ``worker``: its outcome, ``("died", exitcode)`` if the worker
        ended during the job, None if it ended before taking it."""
        if not worker.send(("job", payload)):
            return None
        started = False
        while True:
            try:
                kind, data = worker.recv()
            except EOFError:
                return ("died", worker.exitcode) if started else None
            if kind == "started":
                started = True
            elif not started:
                return None  # a message of a worker that is ending (a late cancel)
            elif kind == "progress":
                with self._lock:
                    job.progress = data
            else:
                return kind, data

    def _settle(self, job: Job, worker: WorkerProcess, outcome: Outcome) -> None:
        kind, data = outcome
        if kind not in ("done", "failed"):  # the worker ended (cancelled, killed, crashed)
            self._retire()
        with self._lock:
            if kind == "done":
                self._finish(job, "done", report=data)
            elif kind == "failed":
                self._finish(job, "failed", error=str(data))
            elif kind == "cancelled" or job.cancel_requested:
                self._finish(job, "cancelled")
            else:
                self._finish(
                    job,
                    "failed",
                    error=f"the job process ended unexpectedly (exit code {worker.exitcode}); "
                    "items committed before are kept; add the same paths again to resume",
                )

    # -- the worker process ------------------------------------------------------------
    def _ready_worker(self) -> tuple[WorkerProcess | None, str | None]:
        """The worker, started and with its models loaded; or None and why not."""
        worker = self._worker
        if worker is not None and worker.alive():
            return worker, None
        self._retire()
        ctx = mp.get_context("spawn")
        worker = WorkerProcess(ctx, serve, (str(self.library), self.open_args), "mmsearch-jobs")
        self._worker = worker
        while True:
            try:
                kind, data = worker.recv()
            except EOFError:
                self._retire()
                return None, f"the job worker could not start (exit code {worker.exitcode})"
            if kind == "ready":
                self._ready.set()
                return worker, None
            if kind in ("fatal", "cancelled"):
                self._retire()
                return None, f"the job worker could not load the library's models: {data}"

    def _retire(self) -> None:
        """Stop and reap the current worker, if any."""
        worker, self._worker = self._worker, None
        self._ready.clear()
        if worker is not None:
            worker.close()

    def _interrupt(self, job: Job) -> None:
        """Ask ``job`` to stop (the lock is held, so the worker cannot have moved on to
        another job), and kill its worker if it has not stopped within the grace period."""
        job.cancel_requested = True
        worker = job.worker
        if worker is None:
            return  # not handed to a worker yet: the runner sees the request
        worker.interrupt()
        threading.Thread(target=self._kill_late, args=(job, worker), daemon=True).start()

    def _kill_late(self, job: Job, worker: WorkerProcess) -> None:
        deadline = time.monotonic() + CANCEL_GRACE_S
        with self._lock:
            while job.state not in FINAL_STATES:
                left = deadline - time.monotonic()
                if left <= 0:
                    worker.kill()
                    return
                self._lock.wait(left)

    # -- bookkeeping (the lock is held) ------------------------------------------------
    def _job(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r}")
        return job

    def _finish(
        self, job: Job, state: JobState, *, report: Any = None, error: str | None = None
    ) -> None:
        job.state, job.finished_at = state, time.time()
        job.report, job.error = report, error
        job.worker = None
        for loop, ended in self._waiters.pop(job.id, []):
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(ended.set)
        self._lock.notify_all()

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.state in FINAL_STATES]
        for job_id in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job_id]
