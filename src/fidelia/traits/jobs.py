"""The daily traits job of a programme: RFM scores and cells, windows, lifecycle stages.

Scheduled at the next UTC midnight when a document is applied, then by itself every day (trait
windows are UTC days, see :mod:`fidelia.traits.compute`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

from sqlalchemy.orm import Session

from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.models import Job, Programme
from fidelia.traits.rebuild import refresh

REFRESH_JOB = "traits.refresh"


def schedule(session: Session, *, programme: Programme, after: datetime) -> None:
    """Enqueue the programme's refresh at the next UTC midnight after ``after`` (once)."""
    day = after.astimezone(UTC).date() + timedelta(days=1)
    jobs.enqueue(
        session,
        kind=REFRESH_JOB,
        payload={"programme_id": str(programme.id)},
        due_at=datetime.combine(day, time(0), tzinfo=UTC),
        idempotency_key=f"traits-refresh:{programme.id}:{day.isoformat()}",
        programme_id=programme.id,
    )


@jobs.handler(REFRESH_JOB)
def run_refresh(session: Session, job: Job) -> None:
    """Refresh the programme's traits as of now, then schedule the next day's run."""
    programme = session.get(Programme, uuid.UUID(job.payload["programme_id"]))
    if programme is None:
        return
    at = max(job.due_at, utcnow())
    refresh(session, programme=programme, now=at)
    schedule(session, programme=programme, after=at)
