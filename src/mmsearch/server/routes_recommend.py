"""``POST /api/recommend``: "more like these" from a history of items.

The positive items (for example what a user watched, oldest first) and the
negative ones become a query in each space (``Library.recommend``); the answer
never holds an item of the history or of ``exclude``, trades some relevance for
variety when ``diversity`` > 0 (maximal marginal relevance) and weighs recent
positives more when ``recency`` is set. Hits have the shape of ``/api/search``'s.
Ids that name no item are answered 404, naming the first.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mmsearch.errors import QueryError
from mmsearch.server.checks import check_filters, check_ids
from mmsearch.server.hits import answer_json
from mmsearch.server.query import MinScore
from mmsearch.server.responses import SafeJSONResponse
from mmsearch.server.routes_search import require_items
from mmsearch.server.state import State

router = APIRouter(prefix="/api", tags=["search"])


class RecommendRequest(BaseModel):
    """A history to recommend from: at least one positive item."""

    model_config = ConfigDict(extra="forbid")

    positive: list[int] = Field(
        description="item ids liked or watched, oldest first (an id or a list)"
    )
    negative: list[int] = Field(default_factory=list, description="item ids to move away from")
    exclude: list[int] = Field(
        default_factory=list, description="item ids never returned (already seen)"
    )
    k: int = Field(10, ge=1, le=1000, description="number of hits")
    diversity: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="0 = most relevant first; towards 1, more variety (maximal marginal relevance)",
    )
    recency: float | None = Field(
        None,
        ge=0.0,
        lt=1.0,
        allow_inf_nan=False,
        description="weigh each older positive this much less than the next (0 up to 1, "
        "1 excluded); null = all alike",
    )
    filters: dict[str, Any] = Field(
        default_factory=dict, description="as in /api/search (type, path_prefix, dates, fields)"
    )
    min_score: MinScore = None

    @field_validator("positive", "negative", "exclude", mode="before")
    @classmethod
    def _valid_ids(cls, value: Any) -> list[int]:
        return check_ids(value)

    @field_validator("positive")
    @classmethod
    def _some_positive(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("give at least one item id")
        return value

    @field_validator("filters")
    @classmethod
    def _valid_filters(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_filters(value)


@router.post("/recommend", summary="More like these: recommendations from a history of items")
def recommend(req: RecommendRequest, state: State) -> SafeJSONResponse:
    if req.k > state.config.max_k:
        raise QueryError(f"k is at most {state.config.max_k}")
    with state.readers().library() as lib:
        t0 = time.perf_counter()
        require_items(lib, [*req.positive, *req.negative])
        hits = lib.recommend(
            req.positive,
            negative=req.negative,
            exclude=req.exclude,
            k=req.k,
            diversity=req.diversity,
            recency=req.recency,
            filters=req.filters,
            min_score=req.min_score,
        )
        out = answer_json(lib, hits)
        took = time.perf_counter() - t0
    state.metrics.searches.labels("recommend").observe(took)
    return SafeJSONResponse({**out, "took_ms": round(took * 1000, 2), "k": req.k})
