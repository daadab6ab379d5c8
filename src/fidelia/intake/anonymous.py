"""Anonymous purchases: a purchase that names no member (a customer who is not a member).

It is checked as any purchase (lines, total, order id unique in the programme) and stored in
``anonymous_purchases``, for the KPIs only (members vs non-members, enrolment rate): no member
is looked up or created, no rule runs, no points. Its ``id`` is an idempotency key like any
event's, shared with the event log: a resend answers the first outcome, the same key with other
content (or already used by a member's event) is refused. The batch writes all of a batch's
anonymous purchases in one multi-row insert.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from fidelia.errors import Conflict, FideliaError, FieldError
from fidelia.events.checks import typed_properties
from fidelia.events.schemas import EventIn, EventOutcome, Purchase
from fidelia.kit.ids import uuid7
from fidelia.kit.prepared import Prepared
from fidelia.models import AnonymousPurchase, Event, Programme

_EXISTING = Prepared(  # compiled once: it runs for every group of events (kit.prepared)
    select(
        AnonymousPurchase.idempotency_key, AnonymousPurchase.fingerprint, AnonymousPurchase.id
    ).where(
        AnonymousPurchase.programme_id == bindparam("programme_id"),
        AnonymousPurchase.idempotency_key.in_(bindparam("keys", expanding=True)),
    )
)


def outcome_of(key: str, row_id: uuid.UUID) -> dict[str, Any]:
    return {"id": key, "status": "accepted", "event_id": str(row_id), "member_id": None}


def existing(
    session: Session, *, programme: Programme, keys: list[str]
) -> dict[str, tuple[str, dict[str, Any]]]:
    """The anonymous purchases already stored under ``keys``: fingerprint and outcome."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for start in range(0, len(keys), 500):
        params = {"programme_id": programme.id, "keys": keys[start : start + 500]}
        for key, fp, row_id in _EXISTING.rows(session, params):
            found[key] = (fp, outcome_of(key, row_id))
    return found


def _known_orders(session: Session, programme: Programme, order_ids: list[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(order_ids), 500):
        chunk = order_ids[start : start + 500]
        # the type is checked here: given it, SQLite took the (programme_id, type) index and
        # read every purchase of the programme (see fidelia.events.checks.OrderBook)
        found = session.execute(
            select(Event.reference, Event.type).where(
                Event.programme_id == programme.id, Event.reference.in_(chunk)
            )
        )
        known.update(ref for ref, kind in found if kind == "purchase" and ref is not None)
        known.update(
            session.scalars(
                select(AnonymousPurchase.order_id).where(
                    AnonymousPurchase.programme_id == programme.id,
                    AnonymousPurchase.order_id.in_(chunk),
                )
            )
        )
    return known


def cents(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def record(
    session: Session,
    *,
    programme: Programme,
    events: list[tuple[int, EventIn, str]],
    now: datetime,
) -> dict[int, EventOutcome]:
    """Check and store new anonymous purchases ``(index, event, fingerprint)``; the outcome of
    each, accepted or rejected (a rejected one writes nothing)."""
    outcomes: dict[int, EventOutcome] = {}
    typed: list[tuple[int, EventIn, str, dict[str, Any], Purchase]] = []
    for index, event, fp in events:
        try:
            properties, purchase = typed_properties("purchase", event.properties, {})
        except FideliaError as err:
            outcomes[index] = _rejected(index, event.id, err)
            continue
        typed.append((index, event, fp, properties, purchase))
    known = _known_orders(session, programme, [p.order_id for *_, p in typed])
    rows: list[dict[str, Any]] = []
    for index, event, fp, properties, purchase in typed:
        if purchase.order_id in known:
            duplicate = Conflict(
                f"order {purchase.order_id!r} was already sent as a purchase (under another id)",
                fields=[FieldError(("properties", "order_id"), "duplicate order")],
            )
            outcomes[index] = _rejected(index, event.id, duplicate)
            continue
        known.add(purchase.order_id)
        row_id = uuid7()
        rows.append(
            {
                "id": row_id,
                "programme_id": programme.id,
                "idempotency_key": event.id,
                "fingerprint": fp,
                "occurred_at": event.occurred_at,
                "received_at": now,
                "channel": event.channel,
                "store": event.store,
                "order_id": purchase.order_id,
                "total_cents": cents(purchase.total),
                "properties": properties,
            }
        )
        outcomes[index] = EventOutcome.model_validate(
            {**outcome_of(event.id, row_id), "index": index}
        )
    if rows:
        session.execute(insert(AnonymousPurchase), rows)
    return outcomes


def _rejected(index: int, key: str, error: FideliaError) -> EventOutcome:
    return EventOutcome(
        index=index,
        id=key,
        status="rejected",
        error=error.code,
        detail=error.detail,
        fields=[f.as_dict() for f in error.fields],
    )
