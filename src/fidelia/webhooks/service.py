"""Webhook subscriptions of a programme, their deliveries, redelivery and the replay feed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fidelia.errors import NotFound, ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.models import (
    Notification,
    NotificationSequence,
    Programme,
    WebhookDelivery,
    WebhookSubscription,
)
from fidelia.notices import after_position, decode_cursor, encode_cursor
from fidelia.webhooks.pruning import check_cursor
from fidelia.webhooks.schemas import (
    DeliveryOut,
    FeedItem,
    FeedPage,
    RedeliverIn,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
)
from fidelia.webhooks.signing import new_secret
from fidelia.webhooks.targets import check_target

MAX_SUBSCRIPTIONS = 20


def wants(types: list[str], notice_type: str) -> bool:
    """Whether a subscription to ``types`` gets notices of ``notice_type``."""
    family = notice_type.split(".", 1)[0] + ".*"
    return "*" in types or notice_type in types or family in types


def create(session: Session, *, programme: Programme, data: SubscriptionIn) -> SubscriptionOut:
    """A new active subscription; it gets the notices recorded from now on (the feed has
    the earlier ones). 422 for a target that is not https, refused or unreachable."""
    check_target(data.url)
    count = session.scalar(
        select(func.count()).where(WebhookSubscription.programme_id == programme.id)
    )
    if (count or 0) >= MAX_SUBSCRIPTIONS:
        raise ValidationFailed.on("url", f"a programme has at most {MAX_SUBSCRIPTIONS} webhooks")
    last = session.scalar(select(NotificationSequence.last_position).where(
        NotificationSequence.id == 1))  # fmt: skip
    secret = data.secret or new_secret()
    sub = WebhookSubscription(
        id=uuid.uuid4(),
        programme_id=programme.id,
        url=data.url,
        types=data.types,
        secret=secret,
        description=data.description,
        status="active",
        cursor=last or 0,
        consecutive_failures=0,
        updated_at=utcnow(),
    )
    session.add(sub)
    session.flush()
    return out(session, sub, secret=secret)


def get(
    session: Session, *, programme: Programme, subscription_id: uuid.UUID
) -> WebhookSubscription:
    sub = session.get(WebhookSubscription, subscription_id)
    if sub is None or sub.programme_id != programme.id:
        raise NotFound(f"webhook {subscription_id} does not exist")
    return sub


def out(
    session: Session, sub: WebhookSubscription, *, secret: str | None = None
) -> SubscriptionOut:
    counts = dict(
        session.execute(
            select(WebhookDelivery.status, func.count())
            .where(WebhookDelivery.subscription_id == sub.id)
            .where(WebhookDelivery.status.in_(("pending", "sending", "failed")))
            .group_by(WebhookDelivery.status)
        ).all()
    )
    return SubscriptionOut.model_validate(
        {
            **{k: getattr(sub, k) for k in SubscriptionOut.model_fields if hasattr(sub, k)},
            "cursor": encode_cursor(sub.cursor),
            "secret": secret,
            "pending": counts.get("pending", 0) + counts.get("sending", 0),
            "failed": counts.get("failed", 0),
        }
    )


def list_subscriptions(session: Session, *, programme: Programme) -> list[SubscriptionOut]:
    subs = session.scalars(
        select(WebhookSubscription)
        .where(WebhookSubscription.programme_id == programme.id)
        .order_by(WebhookSubscription.created_at)
    )
    return [out(session, s) for s in subs]


def update_subscription(
    session: Session, *, programme: Programme, subscription_id: uuid.UUID, data: SubscriptionPatch
) -> SubscriptionOut:
    """Change the target, types or description; ``status`` pauses or resumes (a resumed
    subscription goes on from where it stopped: nothing recorded meanwhile is lost)."""
    sub = get(session, programme=programme, subscription_id=subscription_id)
    session.refresh(sub, with_for_update=True)
    if data.url is not None:
        sub.url = check_target(data.url)
    if data.types is not None:
        sub.types = data.types
    if "description" in data.model_fields_set:
        sub.description = data.description
    if data.status == "paused" and sub.status != "paused":
        sub.status, sub.paused_at, sub.paused_reason = "paused", utcnow(), "paused by hand"
    elif data.status == "active" and sub.status != "active":
        sub.status, sub.paused_at, sub.paused_reason = "active", None, None
        sub.consecutive_failures = 0
    sub.updated_at = utcnow()
    session.flush()
    return out(session, sub)


def rotate_secret(
    session: Session, *, programme: Programme, subscription_id: uuid.UUID
) -> SubscriptionOut:
    sub = get(session, programme=programme, subscription_id=subscription_id)
    sub.secret, sub.updated_at = new_secret(), utcnow()
    session.flush()
    return out(session, sub, secret=sub.secret)


def delete(session: Session, *, programme: Programme, subscription_id: uuid.UUID) -> None:
    session.delete(get(session, programme=programme, subscription_id=subscription_id))
    session.flush()


def deliveries(
    session: Session,
    *,
    programme: Programme,
    subscription_id: uuid.UUID,
    status: str | None,
    before: str | None,
    limit: int,
) -> tuple[list[DeliveryOut], str | None]:
    """The subscription's deliveries, newest first (``before``: a seq from the last page)."""
    get(session, programme=programme, subscription_id=subscription_id)
    query = (
        select(WebhookDelivery, Notification.id, Notification.member_id)
        .join(Notification, Notification.seq == WebhookDelivery.notification_seq)
        .where(WebhookDelivery.subscription_id == subscription_id)
        .order_by(WebhookDelivery.seq.desc())
        .limit(limit + 1)
    )
    if status:
        query = query.where(WebhookDelivery.status == status)
    if before:
        query = query.where(WebhookDelivery.seq < decode_cursor(before, field="before"))
    rows = session.execute(query).all()
    items = [delivery_out(d, notice_id, member_id) for d, notice_id, member_id in rows[:limit]]
    more = len(rows) > limit
    return items, (str(rows[limit - 1][0].seq) if more else None)


