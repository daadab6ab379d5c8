"""The member portal application, mounted at ``/portal`` by the API's app factory.

A FastAPI sub-application of its own (HTML errors, out of the API's OpenAPI document). A
programme whose ``portal`` section names a host name is also served at the root of that host:
a small middleware maps ``https://club.example.com/rewards`` to ``/portal/<slug>/rewards``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from fidelia.db import Database
from fidelia.errors import FideliaError, error_message
from fidelia.portal import (
    auth_pages,
    brand_pages,
    engagement_pages,
    home_pages,
    preference_pages,
    reward_pages,
    transfer_pages,
)
from fidelia.portal.access import BASE, NotSignedIn, Site, formatter
from fidelia.portal.branding import cached_hosts, refresh_hosts
from fidelia.portal.templating import render
from fidelia.programmes.portal_section import PortalSection

STATIC = Path(__file__).parent / "static"


def _not_signed_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotSignedIn)
    return RedirectResponse(f"{BASE}/{exc.slug}/sign-in", status_code=303)


def _site_of(request: Request) -> Site | None:
    """The programme of the URL for an error page (None: the URL names none)."""
    from fidelia.portal.access import load_site

    parts = request.url.path.split("/")
    slug = parts[2] if len(parts) > 2 and parts[1] == "portal" else ""
    try:
        return load_site(request, slug) if slug else None
    except FideliaError:
        return None


def _page(request: Request, status: int, messages: list[str]) -> Response:
    site = _site_of(request)
    if site is None:
        from fidelia.models import Programme

        anonymous = Programme(name="", slug="", locale="en", timezone="UTC", currency="EUR")
        site = Site(anonymous, PortalSection(), formatter(anonymous, "en"))
    translated = [site.fmt.gettext(m) for m in messages]
    return render(request, "error.html", site=site, status=status, messages=translated)


def _error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FideliaError)
    return _page(request, exc.status_code, [f.msg for f in exc.fields] or [exc.detail])


def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    messages = [
        f"{'.'.join(str(p) for p in err['loc'][1:])}: {error_message(err)}" for err in exc.errors()
    ]
    return _page(request, 422, messages)


def create_portal_app(database: Database) -> FastAPI:
    """The portal on ``database``; mount it at :data:`BASE`."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.database = database
    app.add_exception_handler(NotSignedIn, _not_signed_in)
    app.add_exception_handler(FideliaError, _error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (
        brand_pages,
        auth_pages,
        home_pages,
        reward_pages,
        preference_pages,
        engagement_pages,
        transfer_pages,
    ):
        app.include_router(module.router)
    return app


class HostRouting:
    """Serve a programme's portal at the root of its own host name (``portal.host``)."""

    KEEP = ("/portal/", "/api/", "/admin/", "/healthz", "/docs", "/openapi.json")

    def __init__(self, app: ASGIApp, database: Database) -> None:
        self.app = app
        self.database = database

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(self.KEEP):
            host = _host(scope)
            if host:
                hosts = cached_hosts()
                if hosts is None:
                    with self.database.transaction(readonly=True) as session:
                        hosts = refresh_hosts(session)
                slug = hosts.get(host)
                if slug is not None:
                    path = f"{BASE}/{slug}{scope['path']}"
                    scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


def _host(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"host":
            return str(value.decode("latin-1")).split(":")[0].lower()
    return ""


def install(app: FastAPI, database: Database) -> None:
    """Mount the portal at ``/portal`` and route programmes' own host names to it."""
    app.mount(BASE, create_portal_app(database))
    app.add_middleware(HostRouting, database=database)
