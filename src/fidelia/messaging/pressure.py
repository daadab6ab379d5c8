"""Contact pressure: frequency caps and quiet hours decide when a marketing message may go.

A capped message is deferred, never dropped: :func:`next_slot` answers the earliest instant at
which every cap that applies has room and the programme's local clock is outside the quiet
hours. Caps count the member's marketing messages already sent (``sent_at`` in the window) on
the channels each cap names. The caller holds the member's row lock, so two deliveries for one
member cannot both take the last place. Transactional messages are exempt.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.messaging.schemas import Pressure, QuietHours
from fidelia.models.messaging import Message


def sent_before(
    session: Session, *, member_id: uuid.UUID, since: datetime, until: datetime
) -> list[tuple[datetime, str]]:
    """The member's marketing messages sent in ``[since, until]``: (sent_at, channel), oldest
    first."""
    rows = session.execute(
        select(Message.sent_at, Message.channel)
        .where(
            Message.member_id == member_id,
            Message.kind == "marketing",
            Message.sent_at.is_not(None),
            Message.sent_at >= since,
            Message.sent_at <= until,
        )
        .order_by(Message.sent_at)
    )
    return [(at, channel or "") for at, channel in rows if at is not None]


def _caps_slot(
    rules: Pressure, sent: list[tuple[datetime, str]], channel: str, at: datetime
) -> datetime:
    slot = at
    for cap in rules.caps:
        if cap.channels and channel not in cap.channels:
            continue
        window = timedelta(hours=cap.hours)
        inside = [
            s for s, ch in sent if s > at - window and (not cap.channels or ch in cap.channels)
        ]
        if len(inside) >= cap.max:
            # room comes back when the oldest message that fills the cap leaves the window
            slot = max(slot, inside[len(inside) - cap.max] + window + timedelta(seconds=1))
    return slot


def _quiet_slot(quiet: QuietHours | None, tz: ZoneInfo, at: datetime) -> datetime:
    if quiet is None or quiet.start == quiet.end:
        return at
    local = at.astimezone(tz)
    t = local.time().replace(tzinfo=None)
    day = local.date()

    def end_on(d: object) -> datetime:
        return datetime.combine(d, quiet.end, tzinfo=tz).astimezone(at.tzinfo)  # type: ignore[arg-type]

    if quiet.start < quiet.end:
        return end_on(day) if quiet.start <= t < quiet.end else at
    if t >= quiet.start:
        return end_on(day + timedelta(days=1))
    if t < quiet.end:
        return end_on(day)
    return at


def window(rules: Pressure) -> timedelta:
    """How far back the caps look (the longest cap's window)."""
    return timedelta(hours=max((cap.hours for cap in rules.caps), default=0))


def next_slot(
    session: Session,
    *,
    rules: Pressure,
    tz: ZoneInfo,
    member_id: uuid.UUID,
    channel: str,
    at: datetime,
) -> datetime:
    """The earliest instant from ``at`` at which a marketing message may go on ``channel``
    (``at`` itself when nothing holds it back)."""
    longest = window(rules)
    sent = (
        sent_before(session, member_id=member_id, since=at - longest, until=at) if longest else []
    )
    return slot_for(rules, tz, sent, channel, at)


def slot_for(
    rules: Pressure, tz: ZoneInfo, sent: list[tuple[datetime, str]], channel: str, at: datetime
) -> datetime:
    """:func:`next_slot` from the member's marketing messages already sent (``sent``: at least
    those of the last :func:`window` before ``at``, oldest first)."""
    slot = at
    for _ in range(10):  # a cap may push into quiet hours and back; converges in a few steps
        moved = _quiet_slot(rules.quiet_hours, tz, _caps_slot(rules, sent, channel, slot))
        if moved == slot:
            break
        slot = moved
    return slot


def local_time(at: datetime, tz: ZoneInfo) -> time:
    return at.astimezone(tz).time()
