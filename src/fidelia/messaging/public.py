"""The pages a member reaches from a message, through signed links and without a key:
unsubscribe (``GET`` shows, ``POST`` records; RFC 8058 one-click POSTs too), the open pixel,
the click redirect (only to a link of the rendered message), the survey, and the SMS
gateway's delivery reports. Links that write on ``GET`` (pixel, click, rating) open their own
write transaction: the API's session of a ``GET`` is read-only."""

from __future__ import annotations

import base64
import html
import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from fidelia.auth.dependencies import DbSession, get_database
from fidelia.errors import FideliaError, NotFound
from fidelia.kit.clock import utcnow
from fidelia.members import service as members
from fidelia.messaging import log, service, surveys, tracking
from fidelia.models import Member, Programme
from fidelia.models.messaging import Message

public = APIRouter(include_in_schema=False)
reports = APIRouter(include_in_schema=False)
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
BOTH = "Merci / Thank you"


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    page = (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width">'
        f"<title>{html.escape(title)}</title></head><body><main><h1>{html.escape(title)}</h1>"
        f"{body}</main></body></html>"
    )
    return HTMLResponse(page, status_code=status_code)


def _error(exc: FideliaError) -> HTMLResponse:
    body = f"<p>{html.escape(exc.detail)}</p>"
    return _page("Lien invalide / Invalid link", body, exc.status_code)


@public.get("/unsubscribe/{token}")
def unsubscribe_page(token: str, session: DbSession) -> HTMLResponse:
    try:
        message, _ = tracking.open_token(session, token, "u")
    except NotFound as exc:
        return _error(exc)
    action = html.escape(f"/unsubscribe/{token}")
    form = (
        f"<p>Ne plus recevoir nos messages ({html.escape(message.channel or '')}) ? / "
        "Stop receiving our messages?</p>"
        f'<form method="post" action="{action}"><button type="submit">'
        "Me désinscrire / Unsubscribe</button></form>"
    )
    return _page("Désinscription / Unsubscribe", form + _centre_link(session, message, token))


def _centre_link(session: Session, message: Message, token: str) -> str:
    """A link to the member portal's preference centre, which the same token opens (every
    channel's consent, not only this message's), in the programme's own portal."""
    programme = session.get(Programme, message.programme_id)
    if programme is None:
        return ""
    href = html.escape(f"/portal/{programme.slug}/consents/{token}")
    return f'<p><a href="{href}">Gérer toutes mes préférences / Manage all my preferences</a></p>'


@public.post("/unsubscribe/{token}")
def unsubscribe(token: str, session: DbSession) -> HTMLResponse:
    """Withdraw the consent of the message's channel, through the members service (history)."""
    try:
        message, _ = tracking.open_token(session, token, "u")
    except NotFound as exc:
        return _error(exc)
    programme = session.get(Programme, message.programme_id)
    member = session.get(Member, message.member_id)
    section = service.section_for(session, programme) if programme else None
    channel = service.consent_needed(section, message.channel or "") if section else None
    if programme is None or member is None or channel is None:
        return _error(NotFound("nothing to unsubscribe from"))
    now = utcnow()
    members.set_consent(
        session, programme=programme, member=member, channel=channel, granted=False, at=now,
        source=f"unsubscribe:{message.id}",
    )  # fmt: skip
    log.add(session, message, "unsubscribed", now, channel)
    done = "<p>C'est fait. / Done.</p>" + _centre_link(session, message, token)
    return _page("Désinscription / Unsubscribe", done)


@public.get("/t/o/{token}")
def open_pixel(token: str, request: Request) -> Response:
    try:
        with get_database(request).transaction() as session:
            tracking.record_open(session, token, utcnow())
    except NotFound:
        pass  # a pixel answers the same either way
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


@public.get("/t/c/{token}", response_model=None)
def click(token: str, request: Request) -> RedirectResponse | HTMLResponse:
    try:
        with get_database(request).transaction() as session:
            url = tracking.record_click(session, token, utcnow())
    except NotFound as exc:
        return _error(exc)
    return RedirectResponse(url, status_code=302)


def _ingest(request: Request) -> surveys.Ingest:
    ingest: surveys.Ingest = request.app.state.messaging_ingest
    return ingest


def _comment_form(token: str) -> str:
    action = html.escape(f"/survey/{token}")
    return (
        "<p>Merci ! Un commentaire ? / Thank you! Any comment?</p>"
        f'<form method="post" action="{action}"><textarea name="comment" maxlength="4000">'
        '</textarea><button type="submit">Envoyer / Send</button></form>'
    )


@public.get("/survey/{token}")
def survey_answer(
    token: str, request: Request, score: Annotated[int, Query(ge=0, le=10)]
) -> HTMLResponse:
    try:
        with get_database(request).transaction() as session:
            message = surveys.answer(
                session, token=token, score=score, ingest=_ingest(request), now=utcnow()
            )
            with_comment = bool(message.data["survey"].get("comment"))
    except FideliaError as exc:
        return _error(exc)
    if with_comment:
        return _page(BOTH, _comment_form(token))
    return _page(BOTH, "<p>Votre réponse est enregistrée. / Answer recorded.</p>")


@public.post("/survey/{token}")
def survey_comment(
    token: str, request: Request, comment: Annotated[str, Form(max_length=4000)]
) -> HTMLResponse:
    try:
        with get_database(request).transaction() as session:
            surveys.comment(
                session, token=token, text=comment, ingest=_ingest(request), now=utcnow()
            )
    except FideliaError as exc:
        return _error(exc)
    return _page(BOTH, "<p>Commentaire enregistré. / Comment recorded.</p>")


@reports.post("/messaging/reports/{token}")
async def delivery_report(token: str, request: Request) -> dict[str, str]:
    """The SMS gateway's delivery report for one message (the callback URL it was given)."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    return await run_in_threadpool(_report, request, token, body)


def _report(request: Request, token: str, body: Any) -> dict[str, str]:
    with get_database(request).transaction() as session:
        return _record_report(session, token, body)


def _record_report(session: Session, token: str, body: Any) -> dict[str, str]:
    message, _ = tracking.open_token(session, token, "r")
    programme = session.get(Programme, message.programme_id)
    section = service.section_for(session, programme) if programme else None
    config = section.channels.sms if section else None
    if config is None or not isinstance(body, dict):
        raise NotFound("no report expected")
    reported = str(body.get(config.status_field, ""))[:50]
    now = utcnow()
    if reported in config.delivered:
        tracking.advance(session, message, "delivered", now)
    elif reported in config.failed and message.status in ("sent", "delivered"):
        message.status, message.reason = "bounced", f"gateway: {reported}"
        log.add(session, message, "bounced", now, f"gateway: {reported}")
    else:
        log.add(session, message, "report", now, f"gateway: {reported}")
    return {"status": message.status}
