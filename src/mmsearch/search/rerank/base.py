"""The reranker contract: re-score (query, candidate) pairs with cross-attention.

A dual encoder embeds query and item apart and compares two vectors; a reranker
reads both together (a text's tokens attending to an image's patches, or to the
other text's tokens) and is slower but sharper. The search engine sends it the
top candidates of the fused list; each reranker scores the candidates whose kind
it reads (``picture`` = photos and video frames; ``text`` = captions, text files,
subtitles and transcripts) and returns a probability of relevance in [0, 1],
which joins the calibrated scale directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

CandidateKind = Literal["picture", "text"]


@dataclass(frozen=True)
class Candidate:
    """One thing to re-score: a picture (decoded) or a text."""

    kind: CandidateKind
    image: Image.Image | None = None
    text: str | None = None


@runtime_checkable
class Reranker(Protocol):
    """Scores (query text, candidate) pairs; higher is more relevant."""

    name: str
    """A short name for signals and docs (``blip-itm``, ``cross-encoder``, ``trained``)."""
    kinds: frozenset[str]
    """The candidate kinds it reads: ``{"picture"}``, ``{"text"}`` or both."""

    def score(self, query: str, candidates: Sequence[Candidate]) -> np.ndarray:
        """Probability of relevance in [0, 1] for each candidate (float32, same order)."""
        ...
