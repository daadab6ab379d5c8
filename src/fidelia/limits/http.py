"""Two ASGI middlewares for every response: security headers, and CORS for the portal hosts
that programmes allow (``settings.api.cors_origins``).

A preflight carries no API key, so it cannot name its programme: an origin any programme
allows gets the CORS headers (the union of the lists, re-read every 30 seconds). The real
call then carries its key, and the auth layer refuses (403) a cross-origin call whose origin
the key's own programme does not allow, so one programme's portal host cannot use another
programme's keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
# JSON answers never need to load anything; HTML pages (back-office, portal, /docs) set theirs.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
_RAW_HEADERS = tuple(
    (k.encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()
)
_RAW_CSP = (b"content-security-policy", API_CSP.encode("latin-1"))
ALLOWED_HEADERS = "Authorization, Content-Type, X-API-Key, Idempotency-Key"
EXPOSED_HEADERS = "Retry-After, Content-Disposition"
ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE"


class SecurityHeaders:
    """Adds the headers above to every response that does not already set them."""

    def __init__(self, app: ASGIApp, *, api_prefix: str = "/api/") -> None:
        self.app = app
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope["path"].startswith(self.api_prefix)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # as MutableHeaders would, with one pass over the headers instead of two per
                # name (this runs on every answer)
                raw = message["headers"] = list(message["headers"])
                present = {name for name, _ in raw}
                raw.extend(header for header in _RAW_HEADERS if header[0] not in present)
                if is_api and _RAW_CSP[0] not in present:
                    raw.append(_RAW_CSP)
            await send(message)

        await self.app(scope, receive, with_headers)


class OriginList:
    """The origins some programme allows, re-read at most every ``ttl`` seconds."""

    def __init__(self, load: Callable[[], set[str]], ttl: float = 30.0) -> None:
        self.load, self.ttl = load, ttl
        self._origins: set[str] = set()
        self._until = 0.0

    async def allows(self, origin: str) -> bool:
        if time.monotonic() >= self._until:
            self._origins = await anyio.to_thread.run_sync(self.load)
            self._until = time.monotonic() + self.ttl
        return origin in self._origins


class Cors:
    """CORS for ``/api/``: preflights answered here, real answers given the allow headers."""

    def __init__(self, app: ASGIApp, *, origins: OriginList, api_prefix: str = "/api/") -> None:
        self.app = app
        self.origins = origins
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.api_prefix):
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        origin = request_headers.get("origin")
        if origin is None or not await self.origins.allows(origin):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in request_headers:
            await _preflight(send, origin)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["access-control-allow-origin"] = origin
                headers["access-control-expose-headers"] = EXPOSED_HEADERS
                headers.append("vary", "Origin")
            await send(message)

        await self.app(scope, receive, with_cors)


async def _preflight(send: Send, origin: str) -> None:
    headers = [
        (b"access-control-allow-origin", origin.encode()),
        (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
        (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
        (b"access-control-max-age", b"600"),
        (b"vary", b"Origin"),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
