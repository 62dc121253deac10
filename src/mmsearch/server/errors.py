"""Library exceptions -> HTTP answers with a one-line ``detail`` for people.

| exception | status |
| --- | --- |
| UploadRejected | its own (413 too large, 415 type not indexed, 422 limits) |
| InvalidInput, a request that does not fit the API's schema | 422 |
| IdOutOfRange (beyond SQLite's integers) | 404 |
| QueryError | 400 |
| DecodeError | 422 |
| JobNotFound, NotFound | 404 |
| Forbidden | 403 |
| ModelMismatchError | 409 |
| LibraryError (another writer holds the library) | 409 |
| ServerBusy | 503 |
| MissingDependencyError | 501 |
| any other MMSearchError | 400 |

A request that does not fit the schema is answered with ``detail``, one line
naming each field and what is wrong with it, and ``errors``, the same as a list
(``loc``, ``msg``, ``type``); the values sent are not echoed back.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from mmsearch.errors import (
    DecodeError,
    LibraryError,
    MissingDependencyError,
    MMSearchError,
    ModelMismatchError,
    QueryError,
)
from mmsearch.server.checks import IdOutOfRange, InvalidInput
from mmsearch.server.jobs import JobNotFound
from mmsearch.server.responses import SafeJSONResponse
from mmsearch.server.uploads import UploadRejected


class NotFound(MMSearchError):
    """No such item, segment or thumbnail in this library."""


class Forbidden(MMSearchError):
    """A server-side path outside the allowed roots, or a feature the operator left off."""


class ServerBusy(MMSearchError):
    """No library reader became free in time."""


MAX_LISTED = 5
"""Validation errors named in ``detail`` (all are in ``errors``)."""

_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (InvalidInput, 422),
    (IdOutOfRange, 404),
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
    async def handle(request: Request, exc: Exception) -> SafeJSONResponse:
        return SafeJSONResponse({"detail": str(exc)}, status_code=status_for(exc))

    async def invalid(request: Request, exc: Exception) -> SafeJSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [_error(e) for e in exc.errors()]
        return SafeJSONResponse(
            {"detail": validation_message(errors), "errors": errors}, status_code=422
        )

    app.add_exception_handler(MMSearchError, handle)
    app.add_exception_handler(RequestValidationError, invalid)


def _error(e: Any) -> dict[str, Any]:
    loc = [str(part) for part in e.get("loc", ())]
    return {"loc": loc, "msg": str(e.get("msg", "invalid")), "type": str(e.get("type", ""))}


def validation_message(errors: list[dict[str, Any]]) -> str:
    """One line: ``field: what is wrong; other.field: ...`` (``body``/``query`` left out)."""
    parts = []
    for e in errors[:MAX_LISTED]:
        loc = e["loc"][1:] if len(e["loc"]) > 1 else e["loc"]
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    more = len(errors) - MAX_LISTED
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "") or "invalid request"
