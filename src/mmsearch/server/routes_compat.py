"""The clip-retrieval back end's API, so its clients (``ClipClient``, its web front) work.

``POST /knn-service`` takes clip-retrieval's JSON body (sent with or without a
JSON content type; keys this server does not use, such as the aesthetic and
safety options, are ignored): ``text``, ``image`` (base64) or
``embedding_input``; ``modality`` ``image`` searches pictures (photos and video
frames), ``text`` searches texts and captions; ``num_images`` hits carry
metadata, up to ``num_result_ids`` are returned. Each hit is ``{"id",
"similarity", "url", "image_path", "caption"}`` (``url`` is this server's link
to the original). As in clip-retrieval, the search is by embedding alone and
``similarity`` is the cosine of the image–text model (not the calibrated score
of the native API), best first; ``deduplicate`` folds near-duplicates. ``POST /metadata`` maps ids to those columns and ``GET
/indices-list`` names the one index: the library folder's name.
``image_url`` is refused: this server fetches nothing from the network.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from mmsearch.errors import QueryError
from mmsearch.library import Library
from mmsearch.search.query import QueryPart
from mmsearch.server.checks import MAX_ID, MIN_ID, InvalidInput, check_text, fits_id
from mmsearch.server.errors import NotFound
from mmsearch.server.hits import item_thumb_url, media_url, pictured
from mmsearch.server.query import PartBuilder, decode_base64, query_kind
from mmsearch.server.routes_search import limits
from mmsearch.server.state import AppState, State
from mmsearch.spaces import SPACE_NAMES
from mmsearch.store.rows import ItemRow
from mmsearch.types import Hit

router = APIRouter(tags=["clip-retrieval compatible"])
CAPTION_CHARS = 300
MAX_METADATA_IDS = 10_000


def index_name(state: AppState) -> str:
    return state.config.library.name


@router.get("/indices-list", summary="clip-retrieval: the index names (one: this library)")
def indices_list(state: State) -> list[str]:
    return [index_name(state)]


@router.post("/knn-service", summary="clip-retrieval: nearest neighbours of text/image/vector")
async def knn_service(request: Request, state: State) -> list[dict[str, Any]]:
    body = await _json_body(request)
    base = str(request.base_url).rstrip("/")
    return await run_in_threadpool(_knn, state, body, base)


@router.post("/metadata", summary="clip-retrieval: metadata columns of ids")
async def metadata(request: Request, state: State) -> list[dict[str, Any]]:
    body = await _json_body(request)
    ids = _ids(body.get("ids") or [])
    _check_index(state, body.get("indice_name"))
    base = str(request.base_url).rstrip("/")
    return await run_in_threadpool(_metadata, state, ids, base)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise QueryError("the body must be a JSON object") from exc
    if not isinstance(data, dict):
        raise QueryError("the body must be a JSON object")
    return data


def _check_index(state: AppState, name: Any) -> None:
    if name not in (None, "", index_name(state)):
        raise NotFound(f"no index {name!r}; this server has {index_name(state)!r}")


def _knn(state: AppState, body: dict[str, Any], base: str) -> list[dict[str, Any]]:
    _check_index(state, body.get("indice_name"))
    modality = body.get("modality") or "image"
    if modality not in ("image", "text"):
        raise QueryError("modality must be image or text")
    num_images = _count(body.get("num_images"), 40)
    num_ids = max(_count(body.get("num_result_ids"), num_images), num_images)
    num_ids = min(num_ids, state.config.max_k)
    with tempfile.TemporaryDirectory(prefix="mmsearch-query-") as tmp:
        parts = _parts(state, body, Path(tmp))
        with state.readers().library() as lib:
            t0 = time.perf_counter()
            found = lib.search(
                parts,
                k=num_ids,
                modality=modality,
                mode="vector",
                dedupe=bool(body.get("deduplicate")),
            )
            hits = sorted(found, key=lambda h: -cosine(h, modality))
            items = lib.catalog.items([h.item_id for h in hits[:num_images]])
            out = []
            for rank, hit in enumerate(hits):
                row: dict[str, Any] = {}
                item = items.get(hit.item_id)
                if rank < num_images and item is not None:
                    row.update(_columns(lib, item, base, hit))
                row["id"] = hit.item_id
                row["similarity"] = cosine(hit, modality)
                out.append(row)
            took = time.perf_counter() - t0
    state.metrics.searches.labels(query_kind(parts)).observe(took)
    return out


def cosine(hit: Hit, modality: str) -> float:
    """The cosine clip-retrieval reports: the image–text model's, for ``modality``'s
    index (else the best cosine any index measured for the hit)."""
    raw = hit.signals.get(f"{modality}_cosine")
    if raw is None:
        cosines = [
            s.raw
            for s in hit.evidence
            if s.raw is not None and (s.source or "").split("/")[0] in SPACE_NAMES
        ]
        raw = max(cosines, default=0.0)
    return float(raw)


def _parts(state: AppState, body: dict[str, Any], tmp: Path) -> list[QueryPart]:
    text, image, vector = body.get("text"), body.get("image"), body.get("embedding_input")
    if text:
        if not isinstance(text, str):
            raise QueryError("text must be a string")
        try:
            return [QueryPart("text", check_text(text))]
        except ValueError as exc:
            raise QueryError(str(exc)) from exc
    builder = PartBuilder(tmp, limits(state))
    if image:
        data = decode_base64(str(image), state.config.max_upload_bytes)
        return [builder.media_part(builder.media_file(data), name="query image")]
    if body.get("image_url"):
        raise QueryError("image_url is not supported: this server fetches nothing; send image")
    if vector is not None:
        if not isinstance(vector, list):
            raise QueryError("embedding_input must be a list of numbers")
        return [QueryPart("vector", _floats(vector))]
    raise QueryError("must fill one of text, image and embedding_input")


def _floats(values: list[Any]) -> Any:
    import numpy as np

    try:
        return np.asarray(values, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise QueryError("embedding_input must be a list of numbers") from exc


def _count(value: Any, default: int) -> int:
    try:
        n = int(value) if value is not None else default
    except (TypeError, ValueError, OverflowError) as exc:
        raise QueryError("num_images and num_result_ids must be integers") from exc
    return max(1, n)


def _ids(ids: Any) -> list[int]:
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    ):
        raise InvalidInput("ids must be a list of integers")
    if len(ids) > MAX_METADATA_IDS:
        raise InvalidInput(f"at most {MAX_METADATA_IDS} ids at a time")
    if not all(fits_id(i) for i in ids):
        raise InvalidInput(f"ids are integers from {MIN_ID} to {MAX_ID}")
    return ids


def _columns(lib: Library, item: ItemRow, base: str, hit: Hit | None = None) -> dict[str, Any]:
    cols: dict[str, Any] = {"url": base + media_url(item.id), "image_path": item.path}
    caption = _caption(lib, item, hit)
    if caption:
        cols["caption"] = caption
    thumb = item_thumb_url(item.id, pictured(item.modality, item.width))
    if thumb:
        cols["thumbnail_url"] = base + thumb
    return cols


def _caption(lib: Library, item: ItemRow, hit: Hit | None) -> str | None:
    if hit is not None:
        for seg in hit.segments:
            if seg.text:
                return seg.text[:CAPTION_CHARS]
    caption = item.meta.get("caption")
    if caption:
        return str(caption)[:CAPTION_CHARS]
    if item.modality == "text":
        texts = [s.text for s in lib.catalog.item_segments(item.id) if s.text]
        if texts:
            return texts[0][:CAPTION_CHARS]
    return None


def _metadata(state: AppState, ids: list[int], base: str) -> list[dict[str, Any]]:
    with state.readers().library() as lib:
        items = lib.catalog.items(ids)
        return [
            {"id": i, "metadata": _columns(lib, items[i], base) if i in items else {}} for i in ids
        ]
