"""Server-side paths a client asks to add: only under the roots the operator allowed.

A path is resolved (``..`` and every symlink) before it is compared with the
roots, so neither ``/allowed/../etc`` nor a link inside an allowed folder that
points outside it gets through. The resolved path is what gets indexed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mmsearch.errors import QueryError
from mmsearch.server.errors import Forbidden, NotFound


def allowed_path(raw: str, roots: Sequence[Path]) -> str:
    """``raw`` resolved, if it lies under one of ``roots``; raises otherwise."""
    if not roots:
        raise Forbidden(
            "adding server-side paths is off: start the server with --allow-root DIR "
            "(or upload the files)"
        )
    if "\x00" in raw or not raw.strip():
        raise QueryError("not a path")
    if not os.path.isabs(raw):
        raise QueryError(f"give an absolute path on the server, not {raw!r}")
    real = os.path.realpath(raw)
    if not any(is_within(real, root) for root in roots):
        raise Forbidden(f"{raw} is outside the folders this server may index")
    if not os.path.exists(real):
        raise NotFound(f"{raw} does not exist on the server")
    return real


def is_within(path: str | Path, root: str | Path) -> bool:
    """Whether ``path`` is ``root`` or inside it (both already resolved)."""
    p, r = os.fspath(path), os.fspath(root).rstrip(os.sep) or os.sep
    return p == r or p.startswith(r if r.endswith(os.sep) else r + os.sep)
