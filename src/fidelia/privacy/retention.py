"""Retention: the personal data of members closed for more than the programme's
``settings.privacy.retention_months`` is erased (as an erasure request would, reason
``retention``) by a daily job. The member rows, their points history and counts stay, so the
ledger and the KPIs are unchanged; only what identifies the person goes.

The job (``privacy.retention``) sweeps every programme that sets a retention, then schedules
itself for the next UTC midnight. ``fidelia worker`` and ``fidelia serve`` arm it when they
start (one idempotent row per day); ``fidelia privacy retention`` runs it at once.
"""

from __future__ import annotations

import calendar
import uuid
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.models import Job, Member, MemberErasure, MemberStatusChange, Programme
from fidelia.privacy.erasure import erase_member

RETENTION_JOB = "privacy.retention"
ACTOR = "retention"
BATCH = 500


def months_before(at: datetime, months: int) -> datetime:
    """The same instant ``months`` calendar months earlier (the last day of a shorter month)."""
    index = at.year * 12 + at.month - 1 - months
    year, month = divmod(index, 12)
    day = min(at.day, calendar.monthrange(year, month + 1)[1])
    return at.replace(year=year, month=month + 1, day=day)


def due_members(
    session: Session, *, programme: Programme, months: int, now: datetime, limit: int = BATCH
) -> list[uuid.UUID]:
    """Closed members of the programme, not yet erased, closed before ``months`` ago."""
    closed_at = (
        select(MemberStatusChange.member_id, func.max(MemberStatusChange.at).label("closed_at"))
        .where(
            MemberStatusChange.programme_id == programme.id,
            MemberStatusChange.to_status == "closed",
        )
        .group_by(MemberStatusChange.member_id)
        .subquery()
    )
    query = (
        select(Member.id)
        .join(closed_at, closed_at.c.member_id == Member.id)
        .outerjoin(MemberErasure, MemberErasure.member_id == Member.id)
        .where(
            Member.programme_id == programme.id,
            Member.status == "closed",
            MemberErasure.id.is_(None),
            closed_at.c.closed_at <= months_before(now, months),
        )
        .order_by(Member.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def run_retention(
    session: Session, *, programme: Programme, now: datetime | None = None
) -> list[uuid.UUID]:
    """Erase the members due under the programme's retention; their ids (none when the
    programme sets no retention)."""
    months = programme.settings.get("privacy", {}).get("retention_months")
    if not months:
        return []
    at = now or utcnow()
    erased = []
    while batch := due_members(session, programme=programme, months=months, now=at):
        for member_id in batch:
            erase_member(
                session, programme=programme, member_id=member_id, actor=ACTOR,
                reason="retention", at=at,
            )  # fmt: skip
            erased.append(member_id)
    return erased


def schedule(session: Session, *, after: datetime) -> Job:
    """Enqueue the sweep at the next UTC midnight after ``after`` (once per day)."""
    day = after.astimezone(UTC).date() + timedelta(days=1)
    return jobs.enqueue(
        session,
        kind=RETENTION_JOB,
        due_at=datetime.combine(day, time(0), tzinfo=UTC),
        idempotency_key=f"privacy-retention:{day.isoformat()}",
    )


@jobs.handler(RETENTION_JOB)
def run_sweep(session: Session, job: Job) -> None:
    """Apply every programme's retention, then schedule the next day's sweep."""
    at = max(job.due_at, utcnow())
    for programme in session.scalars(select(Programme).order_by(Programme.id)):
        run_retention(session, programme=programme, now=at)
    schedule(session, after=at)
