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
    """One matching segment of an item (a whole image, a text chunk, a caption, a time window).

    ``score`` is on the calibrated scale (0–1, see ``search/calibrate.py``); ``raw`` is what
    the source measured (a cosine, a BM25 relevance, a reranker's probability); ``source``
    names the evidence (``main/image``, ``text/text``, ``audio/audio``, ``lexical``,
    ``rerank:<name>``); ``highlights`` are the (start, end) character ranges of ``text`` that match
    the query's words.
    """

    segment_id: int
    score: float
    kind: str
    t_start: float | None = None
    t_end: float | None = None
    text: str | None = None
    source: str | None = None
    raw: float | None = None
    evidence: float | None = None
    highlights: tuple[tuple[int, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            if v is None or (k == "highlights" and not v):
                continue
            if k == "highlights":
                v = [list(r) for r in v]
            elif isinstance(v, float):
                v = round(v, 6)
            out[k] = v
        return out


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
    evidence: list[SegmentHit] = field(default_factory=list)
    """The best match of each source that found this item, strongest first."""
    similar: list[int] = field(default_factory=list)
    """Ids of near-duplicate hits folded into this one (``dedupe``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "path": os.fsencode(self.path).decode("utf-8", "replace"),
            "modality": self.modality,
            "score": round(float(self.score), 6),
            "segments": [s.to_dict() for s in self.segments],
            "evidence": [s.to_dict() for s in self.evidence],
            "similar": list(self.similar),
            "metadata": self.metadata,
            "signals": {k: round(float(v), 6) for k, v in self.signals.items()},
        }


class Hits(list[Hit]):
    """Search results, best first, and what a cut-off left out.

    ``best_below`` is the best hit that ``min_score`` dropped (None when nothing was
    dropped), so that an empty answer can say "no confident match; best was …".
    """

    best_below: Hit | None = None

    def note(self) -> str | None:
        """A line for the user when the cut-off removed every hit."""
        if self or self.best_below is None:
            return None
        b = self.best_below
        return f"no confident match; best was {b.path} (score {b.score:.2f})"


def l2_normalize(x: NDArray[Any], eps: float = 1e-12) -> Vectors:
    """Return ``x`` as float32 with each row scaled to unit L2 norm (zero rows stay zero)."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return (arr / np.maximum(norms, eps)).astype(np.float32, copy=False)
