"""A member's tier as the portal shows it: where they stand, what is left, what keeps it."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fidelia.errors import NotFound
from fidelia.members import service as members
from fidelia.models import MemberTier, Programme
from fidelia.tiers import metrics as m
from fidelia.tiers.schemas import (
    KeepOut,
    MetricOut,
    NextTierOut,
    TierProgressOut,
    TiersSection,
)
from fidelia.tiers.service import section_for, tz_of


def progress(
    session: Session, *, programme: Programme, member_id: uuid.UUID, now: datetime
) -> TierProgressOut:
    """Current tier, the metric in the running window, the next level and what keeps this one."""
    member = members.get(session, programme=programme, member_id=member_id)
    section = section_for(session, programme)
    if section is None:
        raise NotFound("the programme has no tiers")
    tz = tz_of(programme)
    row = session.get(MemberTier, member_id)
    metrics = row.metrics if row is not None else {}
    today, joined = now.astimezone(tz).date(), member.enrolled_at.astimezone(tz).date()
    start, end = m.window(section, day=today, enrolled=joined)
    got = m.totals(metrics, start, end)
    rank = section.rank(row.tier if row is not None else None)
    level = section.levels[rank]
    return TierProgressOut(
        member_id=member_id,
        tier=level.code,
        name=level.name,
        source=row.source if row is not None else "metric",
        since=row.since if row is not None else None,
        manual_until=row.manual_until if row is not None else None,
        window=section.window,
        window_start=m.local_midnight(start, tz) if start else None,
        window_end=m.local_midnight(end, tz) if end else None,
        metric=MetricOut(status_points=got.status_points, spend=got.spend, purchases=got.purchases),
        next=_next(section, rank, got, m.local_midnight(end, tz) if end else None),
        keep=_keep(section, row, rank, joined, tz),
        perks=list(level.perks),
    )


def _next(
    section: TiersSection, rank: int, got: m.Totals, by: datetime | None
) -> NextTierOut | None:
    for level in section.levels[rank + 1 :]:
        if not level.invitation_only:
            return NextTierOut(
                tier=level.code, name=level.name, missing=m.missing(level, got), by=by
            )
    return None


def _keep(
    section: TiersSection, row: MemberTier | None, rank: int, joined: object, tz: ZoneInfo
) -> KeepOut | None:
    """What the review will judge: the metric since the start of the window it looks at."""
    if row is None or rank == 0 or row.source == "manual" or row.review_at is None:
        return None
    # the review's local day: review_at is a local midnight, stored (and read back) in UTC
    review = row.review_at.astimezone(tz).date()
    if row.grace_until is not None:
        start, _ = m.window(section, day=review, enrolled=joined)  # type: ignore[arg-type]
    else:
        start, _ = m.reviewed_window(section, review=review, enrolled=joined)  # type: ignore[arg-type]
    got = m.totals(row.metrics, start, None)
    return KeepOut(
        needed=m.missing(section.levels[rank], got),
        review_at=row.review_at,
        grace_until=row.grace_until,
    )
