"""Relevance feedback: items the user marked as good or bad refine the query (Rocchio).

Rocchio's method (1971) moves the query vector towards the centroid of the
relevant items and away from the non-relevant ones, in each space separately:
``q' = a*q + b*mean(liked) - c*mean(disliked)``, with SMART's weights a=1, b=0.75,
c=0.25 (negative feedback is noisier, so it weighs less). Here the liked and
disliked items become weighted ``item`` parts of the query, marked optional so
that a space in which an item has no vectors (a photo in the audio space) simply
leaves it out. With no other query part, the liked items are the query: "more
like these".
"""

from __future__ import annotations

from collections.abc import Sequence

from mmsearch.errors import QueryError
from mmsearch.search.query import QueryPart

ALPHA, BETA, GAMMA = 1.0, 0.75, 0.25


def feedback_parts(has_query: bool, like: Sequence[int], unlike: Sequence[int]) -> list[QueryPart]:
    """Item parts for ``like`` / ``unlike`` added to a query (``has_query``) or alone."""
    like = list(dict.fromkeys(int(i) for i in like))
    unlike = [int(i) for i in dict.fromkeys(unlike) if int(i) not in like]
    if not like and not unlike:
        return []
    if not has_query and not like:
        raise QueryError("disliked items alone are no query: give a query or liked items")
    pos = (BETA if has_query else ALPHA) / max(1, len(like))
    neg = GAMMA / max(1, len(unlike))
    return [QueryPart("item", i, pos, optional=True) for i in like] + [
        QueryPart("item", i, -neg, optional=True) for i in unlike
    ]
