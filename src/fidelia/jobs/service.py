"""Jobs: written in the same transaction as the change that needs them, run once by a worker.

A worker claims one due job with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; on SQLite the single
writer lock serialises workers) and runs its handler in the same transaction that marks it done,
so a job's database effects happen exactly once. A failing handler's effects are rolled back
(savepoint); the job is retried with exponential backoff and becomes ``dead`` after
``max_attempts``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.errors import Conflict, NotFound
from fidelia.kit.bulk import insert_tuples
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.models import Base, Job

Handler = Callable[[Session, Job], None]
_HANDLERS: dict[str, Handler] = {}
MAX_BACKOFF = timedelta(hours=6)


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that runs jobs of ``kind``."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[kind] = fn
        return fn

    return register


def enqueue(
    session: Session,
    *,
    kind: str,
    payload: dict[str, Any] | None = None,
    due_at: datetime | None = None,
    idempotency_key: str | None = None,
    programme_id: uuid.UUID | None = None,
    max_attempts: int | None = None,
) -> Job:
    """Add a job in the caller's transaction; with an idempotency key, at most one such job.

    ``max_attempts`` defaults to the ``FIDELIA_JOB_MAX_ATTEMPTS`` setting."""
    if idempotency_key is not None:
        existing = session.scalar(select(Job).where(Job.idempotency_key == idempotency_key))
        if existing is not None:
            return existing
    job = Job(
        id=uuid7(),
        kind=kind,
        payload=payload or {},
        due_at=due_at or utcnow(),
        idempotency_key=idempotency_key,
        programme_id=programme_id,
        max_attempts=max_attempts or get_settings().job_max_attempts,
    )
    if idempotency_key is None:
        session.add(job)  # written with the caller's transaction
        return job
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:  # a concurrent enqueue of the same key won
        found = session.scalar(select(Job).where(Job.idempotency_key == idempotency_key))
        if found is None:
            raise
        return found
    return job


NewJob = tuple[str, dict[str, Any], datetime, uuid.UUID | None]  # kind, payload, due, programme


def enqueue_many(
    session: Session, jobs: Sequence[NewJob], *, keys: Sequence[str | None] | None = None
) -> None:
    """Add many jobs in the caller's transaction, in one INSERT (what :func:`enqueue` writes
    for each, without ORM objects). ``keys``: an idempotency key per job, new keys only (a
    key already taken fails the INSERT; it names the job for whoever may close it early)."""
    attempts = get_settings().job_max_attempts
    now = utcnow()
    rows = [
        (
            uuid7(), programme_id, kind, payload, key, "pending", due_at, 0, attempts, None, now,
            None,
        )
        for (kind, payload, due_at, programme_id), key in zip(
            jobs, keys if keys is not None else [None] * len(jobs), strict=True
        )
    ]  # fmt: skip
    insert_tuples(session, _JOBS, _JOB_KEYS, rows)


_JOBS = Base.metadata.tables["jobs"]
_JOB_KEYS = (
    "id", "programme_id", "kind", "payload", "idempotency_key", "status", "due_at", "attempts",
    "max_attempts", "last_error", "created_at", "finished_at",
)  # fmt: skip
assert set(_JOB_KEYS) == set(_JOBS.c.keys())  # complete rows


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """Exponential backoff with 10 % jitter, capped at six hours."""
    delay = timedelta(seconds=base_seconds * 2 ** max(attempts - 1, 0))
    return min(delay, MAX_BACKOFF) * random.uniform(0.9, 1.1)


def run_one(
    database: Database,
    *,
    now: datetime | None = None,
    backoff_seconds: float | None = None,
    programme_id: uuid.UUID | None = None,
) -> bool:
    """Claim and run one due job (with ``programme_id``: of that programme or of none); False
    when none is due. The first retry waits ``backoff_seconds`` (default: the
    ``FIDELIA_JOB_BACKOFF_SECONDS`` setting), then doubles."""
    now = now or utcnow()
    if backoff_seconds is None:
        backoff_seconds = get_settings().job_backoff_seconds
    query = select(Job).where(Job.status == "pending", Job.due_at <= now)
    if programme_id is not None:
        query = query.where(or_(Job.programme_id.is_(None), Job.programme_id == programme_id))
    with database.transaction() as session:
        job = session.scalar(
            query.order_by(Job.due_at, Job.id).limit(1).with_for_update(skip_locked=True)
        )
        if job is None:
            return False
        _run(session, job, now, backoff_seconds)
    return True


def _run(session: Session, job: Job, now: datetime, backoff_seconds: float) -> None:
    job.attempts += 1
    try:
        run = _HANDLERS.get(job.kind)
        if run is None:
            raise LookupError(f"no handler for job kind {job.kind!r}")
        with session.begin_nested():
            run(session, job)
    except Exception as exc:  # any failure is recorded on the job, never lost
        job.last_error = f"{type(exc).__name__}: {exc}"[:4000]
        if job.attempts >= job.max_attempts:
            job.status, job.finished_at = "dead", now
        else:
            job.due_at = now + backoff(job.attempts, backoff_seconds)
        return
    job.status, job.finished_at, job.last_error = "done", now, None


def run_due(
    database: Database,
    *,
    limit: int | None = None,
    now: datetime | None = None,
    programme_id: uuid.UUID | None = None,
) -> int:
    """Run due jobs one by one until none is due (or ``limit`` ran); returns how many ran.
    With ``programme_id``, only that programme's jobs and those of no programme."""
    ran = 0
    while (limit is None or ran < limit) and run_one(database, now=now, programme_id=programme_id):
        ran += 1
    return ran


def list_jobs(
    session: Session, *, status: str | None = None, kind: str | None = None, limit: int = 100
) -> list[Job]:
    query = select(Job).order_by(Job.due_at.desc()).limit(limit)
    if status:
        query = query.where(Job.status == status)
    if kind:
        query = query.where(Job.kind == kind)
    return list(session.scalars(query))


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status))
    return {status: count for status, count in rows}


def retry(session: Session, *, job_id: uuid.UUID, now: datetime | None = None) -> Job:
    """Give a dead job another round of attempts, due now."""
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        raise NotFound(f"job {job_id} does not exist")
    if job.status != "dead":
        raise Conflict(f"job {job_id} is {job.status}; only dead jobs can be retried")
    job.status, job.attempts, job.due_at, job.finished_at = "pending", 0, now or utcnow(), None
    session.flush()
    return job
