"""``POST /api/search`` (JSON) and ``POST /api/search/upload`` (a query file as multipart)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile

from mmsearch.errors import QueryError
from mmsearch.search.query import QueryPart
from mmsearch.server.checks import InvalidInput, check_text
from mmsearch.server.hits import hits_json
from mmsearch.server.query import (
    MAX_WEIGHT,
    MediaLimits,
    Mode,
    PartBuilder,
    SearchRequest,
    VectorModality,
    form_filters,
    query_kind,
)
from mmsearch.server.responses import SafeJSONResponse
from mmsearch.server.state import AppState, State
from mmsearch.server.uploads import copy_limited, safe_name

router = APIRouter(prefix="/api", tags=["search"])


def limits(state: AppState) -> MediaLimits:
    c = state.config
    return MediaLimits(c.max_upload_bytes, c.max_pixels, c.max_query_clip_s)


def run_search(
    state: AppState,
    parts: list[QueryPart],
    *,
    k: int,
    mode: str,
    modality: str | None,
    filters: dict[str, Any],
    min_score: float | None,
) -> dict[str, Any]:
    if k > state.config.max_k:
        raise QueryError(f"k is at most {state.config.max_k}")
    with state.readers().library() as lib:
        t0 = time.perf_counter()  # from here on the search has its reader: no queueing
        hits = lib.search(
            parts,
            k=k,
            filters=filters,
            modality=modality or None,
            min_score=min_score,
            mode=mode,  # type: ignore[arg-type]
        )
        out = hits_json(lib, hits)
        took = time.perf_counter() - t0
    state.metrics.searches.labels(query_kind(parts)).observe(took)
    return {"hits": out, "took_ms": round(took * 1000, 2), "k": k, "mode": mode}


@router.post("/search", summary="Search by text, image, vector, item or weighted parts")
def search(req: SearchRequest, state: State) -> SafeJSONResponse:
    with tempfile.TemporaryDirectory(prefix="mmsearch-query-") as tmp:
        parts = PartBuilder(Path(tmp), limits(state)).parts(req)
        # Plain JSON already: skip FastAPI's generic encoder walk over every hit.
        return SafeJSONResponse(
            run_search(
                state,
                parts,
                k=req.k,
                mode=req.mode,
                modality=req.modality,
                filters=req.filters,
                min_score=req.min_score,
            )
        )


@router.post(
    "/search/upload",
    summary="Search with an uploaded image, video or audio clip (optionally plus text)",
)
def search_upload(
    state: State,
    file: Annotated[UploadFile, File(description="query image, video or audio clip")],
    text: Annotated[str | None, Form(description="text to combine with the file")] = None,
    weight: Annotated[
        float,
        Form(
            ge=-MAX_WEIGHT,
            le=MAX_WEIGHT,
            allow_inf_nan=False,
            description="weight of the file against the text",
        ),
    ] = 1.0,
    k: Annotated[int, Form(ge=1, le=1000)] = 10,
    mode: Annotated[Mode, Form()] = "vector",
    modality: Annotated[VectorModality | None, Form()] = None,
    filters: Annotated[str | None, Form(description="filters as a JSON object")] = None,
    min_score: Annotated[float | None, Form(allow_inf_nan=False)] = None,
) -> dict[str, Any]:
    flt = form_filters(filters)
    if text is not None:
        try:
            check_text(text)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
    with tempfile.TemporaryDirectory(prefix="mmsearch-query-") as tmp:
        builder = PartBuilder(Path(tmp), limits(state))
        name = safe_name(file.filename, "query")
        path = Path(tmp) / f"upload-{name}"
        copy_limited(file.file, path, state.config.max_upload_bytes)
        parts = [builder.media_part(path, weight, name=file.filename or "query file")]
        if text and text.strip():
            parts.insert(0, QueryPart("text", text.strip()))
        return run_search(
            state, parts, k=k, mode=mode, modality=modality, filters=flt, min_score=min_score
        )
