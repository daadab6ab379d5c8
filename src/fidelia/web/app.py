"""The back-office application, mounted at ``/admin`` by the API's app factory.

A FastAPI sub-application of its own, so that errors render as HTML pages (the API renders
JSON) and its routes stay out of the API's OpenAPI document.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.errors import FideliaError, error_message
from fidelia.web import (
    audit_pages,
    auth_pages,
    bounced_pages,
    dashboard,
    engagement_pages,
    keys_pages,
    member_actions,
    member_pages,
    offers_pages,
    operations_pages,
    portal_preview,
    programme_pages,
    rewards_pages,
    scenario_pages,
    store_pages,
    webhooks_pages,
)
from fidelia.web.access import BASE, NotSignedIn, anonymous_formatter
from fidelia.web.templating import render

STATIC = Path(__file__).parent / "static"


def _not_signed_in(request: Request, _exc: Exception) -> Response:
    target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if request.method != "GET":
        target = quote(request.url.path)
    return RedirectResponse(f"{BASE}/login?next={target}", status_code=303)


def _error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FideliaError)
    messages = [f.msg for f in exc.fields] or [exc.detail]
    fmt = anonymous_formatter(request)
    return render(request, "error.html", fmt=fmt, status=exc.status_code, messages=messages)


def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    messages = [
        f"{'.'.join(str(p) for p in err['loc'][1:])}: {error_message(err)}" for err in exc.errors()
    ]
    fmt = anonymous_formatter(request)
    return render(request, "error.html", fmt=fmt, status=422, messages=messages)


def create_web_app(database: Database) -> FastAPI:
    """The back-office on ``database``; mount it at :data:`BASE`."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.database = database
    app.state.public_url = get_settings().public_url
    app.add_exception_handler(NotSignedIn, _not_signed_in)
    app.add_exception_handler(FideliaError, _error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (
        auth_pages,
        dashboard,
        member_pages,
        keys_pages,
        audit_pages,
        programme_pages,
        member_actions,
        offers_pages,
        engagement_pages,
        scenario_pages,
        store_pages,
        webhooks_pages,
        bounced_pages,
        rewards_pages,
        operations_pages,
        portal_preview,
    ):
        app.include_router(module.router)
    return app
