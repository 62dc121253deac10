"""The job worker: one spawned process that loads the models once and runs ingest jobs.

Starting a process, importing the model libraries and loading the models cost
seconds, more than adding a photo; so the server keeps one worker warm and
feeds it jobs over a pipe. Each job opens the library afresh (cheap once the
models are loaded; it sees whatever other writers did since), adds its paths
and closes it (saving the index files).

A separate process keeps the server's readers untouched while it writes, lets a
job be cancelled (SIGINT, then SIGKILL) and keeps a decoder crash from taking
the server down. After SIGINT the worker reports ``cancelled`` and ends, so the
next job always starts in a clean process; a killed or crashed worker is
replaced the same way.

Messages to the worker: ``("job", (paths, options))`` or ``("stop", None)``.
Messages back, as ``(kind, payload)``: ``ready`` once the models are loaded (or
``fatal`` with why they could not be, and the process ends); for each job
``started``, ``progress`` (repeated), then one of ``done`` (the ingest report),
``cancelled`` or ``failed`` (a message). Whatever happens, everything committed
stays committed: the library is crash-safe.
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

from mmsearch.errors import MMSearchError, ModelMismatchError
from mmsearch.ingest.pipeline import IngestOptions
from mmsearch.library import CATALOG_FILE, Library
from mmsearch.server.encoders import ENCODER_KEYS, shared_encoders
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


def serve(library: str, open_args: dict[str, Any], conn: Connection) -> None:
    """Entry point of the worker: load the models of ``library`` (``open_args``:
    encoders or a model spec, as for ``Library.open``), then run each job sent on
    ``conn`` until told to stop, interrupted, or the server goes away."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    send = _Sender(conn)
    try:
        models = load_models(library, open_args)
        send("ready", None)
        while True:
            kind, payload = conn.recv()
            if kind != "job":
                return
            paths, options = payload
            send("started", None)
            if not run_job(library, paths, options, models, send):
                return  # the models no longer fit the library: a new worker loads its own
    except KeyboardInterrupt:
        send("cancelled", None)
    except (EOFError, OSError):
        pass  # the server is gone
    except MMSearchError as exc:
        send("fatal", str(exc))
    except Exception as exc:  # report, do not lose, an unexpected error
        log.exception("the job worker failed")
        send("fatal", f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def load_models(library: str, open_args: dict[str, Any]) -> dict[str, Any]:
    """``Library.open`` arguments with every model of the library loaded."""
    given = {k: v for k, v in open_args.items() if k in ENCODER_KEYS}
    with Library.open(library, **open_args) as lib:
        models = shared_encoders(lib, given)
        recognizer = open_args.get("recognizer") or lib.recognizer()
    if recognizer is not None:
        models["recognizer"] = recognizer
    return models


def run_job(
    library: str,
    paths: list[str],
    options: IngestOptions,
    models: dict[str, Any],
    send: _Sender,
) -> bool:
    """Add ``paths`` to ``library``, reporting progress and the outcome with ``send``;
    False if the loaded models no longer fit the library (another process re-embedded
    it). A KeyboardInterrupt (cancel) propagates once the library is closed."""
    stop = threading.Event()
    counts: dict[str, int | None] = {"files_done": 0, "files_total": None}
    options.on_progress = lambda done, total: counts.update(files_done=done, files_total=total)
    watcher = threading.Thread(
        target=_watch, args=(Path(library), send, stop, counts), name="job-progress", daemon=True
    )
    outcome: tuple[str, Any]
    fits = True
    try:
        with Library.open(library, **models) as lib:
            watcher.start()
            report = lib.add(paths, options=options)
        outcome = ("done", report.to_dict())
    except ModelMismatchError as exc:
        outcome, fits = ("failed", f"{exc}; add again to use the library's new model"), False
    except MMSearchError as exc:
        outcome = ("failed", str(exc))
    except Exception as exc:  # report, do not lose, an unexpected error
        log.exception("ingest job failed")
        outcome = ("failed", f"{type(exc).__name__}: {exc}")
    finally:
        stop.set()
        if watcher.is_alive():
            watcher.join()  # no progress message may follow the outcome
    send(*outcome)
    return fits


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
