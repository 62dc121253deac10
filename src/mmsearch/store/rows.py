"""Typed rows the catalog reads and writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsearch.types import Vectors


@dataclass(frozen=True)
class ItemRow:
    id: int
    path: str
    path_key: bytes
    modality: str
    size: int | None
    mtime: float | None
    content_hash: str | None
    width: int | None
    height: int | None
    taken_at: float | None
    meta: dict[str, Any]
    dev: int | None = None
    ino: int | None = None
    """Device and inode of the file when it was indexed (None in older libraries)."""


@dataclass
class NewSegment:
    """A segment to insert, with its vector (one row of its space's dimension).

    ``space_id`` None means the space the commit was made for; ``thumbnail`` is a
    JPEG kept for display (video keyframes).
    """

    modality: str
    kind: str
    vector: Vectors | None
    text: str | None = None
    t_start: float | None = None
    t_end: float | None = None
    space_id: int | None = None
    thumbnail: bytes | None = None


@dataclass
class NewItem:
    """An item and its segments, committed together in one transaction."""

    path: str
    modality: str
    size: int | None = None
    mtime: float | None = None
    content_hash: str | None = None
    width: int | None = None
    height: int | None = None
    taken_at: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    segments: list[NewSegment] = field(default_factory=list)
    dev: int | None = None
    ino: int | None = None


@dataclass(frozen=True)
class SegmentRow:
    id: int
    item_id: int
    modality: str
    kind: str
    t_start: float | None
    t_end: float | None
    text: str | None


@dataclass(frozen=True)
class FailureRow:
    path: str
    stage: str
    reason: str
    at: float


def vec_to_blob(v: Vectors) -> bytes:
    return np.ascontiguousarray(v, dtype=np.float32).tobytes()


def blob_to_vec(b: bytes) -> Vectors:
    return np.frombuffer(b, dtype=np.float32)
