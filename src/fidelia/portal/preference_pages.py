"""Preferences: consents per channel (the preference centre, also reached from an email's
unsubscribe link without signing in), language, the profile fields the programme allows,
"download my data" (the GDPR export of the privacy domain), closing the account; the inbox."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.auth.dependencies import get_database
from fidelia.errors import NotFound
from fidelia.events.schemas import Profile
from fidelia.kit.clock import utcnow
from fidelia.members import service as members
from fidelia.messaging import tracking
from fidelia.models import Consent, Member, Programme
from fidelia.models.messaging import Message
from fidelia.portal import signin
from fidelia.portal.access import (
    LANG_COOKIE,
    SESSION_COOKIE,
    Me,
    MeDep,
    SiteDep,
    WriteMe,
    check_form_token,
    secure,
)
from fidelia.portal.templating import render
from fidelia.privacy.access import export_member

router = APIRouter()
CHANNELS = ("email", "sms", "push", "postal")
Consents = Annotated[list[str] | None, Form()]


def _consents(session: Session, member: Member) -> dict[str, bool]:
    rows = session.execute(
        select(Consent.channel, Consent.granted).where(Consent.member_id == member.id)
    ).all()
    found = {channel: granted for channel, granted in rows}
    return {channel: bool(found.get(channel, False)) for channel in CHANNELS}


def _set_consents(
    session: Session, programme: Programme, member: Member, chosen: set[str], source: str
) -> None:
    """Record the consents that changed (the history keeps each change and its source)."""
    now = utcnow()
    for channel, granted in _consents(session, member).items():
        wanted = channel in chosen
        if wanted != granted:
            members.set_consent(
                session,
                programme=programme,
                member=member,
                channel=channel,
                granted=wanted,
                at=now,
                source=source,
            )


def _page(
    request: Request,
    me: Me,
    *,
    status: int = 200,
    error: str | None = None,
    field: str | None = None,
    done: str | None = None,
) -> HTMLResponse:
    with get_database(request).transaction(readonly=True) as session:
        consents = _consents(session, me.member)
    return render(
        request,
        "preferences.html",
        site=me.site,
        me=me,
        page="preferences",
        consents=consents,
        status=status,
        error=error,
        field=field,
        done=done,
    )


@router.get("/{slug}/preferences", response_class=HTMLResponse)
def preferences(
    request: Request, me: MeDep, done: Annotated[str | None, Query(max_length=32)] = None
) -> HTMLResponse:
    return _page(request, me, done=done)


@router.post("/{slug}/preferences/consents")
def consents(request: Request, me: WriteMe, consents: Consents = None) -> Response:
    with get_database(request).transaction() as session:
        member = members.get(session, programme=me.programme, member_id=me.member.id)
        _set_consents(session, me.programme, member, set(consents or []), "portal")
    return RedirectResponse(f"{me.site.base}/preferences?done=consents", status_code=303)


@router.post("/{slug}/preferences/profile", response_class=HTMLResponse)
def profile(
    request: Request,
    me: WriteMe,
    first_name: Annotated[str, Form(max_length=100)] = "",
    last_name: Annotated[str, Form(max_length=100)] = "",
    birth_date: Annotated[str, Form(max_length=10)] = "",
    postal_code: Annotated[str, Form(max_length=16)] = "",
    locale: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """The fields the programme's portal section allows, and the language."""
    given = {
        "first_name": first_name,
        "last_name": last_name,
        "birth_date": birth_date,
        "postal_code": postal_code,
    }
    allowed = set(me.site.section.profile_fields)
    changes: dict[str, object] = {k: (v.strip() or None) for k, v in given.items() if k in allowed}
    if locale in ("fr", "en"):
        changes["locale"] = locale
    try:
        if changes.get("birth_date"):
            born = date.fromisoformat(str(changes["birth_date"]))
            if born >= utcnow().date():
                raise ValueError("in the future")
        data = Profile.model_validate(changes)
    except (ValueError, ValidationError):
        return _page(
            request,
            me,
            status=422,
            field="birth_date",
            error=me.fmt.gettext("The birth date is not a valid date."),
        )
    with get_database(request).transaction() as session:
        member = members.get(session, programme=me.programme, member_id=me.member.id)
        members.update_profile(session, member=member, profile=data)
    response = RedirectResponse(f"{me.site.base}/preferences?done=profile", status_code=303)
    if locale in ("fr", "en"):
        response.set_cookie(
            LANG_COOKIE,
            locale,
            samesite="lax",
            secure=secure(request),
            path=me.site.base,
            max_age=365 * 86400,
        )
    return response


