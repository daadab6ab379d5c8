"""The hourly refresh of a programme's KPI aggregates (job ``analytics.refresh``).

The first refresh of a programme (by a KPI request, the dashboard or ``fidelia report``)
schedules the next one at the top of the next UTC hour; each run schedules the following, so
the worker keeps the aggregates at most an hour behind and a reader's own refresh stays small.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from fidelia.analytics import aggregates
from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.models import Job, Programme

REFRESH_JOB = "analytics.refresh"


def schedule(session: Session, *, programme: Programme, after: datetime) -> None:
    """Enqueue the programme's refresh at the next UTC hour after ``after`` (once per hour)."""
    hour = after.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    jobs.enqueue(
        session,
        kind=REFRESH_JOB,
        payload={"programme_id": str(programme.id)},
        due_at=hour,
        idempotency_key=f"analytics-refresh:{programme.id}:{hour:%Y-%m-%dT%H}",
        programme_id=programme.id,
    )


@jobs.handler(REFRESH_JOB)
def run_refresh(session: Session, job: Job) -> None:
    """Refresh the programme's aggregates, then schedule the next hour's run."""
    programme = session.get(Programme, uuid.UUID(job.payload["programme_id"]))
    if programme is None:
        return
    aggregates.refresh(session, programme=programme)
    schedule(session, programme=programme, after=max(job.due_at, utcnow()))
