"""Trait helpers: replay a programme's stored events through the incremental path, snapshots."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fidelia.db import Database
from fidelia.models import Event, MemberTraits, Programme
from fidelia.rules.state import EngineEvent
from fidelia.traits.rebuild import rebuild, refresh
from fidelia.traits.service import TABLE, apply_events

VOLATILE = ("computed_at",)


def replay_incremental(
    database: Database, programme: Programme, *, now: datetime, group: int = 16
) -> None:
    """Forget the programme's traits, then feed its stored events, in the order the intake
    accepted them, through ``apply_events`` in groups (as the intake does), then refresh."""
    with database.transaction() as session:
        programme = fresh(session, programme)
        session.execute(delete(MemberTraits).where(MemberTraits.programme_id == programme.id))
        rows = session.execute(
            select(
                Event.member_id, Event.type, Event.occurred_at, Event.channel, Event.store,
                Event.properties, Event.idempotency_key,
            ).where(Event.programme_id == programme.id).order_by(Event.id)
        ).all()  # fmt: skip
        batch: list[tuple[uuid.UUID, EngineEvent]] = []
        for r in rows:
            event = EngineEvent.from_intake(
                type=r.type, occurred_at=r.occurred_at, channel=r.channel, store=r.store,
                properties=r.properties, id=r.idempotency_key,
            )  # fmt: skip
            batch.append((r.member_id, event))
            if len(batch) == group:
                apply_events(session, programme=programme, events=batch, now=now)
                batch = []
        apply_events(session, programme=programme, events=batch, now=now)
        refresh(session, programme=programme, now=now)


def fresh(session: Session, programme: Programme) -> Programme:
    """The programme as stored now (a fixture's object predates the documents applied since)."""
    found = session.get(Programme, programme.id, populate_existing=True)
    assert found is not None
    return found


def rebuilt(database: Database, programme: Programme, *, now: datetime, chunk: int = 50) -> None:
    with database.transaction() as session:
        rebuild(session, programme=fresh(session, programme), now=now, chunk=chunk)


def snapshot(database: Database, programme: Programme) -> dict[uuid.UUID, dict[str, Any]]:
    with database.transaction(readonly=True) as session:
        rows = session.execute(select(TABLE).where(TABLE.c.programme_id == programme.id)).mappings()
        return {r["member_id"]: {k: v for k, v in r.items() if k not in VOLATILE} for r in rows}


def differences(
    a: dict[uuid.UUID, dict[str, Any]], b: dict[uuid.UUID, dict[str, Any]]
) -> list[tuple[uuid.UUID, str, Any, Any]]:
    """(member, column, a's value, b's value) wherever the two snapshots differ."""
    out = [(mid, "<row>", mid in a, mid in b) for mid in set(a) ^ set(b)]
    for mid in set(a) & set(b):
        out.extend((mid, k, a[mid][k], b[mid][k]) for k in a[mid] if a[mid][k] != b[mid][k])
    return sorted(out, key=str)
