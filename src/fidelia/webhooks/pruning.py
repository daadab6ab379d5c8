"""Pruning: delivered webhook deliveries, failed ones and old notices are deleted, in chunks.

What goes (installation settings, in days): deliveries ``delivered`` more than
``prune_delivered_days`` ago (30), deliveries ``failed`` whose last attempt is more than
``prune_failed_days`` old (90), then notices more than ``prune_notices_days`` old (90) that no
delivery refers to any more and that every subscription of the programme has already turned
into deliveries (its cursor is past them). Pending and in-flight deliveries are never touched.

Notices go as a prefix of each programme's feed: the pass finds the first position that must
stay and deletes every sequenced notice before it, so what remains of a feed has no holes. The
programme's ``feed_horizons`` row keeps the last position deleted; a consumer whose cursor is
below it gets ``410 cursor_pruned`` from ``GET /feed`` with the oldest cursor that still works
(docs/webhooks.md), rather than a silent jump over what it missed.

Each chunk deletes at most :data:`CHUNK` rows. The job (``webhooks.prune``) runs a bounded
number of chunks in its transaction, enqueues itself again at once if there is more, and
otherwise the next day at 01:00 UTC. ``fidelia webhooks prune`` runs it to the end, one
transaction per chunk.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.orm import Session

from fidelia.config import get_settings
from fidelia.errors import FideliaError, FieldError
from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.models import Job, Notification, Programme, WebhookDelivery, WebhookSubscription
from fidelia.models.webhooks import FeedHorizon

PRUNE_JOB = "webhooks.prune"
CHUNK = 5000
CHUNKS_PER_JOB = 20


class CursorPruned(FideliaError):
    """The notices after this cursor were pruned: restart from the oldest cursor kept."""

    status_code = 410
    code = "cursor_pruned"

    def __init__(self, after: int, oldest: int) -> None:
        detail = (
            f"the notices after cursor {after} up to {oldest} were pruned; the oldest cursor "
            f"available is {oldest} (resynchronise, e.g. from an export, then pass after={oldest})"
        )
        super().__init__(detail, fields=[FieldError(("after",), f"oldest available: {oldest}")])
        self.oldest = oldest


def check_cursor(session: Session, *, programme_id: uuid.UUID, after: int) -> None:
    """410 :class:`CursorPruned` if notices after ``after`` were pruned (an empty cursor, the
    start, reads what is left)."""
    if after <= 0:
        return
    horizon = session.get(FeedHorizon, programme_id)
    if horizon is not None and after < horizon.pruned_through:
        raise CursorPruned(after, horizon.pruned_through)


@dataclass
class Pruned:
    delivered: int = 0
    failed: int = 0
    notices: int = 0
    more: bool = False

    def add(self, other: Pruned) -> None:
        self.delivered += other.delivered
        self.failed += other.failed
        self.notices += other.notices
        self.more = other.more


def _delete_deliveries(session: Session, condition: object, limit: int) -> int:
    seqs = list(
        session.scalars(
            select(WebhookDelivery.seq).where(condition).order_by(WebhookDelivery.seq).limit(limit)  # type: ignore[arg-type]
        )
    )
    if seqs:
        session.execute(delete(WebhookDelivery).where(WebhookDelivery.seq.in_(seqs)))
    return len(seqs)


def _last_prunable(session: Session, programme_id: uuid.UUID, cutoff: datetime) -> int | None:
    """The highest position of the programme's notices that may go: before the first one that
    must stay (recent, still referred to by a delivery, or not yet fanned out)."""
    referred = exists().where(WebhookDelivery.notification_seq == Notification.seq)
    first_kept = session.scalar(
        select(Notification.position)
        .where(
            Notification.programme_id == programme_id,
            Notification.position.is_not(None),
            or_(Notification.created_at >= cutoff, referred),
        )
        .order_by(Notification.position)
        .limit(1)
    )
    last = (
        first_kept - 1
        if first_kept is not None
        else session.scalar(
            select(func.max(Notification.position)).where(Notification.programme_id == programme_id)
        )
    )
    fanned = session.scalar(
        select(func.min(WebhookSubscription.cursor)).where(
            WebhookSubscription.programme_id == programme_id
        )
    )
    if last is not None and fanned is not None:
        last = min(last, fanned)
    return last


def _prune_notices(session: Session, programme_id: uuid.UUID, cutoff: datetime, limit: int) -> int:
    last = _last_prunable(session, programme_id, cutoff)
    if last is None or last <= 0:
        return 0
    rows = session.execute(
        select(Notification.seq, Notification.position)
        .where(
            Notification.programme_id == programme_id,
            Notification.position.is_not(None),
            Notification.position <= last,
        )
        .order_by(Notification.position)
        .limit(limit)
    ).all()
    if not rows:
        return 0
    session.execute(delete(Notification).where(Notification.seq.in_([r[0] for r in rows])))
    through: int = rows[-1][1] or 0
    horizon = session.get(FeedHorizon, programme_id, with_for_update=True)
    if horizon is None:
        session.add(
            FeedHorizon(programme_id=programme_id, pruned_through=through, pruned_at=utcnow())
        )
    elif through > horizon.pruned_through:
        horizon.pruned_through, horizon.pruned_at = through, utcnow()
    session.flush()
    return len(rows)


def prune_chunk(session: Session, *, now: datetime | None = None, limit: int = CHUNK) -> Pruned:
    """Delete at most ``limit`` rows of each kind (deliveries delivered, failed; then each
    programme's notices); ``more`` if a kind may have more to go."""
    now = now or utcnow()
    settings = get_settings()
    done = Pruned()
    done.delivered = _delete_deliveries(
        session,
        (WebhookDelivery.status == "delivered")
        & (WebhookDelivery.delivered_at < now - timedelta(days=settings.prune_delivered_days)),
        limit,
    )
    done.failed = _delete_deliveries(
        session,
        (WebhookDelivery.status == "failed")
        & (
            func.coalesce(WebhookDelivery.last_attempt_at, WebhookDelivery.created_at)
            < now - timedelta(days=settings.prune_failed_days)
        ),
        limit,
    )
    cutoff = now - timedelta(days=settings.prune_notices_days)
    full = False
    for programme_id in session.scalars(select(Programme.id).order_by(Programme.id)):
        count = _prune_notices(session, programme_id, cutoff, limit)
        done.notices += count
        full = full or count == limit
    done.more = done.delivered == limit or done.failed == limit or full
    return done


def schedule(session: Session, *, after: datetime, soon: bool = False) -> Job:
    """Enqueue the next pass: at once (``soon``, more to prune) or at 01:00 UTC next day."""
    if soon:
        return jobs.enqueue(session, kind=PRUNE_JOB, due_at=after)
    day = after.astimezone(UTC).date() + timedelta(days=1)
    return jobs.enqueue(
        session,
        kind=PRUNE_JOB,
        due_at=datetime.combine(day, time(1), tzinfo=UTC),
        idempotency_key=f"webhooks-prune:{day.isoformat()}",
    )


@jobs.handler(PRUNE_JOB)
def run_job(session: Session, job: Job) -> None:
    """A bounded pass (``CHUNKS_PER_JOB`` chunks), then the next one."""
    at = max(job.due_at, utcnow())
    done = Pruned()
    for _ in range(CHUNKS_PER_JOB):
        done.add(prune_chunk(session, now=at))
        if not done.more:
            break
    schedule(session, after=at, soon=done.more)
