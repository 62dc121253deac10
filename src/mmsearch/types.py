"""Types shared across layers: array aliases, media inputs and search hits."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

Vectors = NDArray[np.float32]
"""A 2-D float32 array, one L2-normalised row per input."""

Ids = NDArray[np.int64]

PathLike = Union[str, "os.PathLike[str]"]
ImageInput = Union[PathLike, "Image.Image"]

Modality = Literal["image", "text", "video", "audio"]
MODALITIES: tuple[str, ...] = ("image", "text", "video", "audio")


@dataclass(frozen=True)
class SegmentHit:
    """One matching segment of an item (a whole image, a text chunk, a caption, a time window)."""

    segment_id: int
    score: float
    kind: str
    t_start: float | None = None
    t_end: float | None = None
    text: str | None = None


@dataclass
class Hit:
    """One search result: an item, its best segments, its score and the signals behind it."""

    item_id: int
    path: str
    modality: str
    score: float
    segments: list[SegmentHit] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    signals: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "path": os.fsencode(self.path).decode("utf-8", "replace"),
            "modality": self.modality,
            "score": round(float(self.score), 6),
            "segments": [
                {k: v for k, v in s.__dict__.items() if v is not None} for s in self.segments
            ],
            "metadata": self.metadata,
            "signals": {k: round(float(v), 6) for k, v in self.signals.items()},
        }


def l2_normalize(x: NDArray[Any], eps: float = 1e-12) -> Vectors:
    """Return ``x`` as float32 with each row scaled to unit L2 norm (zero rows stay zero)."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return (arr / np.maximum(norms, eps)).astype(np.float32, copy=False)
