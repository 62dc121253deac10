"""The checks every request passes before it reaches a route (one ASGI middleware).

In order:

1. Body size: a declared ``Content-Length`` over the limit is answered 413 at
   once; a body streamed past the limit is cut off and answered 413.
2. Host: with no token (so bound to loopback), only loopback names and the
   configured extra hosts are served; this stops DNS-rebinding pages from
   reading a local server.
3. Token: when one is set, every request except ``GET /health`` must carry it,
   as ``Authorization: Bearer <token>`` or as the password of HTTP Basic
   (any user name; browsers ask for it themselves and then send it with every
   request of the page, media included). Otherwise 401.
4. Cross-site writes: a POST/PUT/PATCH/DELETE whose ``Origin`` is neither this
   server nor an allowed CORS origin is refused (403), so a web page the user
   visits cannot make their browser change the library.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mmsearch.server.config import is_loopback

PUBLIC_PATHS = frozenset({"/health"})
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
BASIC_CHALLENGE = 'Basic realm="mmsearch", charset="UTF-8"'
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SecurityMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        max_body_bytes: int,
        allowed_hosts: Iterable[str] = (),
        cors_origins: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body_bytes
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.cors_origins = {o.rstrip("/").lower() for o in cors_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, message, extra = refusal
            await _send_json(send, status, {"detail": message}, extra)
            return
        await self._limited(scope, receive, send, headers)

    def _refusal(
        self, scope: Scope, headers: dict[str, str]
    ) -> tuple[int, str, dict[str, str]] | None:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            return 413, too_large_message(int(declared), self.max_body), {}
        host = _host_name(headers.get("host", ""))
        if self.token is None and not (is_loopback(host) or host in self.allowed_hosts):
            return 403, f"host {host!r} is not served (start with --allowed-host to add it)", {}
        path, method = scope.get("path", ""), scope.get("method", "GET")
        public = path in PUBLIC_PATHS and method in ("GET", "HEAD")
        if (
            self.token is not None
            and not public
            and not self._authorised(headers.get("authorization", ""))
        ):
            return 401, "missing or wrong API token", {"www-authenticate": BASIC_CHALLENGE}
        origin = headers.get("origin")
        if method in UNSAFE_METHODS and origin and not self._origin_ok(origin, headers):
            return 403, f"cross-site request from {origin} refused", {}
        return None

    def _authorised(self, header: str) -> bool:
        assert self.token is not None
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                value = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                return False
        elif scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.encode(), self.token.encode())

    def _origin_ok(self, origin: str, headers: dict[str, str]) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in self.cors_origins:
            return True
        return urlsplit(origin).netloc == headers.get("host", "").lower()

    async def _limited(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        """Run the app, cutting the body off at the limit and answering 413 then."""
        seen = 0
        over = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    over = True
                    raise BodyTooLarge(too_large_message(seen, self.max_body))
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:  # the app answered an error about the cut-off body: answer 413 instead
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _send_json(send, 413, {"detail": too_large_message(seen, self.max_body)})
                return
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if started:
                raise
            await _send_json(send, 413, {"detail": too_large_message(seen, self.max_body)})


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes the limit. Whatever the app
    makes of it (FastAPI turns body errors into 400), the answer becomes 413."""


def too_large_message(size: int, limit: int) -> str:
    return (
        f"request body too large: {_mib(size)} over the limit of {_mib(limit)} "
        "(the server's --max-upload-mb)"
    )


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _host_name(host: str) -> str:
    """The name part of a Host header (``[::1]:8000`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _send_json(
    send: Send, status: int, payload: object, extra: dict[str, str] | None = None
) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (extra or {}).items()]
    headers += list(SECURITY_HEADERS)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
