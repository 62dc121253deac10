"""A pool of read-only :class:`~mmsearch.library.Library` instances that search in parallel.

Each reader has its own SQLite connection and FAISS indexes (memory-mapped from
the same files), so readers never share mutable state and one request uses one
reader at a time. Encoders are loaded once and shared by every reader.

Readers see new commits through the journal catch-up that every search does.
A writer (an ingest job, a delete) also checkpoints index files and trims the
journal they absorbed; a reader that was idle across such a checkpoint could
miss trimmed entries, so a reader is reopened from the newest files whenever a
file newer than what it has seen appears (see :meth:`Reader.stale`).
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mmsearch.library import CATALOG_FILE, Library
from mmsearch.server.encoders import shared_encoders
from mmsearch.server.errors import ServerBusy
from mmsearch.store.catalog import Catalog

log = logging.getLogger(__name__)

_SEQ_RE = re.compile(r"^\d+-[a-z]+\.(\d+)\.index$")


def newest_saved_seq(index_dir: Path) -> int:
    """The highest journal sequence number any saved index file of the library holds."""
    best = 0
    try:
        names = os.listdir(index_dir)
    except OSError:
        return 0
    for name in names:
        m = _SEQ_RE.match(name)
        if m:
            best = max(best, int(m.group(1)))
    return best


class Reader:
    """One read-only library and what it has caught up with."""

    def __init__(self, path: Path, encoders: dict[str, Any]) -> None:
        self.path = path
        self.encoders = encoders
        self.lib = self._open()
        self.synced_seq = 0
        self._dir_mtime = -1

    def _open(self) -> Library:
        return Library.open(self.path, readonly=True, **self.encoders)

    def stale(self) -> bool:
        """Whether a checkpoint newer than this reader's view was written since it last
        looked (only then can the journal it needs have been trimmed)."""
        index_dir = self.path / "index"
        try:
            mtime = os.stat(index_dir).st_mtime_ns
        except OSError:
            return False
        if mtime == self._dir_mtime:
            return False
        self._dir_mtime = mtime
        return newest_saved_seq(index_dir) > self.synced_seq

    def reopen(self) -> None:
        old = self.lib
        self.lib = self._open()
        self.synced_seq = 0
        old.close()

    def mark_synced(self) -> None:
        """Call before a search: the search catches every open index up to at least this."""
        self.synced_seq = self.lib.catalog.last_seq()


class ReaderPool:
    """``size`` readers handed out one request at a time (blocking when all are busy)."""

    def __init__(
        self,
        path: Path,
        size: int,
        encoders: dict[str, Any],
        wrap: Callable[[str, Any], Any] | None = None,
    ) -> None:
        self.path = path
        self.size = size
        self._free: queue.LifoQueue[Reader] = queue.LifoQueue()
        self._all: list[Reader] = []
        self._lock = threading.Lock()
        given = {k: v for k, v in encoders.items() if v is not None}
        probe = Library.open(path, readonly=True, **_for_existing_spaces(path, given))
        try:
            shared = shared_encoders(probe, given)
        finally:
            probe.close()
        if wrap is not None:
            shared = {k: wrap(k, v) for k, v in shared.items()}
        self.encoders = _for_existing_spaces(path, shared)
        for _ in range(size):
            self._add(Reader(path, self.encoders))

    def _add(self, reader: Reader) -> None:
        self._all.append(reader)
        self._free.put(reader)

    @contextmanager
    def library(self, timeout: float = 60.0) -> Iterator[Library]:
        """A caught-up read-only library for the duration of one request."""
        try:
            reader = self._free.get(timeout=timeout)
        except queue.Empty as exc:
            raise ServerBusy(
                f"the server is too busy: no free reader within {timeout:g} s"
            ) from exc
        try:
            if reader.stale():
                log.info("reopening a reader after a checkpoint")
                reader.reopen()
            reader.mark_synced()
            yield reader.lib
        finally:
            self._free.put(reader)

    def busy(self) -> int:
        return self.size - self._free.qsize()

    def close(self) -> None:
        with self._lock:
            for reader in self._all:
                reader.lib.close()
            self._all.clear()


_SPACE_OF = {"audio_encoder": "audio", "video_encoder": "video", "text_encoder": "text"}


def _for_existing_spaces(path: Path, encoders: dict[str, Any]) -> dict[str, Any]:
    """``encoders`` without those of optional spaces the library does not have (a
    read-only open refuses to create a space)."""
    catalog = Catalog.open(path / CATALOG_FILE, readonly=True)
    try:
        present = {row["name"] for row in catalog.spaces()}
    finally:
        catalog.close()
    return {k: v for k, v in encoders.items() if _SPACE_OF.get(k, "main") in present}
