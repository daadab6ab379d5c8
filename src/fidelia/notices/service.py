"""Record notices in the caller's transaction; give them replay positions after commit.

Why two numbers. ``seq`` (a sequence) is taken when the row is inserted, but transactions do
not commit in ``seq`` order: a reader paging ``seq > cursor`` on PostgreSQL could pass row 11
while row 10 was still uncommitted, and never see it. So the cursor is ``position``, given by
:func:`sequence`: under a lock on the one ``notification_sequence`` row, it numbers every
*committed* notice that has none, in ``seq`` order, after the last position given. Sequencer
passes are serialised by the lock, so a reader paging ``position > cursor`` never finds a
smaller position later. Two notices about one member are written by transactions that held
that member's row lock in turn, so the later one's ``seq`` is larger and it is committed
later: it never gets the smaller position (per-member order holds on the feed).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import is_dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from fidelia.errors import ValidationFailed
from fidelia.kit.bulk import insert_tuples
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.models import Base, Notification, NotificationSequence

# The notice types Fidelia writes (docs/webhooks.md has their payloads). Domains may record
# other well-formed names (``referral.qualified``...); add them here with a line of doc.
TYPES: dict[str, str] = {
    "member.enrolled": "a member joined the programme",
    "member.updated": "a member's profile, identities or status changed",
    "member.merged": "a duplicate member was merged into a survivor",
    "points.earned": "points were awarded to a member (purchase, bonus, adjustment)",
    "points.spent": "points were spent (redemption, spend)",
    "points.expired": "points of a member expired",
    "points.returned": "points were taken back after a return",
    "tier.changed": "a member moved to another tier",
    "badge.earned": "a member earned a badge",
    "challenge.completed": "a member completed a challenge",
    "referral.qualified": "a referred member's first qualifying purchase rewarded the referral",
    "voucher.issued": "a voucher was issued to a member",
    "voucher.used": "a voucher was used at the till or online",
    "reward.redeemed": "a member redeemed a reward",
    "segment.entered": "a member entered a segment",
    "segment.left": "a member left a segment",
    "message.bounced": "an email to a member bounced hard; the address is unreachable from now",
}

_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_TABLE = Base.metadata.tables["notifications"]
# The columns record_many writes, in the order of its rows (seq and position: the database's)
_KEYS = ("id", "programme_id", "type", "member_id", "occurred_at", "payload", "created_at")


class Notice(NamedTuple):
    """What happened: ``type`` (``points.earned``...), to whom, when, and its details."""

    type: str
    member_id: uuid.UUID | None
    occurred_at: datetime
    payload: Mapping[str, Any]


def jsonable(value: Any) -> Any:
    """``value`` with decimals, ids, times and enums as JSON strings (decimals keep digits)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(vars(value))
    raise TypeError(f"a notice payload cannot hold {type(value).__name__}")


def record_many(session: Session, programme_id: uuid.UUID, rows: Iterable[Notice]) -> int:
    """Write ``rows`` in the caller's transaction, in one statement; returns how many.

    Always written, subscriptions or not: the replay feed serves them to any consumer."""
    now = utcnow()
    values = []
    match = _NAME.match
    for kind, member_id, occurred_at, payload in rows:
        if not match(kind):
            raise ValueError(f"notice type {kind!r} is not a dotted lower-case name")
        values.append((uuid7(), programme_id, kind, member_id, occurred_at, jsonable(payload), now))
    insert_tuples(session, _TABLE, _KEYS, values)
    return len(values)


def sequence(session: Session, *, limit: int = 5000) -> int:
    """Give positions to committed notices that have none (at most ``limit``, in ``seq``
    order); returns how many. Call it in a transaction of its own and commit."""
    counter = session.get(NotificationSequence, 1, with_for_update=True, populate_existing=True)
    if counter is None:  # the migration writes it; a database built otherwise gets it here
        counter = NotificationSequence(id=1, last_position=0)
        session.add(counter)
    seqs = list(
        session.scalars(
            select(Notification.seq)
            .where(Notification.position.is_(None))
            .order_by(Notification.seq)
            .limit(limit)
        )
    )
    if not seqs:
        return 0
    base = counter.last_position
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "UPDATE notifications AS n SET position = v.p FROM "
                "(SELECT unnest(CAST(:s AS BIGINT[])) AS s, unnest(CAST(:p AS BIGINT[])) AS p) v "
                "WHERE n.seq = v.s"
            ),
            {"s": seqs, "p": [base + i for i in range(1, len(seqs) + 1)]},
        )
    else:
        session.execute(
            update(_TABLE).where(_TABLE.c.seq == bindparam("s")).values(position=bindparam("p")),
            [{"s": s, "p": base + i} for i, s in enumerate(seqs, start=1)],
        )
    counter.last_position = base + len(seqs)
    session.flush()
    return len(seqs)


def encode_cursor(position: int) -> str:
    return str(position)


def decode_cursor(cursor: str | None, *, field: str = "after") -> int:
    """A feed cursor (the last position read; empty for the start) or a 422 naming ``field``."""
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit() or len(cursor) > 18:
        raise ValidationFailed.on(
            field, "must be a cursor returned by the feed (a non-negative integer)"
        )
    return int(cursor)


def after_position(
    session: Session,
    *,
    programme_id: uuid.UUID,
    after: int,
    limit: int,
    types: Iterable[str] | None = None,
) -> list[Notification]:
    """The programme's sequenced notices after ``after``, in position order."""
    query = (
        select(Notification)
        .where(
            Notification.programme_id == programme_id,
            Notification.position.is_not(None),
            Notification.position > after,
        )
        .order_by(Notification.position)
        .limit(limit)
    )
    wanted = list(types or [])
    if wanted:
        query = query.where(Notification.type.in_(wanted))
    return list(session.scalars(query))
