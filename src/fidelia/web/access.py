"""Who is reading a back-office page, in which programme, with which role; CSRF checks.

Every programme route goes through :func:`programme_page`: the signed-in user must hold a role
in the programme named by the URL, else the page answers 404 (another programme's data is never
shown, nor whether it exists). Writes go through :func:`write_page` (a role that may write and a
valid CSRF token) or :func:`owner_page` (owners only).
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Form, Request

from fidelia.auth.dependencies import get_database
from fidelia.errors import Forbidden, NotFound
from fidelia.kit.clock import utcnow
from fidelia.models import Programme
from fidelia.models.users import BackofficeUser
from fidelia.users import service as users
from fidelia.users import sessions
from fidelia.users.service import Role
from fidelia.web.i18n import Formatter, best_language, language_of

SESSION_COOKIE = "fidelia_admin"
LOGIN_COOKIE = "fidelia_admin_login"
BASE = "/admin"


class NotSignedIn(Exception):
    """No live session: the page redirects to the sign-in form."""


class BadCsrf(Forbidden):
    code = "csrf"


@dataclass(frozen=True)
class Viewer:
    """The signed-in user, their session's CSRF token and the programmes they may open."""

    user: BackofficeUser
    session_id: uuid.UUID
    csrf_token: str
    programmes: list[tuple[Programme, Role]]


@dataclass(frozen=True)
class Page:
    """A programme page's reader: who, where, with which role, formatting in their locale."""

    viewer: Viewer
    programme: Programme
    role: Role
    fmt: Formatter

    @property
    def actor(self) -> str:
        return f"user:{self.viewer.user.email}"


def anonymous_formatter(request: Request) -> Formatter:
    """Formatting for pages before sign-in: the browser's language, UTC."""
    chosen = request.query_params.get("lang") or request.cookies.get("fidelia_lang")
    language = (
        language_of(chosen) if chosen else best_language(request.headers.get("accept-language"))
    )
    return Formatter(language=language, timezone=ZoneInfo("UTC"))


def current_viewer(request: Request) -> Viewer:
    """The live session of this browser (refreshing its idle expiry), or :class:`NotSignedIn`."""
    database = get_database(request)
    token = request.cookies.get(SESSION_COOKIE)
    now = utcnow()
    with database.transaction(readonly=True) as session:
        current = sessions.resolve(session, token=token, now=now)
        if current is None:
            raise NotSignedIn
        programmes = users.programmes_of(session, user_id=current.user.id)
    if current.stale:
        with database.transaction() as session:
            sessions.touch(session, session_id=current.session_id, now=now)
    return Viewer(current.user, current.session_id, current.csrf_token, programmes)


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


def formatter_for(viewer: Viewer, programme: Programme) -> Formatter:
    language = language_of(viewer.user.locale or programme.locale)
    return Formatter(language, ZoneInfo(programme.timezone), programme.locale)


def programme_page(slug: str, viewer: ViewerDep) -> Page:
    """The programme of the URL if the viewer has a role there; 404 otherwise."""
    for programme, role in viewer.programmes:
        if programme.slug == slug:
            return Page(viewer, programme, role, formatter_for(viewer, programme))
    raise NotFound(f"programme {slug[:64]} does not exist")


ReadPage = Annotated[Page, Depends(programme_page)]


def check_csrf(viewer: Viewer, token: str) -> None:
    """The form's token must be the session's (synchroniser token pattern)."""
    if not token or not hmac.compare_digest(token.encode(), viewer.csrf_token.encode()):
        raise BadCsrf("the form's security token is missing or out of date: reload the page")


Csrf = Annotated[str, Form(max_length=200)]


def write_page(page: ReadPage, csrf_token: Csrf = "") -> Page:
    """A write by a role that may write, with the session's CSRF token."""
    check_csrf(page.viewer, csrf_token)
    if not page.role.can_write:
        raise Forbidden(f"the {page.role.value} role reads only")
    return page


def owner_page(page: ReadPage, csrf_token: Csrf = "") -> Page:
    """A write only owners may make (API keys), with the session's CSRF token."""
    check_csrf(page.viewer, csrf_token)
    if not page.role.can_manage:
        raise Forbidden("only an owner of the programme may do this")
    return page


WritePage = Annotated[Page, Depends(write_page)]
OwnerPage = Annotated[Page, Depends(owner_page)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def secure(request: Request) -> bool:
    """Cookies are Secure when the request came over https."""
    return request.url.scheme == "https"
