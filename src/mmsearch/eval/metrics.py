"""Retrieval metrics from a similarity matrix: Recall@K, ranks, mAP@K and nDCG@K.

Conventions (those of CLIP_benchmark and most cross-modal retrieval papers):

- A query is a hit at K when *any* of its positives is among its top K
  gallery items (an image with five captions is found by any of them).
- Ranks are 1-based; ``median_rank``/``mean_rank`` are of each query's
  best-ranked positive.
- Ties are broken pessimistically and deterministically: a relevant item tied
  with a less relevant one (a positive with a negative) is ranked after it;
  items of equal relevance and equal score keep gallery order. A model that
  gives every item the same score therefore scores as badly as possible,
  never by luck of the sort.
- ``mAP@K``: average precision cut at K, normalised by ``min(#positives, K)``
  (so a query with one positive at rank r scores 1/r when r <= K).
  ``mAP`` (no K) is over the whole ranking.
- ``nDCG@K``: linear gains (the relevance value itself) discounted by
  ``log2(rank + 1)``, divided by the ideal DCG of the query's own gains.
  Binary relevance (gain 1 per positive) unless graded relevance is given.
- K larger than the gallery is clamped to the gallery size (the key keeps
  the K that was asked for).
- Queries with no positives are left out of every average and counted in
  ``n_queries_without_positives``.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mmsearch.types import l2_normalize

DIRECTIONS: tuple[str, str] = ("t2m", "m2t")
"""Prefixes of :func:`evaluate_pairs` keys: text→media and media→text."""


@dataclass(frozen=True)
class Ranking:
    """Where each query's relevant items landed in its ranking of the gallery.

    Only queries with at least one positive are kept (``n_without_positives``
    counts the others). Ranks are 1-based and pessimistic about ties.
    """

    positive_ranks: list[NDArray[np.int64]]
    """Per query, the sorted ranks of its positives."""
    graded_ranks: list[NDArray[np.int64]]
    """Per query, the ranks of its items with a gain, in the order of ``gains``."""
    gains: list[NDArray[np.float64]]
    """Per query, the gain of each item ranked in ``graded_ranks``."""
    n_gallery: int
    n_without_positives: int

    @property
    def n_queries(self) -> int:
        return len(self.positive_ranks)

    @property
    def best_ranks(self) -> NDArray[np.int64]:
        """Each query's best (smallest) positive rank."""
        return np.array([r[0] for r in self.positive_ranks], dtype=np.int64)

    def recall_at(self, k: int) -> float:
        """Share of queries with a positive in their top ``k`` (``k`` clamped to the gallery)."""
        return recall_at(self.best_ranks, k, self.n_gallery)


def recall_at(best_ranks: NDArray[np.int64], k: int, n_gallery: int) -> float:
    """Share of ``best_ranks`` that are at most ``k`` (clamped to ``n_gallery``)."""
    if k < 1:
        raise ValueError(f"K must be at least 1, got {k}")
    if best_ranks.size == 0:
        return float("nan")
    return float(np.mean(best_ranks <= min(k, n_gallery)))


def _ranks_of(
    row: NDArray[np.floating[Any]], idx: NDArray[np.int64], order_key: NDArray[Any]
) -> Any:
    """Pessimistic 1-based ranks of gallery items ``idx`` in ``row`` (higher score first).

    Among equal scores, items with a smaller ``order_key`` come first; every
    item outside ``idx`` has key 0 (less relevant than any item of ``idx``,
    whose keys are > 0); equal keys keep gallery order.
    """
    s = row[idx]
    above = (row[None, :] > s[:, None]).sum(axis=1)
    tied = (row[None, :] == s[:, None]).sum(axis=1)
    # items of idx among the ties: those with a smaller key, or equal key and smaller index
    same = s[:, None] == s[None, :]
    before = (order_key[None, :] < order_key[:, None]) | (
        (order_key[None, :] == order_key[:, None]) & (idx[None, :] < idx[:, None])
    )
    tied_in_idx = same.sum(axis=1)
    tied_before_in_idx = (same & before).sum(axis=1)
    return above + (tied - tied_in_idx) + tied_before_in_idx + 1


_BLOCK_ELEMENTS = 4_000_000
"""Comparisons per block in :func:`_positive_ranks` (bounds its temporary memory)."""


