"""Decode the picture of a candidate (``candidates.Pick``) for a reranker, or say it is gone.

A photo is read from its file only while it is still the file that was indexed (the
same device, inode and size, not modified since: the rule the server serves files by),
through the project's guarded decoder (``media.image.open_image_rgb``: bombs,
truncation, odd modes, EXIF rotation). A video frame is its keyframe JPEG stored in the
catalog. Pictures are shrunk to at most ``max_side`` pixels on their longer side (every
reranker resizes to a few hundred pixels anyway), so a batch of camera photos holds
megabytes, not gigabytes.

Anything that cannot be read — a file deleted, replaced, edited or corrupt since, a
keyframe missing — gives None and a log line, never an exception: that hit keeps its
first-stage score.
"""

from __future__ import annotations

import io
import logging
import os
import stat
from typing import TYPE_CHECKING

from mmsearch.errors import DecodeError
from mmsearch.media.image import open_image_rgb
from mmsearch.search.rerank.candidates import Pick
from mmsearch.store.catalog import Catalog
from mmsearch.store.rows import ItemRow

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)

MAX_SIDE = 1024
"""Longest side of a picture handed to a reranker (BLIP reads 384 px)."""


def load_picture(catalog: Catalog, pick: Pick, *, max_side: int = MAX_SIDE) -> Image.Image | None:
    """The RGB picture ``pick`` stands for, or None (logged) when it cannot be read."""
    try:
        if pick.item is not None:
            image = _read_indexed(pick.item)
        else:
            jpeg = catalog.thumbnail(pick.segment_id)
            if jpeg is None:
                raise DecodeError("no stored keyframe")
            image = open_image_rgb(io.BytesIO(jpeg))
    except (DecodeError, OSError) as exc:
        reason = exc.reason if isinstance(exc, DecodeError) else str(exc)
        log.info("rerank: skipping segment %d: %s", pick.segment_id, reason)
        return None
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    return image


def _read_indexed(item: ItemRow) -> Image.Image:
    """Decode ``item``'s file if it is still the file indexed; DecodeError otherwise."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(item.path, flags)
    except OSError as exc:
        raise DecodeError("the file is gone or unreadable") from exc
    with os.fdopen(fd, "rb") as fh:
        try:
            st = os.fstat(fd)
        except OSError as exc:
            raise DecodeError("the file is unreadable") from exc
        if not stat.S_ISREG(st.st_mode) or not still_indexed(item, st):
            raise DecodeError("the file changed since it was indexed")
        os.set_blocking(fd, True)
        return open_image_rgb(fh)


def still_indexed(item: ItemRow, st: os.stat_result) -> bool:
    """Whether ``st`` is the file indexed as ``item``, unchanged since: the device and
    inode recorded (when recorded), the same size, no newer modification time."""
    if item.dev is not None and (st.st_dev, st.st_ino) != (item.dev, item.ino):
        return False
    if item.size is not None and st.st_size != item.size:
        return False
    return item.mtime is None or st.st_mtime <= item.mtime
