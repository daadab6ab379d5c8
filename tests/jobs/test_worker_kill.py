"""``fidelia worker`` killed with SIGKILL in the middle of a batch of ledger jobs, then started
again: no job is lost, none takes effect twice, every balance is exact."""

from __future__ import annotations

import os
import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.ledger import operations as ops
from fidelia.ledger import wallets
from fidelia.ledger.service import EXPIRE_JOB, RELEASE_JOB
from fidelia.ledger.verify import verify
from fidelia.models import Account, Job, LedgerTransaction, Programme
from tests.fixtures import processes
from tests.fixtures.factories import make_member, make_programme

MEMBERS = 100
EARNED = datetime(2026, 1, 1, 10, tzinfo=UTC)  # in the past: every job is due now


def _programme_with_due_jobs(database: Database) -> tuple[Programme, dict[uuid.UUID, int]]:
    """Each member earns ``100 + i`` points held until the next day (a release job) and 50
    points expiring the day after (an expiry job): 2 jobs a member, all overdue."""
    programme = make_programme(database)
    with database.transaction() as session:
        wallets.ensure_default_wallets(session, programme=programme)
    members = [make_member(database, programme).id for _ in range(MEMBERS)]
    kept: dict[uuid.UUID, int] = {}
    with database.transaction() as session:
        for i, member_id in enumerate(members):
            common = {"programme": programme, "member_id": member_id, "wallet": "points"}
            ops.award(session, **common, amount=100 + i, idempotency_key=f"held-{i}",
                      occurred_at=EARNED, expires_at=None,
                      available_at=EARNED + timedelta(days=1), now=EARNED)  # fmt: skip
            ops.award(session, **common, amount=50, idempotency_key=f"expiring-{i}",
                      occurred_at=EARNED, expires_at=EARNED + timedelta(days=2),
                      now=EARNED)  # fmt: skip
            kept[member_id] = 100 + i
    return programme, kept


def _jobs(database: Database, status: str | None = None) -> int:
    query = select(func.count()).select_from(Job).where(Job.kind.in_([RELEASE_JOB, EXPIRE_JOB]))
    if status is not None:
        query = query.where(Job.status == status)
    with database.transaction(readonly=True) as session:
        return session.scalar(query) or 0


@pytest.mark.parametrize("fresh_database", ["sqlite", "postgresql"], indirect=True)
def test_a_worker_killed_mid_batch_loses_no_job_and_runs_none_twice(
    fresh_database: Database, tmp_path: Path
) -> None:
    database = fresh_database  # a database of its own: the worker runs every due job in it
    programme, kept = _programme_with_due_jobs(database)
    assert (_jobs(database), _jobs(database, "pending")) == (2 * MEMBERS, 2 * MEMBERS)

    first = processes.start(database, tmp_path / "first.log", "worker", "--once")
    processes.kill_when(first, lambda: _jobs(database, "done") >= 40)
    done = _jobs(database, "done")
    assert 40 <= done < 2 * MEMBERS, "the worker was not killed mid-batch"

    second = processes.start(database, tmp_path / "second.log", "worker", "--poll", "0.1")
    try:
        processes.wait_for(lambda: _jobs(database, "done") == 2 * MEMBERS, timeout=300)
    finally:
        os.kill(second.pid, signal.SIGINT)
        second.wait(timeout=30)

    with database.transaction(readonly=True) as session:
        jobs = session.scalars(select(Job).where(Job.programme_id == programme.id)).all()
        kinds = {
            kind: count
            for kind, count in session.execute(
                select(LedgerTransaction.kind, func.count())
                .where(LedgerTransaction.programme_id == programme.id)
                .group_by(LedgerTransaction.kind)
            )
        }
        accounts = session.scalars(
            select(Account).where(
                Account.programme_id == programme.id, Account.member_id.is_not(None)
            )
        ).all()
        report = verify(session, programme_id=programme.id)
    assert len(jobs) == 2 * MEMBERS
    # a job killed half-way rolled back with its attempt: every job ran exactly once
    assert {(j.status, j.attempts, j.last_error) for j in jobs} == {("done", 1, None)}
    assert kinds == {"earn": 2 * MEMBERS, "release": MEMBERS, "expire": MEMBERS}
    points = {
        a.member_id: (a.available, a.pending, a.lifetime_expired)
        for a in accounts
        if a.member_id in kept
    }
    assert points == {m: (amount, 0, 50) for m, amount in kept.items()}
    assert report.ok, report.problems
