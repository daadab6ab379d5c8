"""Durable jobs: transactional enqueue, exactly-once effects, retries with backoff, dead state."""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Uuid, event, func, insert, select
from sqlalchemy.orm import Session

from fidelia.db import Database
from fidelia.errors import Conflict
from fidelia.jobs import service as jobs
from fidelia.models import Job
from fidelia.programmes import service as programmes
from fidelia.programmes.schemas import ProgrammeCreate
from fidelia.worker.runner import run_until

BOTH = pytest.mark.parametrize("fresh_database", ["sqlite", "postgresql"], indirect=True)
T0 = datetime(2030, 1, 1, tzinfo=UTC)

effects = Table(
    "test_job_effects",
    MetaData(),
    Column("job_id", Uuid, nullable=False),
    Column("n", Integer, nullable=False),
)


@pytest.fixture
def db(fresh_database: Database) -> Database:
    """A database of its own (workers claim any due job), with a table for handler effects."""
    effects.create(fresh_database.engine)
    return fresh_database


def kind() -> str:
    return f"test.{uuid.uuid4().hex[:8]}"


def record_effect(session: Session, job: Job) -> None:
    session.execute(insert(effects).values(job_id=job.id, n=job.payload.get("n", 0)))


def register(fn: jobs.Handler) -> str:
    name = kind()
    jobs.handler(name)(fn)
    return name


def load(database: Database, job_id: uuid.UUID) -> Job:
    with database.transaction(readonly=True) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def effect_count(database: Database, job_id: uuid.UUID | None = None) -> int:
    query = select(func.count()).select_from(effects)
    if job_id is not None:
        query = query.where(effects.c.job_id == job_id)
    with database.transaction(readonly=True) as session:
        return session.scalar(query) or 0


def all_jobs(database: Database) -> list[Job]:
    with database.transaction(readonly=True) as session:
        return list(session.scalars(select(Job)))


@BOTH
def test_a_job_enqueued_in_a_rolled_back_transaction_does_not_exist(db: Database) -> None:
    session = db.writer()
    with session.begin():
        jobs.enqueue(session, kind="anything", payload={"x": 1})
        session.rollback()  # the change that needed the job failed
    session.close()

    assert all_jobs(db) == []
    assert jobs.run_due(db) == 0


@BOTH
def test_a_handlers_effects_and_the_done_mark_commit_together(db: Database) -> None:
    name = register(record_effect)
    with db.transaction() as session:
        job_id = jobs.enqueue(session, kind=name, payload={"n": 7}).id

    assert jobs.run_due(db) == 1

    job = load(db, job_id)
    assert (job.status, job.attempts, job.last_error) == ("done", 1, None)
    assert job.finished_at is not None
    assert effect_count(db, job_id) == 1
    assert jobs.run_due(db) == 0
    assert effect_count(db, job_id) == 1


@BOTH
def test_when_the_commit_fails_neither_the_effects_nor_the_done_mark_remain(db: Database) -> None:
    def crash(session: Session) -> None:
        if not session.in_nested_transaction():  # the worker's commit, not the savepoint's
            raise ConnectionError("the database went away at commit")

    def effect_then_commit_fails(session: Session, job: Job) -> None:
        record_effect(session, job)
        event.listen(session, "before_commit", crash)

    name = register(effect_then_commit_fails)
    with db.transaction() as session:
        job_id = jobs.enqueue(session, kind=name).id

    with pytest.raises(ConnectionError):
        jobs.run_one(db)

    job = load(db, job_id)
    assert (job.status, job.attempts) == ("pending", 0)
    assert effect_count(db, job_id) == 0


@BOTH
def test_a_failing_handler_is_retried_with_growing_backoff_then_dead(db: Database) -> None:
    def fails(session: Session, job: Job) -> None:
        record_effect(session, job)  # rolled back with the failure
        raise ValueError(f"attempt {job.attempts} failed")

    name = register(fails)
    with db.transaction() as session:
        job_id = jobs.enqueue(session, kind=name, due_at=T0, max_attempts=4).id

    now, delays = T0, []
    for _ in range(3):
        assert jobs.run_one(db, now=now, backoff_seconds=10)
        job = load(db, job_id)
        assert job.status == "pending"
        delays.append((job.due_at - now).total_seconds())
        assert not jobs.run_one(db, now=job.due_at - timedelta(seconds=1))  # not due yet
        now = job.due_at
    assert jobs.run_one(db, now=now, backoff_seconds=10)

    assert 9 <= delays[0] <= 11
    assert all(1.6 < later / earlier < 2.5 for earlier, later in itertools.pairwise(delays))
    job = load(db, job_id)
    assert (job.status, job.attempts) == ("dead", 4)
    assert job.last_error == "ValueError: attempt 4 failed"
    assert job.finished_at == now
    assert effect_count(db, job_id) == 0
    assert not jobs.run_one(db, now=now + timedelta(days=365))


