"""HTTP service and web page over one library (FastAPI; ``mmsearch serve``).

``create_app(library, encoder=..., token=..., ...)`` builds the app; see
:mod:`mmsearch.server.app`. Modules by concern: ``routes_search`` (queries),
``routes_items`` (items and ingest jobs), ``routes_media`` (originals and
thumbnails), ``routes_compat`` (clip-retrieval's API), ``routes_system``
(health, metrics, the page, docs), ``security`` (token, limits, host and
origin checks), ``readers`` (parallel read-only libraries), ``jobs`` (ingest in
child processes).
"""

from __future__ import annotations

from mmsearch.server.app import create_app
from mmsearch.server.config import ServerConfig, ServerConfigError, check_bind

__all__ = ["ServerConfig", "ServerConfigError", "check_bind", "create_app"]