def delivery_out(
    d: WebhookDelivery, notice_id: uuid.UUID, member_id: uuid.UUID | None
) -> DeliveryOut:
    data: dict[str, Any] = {k: getattr(d, k) for k in DeliveryOut.model_fields if hasattr(d, k)}
    data |= {"notice_id": notice_id, "member_id": member_id, "cursor": encode_cursor(d.position)}
    return DeliveryOut.model_validate(data)


def redeliver_one(
    session: Session, *, programme: Programme, delivery_id: uuid.UUID, now: datetime | None = None
) -> DeliveryOut:
    """Send one delivery again (same id, so receivers recognise it), due now."""
    d = session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.programme_id == programme.id)
        .with_for_update()
    )
    if d is None:
        raise NotFound(f"delivery {delivery_id} does not exist")
    if d.status != "sending":
        d.status, d.due_at, d.lease_until = "pending", now or utcnow(), None
        d.first_attempt_at = None  # a new retry window
    session.flush()
    notice = session.get(Notification, d.notification_seq)
    assert notice is not None
    return delivery_out(d, notice.id, notice.member_id)


def redeliver_range(
    session: Session,
    *,
    programme: Programme,
    subscription_id: uuid.UUID,
    data: RedeliverIn,
    now: datetime | None = None,
) -> int:
    """Send again the subscription's deliveries of a feed range (failed ones by default)."""
    get(session, programme=programme, subscription_id=subscription_id)
    after = decode_cursor(data.after, field="after")
    query = update(WebhookDelivery).where(
        WebhookDelivery.subscription_id == subscription_id,
        WebhookDelivery.position > after,
        WebhookDelivery.status != "sending",
    )
    if data.until:
        query = query.where(WebhookDelivery.position <= decode_cursor(data.until, field="until"))
    if data.status != "any":
        query = query.where(WebhookDelivery.status == data.status)
    result = session.execute(
        query.values(status="pending", due_at=now or utcnow(), lease_until=None,
                     first_attempt_at=None)
    )  # fmt: skip
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def envelope(notice: Notification, programme_slug: str) -> dict[str, Any]:
    """A notice as the feed and webhooks show it."""
    return {
        "id": str(notice.id),
        "type": notice.type,
        "programme": programme_slug,
        "member_id": str(notice.member_id) if notice.member_id else None,
        "occurred_at": notice.occurred_at.isoformat(),
        "cursor": encode_cursor(notice.position or 0),
        "data": notice.payload,
    }


def feed(
    session: Session,
    *,
    programme: Programme,
    after: str | None,
    limit: int,
    types: list[str] | None = None,
) -> FeedPage:
    """The programme's notices after the cursor, in order (sequenced ones only)."""
    start = decode_cursor(after)
    check_cursor(session, programme_id=programme.id, after=start)  # 410 below the pruned part
    rows = after_position(
        session, programme_id=programme.id, after=start, limit=limit + 1, types=types
    )
    items = [FeedItem.model_validate(envelope(n, programme.slug)) for n in rows[:limit]]
    return FeedPage(
        items=items,
        next=items[-1].cursor if items else encode_cursor(start),
        has_more=len(rows) > limit,
    )
