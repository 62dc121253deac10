"""Uploaded files: safe names, size limits while copying, and media checks before use.

Every upload is checked before anything else sees it: its type is sniffed from
its bytes, an image's header must show at most ``max_pixels`` (decompression
bombs never get decoded), and a video's or recording's duration must be within
the limit. A video container holding only sound (an ``.mp4`` voice memo, a
nameless Matroska file) is a recording, as ingest takes it. Refusals raise :class:`UploadRejected` with the HTTP status to answer
(413 for bytes over the limit, 415 for types not indexed, 422 for the rest)
and a message for people.
"""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
from pathlib import Path
from typing import BinaryIO

from mmsearch.errors import DecodeError, MMSearchError
from mmsearch.media.probe import HEAD_BYTES, classify

COPY_CHUNK = 1024 * 1024
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:]")


class UploadRejected(MMSearchError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def safe_name(name: str | None, fallback: str = "upload") -> str:
    """A file name with no folder part and nothing a file system or shell would
    treat specially; its extension (which decides how it is indexed) is kept."""
    base = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    base = _UNSAFE.sub("_", base).strip().lstrip(".")
    if not base:
        return fallback
    stem, ext = os.path.splitext(base)
    return stem[:150] + ext[:20]


def unique_path(folder: Path, name: str) -> Path:
    path = folder / name
    stem, ext = os.path.splitext(name)
    n = 1
    while path.exists():
        path = folder / f"{stem}-{n}{ext}"
        n += 1
    return path


def copy_limited(src: BinaryIO, dst: Path, limit: int) -> int:
    """Copy ``src`` to a new file ``dst``; over ``limit`` bytes, delete it and refuse."""
    written = 0
    with open(dst, "xb") as out:
        while True:
            chunk = src.read(COPY_CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > limit:
                out.close()
                dst.unlink(missing_ok=True)
                raise UploadRejected(
                    413,
                    f"{dst.name}: file too large (over the limit of {limit / 1048576:.1f} MiB)",
                )
            out.write(chunk)
    return written


def check_media(
    path: Path, *, max_pixels: int, max_duration_s: float, display_name: str | None = None
) -> str:
    """The modality ``path`` will be indexed or searched as; raises :class:`UploadRejected`
    for a type that is not indexed, an image over ``max_pixels`` (bombs included) and a
    video or recording longer than ``max_duration_s``."""
    name = display_name or path.name
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    modality, reason = classify(str(path), head)
    if modality is None:
        raise UploadRejected(415, f"{name}: {reason}")
    try:
        if modality == "image":
            from mmsearch.media.image import probe_image

            probe_image(path, max_pixels=max_pixels)
        elif modality in ("video", "audio"):
            modality, duration = _probe_timed(path, modality)
            _check_duration(duration, modality, max_duration_s, name)
    except DecodeError as exc:
        raise UploadRejected(422, f"{name}: {exc.reason}") from exc
    return modality


def _probe_timed(path: Path, modality: str) -> tuple[str, float | None]:
    """(modality, duration) of a video or recording; a video without a video track is
    probed as a recording."""
    if modality == "video":
        from mmsearch.media.video import NoVideoStreamError, probe_video

        try:
            return modality, probe_video(path).duration
        except NoVideoStreamError:
            pass  # sound only: ingest and search take it as audio
    from mmsearch.media.audio import probe_audio

    return "audio", probe_audio(path).duration


def _check_duration(duration: float | None, modality: str, limit: float, name: str) -> None:
    if duration is not None and duration > limit:
        raise UploadRejected(
            422, f"{name}: {modality} too long ({duration:.0f} s > limit of {limit:.0f} s)"
        )


def remove_tree(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
