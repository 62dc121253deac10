"""The body of an ingest job: runs in its own (spawned) process with its own Library.

A separate process keeps the server's readers untouched while it writes, lets a
job be cancelled (SIGINT, then SIGKILL) and keeps a decoder crash from taking
the server down. Messages go back over a one-way pipe as ``(kind, payload)``:
``progress`` (repeated), then one of ``done`` (the ingest report), ``cancelled``
or ``failed`` (a message). Whatever happens, everything committed stays
committed: the library is crash-safe.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from mmsearch.errors import MMSearchError
from mmsearch.ingest.pipeline import IngestOptions
from mmsearch.library import CATALOG_FILE, Library
from mmsearch.store.catalog import Catalog

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.5


class _Sender:
    """Thread-safe sends on the pipe; a closed pipe (server gone) is ignored."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def __call__(self, kind: str, payload: Any) -> None:
        with self.lock, contextlib.suppress(OSError, EOFError):
            self.conn.send((kind, payload))


def run_job(
    library: str,
    paths: list[str],
    options: IngestOptions,
    open_args: dict[str, Any],
    conn: Connection,
) -> None:
    """Entry point of the job process: add ``paths`` to ``library`` (opened with
    ``open_args``: encoders or a model spec), reporting back on ``conn``."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    send = _Sender(conn)
    stop = threading.Event()
    counts: dict[str, int | None] = {"files_done": 0, "files_total": None}
    options.on_progress = lambda done, total: counts.update(files_done=done, files_total=total)
    watcher = threading.Thread(
        target=_watch,
        args=(Path(library), send, stop, counts),
        name="job-progress",
        daemon=True,
    )
    try:
        with Library.open(library, **open_args) as lib:
            watcher.start()
            report = lib.add(paths, options=options)
        stop.set()
        send("done", report.to_dict())
    except KeyboardInterrupt:
        send("cancelled", None)
    except MMSearchError as exc:
        send("failed", str(exc))
    except Exception as exc:  # report, do not lose, an unexpected error
        log.exception("ingest job failed")
        send("failed", f"{type(exc).__name__}: {exc}")
    finally:
        stop.set()
        conn.close()


def _watch(
    library: Path, send: _Sender, stop: threading.Event, counts: dict[str, int | None]
) -> None:
    """Report how many items and failures the job has committed so far."""
    catalog = Catalog.open(library / CATALOG_FILE, readonly=True)
    try:
        start = catalog.counts()
        t0 = time.monotonic()
        while not stop.wait(PROGRESS_EVERY_S):
            now = catalog.counts()
            send(
                "progress",
                {
                    "items_in_library": now["items"],
                    "net_new_items": now["items"] - start["items"],
                    "new_failures": max(0, now["failures"] - start["failures"]),
                    "elapsed_s": round(time.monotonic() - t0, 1),
                    **counts,
                },
            )
    finally:
        catalog.close()
