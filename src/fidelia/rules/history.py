"""Where back-tests get their history: the programme's stored events or an events file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import case, select
from sqlalchemy.orm import Session

from fidelia.events.schemas import EventIn, Purchase
from fidelia.models import Event, Programme
from fidelia.rules.state import EngineEvent


def stored_events(
    session: Session,
    *,
    programme: Programme,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Iterator[tuple[str, EngineEvent]]:
    """The programme's events in time order, streamed, as ``(member id, event)``; without the
    enrolments of members already enrolled, which intake applied as profile updates (no rule)."""
    query = select(
        Event.member_id,
        Event.type,
        Event.occurred_at,
        Event.channel,
        Event.store,
        Event.properties,
        Event.idempotency_key,
        case((Event.type == "enrolment", Event.outcome), else_=None),
    ).where(Event.programme_id == programme.id)
    if start is not None:
        query = query.where(Event.occurred_at >= start)
    if end is not None:
        query = query.where(Event.occurred_at < end)
    rows = session.execute(
        query.order_by(Event.occurred_at, Event.id).execution_options(yield_per=2000)
    )
    for member_id, type_, occurred_at, channel, store, properties, key, outcome in rows:
        if outcome and outcome.get("already_enrolled"):
            continue
        purchase = Purchase.model_validate(properties) if type_ == "purchase" else None
        yield (
            str(member_id),
            EngineEvent(type_, occurred_at, channel, store, properties, purchase, key),
        )


def file_events(path: Path) -> Iterator[tuple[str, EngineEvent]]:
    """Events from a JSON Lines file shaped as ``POST /api/v1/events`` bodies.

    Members are told apart by their identities as intake would: an event that names a card and
    an email links them, so later events by either are the same member. A member's enrolments
    after the first are left out, as intake runs no rule on them. Raises ``ValueError`` on a
    bad line.
    """
    owner: dict[str, str] = {}
    enrolled: set[str] = set()
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                event = EventIn.model_validate_json(text)
                purchase = (
                    Purchase.model_validate(event.properties) if event.type == "purchase" else None
                )
            except ValidationError as exc:
                raise ValueError(f"{path.name}, line {number}: {exc.errors()[0]['msg']}") from exc
            if event.member is None:
                continue  # an anonymous purchase: no member, no rule runs on it
            key = _member_key(event, owner)
            if event.type == "enrolment":
                if key in enrolled:
                    continue
                enrolled.add(key)
            yield (
                key,
                EngineEvent(
                    event.type,
                    event.occurred_at,
                    event.channel,
                    event.store,
                    event.properties,
                    purchase,
                    event.id,
                ),
            )


def _member_key(event: EventIn, owner: dict[str, str]) -> str:
    ref = event.ref
    names = [f"id:{ref.id}"] if ref.id else []
    names += [
        f"{kind}:{value.strip().lower()}"
        for kind, value in (("card", ref.card), ("email", ref.email), ("phone", ref.phone))
        if value
    ]
    if ref.external:
        names.append(f"ext:{ref.external.namespace}:{ref.external.value}")
    key = next((owner[n] for n in names if n in owner), names[0])
    for name in names:
        owner.setdefault(name, key)
    return key
