"""The event log: a member's events in order, an event by the id it was sent with."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from fidelia.errors import NotFound, ValidationFailed
from fidelia.kit.pagination import decode_cursor, encode_cursor
from fidelia.models import Event, Member, Programme


def list_for_member(
    session: Session, *, member: Member, cursor: str | None = None, limit: int = 100
) -> tuple[list[Event], str | None]:
    """The member's events in the order they happened (then in the order they were received)."""
    query = select(Event).where(Event.member_id == member.id)
    if cursor:
        try:
            occurred, after = decode_cursor(cursor)
            at, after_id = datetime.fromisoformat(occurred), uuid.UUID(after)
        except ValueError as exc:
            raise ValidationFailed.on(("query", "cursor"), "not a cursor this API gave") from exc
        query = query.where(
            or_(Event.occurred_at > at, and_(Event.occurred_at == at, Event.id > after_id))
        )
    rows = list(session.scalars(query.order_by(Event.occurred_at, Event.id).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last.occurred_at.isoformat(), str(last.id)])
    return rows[:limit], next_cursor


def get_by_key(session: Session, *, programme: Programme, key: str) -> Event:
    event = session.scalar(
        select(Event).where(Event.programme_id == programme.id, Event.idempotency_key == key)
    )
    if event is None:
        raise NotFound(f"no event with id {key!r}")
    return event
