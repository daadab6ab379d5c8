"""Job handlers: release pending lots and expire lots when due, exactly once.

Design note
-----------
Each new lot gets its jobs when it is posted (``ledger.release`` at ``available_at``,
``ledger.expire`` at ``expires_at``). A handler locks the member account, re-reads the lot and
posts with the deterministic key ``release:<lot>`` / ``expire:<lot>``: a second run or a lot
already emptied does nothing; a concurrent run fails on the key and is retried, finding
nothing left to do. ``now`` is at least the job's due time, so a worker run with a pinned
clock (tests, catch-up) still finds the lot due.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from fidelia.jobs.service import handler
from fidelia.kit.clock import utcnow
from fidelia.ledger.operations import expire_lot, release_lot
from fidelia.ledger.service import EXPIRE_JOB, RELEASE_JOB
from fidelia.models import Job, Programme


def _programme(session: Session, job: Job) -> Programme:
    programme = session.get(Programme, uuid.UUID(job.payload["programme_id"]))
    if programme is None:
        raise LookupError(f"programme of job {job.id} is gone")
    return programme


@handler(RELEASE_JOB)
def run_release(session: Session, job: Job) -> None:
    """Release the lot named in the job's payload, if it is still pending."""
    release_lot(
        session,
        programme=_programme(session, job),
        lot_id=uuid.UUID(job.payload["lot_id"]),
        now=max(utcnow(), job.due_at),
    )


@handler(EXPIRE_JOB)
def run_expire(session: Session, job: Job) -> None:
    """Expire what remains of the lot named in the job's payload."""
    expire_lot(
        session,
        programme=_programme(session, job),
        lot_id=uuid.UUID(job.payload["lot_id"]),
        now=max(utcnow(), job.due_at),
    )
