"""Originals and thumbnails, served only for items of the library, addressed by id.

No route takes a path, so nothing outside the library can be reached through
one, and a stored path is opened only under the server's path rule
(:func:`mmsearch.server.paths.open_indexed`: no final symlink, still the file
indexed, under an allowed root); the bytes sent come from the descriptor that was
checked, so the file cannot be swapped between the check and the read. Originals support HTTP range requests (video and audio seek in the
browser). Content types come from a short list of media types; anything else
(a text note, an HTML file someone indexed) is sent as plain text or bytes with
``nosniff`` and a locked-down content policy, so it can never run as a page of
this origin.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from mmsearch.errors import DecodeError
from mmsearch.server.errors import NotFound
from mmsearch.server.hits import display_name
from mmsearch.server.paths import open_indexed, serving_roots
from mmsearch.server.state import AppState, State
from mmsearch.server.thumbs import snap_size
from mmsearch.store.rows import ItemRow
from mmsearch.store.scope import Scope

router = APIRouter(prefix="/api", tags=["media"])
Size = Annotated[int | None, Query(ge=16, le=4096, description="longest side, in pixels")]

_SAFE_PREFIXES = ("image/", "video/", "audio/")
_UNSAFE_TYPES = ("image/svg+xml",)  # SVG can carry scripts
_MEDIA_POLICY = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"
THUMB_MAX_AGE = 86400


def safe_media_type(path: str, modality: str) -> str:
    guessed, _ = mimetypes.guess_type(os.fsencode(path).decode("utf-8", "replace"))
    if guessed and guessed.startswith(_SAFE_PREFIXES) and guessed not in _UNSAFE_TYPES:
        return guessed
    if modality == "text":
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def _item(state: AppState, item_id: int) -> tuple[ItemRow, list[str]]:
    """The item, and where this server may read files from: its allowed roots, its
    uploads and the folders indexed into the library (one reader checkout for both)."""
    with state.readers().library() as lib:
        item = lib.catalog.items([item_id]).get(item_id)
        indexed = Scope(lib.catalog).roots() if item is not None else []
    if item is None:
        raise NotFound(f"no item {item_id}")
    c = state.config
    return item, serving_roots([*c.allow_roots, c.uploads], indexed)


class _OpenFileResponse(FileResponse):
    """A ``FileResponse`` (ranges, HEAD, ETag) that sends the bytes of a descriptor the
    server has already checked, instead of opening the path again."""

    def __init__(self, fd: int, st: os.stat_result, **kwargs: Any) -> None:
        super().__init__(f"/proc/self/fd/{fd}", stat_result=st, **kwargs)
        self._fd: int | None = fd
        self.background = BackgroundTask(self._close)

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[Any]:
        fd, self._fd = self._fd, None
        if fd is None:
            raise RuntimeError("the file was sent already")
        file = anyio.wrap_file(os.fdopen(fd, "rb"))
        try:
            yield file
        finally:
            with anyio.CancelScope(shield=True):
                await file.aclose()

    async def _handle_simple(self, send: Any, send_header_only: bool, _pathsend: bool) -> None:
        await super()._handle_simple(send, send_header_only, False)  # never by path

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __del__(self) -> None:  # a response never sent (client gone) must not leak its fd
        self._close()


@router.get("/media/{item_id}", summary="The original file (range requests)")
@router.head("/media/{item_id}", include_in_schema=False)
def media(item_id: int, state: State) -> FileResponse:
    item, roots = _item(state, item_id)
    with open_indexed(item, roots) as (fd, st):
        mine = os.dup(fd)
    name = quote(display_name(item.path).encode("utf-8", "replace"))
    return _OpenFileResponse(
        mine,
        st,
        media_type=safe_media_type(item.path, item.modality),
        headers={
            "Content-Disposition": f"inline; filename*=UTF-8''{name}",
            "Content-Security-Policy": _MEDIA_POLICY,
            "Cache-Control": "private, max-age=3600",
        },
    )


@router.get("/thumbs/items/{item_id}", summary="JPEG thumbnail of a photo or a video")
def item_thumbnail(item_id: int, state: State, request: Request, size: Size = None) -> Response:
    item, roots = _item(state, item_id)
    if item.modality == "image":
        return _photo_thumb(state, request, item, roots, snap_size(size))
    if item.modality == "video":
        with state.readers().library() as lib:
            sid = lib.catalog.item_thumbnail_segment(item_id)
            data = lib.thumbnail(sid) if sid is not None else None
        if data is not None:
            return _jpeg(request, data, f'"seg-{sid}"')
    raise NotFound(f"item {item_id} has no thumbnail")


@router.get("/thumbs/segments/{segment_id}", summary="JPEG keyframe of a video moment")
def segment_thumbnail(
    segment_id: int, state: State, request: Request, size: Size = None
) -> Response:
    with state.readers().library() as lib:
        data = lib.thumbnail(segment_id)
        seg = lib.catalog.segments([segment_id]).get(segment_id) if data is None else None
    if data is not None:
        return _jpeg(request, data, f'"seg-{segment_id}"')
    if seg is None:
        raise NotFound(f"no segment {segment_id}")
    return item_thumbnail(seg.item_id, state, request, size)


def _photo_thumb(
    state: AppState, request: Request, item: ItemRow, roots: list[str], size: int
) -> Response:
    from mmsearch.media.image import MAX_PIXELS_DEFAULT, open_image_rgb
    from mmsearch.media.thumbs import make_thumbnail

    etag = f'"{item.id}-{size}-{item.mtime}-{item.size}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})

    def make() -> bytes:
        # An indexed photo passed the indexing limit; thumbnail it under the same one.
        limit = max(state.config.max_pixels, MAX_PIXELS_DEFAULT)
        with (
            open_indexed(item, roots) as (fd, _),
            os.fdopen(os.dup(fd), "rb") as fh,
        ):
            try:
                image = open_image_rgb(fh, max_pixels=limit)
            except DecodeError as exc:
                raise NotFound(f"no thumbnail for item {item.id}: {exc.reason}") from exc
        return make_thumbnail(image, max_side=size)

    data = state.thumbs.get_or_make((item.id, size, item.mtime, item.size), make)
    return _jpeg(request, data, etag)


def _jpeg(request: Request, data: bytes, etag: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={THUMB_MAX_AGE}"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="image/jpeg", headers=headers)
