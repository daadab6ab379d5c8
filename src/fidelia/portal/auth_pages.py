"""Signing in with a one-time code, joining the programme, signing out, the language."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.background import BackgroundTask

from fidelia.auth.dependencies import get_database
from fidelia.errors import Conflict, FideliaError, ValidationFailed
from fidelia.intake import enrolment
from fidelia.kit.clock import utcnow
from fidelia.members.schemas import ConsentIn, MemberCreate
from fidelia.messaging import service as messaging
from fidelia.portal import delivery, signin
from fidelia.portal.access import (
    LANG_COOKIE,
    SESSION_COOKIE,
    Csrf,
    MeDep,
    Site,
    SiteDep,
    check_form_token,
    check_token,
    client_ip,
    secure,
)
from fidelia.portal.templating import render

router = APIRouter()
Identity = Annotated[str, Form(max_length=320)]
FormToken = Annotated[str, Form(max_length=200)]
Short = Annotated[str, Form(max_length=100)]
CONSENTS = ("email", "sms", "push", "postal")


def _field_error(exc: FideliaError) -> str:
    return exc.fields[0].msg if exc.fields else exc.detail


@router.get("/{slug}/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, site: SiteDep) -> HTMLResponse:
    return render(request, "sign_in.html", site=site, identity="", error=None)


def _send(request: Request, site: Site, identity: str, *, status: int = 200) -> HTMLResponse:
    """Ask for a code for ``identity`` and show the code form: the same answer whether or
    not the identity is a member's."""
    try:
        address = signin.address_of(site.programme, identity)
    except ValidationFailed as exc:
        return render(
            request,
            "sign_in.html",
            site=site,
            status=422,
            identity=identity,
            error=site.fmt.gettext(_field_error(exc)),
        )
    database = get_database(request)
    with database.transaction(readonly=True) as session:
        section = messaging.section_for(session, site.programme)
    if address.kind == "phone" and not delivery.sms_available(section):
        return render(
            request,
            "sign_in.html",
            site=site,
            status=422,
            identity=identity,
            error=site.fmt.gettext("Codes cannot be sent by SMS here: use your email."),
        )
    with database.transaction() as session:
        asked = signin.request_code(
            session,
            programme=site.programme,
            address=address,
            ip=client_ip(request),
            now=utcnow(),
        )
    if asked.throttled:
        return render(
            request,
            "sign_in.html",
            site=site,
            status=429,
            identity=identity,
            error=site.fmt.gettext("Too many codes were asked for: wait a few minutes."),
        )
    response = render(request, "code.html", site=site, status=status, identity=identity, error=None)
    if asked.member is not None and asked.code is not None:
        # sent after the answer, so that its time does not tell a member from a stranger
        fmt = site.fmt
        response.background = BackgroundTask(
            delivery.send_code,
            section=section,
            kind=address.kind,
            to=address.value,
            member_id=asked.member.id,
            sender=site.name,
            subject=fmt.gettext("Your {name} sign-in code", name=site.name),
            text=fmt.gettext(
                "Your code is {code}. It is valid for 10 minutes. If you did not ask for it, "
                "ignore this message.",
                code=asked.code,
            ),
        )
    return response


@router.post("/{slug}/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request, site: SiteDep, identity: Identity = "", form_token: FormToken = ""
) -> HTMLResponse:
    check_form_token(request, form_token)
    return _send(request, site, identity)


_ERRORS = {
    "wrong": "This code is wrong: check it and try again.",
    "expired": "This code has expired or was already used: ask for a new one.",
    "throttled": "Too many wrong codes: wait a few minutes, then ask for a new code.",
}


@router.post("/{slug}/code", response_class=HTMLResponse)
def check_code(
    request: Request,
    site: SiteDep,
    identity: Identity = "",
    code: Annotated[str, Form(max_length=20)] = "",
    form_token: FormToken = "",
) -> Response:
    check_form_token(request, form_token)
    try:
        address = signin.address_of(site.programme, identity)
    except ValidationFailed:
        return RedirectResponse(f"{site.base}/sign-in", status_code=303)
    with get_database(request).transaction() as session:
        verified = signin.verify_code(
            session,
            programme=site.programme,
            address=address,
            code=code,
            ip=client_ip(request),
            now=utcnow(),
        )
    if verified.token is None:
        status = 429 if verified.error == "throttled" else 422
        error = site.fmt.gettext(_ERRORS[verified.error or "wrong"])
        return render(
            request, "code.html", site=site, status=status, identity=identity, error=error
        )
    response = RedirectResponse(f"{site.base}/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        verified.token,
        httponly=True,
        samesite="lax",
        secure=secure(request),
        path=site.base,
        max_age=signin.SESSION_DAYS * 86400,
    )
    return response


