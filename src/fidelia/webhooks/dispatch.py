"""Sending webhooks: sequence notices, fan them out to subscriptions, deliver, settle.

One :func:`pump` is a worker's round:

1. :func:`fidelia.notices.sequence` positions the committed notices;
2. :func:`fan_out` turns each active subscription's new notices (after its ``cursor``) into
   ``webhook_deliveries``, under the subscription's row lock (two workers never both fan out);
3. :func:`claim` leases due deliveries (``FOR UPDATE SKIP LOCKED``, committed as ``sending``
   with a lease) that have no earlier unfinished delivery for the same member and
   subscription: a member's notices go out one at a time, in order, even with many workers;
4. the HTTP requests are sent outside any transaction (signed, ``Fidelia-Delivery-Id``);
5. :func:`settle` records the answers: delivered, or due again after an exponential backoff
   (jittered, capped at 6 hours), or failed once the first attempt is older than the retry
   window (72 hours): the subscription is then paused and a ``webhook.paused`` notice written.

A worker that dies mid-send leaves a lease that expires; the delivery is sent again with the
same id (receivers deduplicate on it).
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.kit.bulk import insert_rows
from fidelia.kit.clock import utcnow
from fidelia.models import (
    Base,
    Notification,
    NotificationSequence,
    Programme,
    WebhookDelivery,
    WebhookSubscription,
)
from fidelia.notices import Notice, record_many, sequence
from fidelia.webhooks.service import envelope, wants
from fidelia.webhooks.signing import HEADER, sign

log = logging.getLogger("fidelia.webhooks")
MAX_BACKOFF = timedelta(hours=6)
FAN_OUT_LIMIT = 2000
_DELIVERIES = Base.metadata.tables["webhook_deliveries"]


@dataclass(frozen=True, slots=True)
class Claimed:
    seq: int
    id: uuid.UUID
    subscription_id: uuid.UUID
    url: str
    secret: str
    type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    seq: int
    ok: bool
    status: int | None
    error: str | None


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """The wait before the next attempt: ``base * 2^(attempts-1)``, capped, 10 % jitter."""
    delay = timedelta(seconds=base_seconds * 2 ** min(max(attempts - 1, 0), 30))
    return min(delay, MAX_BACKOFF) * random.uniform(0.9, 1.1)


def fan_out(session: Session, *, limit: int = FAN_OUT_LIMIT) -> int:
    """Deliveries for the new notices of every active subscription; returns how many."""
    subs = list(
        session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.status == "active")
            .order_by(WebhookSubscription.id)
            .with_for_update(skip_locked=True)
        )
    )
    made = 0
    last = session.scalar(select(NotificationSequence.last_position)) or 0
    for sub in subs:
        notices = session.execute(
            select(Notification.seq, Notification.position, Notification.type,
                   Notification.member_id)
            .where(Notification.programme_id == sub.programme_id,
                   Notification.position > sub.cursor)
            .order_by(Notification.position)
            .limit(limit)
        ).all()  # fmt: skip
        if len(notices) < limit:  # saw every position up to ``last``: skip them next time
            sub.cursor = max(sub.cursor, last)
        if not notices:
            continue
        now = utcnow()
        rows = [
            {
                "id": uuid.uuid4(), "programme_id": sub.programme_id, "subscription_id": sub.id,
                "notification_seq": seq, "position": position, "type": type_,
                "member_key": str(member_id) if member_id else "", "status": "pending",
                "attempts": 0, "due_at": now, "created_at": now,
            }
            for seq, position, type_, member_id in notices
            if wants(sub.types, type_)
        ]  # fmt: skip
        insert_rows(session, _DELIVERIES, rows)
        sub.cursor = max(sub.cursor, notices[-1].position)
        made += len(rows)
    session.flush()
    return made


def claim(session: Session, *, now: datetime, limit: int, lease: timedelta) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries, each the first unfinished of its member."""
    earlier = aliased(WebhookDelivery)
    blocked = exists().where(
        earlier.subscription_id == WebhookDelivery.subscription_id,
        earlier.member_key == WebhookDelivery.member_key,
        earlier.seq < WebhookDelivery.seq,
        earlier.status.in_(("pending", "sending")),
    )
    due = or_(
        and_(WebhookDelivery.status == "pending", WebhookDelivery.due_at <= now),
        and_(WebhookDelivery.status == "sending", WebhookDelivery.lease_until < now),
    )
    active = select(WebhookSubscription.id).where(WebhookSubscription.status == "active")
    found = list(
        session.scalars(
            select(WebhookDelivery)
            .where(due, ~blocked, WebhookDelivery.subscription_id.in_(active))
            .order_by(WebhookDelivery.seq)
            .limit(limit)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        )
    )
    if not found:
        return []
    subs = {s.id: s for s in session.scalars(select(WebhookSubscription).where(
        WebhookSubscription.id.in_({d.subscription_id for d in found})))}  # fmt: skip
    notices = {n.seq: n for n in session.scalars(select(Notification).where(
        Notification.seq.in_([d.notification_seq for d in found])))}  # fmt: skip
    slugs = dict(session.execute(select(Programme.id, Programme.slug).where(
        Programme.id.in_({d.programme_id for d in found}))).all())  # fmt: skip
    claimed = []
    for d in found:
        d.status, d.lease_until, d.attempts = "sending", now + lease, d.attempts + 1
        d.first_attempt_at = d.first_attempt_at or now
        d.last_attempt_at = now
        body = {**envelope(notices[d.notification_seq], slugs[d.programme_id]),
                "delivery_id": str(d.id)}  # fmt: skip
        sub = subs[d.subscription_id]
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        claimed.append(Claimed(d.seq, d.id, sub.id, sub.url, sub.secret, d.type, raw))
    session.flush()
    return claimed


