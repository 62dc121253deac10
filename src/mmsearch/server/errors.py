"""Library exceptions -> HTTP answers with a one-line ``detail`` for people.

| exception | status |
| --- | --- |
| UploadRejected | its own (413 too large, 415 type not indexed, 422 limits) |
| QueryError | 400 |
| DecodeError | 422 |
| JobNotFound, NotFound | 404 |
| Forbidden | 403 |
| ModelMismatchError | 409 |
| LibraryError (another writer holds the library) | 409 |
| ServerBusy | 503 |
| MissingDependencyError | 501 |
| any other MMSearchError | 400 |
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mmsearch.errors import (
    DecodeError,
    LibraryError,
    MissingDependencyError,
    MMSearchError,
    ModelMismatchError,
    QueryError,
)
from mmsearch.server.jobs import JobNotFound
from mmsearch.server.uploads import UploadRejected


class NotFound(MMSearchError):
    """No such item, segment or thumbnail in this library."""


class Forbidden(MMSearchError):
    """A server-side path outside the allowed roots, or a feature the operator left off."""


class ServerBusy(MMSearchError):
    """No library reader became free in time."""


_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (QueryError, 400),
    (DecodeError, 422),
    (JobNotFound, 404),
    (NotFound, 404),
    (Forbidden, 403),
    (ModelMismatchError, 409),
    (LibraryError, 409),
    (ServerBusy, 503),
    (MissingDependencyError, 501),
)


def status_for(exc: Exception) -> int:
    if isinstance(exc, UploadRejected):
        return exc.status
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def install(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_for(exc))

    app.add_exception_handler(MMSearchError, handle)