def _positive_ranks(
    scores: NDArray[Any], queries: list[int], cols_of: list[NDArray[np.int64]]
) -> list[NDArray[np.int64]]:
    """Pessimistic ranks of each query's positives (binary relevance), many queries at once.

    The same rule as :func:`_ranks_of` with every positive's key 1, vectorised
    over blocks of queries; positives are padded to the block's largest count.
    """
    out: list[NDArray[np.int64]] = []
    n_g = scores.shape[1]
    width = max((c.size for c in cols_of), default=1)
    block = max(1, _BLOCK_ELEMENTS // (width * n_g))
    for start in range(0, len(queries), block):
        cols = cols_of[start : start + block]
        rows = scores[queries[start : start + block]]
        p = max(c.size for c in cols)
        idx = np.zeros((len(cols), p), dtype=np.int64)
        valid = np.zeros((len(cols), p), dtype=bool)
        for i, c in enumerate(cols):
            idx[i, : c.size] = c
            valid[i, : c.size] = True
        s = np.take_along_axis(rows, idx, axis=1)
        above = (rows[:, None, :] > s[:, :, None]).sum(axis=2)
        tied = (rows[:, None, :] == s[:, :, None]).sum(axis=2)
        same = (s[:, :, None] == s[:, None, :]) & valid[:, None, :]
        before = idx[:, None, :] < idx[:, :, None]
        ranks = above + tied - same.sum(axis=2) + (same & before).sum(axis=2) + 1
        out += [ranks[i, : c.size].astype(np.int64) for i, c in enumerate(cols)]
    return out


def _check_index(q: int, cols: NDArray[np.int64], n_gallery: int) -> None:
    if cols.size and (cols.min() < 0 or cols.max() >= n_gallery):
        raise ValueError(f"query {q}: gallery index out of range 0..{n_gallery - 1}")


def rank_positives(
    sim: NDArray[Any],
    positives: Sequence[Collection[int]],
    *,
    relevance: Sequence[Mapping[int, float]] | None = None,
) -> Ranking:
    """Rank every query's positives (and graded items, when ``relevance`` is given)."""
    scores = np.asarray(sim)
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    if scores.ndim != 2:
        raise ValueError(f"sim must be 2-D (queries, gallery), got shape {scores.shape}")
    n_q, n_g = scores.shape
    if len(positives) != n_q:
        raise ValueError(f"{len(positives)} positive sets for {n_q} queries")
    if relevance is not None and len(relevance) != n_q:
        raise ValueError(f"{len(relevance)} relevance maps for {n_q} queries")
    if np.isnan(scores).any():
        scores = np.where(np.isnan(scores), -np.inf, scores)  # NaN ranks last
    keep: list[int] = []
    cols_of: list[NDArray[np.int64]] = []
    for q in range(n_q):
        cols = np.unique(np.fromiter(positives[q], dtype=np.int64))
        _check_index(q, cols, n_g)
        if cols.size:
            keep.append(q)
            cols_of.append(cols)
    ranks = _positive_ranks(scores, keep, cols_of)
    pos_ranks = [np.sort(r) for r in ranks]
    if relevance is None:
        gains = [np.ones(r.size) for r in ranks]
        return Ranking(pos_ranks, ranks, gains, n_g, n_q - len(keep))
    graded_ranks: list[NDArray[np.int64]] = []
    gains = []
    for q in keep:
        rel = {int(i): float(g) for i, g in relevance[q].items() if float(g) > 0}
        idx = np.array(sorted(rel), dtype=np.int64)
        _check_index(q, idx, n_g)
        g = np.array([rel[int(i)] for i in idx], dtype=np.float64)
        graded_ranks.append(_ranks_of(scores[q], idx, g).astype(np.int64))
        gains.append(g)
    return Ranking(pos_ranks, graded_ranks, gains, n_g, n_q - len(keep))


def _padded(rows: Sequence[NDArray[Any]], fill: float) -> NDArray[np.float64]:
    """Ragged rows -> one (n, longest) float array, short rows filled with ``fill``."""
    width = max((r.size for r in rows), default=0)
    out = np.full((len(rows), max(width, 1)), fill, dtype=np.float64)
    for i, r in enumerate(rows):
        out[i, : r.size] = r
    return out


def _mean_average_precision(sorted_ranks: NDArray[np.float64], n_pos: Any, k: int) -> float:
    """Mean AP cut at ``k``, each query normalised by min(#positives, k).

    ``sorted_ranks``: (queries, P) ascending positive ranks, padded with +inf.
    """
    order = np.arange(1, sorted_ranks.shape[1] + 1, dtype=np.float64)
    inside = sorted_ranks <= k
    precision = np.where(inside, order / np.where(inside, sorted_ranks, 1.0), 0.0)
    return float(np.mean(precision.sum(axis=1) / np.minimum(n_pos, k)))


def _mean_ndcg(ranks: NDArray[np.float64], gains: NDArray[np.float64], k: int) -> float:
    """Mean nDCG@k; ``ranks`` and ``gains`` are aligned (queries, P), padded with +inf and 0."""
    inside = ranks <= k
    dcg = np.where(inside, gains / np.log2(np.where(inside, ranks, 1.0) + 1), 0.0).sum(axis=1)
    ideal = -np.sort(-gains, axis=1)[:, :k]
    idcg = (ideal / np.log2(np.arange(2, ideal.shape[1] + 2))).sum(axis=1)
    return float(np.mean(np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 0.0)))