def send(client: httpx.Client, item: Claimed, *, now: int) -> Answer:
    """POST one delivery; any 2xx is a success, anything else (or no answer) a failure."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Fidelia-Webhooks/1",
        "Fidelia-Delivery-Id": str(item.id),
        "Fidelia-Event-Type": item.type,
        HEADER: sign(item.secret, now, item.body),
    }
    try:
        response = client.post(item.url, content=item.body, headers=headers)
    except httpx.HTTPError as exc:
        return Answer(item.seq, False, None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return Answer(item.seq, True, response.status_code, None)
    return Answer(item.seq, False, response.status_code, f"HTTP {response.status_code}")


def settle(session: Session, answers: list[Answer], *, now: datetime) -> None:
    """Record the answers: delivered, retried later, or failed (and the subscription paused)."""
    settings = get_settings()
    window = timedelta(hours=settings.webhook_retry_hours)
    found = {d.seq: d for d in session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.seq.in_([a.seq for a in answers])).with_for_update())}  # fmt: skip
    # the subscriptions' rows are written (and locked) only when a counter moves: workers
    # settling successes of one subscription do not queue on its row
    failing = not all(a.ok for a in answers)
    query = select(WebhookSubscription).where(
        WebhookSubscription.id.in_({d.subscription_id for d in found.values()})
    )
    if failing:
        query = query.order_by(WebhookSubscription.id).with_for_update()
    subs = {s.id: s for s in session.scalars(query)}  # fmt: skip
    for answer in answers:
        d = found.get(answer.seq)
        if d is None or d.status != "sending":
            continue  # redelivered or settled meanwhile
        sub = subs[d.subscription_id]
        d.last_status, d.last_error, d.lease_until = answer.status, answer.error, None
        if answer.ok:
            d.status, d.delivered_at = "delivered", now
            if sub.consecutive_failures:
                sub.consecutive_failures = 0
            last = sub.last_success_at
            if last is None or now - last > timedelta(seconds=10):
                sub.last_success_at = now
            continue
        sub.consecutive_failures += 1
        sub.last_failure_at = now
        if d.first_attempt_at is not None and now - d.first_attempt_at >= window:
            d.status = "failed"
            _pause(session, sub, d, now)
        else:
            d.status = "pending"
            d.due_at = now + backoff(d.attempts, settings.webhook_backoff_seconds)
    session.flush()


def _pause(session: Session, sub: WebhookSubscription, d: WebhookDelivery, now: datetime) -> None:
    if sub.status == "paused":
        return
    sub.status, sub.paused_at = "paused", now
    sub.paused_reason = (
        f"delivery {d.id} failed for {get_settings().webhook_retry_hours:g} hours "
        f"({d.attempts} attempts; last: {d.last_error})"
    )
    log.warning("webhook %s paused: %s", sub.id, sub.paused_reason)
    record_many(session, sub.programme_id, [Notice(
        "webhook.paused", None, now,
        {"subscription_id": sub.id, "url": sub.url, "reason": sub.paused_reason})])  # fmt: skip


def pump(
    database: Database,
    client: httpx.Client,
    *,
    now: datetime | None = None,
    limit: int | None = None,
) -> int:
    """One round: sequence, fan out, claim, send, settle. Returns how many were sent."""
    settings = get_settings()
    with database.transaction(readonly=True) as session:
        unsequenced = session.scalar(
            select(Notification.seq).where(Notification.position.is_(None)).limit(1)
        )
    if unsequenced is not None:
        with database.transaction() as session:
            sequence(session)
    with database.transaction(readonly=True) as session:
        behind = session.scalar(
            select(WebhookSubscription.id)
            .where(
                WebhookSubscription.status == "active",
                WebhookSubscription.cursor
                < select(NotificationSequence.last_position).scalar_subquery(),
            )
            .limit(1)
        )
    if behind is not None:
        with database.transaction() as session:
            fan_out(session)
    at = now or utcnow()
    lease = timedelta(seconds=settings.webhook_timeout_seconds * 3 + 30)
    with database.transaction() as session:
        claimed = claim(session, now=at, limit=limit or settings.webhook_batch, lease=lease)
    if not claimed:
        return 0
    stamp = int(utcnow().timestamp())  # the receiver checks it against its own clock
    answers = [send(client, item, now=stamp) for item in claimed]
    with database.transaction() as session:
        settle(session, answers, now=now or utcnow())
    return len(answers)


def new_client() -> httpx.Client:
    timeout = get_settings().webhook_timeout_seconds
    return httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False)
