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

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy.orm import Session

from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.messaging import bounces, log, readiness, tracking
from fidelia.messaging.channels import ADAPTERS, Outgoing, Permanent, Sent, Transient
from fidelia.messaging.rendering import public_url
from fidelia.messaging.schemas import MessagingSection
from fidelia.messaging.service import DELIVER_JOB, section_for
from fidelia.models import Job, Member, Programme
from fidelia.models.messaging import Message

_LOCAL = threading.local()


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
    if found.channel == "email" and getattr(_LOCAL, "batched", False):
        return found  # the worker's batched delivery sends it (and retries it)
    member = session.get(Member, found.member_id, with_for_update=True)
    message = session.get(Message, message_id, with_for_update=True, populate_existing=True)
    programme = session.get(Programme, found.programme_id)
    if message is None or member is None or programme is None:
        return None
    if message.status not in ("queued", "deferred") or message.due_at > now:
        return message  # done already, or a stale job of a rescheduled message
    section = section_for(session, programme)
    if ready(session, section, programme, member, message, now) is None:
        return message
    assert section is not None
    return _send(session, section, message, now)


def ready(
    session: Session,
    section: MessagingSection | None,
    programme: Programme,
    member: Member,
    message: Message,
    now: datetime,
) -> MessagingSection | None:
    """The section to send ``message`` with now; else None, the message closed (expired,
    failed, not_sent) or deferred. The caller holds the member's and the message's locks.
    (The checks of :mod:`fidelia.messaging.readiness`, for one message.)"""
    assert member.id == message.member_id
    facts = readiness.read_facts(session, [message], {programme.id: section}, now)
    return readiness.judge(session, section, programme, message, facts, now)


_close = readiness.close
_schedule = readiness.schedule


@contextmanager
def left_to_batches() -> Iterator[None]:
    """Within this block (a worker's thread that also runs batched email delivery), a
    ``messaging.deliver`` job of an email message leaves it to the batch (see
    :func:`fidelia.messaging.batch.pump`) instead of sending it alone."""
    _LOCAL.batched = True
    try:
        yield
    finally:
        _LOCAL.batched = False


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
        return_path=bounces.return_path(section, key, message),
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
