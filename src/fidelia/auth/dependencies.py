"""FastAPI dependencies shared by every domain's endpoints: the session and the caller.

The session commits when the endpoint function returns (``scope="function"``: before the
response is sent, so a failed commit is an error response, never a false success) and rolls
back on any exception.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from fidelia.auth import service
from fidelia.auth.limits import DatabaseStore, route_class
from fidelia.auth.schemas import Scope
from fidelia.auth.service import Principal
from fidelia.db import Database
from fidelia.errors import Forbidden
from fidelia.kit.clock import utcnow

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")


async def presented_credentials(
    request: Request,
) -> tuple[HTTPAuthorizationCredentials | None, str | None]:
    """The key as the two security schemes read it (``Authorization: Bearer``, ``X-API-Key``),
    for a caller of a dependency below that does not go through FastAPI's dependency solving."""
    return await _bearer(request), await _header(request)


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def _session(request: Request) -> Iterator[Session]:
    database = get_database(request)
    readonly = request.method in ("GET", "HEAD")
    with database.transaction(readonly=readonly) as session:
        yield session


DbSession = Annotated[Session, Depends(_session, scope="function")]


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Called with (session, principal, request, body) for every authenticated write that holds a
# session: the API installs the audit log's recorder here (auth sits below audit).
WriteHook = Callable[[Session, Principal, Request, bytes], None]


async def _raw_body(request: Request) -> bytes:
    """The request body (Starlette keeps it: the endpoint reads the same bytes)."""
    return await request.body()


class LastUsed:
    """When this process last wrote each key's ``last_used_at``: at most once per ``every``."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._written: dict[object, float] = {}

    def pending(self, key_id: object) -> bool:
        """Whether :meth:`due` would say yes now (without marking anything)."""
        return time.monotonic() - self._written.get(key_id, -math.inf) >= self.every

    def due(self, key_id: object) -> bool:
        now = time.monotonic()
        if now - self._written.get(key_id, -math.inf) < self.every:
            return False
        if len(self._written) > 100_000:
            self._written.clear()
        self._written[key_id] = now
        return True


def after_authentication(
    request: Request, principal: Principal, session: Session | None, body: bytes
) -> None:
    """What every authenticated call goes through: the key's rate limit (429 before anything
    else is done), its last use (cheaply), and the audit of a write."""
    state = request.app.state
    _check_origin(request, principal)
    limiter = getattr(state, "limiter", None)
    if limiter is not None:
        limiter.check(
            key_id=principal.key_id,
            settings=principal.programme.settings or {},
            method=request.method,
            path=request.scope["path"],  # request.url.path builds a whole URL per call
        )
    last_used: LastUsed | None = getattr(state, "last_used", None)
    if last_used is not None and last_used.due(principal.key_id):
        every = timedelta(seconds=last_used.every)
        if session is not None and request.method not in SAFE_METHODS:
            service.touch(session, key_id=principal.key_id, at=utcnow(), every=every)
        else:  # the request's session is read-only (or there is none): a short one of its own
            with get_database(request).transaction() as own:
                service.touch(own, key_id=principal.key_id, at=utcnow(), every=every)
    hook: WriteHook | None = getattr(state, "write_hook", None)
    if hook is not None and session is not None and request.method not in SAFE_METHODS:
        hook(session, principal, request, body)


def _check_origin(request: Request, principal: Principal) -> None:
    """A cross-origin call (a browser page of another host) is refused unless the key's
    programme lists that origin in ``settings.api.cors_origins``."""
    origin = request.headers.get("origin")
    if origin is None or origin == f"{request.url.scheme}://{request.headers.get('host')}":
        return
    allowed = ((principal.programme.settings or {}).get("api") or {}).get("cors_origins") or []
    if origin not in allowed:
        raise Forbidden(
            f"origin {origin!r} may not call the API with this programme's keys: add it to "
            "settings.api.cors_origins"
        )


def require(scope: Scope) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and checks it holds at least ``scope``."""

    def dependency(
        request: Request,
        session: DbSession,
        body: Annotated[bytes, Depends(_raw_body)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        header: Annotated[str | None, Security(_header)],
    ) -> Principal:
        presented = bearer.credentials if bearer is not None else header
        principal = service.authenticate(session, key=presented)
        after_authentication(request, principal, session, body)
        if not principal.scope.allows(scope):
            raise Forbidden(
                f"this key has scope {principal.scope.value!r}; this call needs {scope.value!r}"
            )
        return principal

    return dependency


class KeyCache:
    """Keys recently authenticated by this process (digest -> principal, for ``ttl`` seconds).

    Only for calls that check the key again where it counts: group commit re-reads every key
    in the transaction that writes, so a revoked key is refused there at once."""

    def __init__(self, ttl: float = 30.0, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, digest: str) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, digest: str, principal: Principal) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[digest] = (time.monotonic() + self.ttl, principal)


def require_without_session(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """Like :func:`require`, without holding a session for the request: the key is looked up
    in a short read-only transaction, or found in the app's :class:`KeyCache`.

    The dependency is ``async``: when the key is in the cache and nothing else needs the
    database (rate limits kept in memory, last use written recently), it runs on the event
    loop, without the hop to a worker thread and back that a plain ``def`` costs each request;
    otherwise its work goes to a worker thread as before."""

    def check(request: Request, presented: str | None, digest: str) -> Principal:
        cache: KeyCache = request.app.state.key_cache
        principal = cache.get(digest) if presented else None
        if principal is None:
            with get_database(request).transaction(readonly=True) as session:
                principal = service.authenticate(session, key=presented)
            cache.put(digest, principal)
        principal.check_not_expired()
        after_authentication(request, principal, None, b"")
        if not principal.scope.allows(scope):
            raise Forbidden(
                f"this key has scope {principal.scope.value!r}; this call needs {scope.value!r}"
            )
        return principal

    async def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        header: Annotated[str | None, Security(_header)],
    ) -> Principal:
        presented = bearer.credentials if bearer is not None else header
        digest = service.digest_of(presented or "")
        cached = request.app.state.key_cache.get(digest) if presented else None
        if cached is not None and not _needs_database(request, cached):
            return check(request, presented, digest)
        return await run_in_threadpool(check, request, presented, digest)

    return dependency


def _needs_database(request: Request, principal: Principal) -> bool:
    """Whether :func:`after_authentication` would read or write the database for this call."""
    state = request.app.state
    limiter = getattr(state, "limiter", None)
    if limiter is not None and isinstance(limiter.store, DatabaseStore):
        cls = route_class(request.method, request.scope["path"])
        if not limiter.store.holds(principal.key_id, cls, time.time()):
            return True
    last_used: LastUsed | None = getattr(state, "last_used", None)
    return last_used is not None and last_used.pending(principal.key_id)


Reader = Annotated[Principal, Depends(require(Scope.read))]
Integrator = Annotated[Principal, Depends(require(Scope.integration))]
Admin = Annotated[Principal, Depends(require(Scope.admin))]
GroupedIntegrator = Annotated[Principal, Depends(require_without_session(Scope.integration))]
