"""Whether a due message may go now: the checks of delivery, for one message or a batch.

The facts the checks need (the members' consents, their marketing messages sent within the
caps' window, the bounced addresses, the content keys other open messages hold) are read for
the whole batch in one query each (by chunks of 5,000 members), then each message is judged in
Python: expired, channel not configured, consent withdrawn (marketing), contact pressure
(marketing: deferred to its slot), address bounced, same content already sent. The caller
holds the members' and the messages' locks, and has at most one message per member in the
batch (so the facts read before judging are still true while judging).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.jobs import service as jobs
from fidelia.messaging import log, pressure
from fidelia.messaging.schemas import MessagingSection
from fidelia.messaging.service import CLOSED, DELIVER_JOB, consent_needed
from fidelia.models import Consent, Programme
from fidelia.models.messaging import BouncedAddress, Message

CHUNK = 5000


@dataclass
class Facts:
    """What the checks read for a batch, keyed by member (or programme and address)."""

    consents: dict[uuid.UUID, dict[str, bool]] = field(default_factory=dict)
    sent: dict[uuid.UUID, list[tuple[datetime, str]]] = field(default_factory=dict)
    bounced: set[tuple[uuid.UUID, str]] = field(default_factory=set)
    content_used: set[uuid.UUID] = field(default_factory=set)  # message ids


def _chunks(items: list[uuid.UUID]) -> list[list[uuid.UUID]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


def read_facts(
    session: Session,
    messages: Sequence[Message],
    sections: dict[uuid.UUID, MessagingSection | None],
    now: datetime,
) -> Facts:
    """The facts for ``messages`` (``sections`` by programme id), one query each."""
    facts = Facts()
    marketing = sorted({m.member_id for m in messages if m.kind == "marketing"})
    longest = max(
        (pressure.window(s.pressure) for s in sections.values() if s is not None),
        default=timedelta(0),
    )
    for chunk in _chunks(marketing):
        for member_id, channel, granted in session.execute(
            select(Consent.member_id, Consent.channel, Consent.granted).where(
                Consent.member_id.in_(chunk)
            )
        ):
            facts.consents.setdefault(member_id, {})[channel] = bool(granted)
        if longest:
            sent = session.execute(
                select(Message.member_id, Message.sent_at, Message.channel)
                .where(
                    Message.member_id.in_(chunk),
                    Message.kind == "marketing",
                    Message.sent_at.is_not(None),
                    Message.sent_at >= now - longest,
                    Message.sent_at <= now,
                )
                .order_by(Message.sent_at)
            )
            for member_id, at, on in sent:
                if at is not None:
                    facts.sent.setdefault(member_id, []).append((at, on or ""))
    addresses = sorted(
        {(m.programme_id, m.recipient) for m in messages if m.channel == "email" and m.recipient}
    )
    for start in range(0, len(addresses), CHUNK):
        part = addresses[start : start + CHUNK]
        bounced = session.execute(
            select(BouncedAddress.programme_id, BouncedAddress.address).where(
                BouncedAddress.programme_id.in_(sorted({p for p, _ in part})),
                BouncedAddress.address.in_(sorted({a for _, a in part})),
            )
        )
        facts.bounced |= {(programme_id, address) for programme_id, address in bounced}
    keyed = [m for m in messages if m.content_key is not None]
    keys = sorted({m.content_key for m in keyed if m.content_key is not None})
    holders: dict[tuple[uuid.UUID, str], set[uuid.UUID]] = defaultdict(set)
    for chunk in _chunks(sorted({m.member_id for m in keyed})):
        for message_id, member_id, key in session.execute(
            select(Message.id, Message.member_id, Message.content_key).where(
                Message.member_id.in_(chunk),
                Message.content_key.in_(keys),
                Message.status.not_in(CLOSED),
            )
        ):
            holders[(member_id, key or "")].add(message_id)
    facts.content_used = {
        m.id for m in keyed if holders[(m.member_id, m.content_key or "")] - {m.id}
    }
    return facts


def judge(
    session: Session,
    section: MessagingSection | None,
    programme: Programme,
    message: Message,
    facts: Facts,
    now: datetime,
) -> MessagingSection | None:
    """The section to send ``message`` with now; else None, the message closed (expired,
    failed, not_sent) or deferred to its contact-pressure slot (with a delivery job)."""
    if message.expires_at is not None and message.expires_at <= now:
        close(session, message, "expired", "expired before it could be sent", now)
        return None
    if section is None or getattr(section.channels, message.channel or "", None) is None:
        close(session, message, "failed", f"channel {message.channel} is not configured", now)
        return None
    if message.kind == "marketing":
        needed = consent_needed(section, message.channel or "")
        if needed and not facts.consents.get(message.member_id, {}).get(needed, False):
            close(session, message, "not_sent", f"{needed} consent withdrawn", now)
            return None
        sent = facts.sent.get(message.member_id, [])
        tz = ZoneInfo(programme.timezone)
        slot = pressure.slot_for(section.pressure, tz, sent, message.channel or "", now)
        if slot > now:
            defer(session, message, slot, now)
            return None
    address = message.recipient or ""
    if message.channel == "email" and (message.programme_id, address) in facts.bounced:
        close(session, message, "not_sent", "email address bounced", now)
        return None
    if message.id in facts.content_used:
        close(session, message, "not_sent", "same content already sent", now)
        return None
    return section


def close(session: Session, message: Message, status: str, reason: str, now: datetime) -> Message:
    message.status, message.reason = status, reason
    log.add(session, message, status, now, reason)
    return message


def defer(session: Session, message: Message, slot: datetime, now: datetime) -> Message:
    if message.expires_at is not None and slot >= message.expires_at:
        return close(session, message, "expired", f"contact pressure held it past {slot}", now)
    message.status, message.due_at = "deferred", slot
    log.add(session, message, "deferred", now, f"contact pressure: next slot {slot.isoformat()}")
    schedule(session, message, slot)
    return message


def schedule(session: Session, message: Message, due: datetime) -> None:
    jobs.enqueue(
        session,
        kind=DELIVER_JOB,
        payload={"message_id": str(message.id)},
        due_at=due,
        programme_id=message.programme_id,
    )
