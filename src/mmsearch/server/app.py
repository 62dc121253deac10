"""``create_app``: the FastAPI application over one library.

Middleware, outermost first: metrics (counts every answer, refusals included)
→ CORS (only when origins are configured; answers preflights) → security
(body size, Host, token, cross-site writes; see :mod:`mmsearch.server.security`)
→ routes. The library is opened when the app starts (readers, models, the job
runner and its warm worker) and closed when it stops.

Every route answers HEAD where it answers GET (:mod:`mmsearch.server.head`); a
path id no SQLite row can have is a 404 before any route runs, and other input is
checked where it enters (:mod:`mmsearch.server.checks`); JSON answers always
encode (:mod:`mmsearch.server.responses`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from mmsearch import __version__
from mmsearch.errors import LibraryError
from mmsearch.library import CATALOG_FILE, Library
from mmsearch.search.rerank.base import Reranker
from mmsearch.server import (
    errors,
    routes_browse,
    routes_compat,
    routes_items,
    routes_media,
    routes_recommend,
    routes_search,
    routes_system,
)
from mmsearch.server.checks import ids_in_range
from mmsearch.server.config import ServerConfig
from mmsearch.server.head import add_head_routes
from mmsearch.server.metrics import Metrics, MetricsMiddleware
from mmsearch.server.rerankers import server_rerankers
from mmsearch.server.responses import SafeJSONResponse
from mmsearch.server.security import SecurityMiddleware
from mmsearch.server.state import AppState

log = logging.getLogger(__name__)

DESCRIPTION = """Multimodal search over one mmsearch library: text, images, video moments,
audio. Native API under `/api`; clip-retrieval compatible endpoints at `/knn-service`,
`/indices-list`, `/metadata`; Prometheus metrics at `/metrics`; the web page at `/`.
When the server has a token, send it as `Authorization: Bearer <token>`."""


def create_app(
    library: str | Path | ServerConfig,
    *,
    encoder: Any | None = None,
    audio_encoder: Any | None = None,
    video_encoder: Any | None = None,
    text_encoder: Any | None = None,
    recognizer: Any | None = None,
    rerankers: Mapping[str, Reranker] | Sequence[Reranker] | None = None,
    **settings: Any,
) -> FastAPI:
    """The app serving ``library`` (a folder, or a full :class:`ServerConfig`).

    ``settings`` are :class:`ServerConfig` fields (``token``, ``allow_roots``,
    ``cors_origins``, ``max_upload_bytes``, ...). Encoders given here are used by
    searches and, pickled, by ingest jobs; otherwise the library's own models are
    loaded once at start. A missing library is created when ``model`` or
    ``encoder`` says which model to build it with.

    ``rerankers`` (loaded objects, by name) and the specs in ``config.rerankers`` (loaded
    here, once) are the rerankers requests may choose from by name; no request can make
    the server load another.
    """
    config = (
        library if isinstance(library, ServerConfig) else ServerConfig(Path(library), **settings)
    )
    given = {
        "encoder": encoder,
        "audio_encoder": audio_encoder,
        "video_encoder": video_encoder,
        "text_encoder": text_encoder,
    }
    encoders = {k: v for k, v in given.items() if v is not None}
    ensure_library(config, encoders)
    offered = server_rerankers(rerankers, config.rerankers)
    state = AppState(config, Metrics(), encoders, recognizer, offered)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(state.start)
        try:
            yield
        finally:
            await run_in_threadpool(state.stop)

    app = FastAPI(
        title="mmsearch",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        default_response_class=SafeJSONResponse,
    )
    app.state.mm = state
    errors.install(app)
    routers = (
        routes_search,
        routes_recommend,
        routes_browse,
        routes_items,
        routes_media,
        routes_compat,
    )
    for module in (*routers, routes_system):
        add_head_routes(module.router)
        app.include_router(module.router, dependencies=[Depends(ids_in_range)])
    routes_system.mount_static(app)
    add_head_routes(app.router)
    app.add_middleware(
        SecurityMiddleware,
        token=config.token,
        max_body_bytes=config.max_upload_bytes,
        allowed_hosts=config.allowed_hosts,
        cors_origins=config.cors_origins,
    )
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Range"],
            expose_headers=["Content-Range", "Accept-Ranges", "Location"],
        )
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app


def ensure_library(config: ServerConfig, encoders: dict[str, Any]) -> None:
    """Create the library if it is missing and a model was named; refuse otherwise."""
    if (config.library / CATALOG_FILE).is_file():
        return
    if config.model is None and "encoder" not in encoders:
        raise LibraryError(
            f"no library at {config.library}: create one with `mmsearch index`, or pass "
            "--model to start an empty one"
        )
    log.info("creating library %s", config.library)
    Library.open(config.library, config.model, **encoders).close()
