"""Items (list, get, delete, add by upload or by server-side path) and ingest jobs.

Adding returns 202 with a job to poll (``GET /api/jobs/{id}``), or waits up to
``wait`` seconds for it first; waiting holds no thread (the handlers are async),
so any number of waiting clients leave searches alone. Jobs run one at a time in
the warm job worker; searches go on meanwhile and see each batch as it is
committed. Server-side paths are confined to the allowed roots and uploads to the
uploads folder, for discovery too (``IngestOptions.within``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from mmsearch.library import Library
from mmsearch.pathargs import is_within
from mmsearch.server.checks import InvalidInput, check_text, finite
from mmsearch.server.errors import NotFound
from mmsearch.server.hits import item_json, segment_json
from mmsearch.server.paths import allowed_path
from mmsearch.server.query import json_field
from mmsearch.server.responses import SafeJSONResponse
from mmsearch.server.state import AppState, State
from mmsearch.server.uploads import (
    UploadRejected,
    check_media,
    copy_limited,
    remove_tree,
    safe_name,
    unique_path,
)
from mmsearch.store.rows import ItemRow

router = APIRouter(prefix="/api", tags=["items"])

MAX_WAIT_S = 600.0
SIDECAR_SUFFIXES = (".json", ".txt", ".caption", ".srt", ".vtt")
"""Uploaded beside a medium, these are its caption, metadata or subtitles."""
MAX_OFFSET = 2**62
Modality = Literal["image", "text", "video", "audio"]
Scalar = str | int | Annotated[float, Field(allow_inf_nan=False)] | bool


class AddPaths(BaseModel):
    paths: list[str] = Field(min_length=1, description="absolute paths under an allowed root")
    metadata: dict[str, Scalar] = Field(
        default_factory=dict, description="user fields for every item added (filterable)"
    )

    @field_validator("paths")
    @classmethod
    def _encodable(cls, value: list[str]) -> list[str]:
        for path in value:
            try:
                os.fsencode(path)  # "\udcff" stands for byte 0xff; "\ud800" for nothing
            except UnicodeEncodeError as exc:
                raise ValueError(f"not a path on this server: {path!r}") from exc
        return value

    @field_validator("metadata")
    @classmethod
    def _plain_fields(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        return check_fields(value)


def check_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """User fields: names of text, values plain (text, finite numbers, booleans)."""
    for key, value in fields.items():
        check_text(key, "a field name")
        if isinstance(value, str):
            check_text(value, key)
        elif not isinstance(value, bool):
            finite(value, key)
    return fields


# -- items ------------------------------------------------------------------------------
@router.get("/items", summary="List items, in id order, a page at a time")
def list_items(
    state: State,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    under: Annotated[str | None, Query(description="only items under this folder")] = None,
    modality: Annotated[Modality | None, Query(description="the items' kind")] = None,
) -> dict[str, Any]:
    if under is not None and ("\x00" in under or not os.path.isabs(under)):
        raise InvalidInput(f"under must be an absolute folder on the server, not {under!r}")
    with state.readers().library() as lib:
        found = lib.catalog.iter_items(under=os.path.abspath(under) if under else None)
        if modality:
            found = (it for it in found if it.modality == modality)
        page = list(itertools.islice(found, offset, offset + limit + 1))
        items = [item_json(it, lib.catalog.item_fields(it.id)) for it in page[:limit]]
        total = lib.catalog.counts()["items"] if not (under or modality) else None
    more = len(page) > limit
    return {
        "items": items,
        "offset": offset,
        "limit": limit,
        "next_offset": offset + limit if more else None,
        "total": total,
    }


@router.get("/items/{item_id}", summary="One item with its segments")
def get_item(item_id: int, state: State) -> dict[str, Any]:
    with state.readers().library() as lib:
        item = _find_item(lib, item_id)
        out = item_json(item, lib.catalog.item_fields(item_id))
        out["segments"] = [segment_json(s, item) for s in lib.catalog.item_segments(item_id)]
    return out


@router.delete("/items/{item_id}", summary="Remove an item (an uploaded file is deleted too)")
def delete_item(item_id: int, state: State) -> dict[str, Any]:
    with state.readers().library() as reader:
        item = _find_item(reader, item_id)
    with state.writable_library() as lib:
        removed = lib.remove([item_id])
    if removed and is_within(os.path.realpath(item.path), os.path.realpath(state.config.uploads)):
        with contextlib.suppress(OSError):
            os.unlink(item.path)
    return {"removed": removed, "item_id": item_id}


def _find_item(lib: Library, item_id: int) -> ItemRow:
    item = lib.catalog.items([item_id]).get(item_id)
    if item is None:
        raise NotFound(f"no item {item_id}")
    return item


# -- adding -----------------------------------------------------------------------------
# Async, so that a client waiting for its job holds no thread (searches need them).
@router.post("/items/paths", status_code=202, summary="Add server-side files or folders")
async def add_paths(
    body: AddPaths,
    state: State,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="seconds to wait")] = 0,
) -> SafeJSONResponse:
    roots = state.config.allow_roots
    paths = await run_in_threadpool(lambda: [allowed_path(p, roots) for p in body.paths])
    job = state.job_manager().submit(
        paths,
        metadata=dict(body.metadata),
        source="paths",
        within=tuple(str(root) for root in roots),
    )
    return await _job_answer(state, job.id, wait)


@router.post("/items/upload", status_code=202, summary="Upload files to add (as a job)")
async def add_upload(
    state: State,
    files: Annotated[
        list[UploadFile],
        File(description="images, videos, audio, texts; sidecars (.json, .txt, .srt) beside them"),
    ],
    metadata: Annotated[str | None, Form(description="user fields as a JSON object")] = None,
    wait: Annotated[float, Form(ge=0, le=MAX_WAIT_S)] = 0,
) -> SafeJSONResponse:
    fields = _metadata(metadata)
    manager = state.job_manager()
    job_id = manager.new_id()
    folder = state.config.uploads / job_id
    await run_in_threadpool(_save_uploads, state, files, folder)
    job = manager.submit(
        [str(folder)],
        metadata=fields,
        source="upload",
        job_id=job_id,
        within=(os.path.realpath(state.config.uploads),),
    )
    return await _job_answer(state, job.id, wait)


def _save_uploads(state: AppState, files: list[UploadFile], folder: Path) -> None:
    """Copy and check every upload into the new ``folder``; on any refusal, none is kept."""
    folder.mkdir(parents=True, exist_ok=False)
    try:
        for upload in files:
            _save_upload(state, upload, folder)
    except BaseException:
        remove_tree(folder)
        raise


def _save_upload(state: AppState, upload: UploadFile, folder: Path) -> None:
    name = safe_name(upload.filename)
    dest = unique_path(folder, name)
    copy_limited(upload.file, dest, state.config.max_upload_bytes)
    if dest.suffix.lower() in SIDECAR_SUFFIXES and dest.suffix.lower() != ".txt":
        return
    check_media(
        dest,
        max_pixels=state.config.max_pixels,
        max_duration_s=state.config.max_duration_s,
        display_name=upload.filename or name,
    )


def _metadata(raw: str | None) -> dict[str, Any]:
    value = json_field(raw, "metadata")
    if not isinstance(value, dict) or not all(
        isinstance(v, (str, int, float, bool)) for v in value.values()
    ):
        raise UploadRejected(422, "metadata must be a JSON object of plain values")
    try:
        return check_fields(value)
    except ValueError as exc:
        raise InvalidInput(f"metadata: {exc}") from exc


async def _job(state: AppState, job_id: str, wait: float) -> dict[str, Any]:
    """The job's state now, or when it ends if that is within ``wait`` seconds."""
    manager = state.job_manager()
    return await manager.wait_async(job_id, wait) if wait > 0 else manager.get(job_id)


async def _job_answer(state: AppState, job_id: str, wait: float) -> SafeJSONResponse:
    job = await _job(state, job_id, wait)
    status = 200 if job["state"] in ("done", "failed", "cancelled") else 202
    return SafeJSONResponse(
        {"job": job}, status_code=status, headers={"Location": f"/api/jobs/{job_id}"}
    )


# -- jobs -------------------------------------------------------------------------------
@router.get("/jobs", summary="Jobs, newest first")
def list_jobs(state: State) -> dict[str, Any]:
    return {"jobs": state.job_manager().list()}


@router.get("/jobs/{job_id}", summary="One job: state, progress, report")
async def get_job(
    job_id: str,
    state: State,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="wait for the end")] = 0,
) -> dict[str, Any]:
    return {"job": await _job(state, job_id, wait)}


@router.delete("/jobs/{job_id}", summary="Cancel a job (what it committed is kept)")
def cancel_job(job_id: str, state: State) -> dict[str, Any]:
    return {"job": state.job_manager().cancel(job_id)}