def metrics_from_ranking(ranking: Ranking, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Recall@K, median/mean rank, mAP@K, mAP and nDCG@K of a :class:`Ranking`."""
    if not ks:
        raise ValueError("give at least one K")
    if min(ks) < 1:
        raise ValueError(f"K must be at least 1, got {min(ks)}")
    out: dict[str, float] = {}
    n_g = ranking.n_gallery
    best = ranking.best_ranks
    empty = ranking.n_queries == 0
    nan = float("nan")
    for k in ks:
        out[f"R@{k}"] = recall_at(best, k, n_g)
    out["median_rank"] = nan if empty else float(np.median(best))
    out["mean_rank"] = nan if empty else float(np.mean(best))
    sorted_ranks = _padded(ranking.positive_ranks, np.inf)
    n_pos = np.array([r.size for r in ranking.positive_ranks], dtype=np.float64)
    graded = _padded(ranking.graded_ranks, np.inf)
    gains = _padded(ranking.gains, 0.0)
    for k in ks:
        out[f"mAP@{k}"] = (
            nan if empty else _mean_average_precision(sorted_ranks, n_pos, min(k, n_g))
        )
    out["mAP"] = nan if empty else _mean_average_precision(sorted_ranks, n_pos, n_g)
    for k in ks:
        out[f"nDCG@{k}"] = nan if empty else _mean_ndcg(graded, gains, min(k, n_g))
    out["n_queries"] = float(ranking.n_queries + ranking.n_without_positives)
    out["n_gallery"] = float(n_g)
    out["n_queries_without_positives"] = float(ranking.n_without_positives)
    return out


def retrieval_metrics(
    sim: NDArray[Any],
    positives: Sequence[Collection[int]],
    ks: Sequence[int] = (1, 5, 10),
    *,
    relevance: Sequence[Mapping[int, float]] | None = None,
) -> dict[str, float]:
    """Retrieval metrics of ``sim`` (queries × gallery scores, higher is better).

    ``positives[q]`` are the gallery indices relevant to query ``q``;
    ``relevance[q]`` (optional) maps gallery indices to graded gains for nDCG.
    See the module docstring for the exact conventions (ties, clamping,
    queries without positives). Averages over no query at all are NaN.
    """
    return metrics_from_ranking(rank_positives(sim, positives, relevance=relevance), ks)


def _media_groups(n_media: int, media_keys: Sequence[Hashable] | None) -> list[list[int]]:
    """Per media item, every media item interchangeable with it (itself included)."""
    if media_keys is None:
        return [[m] for m in range(n_media)]
    if len(media_keys) != n_media:
        raise ValueError(f"{len(media_keys)} media keys for {n_media} media vectors")
    members: dict[Hashable, list[int]] = {}
    for m, key in enumerate(media_keys):
        members.setdefault(key, []).append(m)
    return [members[key] for key in media_keys]


def pair_rankings(
    text_vecs: NDArray[Any],
    media_vecs: NDArray[Any],
    text_to_media: Sequence[int],
    *,
    media_keys: Sequence[Hashable] | None = None,
) -> dict[str, Ranking]:
    """Rankings in both directions for captions ``text_vecs`` of media ``media_vecs``.

    Scores are cosine similarities (rows are L2-normalised here). ``t2m``:
    each caption's positive is its media item. ``m2t``: each media item's
    positives are all of its captions; a media item without a caption is
    counted as a query without positives. ``media_keys`` (optional, one per
    media item) marks interchangeable media: items with equal keys fit each
    other's captions (two generated images with the same description), so
    each is a positive wherever the other is.
    """
    text = l2_normalize(np.asarray(text_vecs, dtype=np.float32))
    media = l2_normalize(np.asarray(media_vecs, dtype=np.float32))
    if text.shape[0] != len(text_to_media):
        raise ValueError(f"{text.shape[0]} caption vectors but {len(text_to_media)} caption links")
    if text.shape[1] != media.shape[1]:
        raise ValueError(f"caption dim {text.shape[1]} != media dim {media.shape[1]}")
    groups = _media_groups(media.shape[0], media_keys)
    sim = text @ media.T
    own: list[list[int]] = [[] for _ in range(media.shape[0])]
    for t, m in enumerate(text_to_media):
        if not 0 <= int(m) < media.shape[0]:
            raise ValueError(f"caption {t} links to media {m}, out of range")
        own[int(m)].append(t)
    t2m = [groups[int(m)] for m in text_to_media]
    m2t = [[t for g in groups[m] for t in own[g]] for m in range(media.shape[0])]
    return {"t2m": rank_positives(sim, t2m), "m2t": rank_positives(sim.T, m2t)}


def evaluate_pairs(
    text_vecs: NDArray[Any],
    media_vecs: NDArray[Any],
    text_to_media: Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
    *,
    media_keys: Sequence[Hashable] | None = None,
) -> dict[str, float]:
    """Metrics in both directions, keys prefixed ``t2m_`` and ``m2t_`` (``t2m_R@1``, ...).

    Caption ``i`` describes media item ``text_to_media[i]``; a media item may
    have several captions (all of them are its positives when it is the query).
    ``media_keys``: see :func:`pair_rankings`.
    """
    out: dict[str, float] = {}
    rankings = pair_rankings(text_vecs, media_vecs, text_to_media, media_keys=media_keys)
    for direction, ranking in rankings.items():
        for key, value in metrics_from_ranking(ranking, ks).items():
            out[f"{direction}_{key}"] = value
    return out
