"""FastAPI dependencies shared by every domain's endpoints: the session and the caller.

The session commits when the endpoint function returns (``scope="function"``: before the
response is sent, so a failed commit is an error response, never a false success) and rolls
back on any exception.
"""

from __future__ import annotations

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


Reader = Annotated[Principal, Depends(require(Scope.read))]
Integrator = Annotated[Principal, Depends(require(Scope.integration))]
Admin = Annotated[Principal, Depends(require(Scope.admin))]
