"""Reciprocal rank fusion: one ranking from several whose scores are not comparable.

Cosines of different models (CLIP images, CLAP audio) and BM25 relevances live
on different scales, so result lists are merged by rank: an item scores
``sum(1 / (K + rank))`` over the lists it appears in (Cormack et al., 2009).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

RRF_K = 60


def rrf(rankings: Sequence[Sequence[Hashable]], k: int = RRF_K) -> dict[Hashable, float]:
    """Fused score per key; each ranking lists keys best first."""
    scores: dict[Hashable, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return scores
