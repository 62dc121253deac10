"""The ingest run: discover -> plan -> decode in workers -> encode in batches -> commit.

Still media (images, text) are decoded in worker processes and committed in
batches; time-coded media (video, audio) are streamed one file at a time in this
process (``ingest.timed``) and committed one item per transaction. Each commit
holds the items, segments and vectors together (``Catalog.commit_items``), then
the in-memory indexes catch up from the journal. When the library has a text space, the
text segments of each commit get their sentence vectors right after it, and each run
fills in text segments still without one (``ingest.text_space``). Killing the process at
any point loses at most the batch in flight; the next run skips everything committed
(its size and mtime match).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsearch._iter import chunked
from mmsearch.encoders.base import Encoder
from mmsearch.errors import DecodeError
from mmsearch.ingest.plan import Planned, plan_file, sidecars
from mmsearch.ingest.prepare import (
    Prepared,
    PrepareFailed,
    Task,
    failure_of,
    init_worker,
    is_transient,
    prepare,
    require_within,
)
from mmsearch.ingest.report import IngestAborted, IngestReport, storage_problem
from mmsearch.ingest.text_space import TextSpaceFiller
from mmsearch.ingest.timed import TimedIngest, TimedOptions, TimedResult
from mmsearch.media._io import os_error_reason
from mmsearch.media.discover import (
    Discovered,
    Skipped,
    WalkRules,
    caption_files,
    discover,
    read_sidecar_meta,
)
from mmsearch.media.image import MAX_PIXELS_DEFAULT
from mmsearch.pathargs import is_within
from mmsearch.spaces import AUDIO, MAIN, TEXT, VIDEO, Space
from mmsearch.store.catalog import Catalog
from mmsearch.store.rows import ItemRow, NewItem, NewSegment
from mmsearch.store.scope import Scope

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


@dataclass
class IngestOptions:
    batch_size: int = 64
    """Files per commit (and per encoder call for images)."""
    workers: int | None = None
    """Decode worker processes; None = :func:`default_workers`; 0 = decode in this process."""
    max_pixels: int = MAX_PIXELS_DEFAULT
    chunk_chars: int = 300
    chunk_overlap: int = 60
    """Characters each text-file chunk repeats from the end of the one before, so a
    sentence cut by a chunk boundary is still whole in one chunk."""
    save_every_s: float = 30.0
    """How often the FAISS index files are checkpointed during a long run."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """User fields added to every item of this run (filterable)."""
    progress: bool = False
    timed: TimedOptions = field(default_factory=TimedOptions)
    """Video and audio settings: frame rate, frame cap, merging, audio windows."""
    redo_upto: int = 0
    """Embed items with ids up to this again even if unchanged (re-embedding)."""
    on_progress: ProgressFn | None = None
    """Called as ``on_progress(done, total)`` after each commit, for files to embed."""
    threads: int | None = None
    """Cap on torch's CPU threads during the run (None: torch's default). On a machine
    shared with other jobs, 1 can be several times faster than 2 (benchmarks)."""
    within: tuple[str, ...] = ()
    """Resolved folders the run must not leave (server-side ingest): files and sidecars
    reached through a symlink that resolves outside them are skipped. Empty: no limit."""
    retry_failed: bool = False
    """Try again files whose failure is recorded, even when they have not changed."""


TIMED_MODALITIES = ("video", "audio")
ORPHAN_REASON = "caption of a file that is gone (index it by name to add it as a text)"


class Ingestor:
    def __init__(
        self,
        catalog: Catalog,
        spaces: dict[str, Space],
        options: IngestOptions | None = None,
        *,
        recognizer: Callable[[], Any | None] = lambda: None,
    ) -> None:
        self.catalog = catalog
        self.spaces = spaces
        self.encoder: Encoder = spaces[MAIN].encoder()
        self.space_id = spaces[MAIN].id
        self.opt = options or IngestOptions()
        self._recognizer = recognizer
        self._timed: TimedIngest | None = None
        text = spaces.get(TEXT)
        self.text_filler = TextSpaceFiller(catalog, text) if text is not None else None

    def _refresh(self) -> None:
        for space in self.spaces.values():
            space.vectors.refresh()

    def _save(self) -> None:
        for space in self.spaces.values():
            space.vectors.save()

    def run(self, roots: Sequence[str]) -> IngestReport:
        with _torch_threads(self.opt.threads):
            return self._run(roots)

    def _run(self, roots: Sequence[str]) -> IngestReport:
        t0 = time.perf_counter()
        report = IngestReport()
        run_id = self.catalog.start_run(roots)
        try:
            todo = self._plan(roots, report)
            self._embed(todo, report)
            self._backfill_text(report)
        except KeyboardInterrupt:
            report.interrupted = True
            raise
        except Exception as exc:
            report.error = storage_problem(exc)
            if report.error is None:
                raise
        finally:
            self._finish(run_id, report, t0)
        if report.error is not None:
            raise IngestAborted(
                f"indexing stopped: {report.error}. What was committed before is kept; "
                "run the same command again to go on",
                report,
            )
        return report

    def _finish(self, run_id: int, report: IngestReport, t0: float) -> None:
        """Checkpoint the indexes and log the run, even when the disk is full (then say so)."""
        try:
            self._save()
            report.seconds = time.perf_counter() - t0
            self.catalog.finish_run(run_id, report.to_dict() | {"failures": report.failed})
        except Exception as exc:
            why = storage_problem(exc)
            if why is None:
                raise
            report.error = report.error or why

    # -- planning ----------------------------------------------------------------------
    def _plan(self, roots: Sequence[str], report: IngestReport) -> list[Planned]:
        scope = Scope(self.catalog)
        rules = WalkRules(
            within=self.opt.within,
            excluded=scope.excluded_paths(),
            patterns=tuple(scope.patterns()),
        )
        seen: set[str] = set()
        sidecar_paths: set[str] = set()
        excluded: list[str] = []
        claimed: set[int] = set()
        todo: list[Planned] = []
        for found in discover(roots, rules=rules):
            if isinstance(found, Skipped):
                self._skipped(found, report)
                if found.kind == "excluded":
                    excluded.append(found.path)
                continue
            seen.add(found.path)
            sidecar_paths.update(s for s in sidecars(found) if s is not None)
            planned = self._plan_one(found, claimed, report)
            if planned is not None:
                todo.append(planned)
        gone = self._gone(roots, seen, claimed, excluded, sidecar_paths)
        orphans = self._orphaned_captions(gone)
        for p in todo:
            if p.file.path in orphans:
                report.skip(p.file.path, "excluded", ORPHAN_REASON)
        if orphans:
            scope.exclude_paths(orphans, ORPHAN_REASON)
        if gone:
            self.catalog.delete_items([item.id for item in gone])
            self._refresh()
        report.removed = len(gone)
        return [p for p in todo if p.file.path not in orphans]

    def _skipped(self, found: Skipped, report: IngestReport) -> None:
        if found.kind == "failed":
            self.catalog.record_failure(found.path, "discover", found.reason)
            report.fail(found.path, "discover", found.reason)
        else:
            report.skip(found.path, found.kind, found.reason)

    def _plan_one(self, d: Discovered, claimed: set[int], report: IngestReport) -> Planned | None:
        try:
            p = plan_file(
                self.catalog,
                d,
                claimed,
                redo_upto=self.opt.redo_upto,
                retry_failed=self.opt.retry_failed,
            )
        except OSError as exc:
            reason = os_error_reason(exc)
            self.catalog.record_failure(d.path, "read", reason, d.size, d.mtime)
            report.fail(d.path, "read", reason)
            return None
        if p.item_id is not None:
            claimed.add(p.item_id)
        if p.action == "unchanged":
            report.unchanged += 1
        elif p.action == "failed_before":
            report.previously_failed += 1
        elif p.action in ("touched", "moved"):
            self.catalog.update_stat(
                p.item_id or 0,
                path=d.path if p.action == "moved" else None,
                size=d.size,
                mtime=p.stat_mtime,
                dev=d.dev,
                ino=d.ino,
            )
            if p.action == "moved":
                report.moved += 1
            else:
                report.unchanged += 1
        else:
            return p
        return None

    def _gone(
        self,
        roots: Sequence[str],
        seen: set[str],
        claimed: set[int],
        excluded: list[str],
        sidecar_paths: set[str],
    ) -> list[ItemRow]:
        """Items under ``roots`` to remove: their file is gone, excluded now, or has become
        the sidecar of another file (a caption is never an item of its own)."""
        gone: list[ItemRow] = []
        for root in roots:
            for item in self.catalog.iter_items(under=os.path.abspath(root)):
                if item.id in claimed or item.path in seen:
                    continue
                if (
                    not os.path.lexists(item.path)
                    or item.path in sidecar_paths
                    or any(is_within(item.path, x) for x in excluded)
                ):
                    gone.append(item)
        return list({item.id: item for item in gone}.values())

    def _orphaned_captions(self, gone: list[ItemRow]) -> set[str]:
        """Caption files of photos whose file is gone: they must not turn into text items."""
        return {
            c
            for item in gone
            if item.modality == "image" and not os.path.lexists(item.path)
            for c in caption_files(item.path)
        }

    # -- decoding, encoding, committing ------------------------------------------------
    def _embed(self, todo: list[Planned], report: IngestReport) -> None:
        if not todo:
            return
        still = [p for p in todo if p.file.modality not in TIMED_MODALITIES]
        timed = [p for p in todo if p.file.modality in TIMED_MODALITIES]
        by_path = {p.file.path: p for p in still}
        tasks = [self._task(p.file) for p in still]
        bar = _progress_bar(len(todo)) if self.opt.progress else None
        self._last_save = time.monotonic()
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if bar is not None:
                bar.update(n)
            if self.opt.on_progress is not None:
                self.opt.on_progress(done, len(todo))
            self._checkpoint()

        try:
            if tasks:
                for batch in chunked(self._prepared(tasks), self.opt.batch_size):
                    self._commit_batch(batch, by_path, report)
                    advance(len(batch))
            for p in timed:
                self._commit_timed(p, report)
                advance(1)
        finally:
            if bar is not None:
                bar.close()

    def _checkpoint(self) -> None:
        if time.monotonic() - self._last_save > self.opt.save_every_s:
            self._save()
            self._last_save = time.monotonic()

    # -- the text space ----------------------------------------------------------------
    def _fill_text(self, item_ids: list[int]) -> None:
        """Give the text segments of just-committed items their text-space vectors. A
        machine failure (out of memory) leaves them to the next run's backfill."""
        if self.text_filler is None or not item_ids:
            return
        try:
            self.text_filler.fill_items(item_ids)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("text vectors left for the next run: %s", failure_of(exc)[1])

    def _backfill_text(self, report: IngestReport) -> None:
        """Embed text segments that have no text vector yet (the text space is new to the
        library, or an earlier run stopped between a commit and its text vectors)."""
        if self.text_filler is None:
            return
        pending = self.text_filler.pending() if self.opt.progress else 0
        bar = _progress_bar(pending, "text space", "segment") if pending else None
        try:
            report.text_backfilled += self.text_filler.backfill(
                bar.update if bar is not None else None
            )
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("text vectors left for the next run: %s", failure_of(exc)[1])
        finally:
            if bar is not None:
                bar.close()
        self._refresh()

    # -- video and audio ---------------------------------------------------------------
    def timed_ingest(self) -> TimedIngest:
        if self._timed is None:
            audio, video = self.spaces.get(AUDIO), self.spaces.get(VIDEO)
            self._timed = TimedIngest(
                self.encoder,
                audio.encoder() if audio is not None else None,
                audio.id if audio is not None else None,
                video.encoder() if video is not None else None,
                video.id if video is not None else None,
                self._recognizer,
                self.opt.timed,
            )
        return self._timed

    def _commit_timed(self, p: Planned, report: IngestReport) -> None:
        d = p.file
        try:
            require_within(self.opt.within, d.path, d.meta_path, *d.subtitle_paths)
            result = self._decode_timed(d)
        except Exception as exc:  # bad input, or a decoder bug: recorded, never the end of a run
            if not isinstance(exc, (DecodeError, MemoryError, OSError)):
                log.exception("decoding %s failed", d.path)
            self._fail(p, *failure_of(exc), report, transient=is_transient(exc))
            return
        meta: dict[str, Any] = dict(result.meta)
        side: dict[str, Any] = {}
        if d.meta_path:
            try:
                side = read_sidecar_meta(d.meta_path)
            except (DecodeError, OSError) as exc:  # a bad sidecar must not cost us the video
                result.warnings.append(f"metadata sidecar ignored: {exc}")
        if side:
            meta["sidecar"] = side
        if result.warnings:
            meta["warnings"] = result.warnings
        item = NewItem(
            path=d.path,
            modality=result.modality or d.modality,
            size=d.size,
            mtime=p.stat_mtime,
            content_hash=p.content_hash,
            width=result.width,
            height=result.height,
            taken_at=d.mtime,
            meta=meta,
            fields={**_scalar_fields(side), **self.opt.metadata},
            segments=result.segments,
            dev=d.dev,
            ino=d.ino,
        )
        replace = [p.item_id] if p.item_id is not None else []
        ids = self.catalog.commit_items([item], self.space_id, replace=replace)
        self._fill_text(ids)
        self._refresh()
        if p.item_id is None:
            report.added += 1
        else:
            report.updated += 1

    def _decode_timed(self, d: Discovered) -> TimedResult:
        timed = self.timed_ingest()
        if d.modality == "audio":
            return timed.audio(d.path)
        try:
            return timed.video(d.path, getattr(d, "subtitle_paths", ()))
        except DecodeError as exc:
            if exc.reason.startswith("no video stream"):
                return timed.audio(d.path)  # an .mp4 or .mkv holding only sound
            raise

    def _fail(
        self, p: Planned, stage: str, reason: str, report: IngestReport, transient: bool = False
    ) -> None:
        """Record a file that could not be indexed (in the catalog and the report). A
        transient failure (memory, a full disk) is only reported: the next run retries it."""
        if transient:
            report.fail(p.file.path, stage, f"{reason} (temporary: will be retried)")
            return
        self.catalog.record_failure(p.file.path, stage, reason, p.file.size, p.stat_mtime)
        report.fail(p.file.path, stage, reason)

    def _task(self, d: Discovered) -> Task:
        return Task(
            d.path,
            d.modality,
            d.caption_path,
            d.meta_path,
            max_pixels=self.opt.max_pixels,
            chunk_chars=self.opt.chunk_chars,
            chunk_overlap=self.opt.chunk_overlap,
            within=self.opt.within,
        )

    def _prepared(self, tasks: list[Task]) -> Iterator[Prepared | PrepareFailed]:
        preprocess = self.encoder.image_preprocessor()
        workers = self.opt.workers
        if workers is None:
            workers = default_workers(self.encoder)
        if workers <= 0 or len(tasks) < 2 * self.opt.batch_size:
            init_worker(preprocess)
            yield from map(prepare, tasks)
            return
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=init_worker, initargs=(preprocess,)
        ) as pool:
            yield from pool.map(prepare, tasks, chunksize=8)

    def _commit_batch(
        self,
        batch: list[Prepared | PrepareFailed],
        by_path: dict[str, Planned],
        report: IngestReport,
    ) -> None:
        ok = [b for b in batch if isinstance(b, Prepared)]
        for b in batch:
            if isinstance(b, PrepareFailed):
                self._fail(by_path[b.task.path], b.stage, b.reason, report, b.transient)
        if not ok:
            return
        try:
            items = self._encode(ok, by_path)
        except Exception as exc:
            if not is_transient(exc):
                raise  # a model that fails on good input is a bug to see, not a file's fault
            for b in ok:
                self._fail(by_path[b.task.path], *failure_of(exc), report, transient=True)
            return
        replace = [by_path[p.task.path].item_id for p in ok]
        ids = self.catalog.commit_items(
            items, self.space_id, replace=[r for r in replace if r is not None]
        )
        self._fill_text(ids)
        self._refresh()
        for r in replace:
            if r is None:
                report.added += 1
            else:
                report.updated += 1

    def _encode(self, ok: list[Prepared], by_path: dict[str, Planned]) -> list[NewItem]:
        images = [p for p in ok if p.pixels is not None]
        image_vecs = (
            self.encoder.encode_pixels(np.stack([p.pixels for p in images]))  # type: ignore[misc]
            if images
            else np.zeros((0, self.encoder.dim), np.float32)
        )
        texts = [t for p in ok for t in _texts_of(p)]
        text_vecs = self.encoder.encode_text(texts) if texts else np.zeros((0, 0), np.float32)
        image_row = {id(p): i for i, p in enumerate(images)}
        items: list[NewItem] = []
        t = 0
        for p in ok:
            segs: list[NewSegment] = []
            if p.pixels is not None:
                segs.append(NewSegment("image", "image", image_vecs[image_row[id(p)]]))
            for kind, text in _kinded_texts(p):
                segs.append(NewSegment("text", kind, text_vecs[t], text=text))
                t += 1
            items.append(self._new_item(p, by_path[p.task.path], segs))
        return items

    def _new_item(self, p: Prepared, plan: Planned, segs: list[NewSegment]) -> NewItem:
        d = plan.file
        meta: dict[str, Any] = {}
        if p.caption:
            meta["caption"] = p.caption
        if p.meta:
            meta["sidecar"] = p.meta
        if p.warnings:
            meta["warnings"] = p.warnings
        fields = {**_scalar_fields(p.meta), **self.opt.metadata}
        return NewItem(
            path=d.path,
            modality=d.modality,
            size=d.size,
            mtime=plan.stat_mtime,
            content_hash=plan.content_hash,
            width=p.width,
            height=p.height,
            taken_at=p.taken_at if p.taken_at is not None else d.mtime,
            meta=meta,
            fields=fields,
            segments=segs,
            dev=d.dev,
            ino=d.ino,
        )


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run with torch limited to ``n`` CPU threads (if torch is in use), then restore."""
    torch = sys.modules.get("torch")
    if n is None or torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def default_workers(encoder: Encoder) -> int:
    """Decode processes worth starting: many when the model runs on a GPU (the CPUs are
    free), few when it runs on the CPU (it needs the cores; on 2 cores workers only
    compete with it: benchmarks/results/ingest.md)."""
    cpus = os.cpu_count() or 1
    if str(getattr(encoder, "device", "cpu")).startswith("cuda"):
        return min(8, max(1, cpus - 1))
    return min(4, cpus // 4)


def _kinded_texts(p: Prepared) -> list[tuple[str, str]]:
    if p.task.modality == "text":
        return [("text", c) for c in p.chunks]
    return [("caption", p.caption)] if p.caption else []


def _texts_of(p: Prepared) -> list[str]:
    return [t for _, t in _kinded_texts(p)]


def _scalar_fields(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))}


def _progress_bar(total: int, desc: str = "indexing", unit: str = "file") -> Any:
    from tqdm import tqdm

    # Shown only once the work has taken a second: quick runs print just their summary.
    return tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True, delay=1.0)
