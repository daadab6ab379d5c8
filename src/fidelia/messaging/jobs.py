"""Delivery in the worker: ``messaging.deliver`` jobs, one per message, run after commit.

The handler locks the member (so contact pressure and the content key are judged one message
at a time per member), then: an expired message is ``expired``; a marketing message whose
consent was withdrawn since it was queued is ``not_sent``; one that contact pressure holds
back is ``deferred`` with a new job at its slot (unless that slot is past its expiry); else the
channel's adapter sends it. A transient failure is retried with exponential backoff
(``messaging.retry``) by a new job; the last failure, or a permanent one, marks it ``failed``
with the provider's answer. The handler never raises for a provider's failure, so the outcome
is written with the job (a message is never lost in a dead job).

A crash between the provider's acceptance and the commit sends the message again on the next
run: delivery is at least once, as with any SMTP client.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.messaging import log, pressure, tracking
from fidelia.messaging.channels import ADAPTERS, Outgoing, Permanent, Sent, Transient
from fidelia.messaging.rendering import public_url
from fidelia.messaging.schemas import MessagingSection
from fidelia.messaging.service import (
    DELIVER_JOB,
    _content_used,
    consent_needed,
    consents,
    section_for,
)
from fidelia.models import Job, Member, Programme
from fidelia.models.messaging import Message


@jobs.handler(DELIVER_JOB)
def run_deliver(session: Session, job: Job) -> None:
    deliver(
        session,
        message_id=uuid.UUID(job.payload["message_id"]),
        now=max(utcnow(), job.due_at),
    )


def deliver(session: Session, *, message_id: uuid.UUID, now: datetime) -> Message | None:
    """Deliver one queued (or deferred) message now, or defer, retry or close it."""
    found = session.get(Message, message_id)
    if found is None:
        return None
    member = session.get(Member, found.member_id, with_for_update=True)
    message = session.get(Message, message_id, with_for_update=True, populate_existing=True)
    programme = session.get(Programme, found.programme_id)
    if message is None or member is None or programme is None:
        return None
    if message.status not in ("queued", "deferred") or message.due_at > now:
        return message  # done already, or a stale job of a rescheduled message
    section = section_for(session, programme)
    if message.expires_at is not None and message.expires_at <= now:
        return _close(session, message, "expired", "expired before it could be sent", now)
    if section is None or getattr(section.channels, message.channel or "", None) is None:
        return _close(
            session, message, "failed", f"channel {message.channel} is not configured", now
        )
    if message.kind == "marketing":
        needed = consent_needed(section, message.channel or "")
        if needed and not consents(session, member).get(needed, False):
            return _close(session, message, "not_sent", f"{needed} consent withdrawn", now)
        slot = pressure.next_slot(
            session,
            rules=section.pressure,
            tz=ZoneInfo(programme.timezone),
            member_id=member.id,
            channel=message.channel or "",
            at=now,
        )
        if slot > now:
            return _defer(session, message, slot, now)
    if message.content_key is not None and _content_used_by_sent(session, message):
        return _close(session, message, "not_sent", "same content already sent", now)
    return _send(session, section, message, now)


def _content_used_by_sent(session: Session, message: Message) -> bool:
    return _content_used(session, message)


def _close(session: Session, message: Message, status: str, reason: str, now: datetime) -> Message:
    message.status, message.reason = status, reason
    log.add(session, message, status, now, reason)
    return message


def _defer(session: Session, message: Message, slot: datetime, now: datetime) -> Message:
    if message.expires_at is not None and slot >= message.expires_at:
        return _close(session, message, "expired", f"contact pressure held it past {slot}", now)
    message.status, message.due_at = "deferred", slot
    log.add(session, message, "deferred", now, f"contact pressure: next slot {slot.isoformat()}")
    _schedule(session, message, slot)
    return message


def _schedule(session: Session, message: Message, due: datetime) -> None:
    jobs.enqueue(
        session,
        kind=DELIVER_JOB,
        payload={"message_id": str(message.id)},
        due_at=due,
        programme_id=message.programme_id,
    )


def outgoing(session: Session, section: MessagingSection, message: Message) -> Outgoing:
    key = tracking.key_for(session, message.programme_id)
    assert key is not None
    base = public_url(section)
    unsubscribe = None
    if message.kind == "marketing":
        unsubscribe = f"{base}/unsubscribe/{tracking.sign(key, message.id, 'u')}"
    return Outgoing(
        message_id=message.id,
        member_id=message.member_id,
        to=message.recipient or "",
        subject=message.subject,
        text=message.body_text,
        html=message.body_html,
        sms=message.body_text if message.channel == "sms" else None,
        kind=message.kind,
        unsubscribe_url=unsubscribe,
        callback_url=f"{base}/api/v1/messaging/reports/{tracking.sign(key, message.id, 'r')}",
        data=message.data.get("event", {}),
    )


def _send(session: Session, section: MessagingSection, message: Message, now: datetime) -> Message:
    channel = message.channel or ""
    adapter = ADAPTERS[channel]
    message.attempts += 1
    try:
        sent: Sent = adapter.send(
            getattr(section.channels, channel), outgoing(session, section, message)
        )
    except Transient as exc:
        if message.attempts < section.retry.max_attempts:
            due = now + jobs.backoff(message.attempts, section.retry.backoff_seconds)
            message.status, message.due_at, message.reason = "queued", due, exc.answer
            log.add(session, message, "retry", now, exc.answer)
            _schedule(session, message, due)
            return message
        return _close(session, message, "failed", exc.answer, now)
    except Permanent as exc:
        return _close(session, message, "failed", exc.answer, now)
    message.status, message.sent_at, message.reason = "sent", now, None
    message.provider_id = sent.provider_id
    log.add(session, message, "sent", now, sent.answer)
    if sent.delivered:
        tracking.advance(session, message, "delivered", now)
    return message