@router.get("/{slug}/join", response_class=HTMLResponse)
def join_form(request: Request, site: SiteDep) -> HTMLResponse:
    return render(
        request,
        "join.html",
        site=site,
        form={},
        error=None,
        field=None,
        nonce=secrets.token_urlsafe(16),
    )


@router.post("/{slug}/join", response_class=HTMLResponse)
def join(
    request: Request,
    site: SiteDep,
    email: Identity = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    first_name: Short = "",
    last_name: Short = "",
    consents: Annotated[list[str] | None, Form()] = None,
    terms: Annotated[str, Form(max_length=8)] = "",
    nonce: Annotated[str, Form(max_length=64)] = "",
    form_token: FormToken = "",
) -> HTMLResponse:
    """Enrol through the same path as ``POST /members`` (the welcome rules run), then send a
    sign-in code to the email, which proves it is theirs. An email already enrolled gets a
    code too: the page never says who is a member."""
    check_form_token(request, form_token)
    fmt = site.fmt
    form = {
        "email": email,
        "phone": phone,
        "first_name": first_name,
        "last_name": last_name,
        "consents": consents or [],
    }
    chosen = set(consents or [])
    try:
        if not terms:
            raise ValidationFailed.on("terms", "accept the programme's terms to join")
        if not email.strip():
            raise ValidationFailed.on("email", "give your email: your codes are sent there")
        data = MemberCreate(
            email=email,
            phone=phone or None,
            first_name=first_name or None,
            last_name=last_name or None,
            locale=fmt.language,
            channel="web",
            consents=[ConsentIn(channel=c, granted=c in chosen, source="portal") for c in CONSENTS],
        )
        with get_database(request).transaction() as session:
            enrolment.enrol(
                session,
                programme=site.programme,
                data=data,
                actor="portal",
                idempotency_key=f"portal:join:{nonce}" if nonce else None,
            )
    except ValidationError as exc:
        loc = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else ""
        return render(
            request,
            "join.html",
            site=site,
            status=422,
            form=form,
            field=loc,
            error=f"{fmt.gettext(loc)}: {exc.errors()[0]['msg']}",
            nonce=nonce,
        )
    except Conflict:
        pass  # already a member: the same answer, a code to their email
    except FideliaError as exc:
        field = str(exc.fields[0].loc[-1]) if exc.fields else None
        return render(
            request,
            "join.html",
            site=site,
            status=exc.status_code,
            form=form,
            field=field,
            error=fmt.gettext(_field_error(exc)),
            nonce=nonce,
        )
    return _send(request, site, email)


@router.post("/{slug}/sign-out")
def sign_out(request: Request, me: MeDep, csrf_token: Csrf = "") -> Response:
    check_token(me.csrf_token, csrf_token)
    with get_database(request).transaction() as session:
        signin.sign_out(session, token=request.cookies.get(SESSION_COOKIE), now=utcnow())
    response = RedirectResponse(f"{me.site.base}/sign-in?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=me.site.base)
    return response


@router.get("/{slug}/language")
def language(
    request: Request,
    site: SiteDep,
    lang: Annotated[str, Query(max_length=8)] = "",
    back: Annotated[str, Query(max_length=300)] = "",
) -> Response:
    """The reader's language, kept in a cookie (a link, not a form: it changes nothing
    stored; the preferences page stores a signed-in member's language)."""
    target = back if back.startswith(f"{site.base}/") and "//" not in back else f"{site.base}/"
    response = RedirectResponse(target, status_code=303)
    if lang in ("fr", "en"):
        response.set_cookie(
            LANG_COOKIE,
            lang,
            samesite="lax",
            secure=secure(request),
            path=site.base,
            max_age=365 * 86400,
        )
    return response
