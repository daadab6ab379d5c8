"""API keys: the list (every role reads it: no secret is shown), create (the secret shown
once, on the answer to the form) and revoke, for owners, through the auth service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fidelia.audit import service as audit
from fidelia.auth import service as apikeys
from fidelia.auth.dependencies import get_database
from fidelia.auth.schemas import Scope
from fidelia.errors import ValidationFailed
from fidelia.web.access import BASE, OwnerPage, Page, ReadPage
from fidelia.web.templating import render

router = APIRouter()


def _page(
    request: Request,
    page: Page,
    *,
    status: int = 200,
    secret: str | None = None,
    error: str | None = None,
    name: str = "",
) -> HTMLResponse:
    with get_database(request).transaction(readonly=True) as session:
        keys = apikeys.list_keys(session, programme=page.programme)
    return render(
        request,
        "keys.html",
        fmt=page.fmt,
        page=page,
        viewer=page.viewer,
        status=status,
        keys=list(reversed(keys)),
        secret=secret,
        error=error,
        name=name,
        scopes=[s.value for s in Scope],
    )


@router.get("/p/{slug}/keys", response_class=HTMLResponse)
def show(request: Request, page: ReadPage) -> HTMLResponse:
    return _page(request, page)


@router.post("/p/{slug}/keys", response_class=HTMLResponse)
def create(
    request: Request,
    page: OwnerPage,
    name: Annotated[str, Form(max_length=200)] = "",
    scope: Annotated[str, Form(max_length=16)] = "",
) -> HTMLResponse:
    try:
        if not name.strip():
            raise ValidationFailed.on("name", "give the key a name")
        if scope not in {s.value for s in Scope}:
            raise ValidationFailed.on("scope", "one of read, integration, admin")
    except ValidationFailed as exc:
        return _page(request, page, status=422, error=exc.fields[0].msg, name=name)
    with get_database(request).transaction() as session:
        key, secret = apikeys.create(
            session, programme=page.programme, name=name.strip(), scope=Scope(scope)
        )
        audit.record(
            session,
            programme_id=page.programme.id,
            actor=page.actor,
            user_id=page.viewer.user.id,
            action="apikey.create",
            target_type="api_key",
            target_id=str(key.id),
            after={"name": key.name, "scope": key.scope, "prefix": key.prefix},
        )
    return _page(request, page, status=201, secret=secret)


@router.post("/p/{slug}/keys/{key_id}/revoke")
def revoke(request: Request, page: OwnerPage, key_id: uuid.UUID) -> Response:
    with get_database(request).transaction() as session:
        key = apikeys.revoke(session, programme=page.programme, key_id=key_id)
        audit.record(
            session,
            programme_id=page.programme.id,
            actor=page.actor,
            user_id=page.viewer.user.id,
            action="apikey.revoke",
            target_type="api_key",
            target_id=str(key.id),
            before={"name": key.name, "scope": key.scope, "revoked_at": None},
            after={"revoked_at": key.revoked_at.isoformat() if key.revoked_at else None},
        )
    return RedirectResponse(f"{BASE}/p/{page.programme.slug}/keys", status_code=303)
