"""Uploaded files: safe names, size limits while copying, and media checks before use.

Every upload is checked before anything else sees it: its type is sniffed from
its bytes, an image's header must show at most ``max_pixels`` (decompression
bombs never get decoded), and a video's or recording's duration must be within
the limit. Refusals raise :class:`UploadRejected` with the HTTP status to answer
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
            _check_duration(path, modality, max_duration_s, name)
    except DecodeError as exc:
        raise UploadRejected(422, f"{name}: {exc.reason}") from exc
    return modality


def _check_duration(path: Path, modality: str, limit: float, name: str) -> None:
    if modality == "video":
        from mmsearch.media.video import probe_video

        duration = probe_video(path).duration
    else:
        from mmsearch.media.audio import probe_audio

        duration = probe_audio(path).duration
    if duration is not None and duration > limit:
        raise UploadRejected(
            422, f"{name}: {modality} too long ({duration:.0f} s > limit of {limit:.0f} s)"
        )


def remove_tree(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