@router.get("/{slug}/preferences/my-data.json")
def my_data(request: Request, me: MeDep) -> Response:
    """Everything held about the signed-in member (the privacy domain's export)."""
    with get_database(request).transaction(readonly=True) as session:
        data = export_member(session, programme=me.programme, member_id=me.member.id)
    body = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    name = f"{me.programme.slug}-my-data.json"
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/{slug}/preferences/close", response_class=HTMLResponse)
def close(
    request: Request, me: WriteMe, confirm: Annotated[str, Form(max_length=8)] = ""
) -> Response:
    """Close the account at the member's request (the status history keeps who and why) and
    end their portal sessions. Points and vouchers are lost, which the page says first."""
    if confirm != "yes":
        return _page(
            request,
            me,
            status=422,
            field="confirm",
            error=me.fmt.gettext("Tick the box to confirm that you want to close your account."),
        )
    now = utcnow()
    with get_database(request).transaction() as session:
        member = members.get_for_update(session, programme=me.programme, member_id=me.member.id)
        members.set_status(
            session,
            member=member,
            status="closed",
            actor="member:portal",
            reason="member request (portal)",
        )
        signin.end_all(session, member_id=member.id, now=now)
    response = RedirectResponse(f"{me.site.base}/sign-in?closed=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=me.site.base)
    return response


@router.get("/{slug}/inbox", response_class=HTMLResponse)
def inbox(request: Request, me: MeDep) -> HTMLResponse:
    with get_database(request).transaction(readonly=True) as session:
        messages = list(
            session.scalars(
                select(Message)
                .where(
                    Message.programme_id == me.programme.id,
                    Message.member_id == me.member.id,
                    Message.channel == "inbox",
                    Message.sent_at.is_not(None),
                )
                .order_by(Message.sent_at.desc())
                .limit(50)
            )
        )
    return render(request, "inbox.html", site=me.site, me=me, page="inbox", messages=messages)


@router.post("/{slug}/inbox/{message_id}/read")
def read(request: Request, me: WriteMe, message_id: uuid.UUID) -> Response:
    with get_database(request).transaction() as session:
        message = session.get(Message, message_id)
        if message is None or message.member_id != me.member.id or message.channel != "inbox":
            raise NotFound("this message is not in your inbox")
        if message.read_at is None:
            now = utcnow()
            message.read_at = now
            tracking.advance(session, message, "opened", now)
    return RedirectResponse(f"{me.site.base}/inbox", status_code=303)


def _by_token(session: Session, programme: Programme, token: str) -> Member:
    try:
        message, _ = tracking.open_token(session, token[:500], "u")
    except NotFound:
        raise NotFound("this link is unknown or out of date") from None
    member = session.get(Member, message.member_id)
    if member is None or message.programme_id != programme.id:
        raise NotFound("this link is unknown or out of date")
    return member


@router.get("/{slug}/consents/{token}", response_class=HTMLResponse)
def centre(
    request: Request,
    site: SiteDep,
    token: str,
    done: Annotated[str | None, Query(max_length=8)] = None,
) -> HTMLResponse:
    """The preference centre an email's unsubscribe link opens: the consents only, no sign-in
    (the signed token names the message, hence the member)."""
    with get_database(request).transaction(readonly=True) as session:
        member = _by_token(session, site.programme, token)
        current = _consents(session, member)
    return render(request, "centre.html", site=site, consents=current, token=token, done=done)


@router.post("/{slug}/consents/{token}")
def centre_save(
    request: Request,
    site: SiteDep,
    token: str,
    consents: Consents = None,
    form_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_form_token(request, form_token)
    with get_database(request).transaction() as session:
        member = _by_token(session, site.programme, token)
        _set_consents(session, site.programme, member, set(consents or []), "portal:unsubscribe")
    return RedirectResponse(f"{site.base}/consents/{token}?done=1", status_code=303)
