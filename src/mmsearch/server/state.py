"""What a running server holds: settings, library readers, the job runner, caches, metrics."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from mmsearch.library import Library
from mmsearch.search.rerank.base import Reranker
from mmsearch.server.config import ServerConfig
from mmsearch.server.jobs import JobManager
from mmsearch.server.metrics import Metrics, TimedEncoder
from mmsearch.server.readers import ReaderPool
from mmsearch.server.thumbs import ThumbnailCache

log = logging.getLogger(__name__)

ENCODER_SPACES = {
    "encoder": "main",
    "audio_encoder": "audio",
    "video_encoder": "video",
    "text_encoder": "text",
}


@dataclass
class AppState:
    config: ServerConfig
    metrics: Metrics
    encoders: dict[str, Any]
    """Encoders given to ``create_app`` (tests, embedding apps); the library's own otherwise."""
    recognizer: Any | None = None
    rerankers: dict[str, Reranker] = field(default_factory=dict)
    """Rerankers loaded at start, by every name a request may use (see ``rerankers.py``)."""
    pool: ReaderPool | None = None
    jobs: JobManager | None = None
    thumbs: ThumbnailCache = field(default_factory=lambda: ThumbnailCache(0))
    started_at: float = field(default_factory=time.time)

    def start(self) -> None:
        """Open the readers (loading the models once) and start the job runner."""
        self.thumbs = ThumbnailCache(self.config.thumb_cache_bytes)
        opening = dict(self.encoders)
        if self.config.model is not None and "encoder" not in opening:
            opening["model"] = self.config.model  # checked against the library's space
        self.pool = ReaderPool(
            self.config.library, self.config.reader_count(), opening, wrap=self._timed
        )
        if self.recognizer is not None:
            opening["recognizer"] = self.recognizer
        self.jobs = JobManager(
            self.config.library,
            opening,
            workers=self.config.job_workers,
            batch_size=self.config.job_batch_size,
            warm=self.config.warm_worker,
        )
        self.metrics.watch_library(self.stats)
        log.info("serving %s with %d readers", self.config.library, self.pool.size)

    def stop(self) -> None:
        if self.jobs is not None:
            self.jobs.close()
        if self.pool is not None:
            self.pool.close()

    def _timed(self, name: str, encoder: Any) -> Any:
        space = ENCODER_SPACES.get(name)
        if space is None:  # a model spec, not an encoder
            return encoder
        hist = self.metrics.encoder
        return TimedEncoder(encoder, lambda call, s: hist.labels(space, call).observe(s))

    def readers(self) -> ReaderPool:
        assert self.pool is not None, "the server has not started"
        return self.pool

    def job_manager(self) -> JobManager:
        assert self.jobs is not None, "the server has not started"
        return self.jobs

    def stats(self) -> dict[str, Any]:
        """Gauges for /metrics: items, vectors, index sizes, jobs, busy readers."""
        pool = self.readers()
        busy = pool.busy()
        with pool.library() as lib:
            counts = lib.catalog.counts()
            indexes = {
                (name, modality): len(space.vectors.get(modality))
                for name, space in lib.spaces.items()
                for modality in space.modalities()
            }
        return {
            **counts,
            "indexes": indexes,
            "jobs": self.job_manager().counts(),
            "readers_busy": busy,
        }

    def writable_library(self) -> Library:
        """A short-lived writer for quick changes (deletes); models are not loaded."""
        return Library.open(self.config.library, create=False)


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.mm
    return state


State = Annotated[AppState, Depends(get_state)]
"""A route's parameter for the app's state (``state: State``)."""
