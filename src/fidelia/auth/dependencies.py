"""FastAPI dependencies shared by every domain's endpoints: the session and the caller.

The session commits when the endpoint function returns (``scope="function"``: before the
response is sent, so a failed commit is an error response, never a false success) and rolls
back on any exception.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from fidelia.auth import service
from fidelia.auth.schemas import Scope
from fidelia.auth.service import Principal
from fidelia.db import Database
from fidelia.errors import Forbidden

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def _session(request: Request) -> Iterator[Session]:
    database = get_database(request)
    readonly = request.method in ("GET", "HEAD")
    with database.transaction(readonly=readonly) as session:
        yield session


DbSession = Annotated[Session, Depends(_session, scope="function")]


def require(scope: Scope) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and checks it holds at least ``scope``."""

    def dependency(
        session: DbSession,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        header: Annotated[str | None, Security(_header)],
    ) -> Principal:
        presented = bearer.credentials if bearer is not None else header
        principal = service.authenticate(session, key=presented)
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


def require_without_session(scope: Scope) -> Callable[..., Principal]:
    """Like :func:`require`, without holding a session for the request: the key is looked up
    in a short read-only transaction, or found in the app's :class:`KeyCache`."""

    def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        header: Annotated[str | None, Security(_header)],
    ) -> Principal:
        presented = bearer.credentials if bearer is not None else header
        cache: KeyCache = request.app.state.key_cache
        digest = service.digest_of(presented or "")
        principal = cache.get(digest) if presented else None
        if principal is None:
            with get_database(request).transaction(readonly=True) as session:
                principal = service.authenticate(session, key=presented)
            cache.put(digest, principal)
        if not principal.scope.allows(scope):
            raise Forbidden(
                f"this key has scope {principal.scope.value!r}; this call needs {scope.value!r}"
            )
        return principal

    return dependency


Reader = Annotated[Principal, Depends(require(Scope.read))]
Integrator = Annotated[Principal, Depends(require(Scope.integration))]
Admin = Annotated[Principal, Depends(require(Scope.admin))]
GroupedIntegrator = Annotated[Principal, Depends(require_without_session(Scope.integration))]
