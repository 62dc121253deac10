""" "More like these": recommendations from a history of items.

The positive items (a viewing history, oldest first) and negative ones become a
query of weighted ``item`` parts, as relevance feedback does (``feedback.py``):
in each space, the mean of each item's vectors, positives added and negatives
subtracted, with older positives weighed down by ``recency`` when asked. The
engine searches every space's primary index with it, never returning an item of
the history or of ``exclude``; maximal marginal relevance (``diversity.py``)
then trades some relevance for variety.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmsearch.errors import QueryError
from mmsearch.search.diversity import mmr
from mmsearch.search.engine import SearchEngine, cut
from mmsearch.search.feedback import GAMMA
from mmsearch.search.query import Query, QueryPart
from mmsearch.types import Hits

POOL = 4
"""Candidates fetched per hit wanted when diversifying."""


def recency_weights(n: int, recency: float | None) -> list[float]:
    """Weights of ``n`` positives, oldest first, summing to 1."""
    if recency is None or n == 0:
        raw = [1.0] * n
    else:
        raw = [(1.0 - recency) ** (n - 1 - i) for i in range(n)]
    total = sum(raw) or 1.0
    return [w / total for w in raw]


def recommend(
    engine: SearchEngine,
    positive: Sequence[int],
    *,
    negative: Sequence[int] = (),
    exclude: Sequence[int] = (),
    k: int = 10,
    diversity: float = 0.0,
    recency: float | None = None,
    filters: dict[str, Any] | None = None,
    min_score: float | None = None,
) -> Hits:
    positive = list(dict.fromkeys(int(i) for i in positive))
    negative = [int(i) for i in dict.fromkeys(negative) if int(i) not in positive]
    if not positive:
        raise QueryError("recommend needs at least one positive item")
    if not 0.0 <= diversity <= 1.0:
        raise QueryError("diversity must be between 0 and 1")
    if recency is not None and not 0.0 <= recency < 1.0:
        raise QueryError("recency must be between 0 and 1 (1 excluded)")
    weights = recency_weights(len(positive), recency)
    parts = [QueryPart("item", i, w, optional=True) for i, w in zip(positive, weights, strict=True)]
    parts += [QueryPart("item", i, -GAMMA / len(negative), optional=True) for i in negative]
    pool = k * POOL if diversity > 0 else k
    query = Query(
        parts,
        k=pool,
        filters=dict(filters or {}),
        mode="vector",
        exclude=frozenset([*positive, *negative, *(int(i) for i in exclude)]),
    )
    hits = engine.search(query)
    chosen = mmr(engine.catalog, engine.spaces, hits, pool, diversity)
    return cut(chosen, k, min_score)
