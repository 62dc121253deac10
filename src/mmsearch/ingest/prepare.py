"""Decode and preprocess one file; runs in worker processes so the model is never starved.

Everything here is picklable and free of model code: the encoder's image
preprocessor is handed to each worker once, by the pool initialiser.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsearch.encoders.base import ImagePreprocessor, Pixels
from mmsearch.errors import DecodeError
from mmsearch.media._io import os_error_reason
from mmsearch.media.discover import read_caption, read_sidecar_meta
from mmsearch.media.image import MAX_PIXELS_DEFAULT, load_image_for_model
from mmsearch.media.text import chunk_text, read_text_file
from mmsearch.pathargs import resolves_within

MAX_TEXT_CHUNKS = 2_000
"""Cap per text file, so one huge file cannot dominate a run."""


@dataclass(frozen=True)
class Task:
    path: str
    modality: str
    caption_path: str | None = None
    meta_path: str | None = None
    max_pixels: int = MAX_PIXELS_DEFAULT
    chunk_chars: int = 300
    chunk_overlap: int = 0
    within: tuple[str, ...] = ()
    """Folders every file read must resolve into (server-side ingest); empty: no limit."""


@dataclass
class Prepared:
    task: Task
    pixels: Pixels | None = None
    chunks: list[str] = field(default_factory=list)
    caption: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    width: int | None = None
    height: int | None = None
    taken_at: float | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PrepareFailed:
    task: Task
    stage: str
    reason: str
    transient: bool = False
    """The cause may pass (memory, a full disk): reported, not recorded as the file's fault."""


_PREPROCESS: ImagePreprocessor | None = None


def init_worker(preprocess: ImagePreprocessor | None) -> None:
    global _PREPROCESS
    _PREPROCESS = preprocess


def prepare(task: Task) -> Prepared | PrepareFailed:
    """Decode ``task``; never raises for bad input (returns :class:`PrepareFailed`)."""
    try:
        require_within(task.within, task.path, task.caption_path, task.meta_path)
        out = Prepared(task)
        if task.meta_path is not None:
            out.meta = read_sidecar_meta(task.meta_path)
        if task.modality == "image":
            _prepare_image(task, out)
        elif task.modality == "text":
            chunks = chunk_text(
                read_text_file(task.path),
                max_chars=task.chunk_chars,
                overlap_chars=min(task.chunk_overlap, task.chunk_chars // 2),
            )
            out.chunks = [c.text for c in chunks[:MAX_TEXT_CHUNKS]]
        else:
            return PrepareFailed(task, "decode", f"unsupported modality {task.modality}")
        return out
    except Exception as exc:  # bad input, or a decoder bug: recorded, never the end of a run
        return PrepareFailed(task, *failure_of(exc), transient=is_transient(exc))


def require_within(within: tuple[str, ...], *paths: str | None) -> None:
    """Refuse, just before reading, a file that now resolves out of the allowed folders
    (swapped for a symlink since it was found)."""
    for path in paths:
        if within and path is not None and not resolves_within(path, within):
            raise DecodeError("symlink to outside the allowed folders")


def failure_of(exc: BaseException) -> tuple[str, str]:
    """(stage, reason) to record for an exception met while decoding one file."""
    if isinstance(exc, DecodeError):
        return "decode", exc.reason
    if isinstance(exc, MemoryError):
        return "decode", "out of memory while decoding"
    if isinstance(exc, OSError):
        return "read", os_error_reason(exc)
    if is_transient(exc):
        return "encode", f"out of memory ({type(exc).__name__})"
    return "decode", f"{type(exc).__name__}: {exc}"


_TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.ENOMEM, errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT}
)


def is_transient(exc: BaseException) -> bool:
    """Whether a failure says more about the machine than the file (out of memory, CUDA
    out of memory, a full disk, a timeout): such failures are not recorded against the
    file, so the next run tries it again."""
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _TRANSIENT_ERRNOS
    # torch.cuda.OutOfMemoryError (a RuntimeError), or a RuntimeError that says so.
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def _prepare_image(task: Task, out: Prepared) -> None:
    if _PREPROCESS is None:
        raise RuntimeError("worker has no image preprocessor")
    image, probe = load_image_for_model(task.path, max_pixels=task.max_pixels)
    out.pixels = np.asarray(_PREPROCESS(image), dtype=np.float32)
    out.width, out.height = image.size
    out.taken_at = probe.taken_at
    if task.caption_path is not None:
        try:
            out.caption = read_caption(task.caption_path).strip() or None
        except DecodeError as exc:  # a bad caption must not cost us the image
            out.warnings.append(f"caption ignored: {exc.reason}")
