"""``GET /api/browse``: the library without a query, newest first, a page at a time.

The web page's start page. Filters mean what they mean in a search (the SQL comes
from :func:`mmsearch.search.filters.build_where`): ``type`` is the item's kind,
``under`` a folder (its ``path_prefix``), ``date_from`` / ``date_to`` ISO dates
compared with the item's date (EXIF, else mtime). ``under`` must be absolute (or
start with ``~/``) and is only ever compared as a string with stored paths: nothing
on disk is looked at or resolved, so it reveals nothing a listing of the library
would not.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from mmsearch.errors import QueryError
from mmsearch.search.filters import build_where, to_epoch
from mmsearch.server.hits import item_json
from mmsearch.server.state import State
from mmsearch.store.browse import browse_items

router = APIRouter(prefix="/api", tags=["items"])

MAX_OFFSET = 2**31
MAX_PATH_CHARS = 4096
Kind = Literal["image", "video", "audio", "text"]


@router.get("/browse", summary="Items newest first (by date taken, else file time), filtered")
def browse(
    state: State,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 48,
    kind: Annotated[Kind | None, Query(alias="type", description="the item's kind")] = None,
    under: Annotated[
        str | None,
        Query(
            max_length=MAX_PATH_CHARS,
            description="only items in this folder (an absolute path; ~/ allowed)",
        ),
    ] = None,
    date_from: Annotated[str | None, Query(description="YYYY-MM-DD or ISO date-time")] = None,
    date_to: Annotated[str | None, Query(description="YYYY-MM-DD (the whole day) or ISO")] = None,
) -> dict[str, Any]:
    filters = browse_filters(kind, under, date_from, date_to)
    where, params = build_where(filters)
    with state.readers().library() as lib:
        page = browse_items(lib.catalog, where, params, offset=offset, limit=limit)
        items = [item_json(it, lib.catalog.item_fields(it.id)) for it in page.items]
    end = offset + len(page.items)
    return {
        "items": items,
        "offset": offset,
        "limit": limit,
        "next_offset": end if end < page.total and page.items else None,
        "total": page.total,
        "filters": filters,
    }


def browse_filters(
    kind: str | None, under: str | None, date_from: str | None, date_to: str | None
) -> dict[str, Any]:
    """Search-style filters from the query string, checked (:class:`QueryError` if bad)."""
    out: dict[str, Any] = {}
    if kind:
        out["type"] = kind
    if under is not None and under.strip():
        out["path_prefix"] = folder_prefix(under.strip())
    for key, value, end in (("date_from", date_from, False), ("date_to", date_to, True)):
        if value is not None and value.strip():
            to_epoch(value.strip(), end=end)  # a bad date is a 400 naming it
            out[key] = value.strip()
    return out


def folder_prefix(under: str) -> str:
    """``under`` as a normalised absolute path string; the file system is never consulted."""
    if "\x00" in under:
        raise QueryError("under: a path cannot contain a NUL character")
    if under == "~" or under.startswith("~/"):
        home = os.environ.get("HOME")
        if not home:
            raise QueryError("under: ~ is not known on this server; give an absolute path")
        under = home + under[1:]
    if not os.path.isabs(under):
        raise QueryError(f"under must be an absolute folder path, not {under!r}")
    return os.path.normpath(under)
