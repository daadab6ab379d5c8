"""Messaging API: send one message, preview a template, the delivery log, the member's inbox.

The public pages (unsubscribe, open pixel, click redirect, survey, the SMS gateway's delivery
reports) are reached through signed links, with no key; they are left out of the OpenAPI
document (:mod:`fidelia.messaging.public`).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, status
from sqlalchemy import select

from fidelia.auth.dependencies import Admin, DbSession, Integrator, Reader
from fidelia.errors import ERROR_RESPONSES, NotFound, ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.kit.pagination import Page, decode_cursor, encode_cursor
from fidelia.members import service as members
from fidelia.messaging import bounced, bounces, service, tracking
from fidelia.messaging.context import context_for
from fidelia.messaging.rendering import pick_locale, public_url, render_content, survey_context
from fidelia.messaging.schemas import (
    BouncedAddressOut,
    BouncesOut,
    InboxItem,
    LogOut,
    MessageDetail,
    MessageOut,
    PreviewIn,
    PreviewOut,
    SendIn,
    Status,
)
from fidelia.messaging.surveys import Ingest
from fidelia.models.messaging import Message, MessageLog

router = APIRouter(tags=["messaging"], responses=ERROR_RESPONSES)
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=200)]


def install(app: FastAPI, *, prefix: str, ingest: Ingest) -> None:
    """Mount the messaging API under ``prefix`` and the public pages at the root; ``ingest``
    records survey answers as events (the intake's, passed in: it sits above messaging)."""
    from fidelia.messaging.public import public, reports

    app.state.messaging_ingest = ingest
    app.include_router(router, prefix=prefix)
    app.include_router(reports, prefix=prefix)
    app.include_router(public)


@router.post(
    "/messages",
    response_model=MessageOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send one message to a member",
)
def send_message(body: SendIn, principal: Integrator, session: DbSession) -> MessageOut:
    """Queue one message for a member: a template of the programme document or inline content
    per locale, rendered in the member's locale for the first channel of `channels` (default:
    the document's `fallback`) that reaches them (an address, and for `marketing` the
    consent). It is sent after this request commits, by the worker; contact pressure may
    defer a marketing message to its next allowed slot (status `deferred`). A member no
    channel reaches gets a message `not_sent` with the reason; so does a second message with a
    `content_key` already used for the member. A retry with the same `idempotency_key` answers
    the first message and sends nothing.

    404: no such member. 422: an unknown template, a channel that is not configured, a template
    that fails for this member; `fields` gives the path. Nothing is written then.

    Scope: `integration`.
    """
    programme = principal.programme
    member = members.lookup(session, programme=programme, ref=body.member, loc=("member",))
    request = service.Request(
        member=member,
        template=body.template,
        content=body.content,
        channels=list(body.channels),
        kind=body.kind,
        content_key=body.content_key,
        event=body.event,
        expires_at=body.expires_at,
        idempotency_key=body.idempotency_key,
        source=f"api-key:{principal.key_id}",
    )
    message = service.queue(session, programme=programme, request=request, now=utcnow())
    return MessageOut.model_validate(message)


@router.get("/messages/preview", include_in_schema=False)
def preview_is_posted() -> None:
    """``GET /messages/preview`` would otherwise be read as the message whose id is 'preview'."""
    raise HTTPException(status.HTTP_405_METHOD_NOT_ALLOWED, headers={"Allow": "POST"})


@router.post("/messages/preview", response_model=PreviewOut, summary="Render a template")
def preview_message(body: PreviewIn, principal: Reader, session: DbSession) -> PreviewOut:
    """Render a template (or inline content) for a chosen member and channel, in the member's
    locale, with their profile, traits, wallets, tier and the `event` given. Nothing is written
    and nothing is sent; links are shown as they will be, without tracking.

    404: no such member. 422: an unknown template or channel, a template that does not compile,
    names an unknown variable or fails for this member.

    Scope: `read`.
    """
    programme = principal.programme
    section = service.require_section(session, programme)
    member = members.get(session, programme=programme, member_id=body.member_id)
    locales, survey, _ = service.resolve_content(section, body.template, body.content)
    locale = pick_locale(locales, member.locale, programme.locale)
    base = public_url(section)
    context = context_for(
        session, programme=programme, member=member, event=body.event, now=utcnow(), public_url=base
    )
    context["links"] = {"unsubscribe": f"{base}/unsubscribe/preview"}
    if survey is not None:
        context["survey"] = survey_context(b"preview", uuid.UUID(int=0), survey, locale, base)
    out = render_content(locales[locale], body.channel, context)
    return PreviewOut(
        channel=body.channel,
        locale=locale,
        subject=out.get("subject"),
        text=out.get("text"),
        html=out.get("html"),
        sms=out.get("sms"),
    )


@router.get("/messages", response_model=Page[MessageOut], summary="The delivery log")
def list_messages(
    principal: Reader,
    session: DbSession,
    member_id: uuid.UUID | None = None,
    status: Status | None = None,
    channel: Annotated[str | None, Query(max_length=16)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[MessageOut]:
    """Messages, newest first, with their current status (queued, deferred, sent, delivered,
    opened, clicked, bounced, failed with the reason, not_sent, expired); filter by member,
    status and channel. Pass `next_cursor` back as `cursor` for the next page.

    422: a malformed cursor.

    Scope: `read`.
    """
    query = select(Message).where(Message.programme_id == principal.programme.id)
    if member_id is not None:
        query = query.where(Message.member_id == member_id)
    if status is not None:
        query = query.where(Message.status == status)
    if channel is not None:
        query = query.where(Message.channel == channel)
    if cursor is not None:
        query = query.where(Message.id < _cursor_id(cursor))
    rows = list(session.scalars(query.order_by(Message.id.desc()).limit(limit + 1)))
    items = [MessageOut.model_validate(m) for m in rows[:limit]]
    more = encode_cursor([str(rows[limit - 1].id)]) if len(rows) > limit else None
    return Page[MessageOut](items=items, next_cursor=more)


def _cursor_id(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(decode_cursor(cursor)[0]))
    except (ValueError, IndexError) as exc:
        raise ValidationFailed.on(("query", "cursor"), "malformed cursor") from exc


@router.get("/messages/{message_id}", response_model=MessageDetail, summary="One message")
def get_message(message_id: uuid.UUID, principal: Reader, session: DbSession) -> MessageDetail:
    """One message with its rendered body and its delivery log, oldest step first (each retry
    with the provider's answer).

    404: no such message.

    Scope: `read`.
    """
    message = service.get(session, programme=principal.programme, message_id=message_id)
    steps = session.scalars(
        select(MessageLog)
        .where(MessageLog.message_id == message.id)
        .order_by(MessageLog.at, MessageLog.id)
    )
    base = MessageOut.model_validate(message).model_dump()
    return MessageDetail(
        **base,
        body_text=message.body_text,
        body_html=message.body_html,
        log=[LogOut.model_validate(s) for s in steps],
    )


def _inbox_item(m: Message) -> InboxItem:
    return InboxItem(
        id=m.id, subject=m.subject, text=m.body_text, sent_at=m.sent_at, read_at=m.read_at
    )


@router.get("/members/{member_id}/inbox", response_model=Page[InboxItem], summary="The inbox")
def member_inbox(
    member_id: uuid.UUID,
    principal: Reader,
    session: DbSession,
    unread: bool = False,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[InboxItem]:
    """The member's in-app messages, newest first (`unread=true`: those not read yet).

    404: no such member. 422: a malformed cursor.

    Scope: `read`.
    """
    member = members.get(session, programme=principal.programme, member_id=member_id)
    query = select(Message).where(
        Message.member_id == member.id, Message.channel == "inbox", Message.sent_at.is_not(None)
    )
    if unread:
        query = query.where(Message.read_at.is_(None))
    if cursor is not None:
        query = query.where(Message.id < _cursor_id(cursor))
    rows = list(session.scalars(query.order_by(Message.id.desc()).limit(limit + 1)))
    more = encode_cursor([str(rows[limit - 1].id)]) if len(rows) > limit else None
    return Page[InboxItem](items=[_inbox_item(m) for m in rows[:limit]], next_cursor=more)


@router.post(
    "/members/{member_id}/inbox/{message_id}/read",
    response_model=InboxItem,
    summary="Mark an inbox message read",
)
def read_inbox_message(
    member_id: uuid.UUID, message_id: uuid.UUID, principal: Integrator, session: DbSession
) -> InboxItem:
    """Mark one of the member's inbox messages read (it also counts as opened). Marking it
    again changes nothing.

    404: no such member, or no such inbox message of theirs.

    Scope: `integration`.
    """
    member = members.get(session, programme=principal.programme, member_id=member_id)
    message = session.get(Message, message_id)
    if (
        message is None
        or message.member_id != member.id
        or message.channel != "inbox"
        or message.sent_at is None
    ):
        raise NotFound(f"message {message_id} is not in this member's inbox")
    if message.read_at is None:
        now = utcnow()
        message.read_at = now
        tracking.advance(session, message, "opened", now)
    return _inbox_item(message)


MAX_DSN_BYTES = 1_000_000


async def _raw_dsn(request: Request) -> bytes:
    raw = await request.body()
    if len(raw) > MAX_DSN_BYTES:
        raise ValidationFailed.on("dsn", f"larger than {MAX_DSN_BYTES} bytes")
    return raw


@router.post("/messaging/bounces", response_model=BouncesOut, summary="Hand in a bounce (DSN)")
def post_bounce(
    raw: Annotated[bytes, Depends(_raw_dsn)], principal: Integrator, session: DbSession
) -> BouncesOut:
    """Hand in one raw delivery status notification (RFC 3464 `multipart/report;
    report-type=delivery-status`, sent as the request body, e.g. `Content-Type:
    message/rfc822`), as the mail server that received it (or a provider's bounce hook)
    forwards it. The DSN is matched to its message by the signed VERP token of its return
    address (`bounces+<token>@domain`, see `channels.email.bounce_address`), else by the
    `X-Fidelia-Message` header of the returned headers, among this programme's messages only.

    A hard bounce (`Action: failed`, `Status: 5.x.x`) marks the message `bounced` with the
    status and diagnostic, makes the address unreachable for every later message and writes a
    `message.bounced` notice; a soft one (`4.x.x`) queues the message again with the retry
    backoff; `delayed` is logged.

    Example body (abridged):

        To: bounces+AZL3...b.Qm9v...@shop.example.org
        Content-Type: multipart/report; report-type=delivery-status; boundary="b"

        --b
        Content-Type: message/delivery-status

        Reporting-MTA: dns; mx.example.org

        Final-Recipient: rfc822; ana@example.org
        Action: failed
        Status: 5.1.1
        Diagnostic-Code: smtp; 550 5.1.1 user unknown
        --b--

    422: not a DSN, or no recipient block (`fields`: `dsn`); nothing is written then.

    Scope: `integration`.
    """
    programme = principal.programme
    counts = bounces.record_raw(
        session,
        programme=programme,
        section=service.section_for(session, programme),
        raw=raw,
        now=utcnow(),
    )
    return BouncesOut(**counts)


@router.get(
    "/messaging/bounced-addresses",
    response_model=Page[BouncedAddressOut],
    summary="The bounced addresses",
)
def list_bounced_addresses(
    principal: Admin,
    session: DbSession,
    address: Annotated[str | None, Query(max_length=320)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[BouncedAddressOut]:
    """The addresses a hard bounce proved dead (no message goes to them), in address order,
    with the bounce's reason and message; `address` keeps those containing it
    (case-insensitive). Pass `next_cursor` back as `cursor` for the next page.

    422: a malformed cursor.

    Scope: `admin`.
    """
    after = None
    if cursor is not None:
        try:
            after = str(decode_cursor(cursor)[0])
        except (ValueError, IndexError) as exc:
            raise ValidationFailed.on(("query", "cursor"), "malformed cursor") from exc
    rows, more = bounced.list_bounced(
        session, programme=principal.programme, address=address, after=after, limit=limit
    )
    return Page[BouncedAddressOut](
        items=[BouncedAddressOut.model_validate(r) for r in rows],
        next_cursor=encode_cursor([more]) if more is not None else None,
    )


@router.delete(
    "/messaging/bounced-addresses/{address}",
    response_model=BouncedAddressOut,
    summary="Clear a bounced address",
)
def clear_bounced_address(
    address: Annotated[str, Path(max_length=320)], principal: Admin, session: DbSession
) -> BouncedAddressOut:
    """Remove an address from the bounced addresses (the mailbox works again): later messages
    may be sent to it. The messages that bounced keep their status. Answers the row as it
    was; the change is in the audit log.

    404: the address is not a bounced address of this programme.

    Scope: `admin`.
    """
    found = bounced.clear(session, programme=principal.programme, address=address)
    return BouncedAddressOut.model_validate(found)
