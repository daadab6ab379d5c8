"""Pruning of deliveries and notices: what goes, what stays, in chunks, and what a feed
consumer whose cursor points at pruned notices gets (410 with the oldest cursor)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select, update

from fidelia.db import Database
from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.models import Job, Notification, Programme, WebhookDelivery, WebhookSubscription
from fidelia.models.webhooks import FeedHorizon
from fidelia.notices import Notice, record_many, sequence
from fidelia.webhooks import pruning
from fidelia.webhooks import service as webhooks
from tests.fixtures.factories import make_programme

BOTH = pytest.mark.parametrize("fresh_database", ["sqlite", "postgresql"], indirect=True)


def _notices(database: Database, programme: Programme, n: int) -> list[tuple[int, int]]:
    """(seq, position) of ``n`` new sequenced notices of the programme."""
    with database.transaction() as s:
        record_many(
            s, programme.id, [Notice("points.earned", uuid.uuid4(), utcnow(), {}) for _ in range(n)]
        )
    with database.transaction() as s:
        sequence(s)
    with database.transaction(readonly=True) as s:
        rows = s.execute(
            select(Notification.seq, Notification.position)
            .where(Notification.programme_id == programme.id)
            .order_by(Notification.position)
        ).all()
    return [(int(a), int(b or 0)) for a, b in rows]


def _prune_all(database: Database, limit: int) -> pruning.Pruned:
    total = pruning.Pruned()
    while True:
        with database.transaction() as s:
            done = pruning.prune_chunk(s, limit=limit)
        total.add(done)
        if not done.more:
            return total


@BOTH
def test_pruning_keeps_what_is_needed_and_the_feed_says_410_below_it(
    fresh_database: Database,
) -> None:
    database = fresh_database
    p = make_programme(database)
    notices = _notices(database, p, 6)
    now = utcnow()
    old, recent = now - timedelta(days=100), now - timedelta(days=5)
    with database.transaction() as s:
        sub = WebhookSubscription(
            programme_id=p.id, url="http://127.0.0.1:9/hook", types=[], secret="s" * 32,
            cursor=notices[-1][1],
        )  # fmt: skip
        s.add(sub)
        s.flush()

        def delivery(i: int, status: str, at: datetime | None) -> WebhookDelivery:
            seq, position = notices[i]
            return WebhookDelivery(
                programme_id=p.id, subscription_id=sub.id, notification_seq=seq,
                position=position, type="points.earned", member_key=str(i), status=status,
                delivered_at=at if status == "delivered" else None, last_attempt_at=at,
            )  # fmt: skip

        s.add_all(
            [
                delivery(0, "delivered", now - timedelta(days=40)),  # goes (30 days)
                delivery(1, "failed", now - timedelta(days=100)),  # goes (90 days)
                delivery(2, "pending", old),  # stays, and so does its notice
                delivery(3, "delivered", recent),  # stays
            ]
        )
        s.execute(
            update(Notification)
            .where(Notification.seq.in_([seq for seq, _ in notices[:5]]))
            .values(created_at=old)
        )

    done = _prune_all(database, limit=1)  # one row per kind per chunk: several chunks
    assert (done.delivered, done.failed, done.notices) == (1, 1, 2)
    with database.transaction(readonly=True) as s:
        kept = s.scalars(
            select(Notification.position)
            .where(Notification.programme_id == p.id)
            .order_by(Notification.position)
        ).all()
        assert kept == [position for _, position in notices[2:]]
        assert s.scalars(
            select(WebhookDelivery.member_key).order_by(WebhookDelivery.seq)
        ).all() == [
            "2",
            "3",
        ]
        horizon = s.get(FeedHorizon, p.id)
        assert horizon is not None
        assert horizon.pruned_through == notices[1][1]

        # A consumer that read notice 1 missed notice 2: 410 with the oldest cursor.
        with pytest.raises(pruning.CursorPruned) as gone:
            webhooks.feed(s, programme=p, after=str(notices[0][1]), limit=10)
        assert gone.value.status_code == 410
        assert gone.value.as_dict()["error"] == "cursor_pruned"
        assert gone.value.oldest == notices[1][1]
        page = webhooks.feed(s, programme=p, after=str(notices[1][1]), limit=10)
        assert len(page.items) == 4
        assert len(webhooks.feed(s, programme=p, after=None, limit=10).items) == 4

    # The pending delivery finishes long ago; a subscription still behind holds notices back.
    with database.transaction() as s:
        s.execute(
            update(WebhookDelivery).values(
                status="delivered", delivered_at=old, last_attempt_at=old
            )
        )
        s.add(
            WebhookSubscription(
                programme_id=p.id, url="http://127.0.0.1:9/other", types=[], secret="t" * 32,
                cursor=notices[3][1],
            )
        )  # fmt: skip
    done = _prune_all(database, limit=100)
    assert (done.delivered, done.notices) == (2, 2)  # notices 3 and 4; 5 waits for the fan-out
    with database.transaction(readonly=True) as s:
        horizon = s.get(FeedHorizon, p.id)
        assert horizon is not None
        assert horizon.pruned_through == notices[3][1]


@BOTH
def test_the_job_prunes_and_schedules_the_next_day(fresh_database: Database) -> None:
    database = fresh_database
    p = make_programme(database)
    notices = _notices(database, p, 3)
    with database.transaction() as s:
        s.execute(update(Notification).values(created_at=utcnow() - timedelta(days=91)))
        job = pruning.schedule(s, after=utcnow(), soon=True)
        due = job.due_at
    assert jobs.run_due(database) >= 1
    with database.transaction(readonly=True) as s:
        assert s.scalars(select(Notification.position)).all() == []
        horizon = s.get(FeedHorizon, p.id)
        assert horizon is not None
        assert horizon.pruned_through == notices[-1][1]
        nxt = s.scalars(
            select(Job.due_at).where(Job.kind == pruning.PRUNE_JOB, Job.status == "pending")
        ).all()
        day = due.astimezone(UTC).date() + timedelta(days=1)
        assert nxt == [datetime.combine(day, time(1), tzinfo=UTC)]
