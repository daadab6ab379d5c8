"""The daily requalification job of a programme with tiers (scheduled when tiers are applied)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.models import Job, Programme
from fidelia.tiers import metrics as m
from fidelia.tiers.requalify import requalify
from fidelia.tiers.service import section_for, tz_of

REQUALIFY_JOB = "tiers.requalify"


def schedule(session: Session, *, programme: Programme, after: datetime) -> None:
    """Enqueue the programme's review at the next local midnight after ``after`` (once)."""
    tz = tz_of(programme)
    day = after.astimezone(tz).date() + timedelta(days=1)
    jobs.enqueue(
        session,
        kind=REQUALIFY_JOB,
        payload={"programme_id": str(programme.id)},
        due_at=m.local_midnight(day, tz),
        idempotency_key=f"tiers-requalify:{programme.id}:{day.isoformat()}",
        programme_id=programme.id,
    )


@jobs.handler(REQUALIFY_JOB)
def run_requalify(session: Session, job: Job) -> None:
    """Review the members due by now, then schedule the next day's review (a worker that was
    down catches up in one run: each member is judged at its own review date)."""
    programme = session.get(Programme, uuid.UUID(job.payload["programme_id"]))
    if programme is None or section_for(session, programme) is None:
        return
    at = max(job.due_at, utcnow())
    requalify(session, programme=programme, at=at)
    schedule(session, programme=programme, after=at)
