"""The tick job: each programme with scenarios has one ``scenarios.tick`` job due every
``INTERVAL``; it schedules the next one (at once when it left due journeys behind)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.models import Job, Programme
from fidelia.scenarios import engine, service

TICK_JOB = "scenarios.tick"
INTERVAL = timedelta(minutes=1)
BATCH, MAX_BATCHES = 1000, 50  # journeys per transaction-batch, batches per tick
_EMITTER: list[engine.Emitter] = []


def set_emitter(emit: engine.Emitter) -> None:
    """The intake gives the function that ingests the events scenarios emit (it sits above)."""
    _EMITTER[:] = [emit]


def emitter() -> engine.Emitter | None:
    return _EMITTER[0] if _EMITTER else None


def schedule(
    session: Session, *, programme: Programme, at: datetime, after: uuid.UUID | None = None
) -> None:
    """Make sure a tick is due at ``at``: at most one per programme and minute, so the chains
    started by several document versions merge; ``after`` (a tick that left due journeys
    behind) names the follow-up tick by the job it follows instead."""
    minute = at.replace(second=0, microsecond=0).isoformat()
    jobs.enqueue(
        session,
        kind=TICK_JOB,
        payload={"programme_id": str(programme.id)},
        due_at=at,
        idempotency_key=f"scenarios-tick:{programme.id}:{f'after:{after}' if after else minute}",
        programme_id=programme.id,
    )


def run_tick(session: Session, *, programme: Programme, now: datetime) -> dict[str, Any]:
    result = engine.tick(session, programme=programme, now=now, emit=emitter())
    return result.__dict__


@jobs.handler(TICK_JOB)
def tick_job(session: Session, job: Job) -> None:
    programme = session.get(Programme, uuid.UUID(job.payload["programme_id"]))
    if programme is None:
        return
    now = utcnow()
    result = engine.tick(session, programme=programme, now=now, emit=emitter(), batch=BATCH,
                         max_batches=MAX_BATCHES)  # fmt: skip
    if service.section_for(session, programme) is None and not result.advanced:
        return  # no scenario left: the ticks stop (applying scenarios starts them again)
    if result.more:
        schedule(session, programme=programme, at=now, after=job.id)
    else:
        schedule(session, programme=programme, at=now + INTERVAL)
