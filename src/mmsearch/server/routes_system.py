"""Health, Prometheus metrics, library info, the web page and the API docs (served locally)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from mmsearch import __version__
from mmsearch.server.rerankers import offered
from mmsearch.server.state import State

router = APIRouter(tags=["system"])

STATIC_DIR = Path(__file__).parent / "static"
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


@router.get("/health", summary="200 once the library is loaded (no token needed)")
def health(state: State) -> dict[str, Any]:
    state.readers()
    return {"status": "ok", "version": __version__}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(state: State) -> Response:
    body, content_type = state.metrics.exposition()
    return Response(body, media_type=content_type)


@router.get("/api/info", summary="What the library holds and what this server allows")
def info(state: State) -> dict[str, Any]:
    with state.readers().library() as lib:
        out = lib.info()
    out.pop("path", None)
    c = state.config
    out.update(
        library=c.library.name,
        version=__version__,
        token_required=c.token is not None,
        server_paths=bool(c.allow_roots),
        rerankers=offered(state.rerankers),
        limits={
            "max_upload_bytes": c.max_upload_bytes,
            "max_pixels": c.max_pixels,
            "max_duration_s": c.max_duration_s,
            "max_query_clip_s": c.max_query_clip_s,
            "max_k": c.max_k,
        },
    )
    return out


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"},
    )


def mount_static(app: FastAPI) -> None:
    """The web page's files and the API docs' assets (no CDN: everything is local)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    docs_assets = resources.files("fastapi_offline") / "static"
    app.mount("/docs-assets", StaticFiles(directory=str(docs_assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="mmsearch API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )
