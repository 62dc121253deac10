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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmsearch.server.app import create_app
    from mmsearch.server.config import ServerConfig, ServerConfigError, check_bind

__all__ = ["ServerConfig", "ServerConfigError", "check_bind", "create_app"]

# Exported lazily: every CLI command imports server.config (for `serve`'s arguments), and
# that must not load FastAPI and the whole app on the way.
_HOME = {
    "create_app": "mmsearch.server.app",
    "ServerConfig": "mmsearch.server.config",
    "ServerConfigError": "mmsearch.server.config",
    "check_bind": "mmsearch.server.config",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'mmsearch.server' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
