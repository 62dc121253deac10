"""Run rerankers over the top hits of a search: the probabilities, not a new order.

:func:`rerank_hits` takes the first ``top`` hits, picks at most one picture and one
text of each (``candidates.py``: a photo's file or a video's keyframe; its best caption,
text chunk, subtitle cue or transcript span), decodes the pictures (``pictures.py``)
and asks every reranker for the candidates of the kinds it reads (``Reranker.kinds``).
It returns one :class:`RerankScore` per (hit, reranker, candidate) that was scored.

It does not sort or touch the hits: the engine puts each probability on the calibrated
scale (evidence ``-log10(1 - p)``), keeps the best per hit, and sorts. A hit with no
score (nothing a reranker reads, or a file that cannot be decoded any more) keeps its
first-stage score.

Memory is bounded by ``batch_size``: pictures are decoded a batch at a time, scored by
every picture reranker, and let go before the next batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmsearch.encoders.base import batched
from mmsearch.errors import QueryError
from mmsearch.search.query import RERANK_TOP
from mmsearch.search.rerank.base import Candidate, CandidateKind, Reranker
from mmsearch.search.rerank.candidates import Pick, pick_candidates
from mmsearch.search.rerank.pictures import MAX_SIDE, load_picture
from mmsearch.store.catalog import Catalog
from mmsearch.types import Hit

PICTURE_BATCH = 16


@dataclass(frozen=True)
class RerankScore:
    """One reranker's probability of relevance for one candidate of one hit.

    ``hit_index`` is the hit's position in the list given to :func:`rerank_hits`;
    ``reranker`` the reranker's ``name``; ``candidate`` what it read (``picture`` or
    ``text``). The segment it read: ``segment_id``, ``kind`` (``image`` for a photo,
    ``frame`` for a video keyframe, ``caption``/``text``/``subtitle``/``transcript``),
    its time range (video and sound) and, for a text, the ``text`` itself — enough to
    show it as the hit's evidence. ``probability`` is in [0, 1].
    """

    hit_index: int
    reranker: str
    candidate: CandidateKind
    probability: float
    segment_id: int
    kind: str
    t_start: float | None = None
    t_end: float | None = None
    text: str | None = None


def rerank_hits(
    catalog: Catalog,
    hits: Sequence[Hit],
    query_text: str,
    rerankers: Sequence[Reranker],
    top: int = RERANK_TOP,
    *,
    batch_size: int = PICTURE_BATCH,
    max_side: int = MAX_SIDE,
) -> list[RerankScore]:
    """Score the first ``top`` of ``hits`` against ``query_text`` with every reranker.

    Returns the scores ordered by hit, then by reranker (in the order given), picture
    before text. Raises :class:`QueryError` for a blank query.
    """
    if not query_text.strip():
        raise QueryError("reranking needs a text query")
    head = list(hits[: max(0, top)])
    kinds = {k for r in rerankers for k in r.kinds}
    picks = pick_candidates(catalog, head, kinds)
    found: list[tuple[tuple[int, int, int], RerankScore]] = []
    texts = [p for p in picks if p.kind == "text"]
    pictures = [p for p in picks if p.kind == "picture"]
    for order, reranker in enumerate(rerankers):
        if "text" in reranker.kinds and texts:
            cands = [Candidate("text", text=p.text) for p in texts]
            found += _scored(order, reranker, query_text, texts, cands)
    readers = [(o, r) for o, r in enumerate(rerankers) if "picture" in r.kinds]
    for chunk in batched(pictures if readers else [], batch_size):
        loaded = [(p, load_picture(catalog, p, max_side=max_side)) for p in chunk]
        ready = [p for p, image in loaded if image is not None]
        cands = [Candidate("picture", image=image) for _, image in loaded if image is not None]
        for order, reranker in readers:
            found += _scored(order, reranker, query_text, ready, cands)
    found.sort(key=lambda pair: pair[0])
    return [score for _, score in found]


def _scored(
    order: int, reranker: Reranker, query: str, picks: list[Pick], cands: list[Candidate]
) -> list[tuple[tuple[int, int, int], RerankScore]]:
    """``reranker``'s scores of ``cands`` (one per pick), with their sort keys."""
    if not cands:
        return []
    probs = np.asarray(reranker.score(query, cands), dtype=np.float32).reshape(-1)
    if probs.shape[0] != len(cands):
        raise ValueError(
            f"reranker {reranker.name!r} returned {probs.shape[0]} scores for {len(cands)} "
            "candidates"
        )
    out = []
    for pick, p in zip(picks, probs, strict=True):
        if not np.isfinite(p):
            continue
        score = RerankScore(
            hit_index=pick.hit_index,
            reranker=reranker.name,
            candidate=pick.kind,
            probability=float(np.clip(p, 0.0, 1.0)),
            segment_id=pick.segment_id,
            kind=pick.segment_kind,
            t_start=pick.t_start,
            t_end=pick.t_end,
            text=pick.text,
        )
        out.append(((pick.hit_index, order, 0 if pick.kind == "picture" else 1), score))
    return out
