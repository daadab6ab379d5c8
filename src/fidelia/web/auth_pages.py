"""Signing in and out, password reset by email, the reader's language."""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fidelia.auth.dependencies import get_database
from fidelia.errors import ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.users import resets, sessions
from fidelia.users import service as users
from fidelia.web.access import (
    BASE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    BadCsrf,
    Csrf,
    ViewerDep,
    anonymous_formatter,
    check_csrf,
    client_ip,
    secure,
)
from fidelia.web.templating import render

router = APIRouter()
log = logging.getLogger(__name__)
Email = Annotated[str, Form(max_length=320)]
Password = Annotated[str, Form(max_length=200)]
LoginToken = Annotated[str, Form(max_length=200)]


def _anonymous_form(
    request: Request, template: str, status: int = 200, **context: object
) -> HTMLResponse:
    """A form shown before sign-in, with a double-submit token (cookie and hidden field)."""
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        template,
        fmt=anonymous_formatter(request),
        status=status,
        login_token=token,
        **context,
    )
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=secure(request), path=BASE
    )
    return response


def _check_login_token(request: Request, token: str) -> None:
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not token or not cookie or not hmac.compare_digest(token.encode(), cookie.encode()):
        raise BadCsrf("the form's security token is missing or out of date: reload the page")


def _safe_next(target: str | None) -> str:
    """Only a path of the back-office itself (no open redirect)."""
    if target and target.startswith(f"{BASE}/") and not target.startswith("//"):
        return target
    return f"{BASE}/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return _anonymous_form(request, "login.html", next=_safe_next(next), error=None, email="")


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    email: Email = "",
    password: Password = "",
    login_token: LoginToken = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    _check_login_token(request, login_token)
    with get_database(request).transaction() as session:
        outcome = sessions.sign_in(
            session, email=email, password=password, ip=client_ip(request), now=utcnow()
        )
    if outcome.token is None:
        status = 429 if outcome.error == "throttled" else 401
        return _anonymous_form(
            request, "login.html", status, next=_safe_next(next), error=outcome.error, email=email
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        outcome.token,
        httponly=True,
        samesite="lax",
        secure=secure(request),
        path=BASE,
    )
    return response


@router.post("/logout")
def logout(request: Request, viewer: ViewerDep, csrf_token: Csrf = "") -> Response:
    check_csrf(viewer, csrf_token)
    with get_database(request).transaction() as session:
        sessions.sign_out(session, token=request.cookies.get(SESSION_COOKIE), now=utcnow())
    response = RedirectResponse(f"{BASE}/login?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=BASE)
    return response


@router.get("/reset", response_class=HTMLResponse)
def reset_request_form(request: Request) -> HTMLResponse:
    return _anonymous_form(request, "reset_request.html", sent=False)


@router.post("/reset", response_class=HTMLResponse)
def reset_request(
    request: Request, email: Email = "", login_token: LoginToken = ""
) -> HTMLResponse:
    _check_login_token(request, login_token)
    fmt = anonymous_formatter(request)
    with get_database(request).transaction() as session:
        token = resets.request_reset(session, email=email, now=utcnow())
    if token is not None:
        link = f"{request.app.state.public_url.rstrip('/')}{BASE}/reset/{token}"
        try:
            resets.send_reset_email(
                to=email.strip().lower(),
                link=link,
                subject=fmt.gettext("Reset your Fidelia password"),
                body=fmt.gettext("Open this link within the hour to choose a new password:"),
            )
        except OSError:
            log.exception("the password reset email could not be sent")
    return _anonymous_form(request, "reset_request.html", sent=True)


@router.get("/reset/{token}", response_class=HTMLResponse)
def reset_form(request: Request, token: str) -> HTMLResponse:
    with get_database(request).transaction(readonly=True) as session:
        user = resets.token_user(session, token=token, now=utcnow())
    return _anonymous_form(
        request,
        "reset_form.html",
        200 if user else 404,
        token=token,
        valid=user is not None,
        error=None,
    )


@router.post("/reset/{token}", response_class=HTMLResponse)
def reset(
    request: Request,
    token: str,
    password: Password = "",
    password_again: Password = "",
    login_token: LoginToken = "",
) -> Response:
    _check_login_token(request, login_token)
    error = None
    if password != password_again:
        error = "The two passwords differ."
    else:
        try:
            with get_database(request).transaction() as session:
                resets.complete_reset(session, token=token, password=password, now=utcnow())
        except ValidationFailed as exc:
            error = exc.fields[0].msg if exc.fields else exc.detail
    if error is not None:
        return _anonymous_form(
            request, "reset_form.html", 422, token=token, valid=True, error=error
        )
    return RedirectResponse(f"{BASE}/login?reset=1", status_code=303)


@router.post("/locale")
def choose_locale(
    request: Request,
    viewer: ViewerDep,
    csrf_token: Csrf = "",
    locale: Annotated[str, Form(max_length=8)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    check_csrf(viewer, csrf_token)
    with get_database(request).transaction() as session:
        user = users.get_user(session, user_id=viewer.user.id)
        users.set_locale(session, user=user, locale=locale or None)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, viewer: ViewerDep) -> Response:
    if viewer.programmes:
        first = viewer.programmes[0][0]
        return RedirectResponse(f"{BASE}/p/{first.slug}/", status_code=303)
    return render(request, "no_programme.html", fmt=anonymous_formatter(request), viewer=viewer)
