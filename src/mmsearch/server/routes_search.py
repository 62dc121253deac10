"""``POST /api/search`` (JSON) and ``POST /api/search/upload`` (a query file as multipart).

Both take the same options (:class:`~mmsearch.server.query.SearchOptions`): the form
route as fields (``k``, ``mode``, ``modality``, ``filters``, ``min_score``) and, for
the rest, a JSON ``options`` field. Rerankers are those the server was started with
(:mod:`mmsearch.server.rerankers`), chosen by name; liked and disliked ids must name
items (404 otherwise)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile

from mmsearch.errors import QueryError
from mmsearch.library import Library
from mmsearch.search.query import QueryPart
from mmsearch.server.checks import MAX_WEIGHT, InvalidInput, check_text
from mmsearch.server.errors import NotFound
from mmsearch.server.hits import answer_json
from mmsearch.server.query import (
    MediaLimits,
    Mode,
    PartBuilder,
    SearchOptions,
    SearchRequest,
    VectorModality,
    form_filters,
    form_options,
    query_kind,
)
from mmsearch.server.rerankers import choose
from mmsearch.server.responses import SafeJSONResponse
from mmsearch.server.state import AppState, State
from mmsearch.server.uploads import copy_limited, safe_name
from mmsearch.store.queries import existing_item_ids

router = APIRouter(prefix="/api", tags=["search"])


def limits(state: AppState) -> MediaLimits:
    c = state.config
    return MediaLimits(c.max_upload_bytes, c.max_pixels, c.max_query_clip_s)


def run_search(state: AppState, parts: list[QueryPart], opts: SearchOptions) -> dict[str, Any]:
    """Search with ``parts`` as ``opts`` say; the answer (hits, note, timing) as JSON."""
    if opts.k > state.config.max_k:
        raise QueryError(f"k is at most {state.config.max_k}")
    rerankers = choose(state.rerankers, opts.rerank)
    if rerankers and not any(p.kind == "text" and p.weight > 0 for p in parts):
        raise QueryError("rerank needs words in the query: rerankers read the query's text")
    with state.readers().library() as lib:
        t0 = time.perf_counter()  # from here on the search has its reader: no queueing
        require_items(lib, [*opts.like, *opts.unlike])
        hits = lib.search(
            parts,
            like=opts.like,
            unlike=opts.unlike,
            exclude=opts.exclude,
            k=opts.k,
            filters=opts.filters,
            modality=opts.modality or None,
            min_score=opts.min_score,
            mode=opts.mode,
            fusion=opts.fusion,
            weights=opts.weights,
            rerank=rerankers or None,
            rerank_top=opts.rerank_top,
            dedupe=opts.dedupe,
        )
        out = answer_json(lib, hits)
        took = time.perf_counter() - t0
    kind = query_kind(parts) if parts else "like"
    state.metrics.searches.labels(kind).observe(took)
    return {
        **out,
        "took_ms": round(took * 1000, 2),
        "k": opts.k,
        "mode": opts.mode,
        "fusion": opts.fusion,
    }


def require_items(lib: Library, ids: list[int]) -> None:
    """Every id in ``ids`` names an item of the library; else :class:`NotFound` naming one."""
    found = existing_item_ids(lib.catalog, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"no item {missing[0]} in this library")


@router.post("/search", summary="Search by text, image, vector, item or weighted parts")
def search(req: SearchRequest, state: State) -> SafeJSONResponse:
    with tempfile.TemporaryDirectory(prefix="mmsearch-query-") as tmp:
        parts = PartBuilder(Path(tmp), limits(state)).parts(req)
        # Plain JSON already: skip FastAPI's generic encoder walk over every hit.
        return SafeJSONResponse(run_search(state, parts, req))


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
    mode: Annotated[Mode, Form()] = "hybrid",
    modality: Annotated[VectorModality | None, Form()] = None,
    filters: Annotated[str | None, Form(description="filters as a JSON object")] = None,
    min_score: Annotated[float | None, Form(ge=0.0, le=1.0, allow_inf_nan=False)] = None,
    options: Annotated[
        str | None,
        Form(
            description="further search options as a JSON object: fusion, weights, like, "
            "unlike, exclude, dedupe, rerank, rerank_top (as in POST /api/search)"
        ),
    ] = None,
) -> dict[str, Any]:
    flt = form_filters(filters)
    if text is not None:
        try:
            check_text(text)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
    opts = form_options(
        options, k=k, mode=mode, modality=modality, filters=flt, min_score=min_score
    )
    with tempfile.TemporaryDirectory(prefix="mmsearch-query-") as tmp:
        builder = PartBuilder(Path(tmp), limits(state))
        name = safe_name(file.filename, "query")
        path = Path(tmp) / f"upload-{name}"
        copy_limited(file.file, path, state.config.max_upload_bytes)
        parts = [builder.media_part(path, weight, name=file.filename or "query file")]
        if text and text.strip():
            parts.insert(0, QueryPart("text", text.strip()))
        return run_search(state, parts, opts)