@BOTH
def test_a_job_of_an_unknown_kind_records_why_it_failed(db: Database) -> None:
    with db.transaction() as session:
        job_id = jobs.enqueue(session, kind="nobody.handles.this", max_attempts=1).id

    jobs.run_due(db)

    job = load(db, job_id)
    assert job.status == "dead"
    assert "no handler" in (job.last_error or "")


@BOTH
def test_retry_revives_a_dead_job(db: Database) -> None:
    broken = threading.Event()
    broken.set()

    def flaky(session: Session, job: Job) -> None:
        if broken.is_set():
            raise RuntimeError("downstream is down")
        record_effect(session, job)

    name = register(flaky)
    with db.transaction() as session:
        job_id = jobs.enqueue(session, kind=name, max_attempts=1).id
    jobs.run_due(db)
    assert load(db, job_id).status == "dead"

    with db.transaction() as session:
        jobs.retry(session, job_id=job_id)
    broken.clear()
    jobs.run_due(db)

    job = load(db, job_id)
    assert (job.status, job.attempts) == ("done", 1)
    assert effect_count(db, job_id) == 1


@BOTH
def test_only_dead_jobs_can_be_retried(db: Database) -> None:
    with db.transaction() as session:
        job_id = jobs.enqueue(session, kind="later", due_at=T0).id

    with pytest.raises(Conflict), db.transaction() as session:
        jobs.retry(session, job_id=job_id)
    assert load(db, job_id).status == "pending"


@BOTH
def test_an_idempotency_key_gives_one_job(db: Database) -> None:
    with db.transaction() as session:
        first = jobs.enqueue(session, kind="expire", idempotency_key="expire:lot-1")
        same_tx = jobs.enqueue(session, kind="expire", idempotency_key="expire:lot-1")
    with db.transaction() as session:
        later = jobs.enqueue(session, kind="expire", idempotency_key="expire:lot-1")

    assert first.id == same_tx.id == later.id
    assert len(all_jobs(db)) == 1


@BOTH
def test_jobs_not_yet_due_wait(db: Database) -> None:
    name = register(record_effect)
    with db.transaction() as session:
        jobs.enqueue(session, kind=name, due_at=T0)
        jobs.enqueue(session, kind=name, due_at=T0 + timedelta(hours=1))

    assert jobs.run_due(db, now=T0) == 1
    assert jobs.run_due(db, now=T0 + timedelta(hours=1)) == 1
    assert effect_count(db) == 2


@pytest.mark.postgres_only
@pytest.mark.parametrize("fresh_database", ["postgresql"], indirect=True)
def test_four_workers_over_a_thousand_jobs_run_each_job_once(db: Database) -> None:
    name = register(record_effect)
    with db.transaction() as session:
        ids = [jobs.enqueue(session, kind=name, payload={"n": i}).id for i in range(1000)]
    stop = threading.Event()
    ran: list[int] = []

    def worker() -> None:
        ran.append(run_until(db, stop, poll_seconds=0.05))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = datetime.now(UTC) + timedelta(seconds=120)
    while datetime.now(UTC) < deadline:
        with db.transaction(readonly=True) as session:
            pending = session.scalar(
                select(func.count()).select_from(Job).where(Job.status == "pending")
            )
        if not pending:
            break
        stop.wait(0.2)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)

    with db.transaction(readonly=True) as session:
        rows = session.execute(select(effects.c.job_id, func.count()).group_by(effects.c.job_id))
        per_job = {job_id: count for job_id, count in rows}
    assert set(per_job) == set(ids)
    assert set(per_job.values()) == {1}
    assert sum(ran) == 1000
    assert sorted(r > 0 for r in ran) == [True] * 4  # every worker took a share
    assert {j.status for j in all_jobs(db)} == {"done"}


@BOTH
def test_run_due_for_one_programme_leaves_the_other_programmes_jobs(db: Database) -> None:
    name = register(record_effect)
    with db.transaction() as session:
        mine, theirs = (
            programmes.create(
                session, data=ProgrammeCreate(slug=f"p-{uuid.uuid4().hex[:8]}", name="P")
            )
            for _ in range(2)
        )
        own = jobs.enqueue(session, kind=name, due_at=T0, programme_id=mine.id)
        other = jobs.enqueue(session, kind=name, due_at=T0, programme_id=theirs.id)
        shared = jobs.enqueue(session, kind=name, due_at=T0)

    assert jobs.run_due(db, now=T0, programme_id=mine.id) == 2
    assert [load(db, j.id).status for j in (own, other, shared)] == ["done", "pending", "done"]
    assert jobs.run_due(db, now=T0) == 1
    assert load(db, other.id).status == "done"
