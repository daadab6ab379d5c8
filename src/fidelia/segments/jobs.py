"""The daily segment sweep of a programme with segments, and the sweep after a new version."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.models import Job, Programme
from fidelia.segments.live import sweep
from fidelia.segments.service import section_for

SWEEP_JOB = "segments.sweep"
SWEEP_AT = time(1, 0)  # local: after the night's traits refresh and tier reviews


def schedule(session: Session, *, programme: Programme, after: datetime) -> None:
    """Enqueue the programme's sweep at the next local 01:00 after ``after`` (once)."""
    tz = ZoneInfo(programme.timezone)
    local = after.astimezone(tz)
    day = local.date() if local.time() < SWEEP_AT else local.date() + timedelta(days=1)
    jobs.enqueue(
        session,
        kind=SWEEP_JOB,
        payload={"programme_id": str(programme.id), "daily": True},
        due_at=datetime.combine(day, SWEEP_AT, tz),
        idempotency_key=f"segments-sweep:{programme.id}:{day.isoformat()}",
        programme_id=programme.id,
    )


def schedule_now(session: Session, *, programme: Programme, version: int) -> None:
    """Enqueue a sweep now for a new document version (new or changed segments fill up),
    and make sure the daily sweep is scheduled."""
    jobs.enqueue(
        session,
        kind=SWEEP_JOB,
        payload={"programme_id": str(programme.id), "daily": False},
        idempotency_key=f"segments-sweep:{programme.id}:v{version}",
        programme_id=programme.id,
    )
    schedule(session, programme=programme, after=utcnow())


@jobs.handler(SWEEP_JOB)
def run_sweep(session: Session, job: Job) -> None:
    """Re-evaluate every segment of the programme; a daily run schedules the next one."""
    programme = session.get(Programme, uuid.UUID(job.payload["programme_id"]))
    if programme is None:
        return
    daily = bool(job.payload.get("daily"))
    now = utcnow()
    sweep(session, programme=programme, now=now, cause="sweep" if daily else "definition")
    if daily and section_for(session, programme) is not None:
        schedule(session, programme=programme, after=max(job.due_at, now) + timedelta(minutes=1))
