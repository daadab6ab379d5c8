"""When a wait step is over, in the programme's time zone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fidelia.models import Account, Lot, Member, MemberTraits, Programme
from fidelia.scenarios.schemas import WEEKDAYS, Wait, parse_local_time

TRAIT_TIME = time(9, 0)  # a wait until a date trait ends at 09:00 local on the day


def due(
    session: Session,
    programme: Programme,
    step: Wait,
    member: Member | None,
    now: datetime,
    tz: ZoneInfo,
) -> datetime:
    """When ``step`` ends for ``member`` if it starts at ``now`` (``member`` may be None for a
    duration or a local time: those end the same for everyone)."""
    if step.duration is not None:
        return now + timedelta(seconds=step.duration.seconds())
    if step.until_event is not None:
        return now + timedelta(seconds=step.until_event.timeout.seconds())
    if step.until_time is not None:
        return next_local_time(now, step.until_time, step.days, tz)
    assert step.until_trait is not None
    assert member is not None
    day = trait_date(session, step.until_trait, member, now, tz)
    if day is None:
        return now  # no such date for the member: the wait is over
    when = datetime.combine(day - timedelta(days=step.days_before), TRAIT_TIME, tz)
    return max(when, now)


def next_local_time(now: datetime, at: str, days: Sequence[str] | None, tz: ZoneInfo) -> datetime:
    """The first local ``at`` (on one of ``days``) strictly after ``now``."""
    hour, minute = parse_local_time(at)
    local = now.astimezone(tz)
    allowed = {WEEKDAYS.index(d) for d in days} if days else set(range(7))
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        candidate = datetime.combine(day, time(hour, minute), tz)
        if candidate > now and day.weekday() in allowed:
            return candidate
    raise AssertionError("a week always holds an allowed day")


def trait_date(
    session: Session, trait: str, member: Member, now: datetime, tz: ZoneInfo
) -> date | None:
    today = now.astimezone(tz).date()
    if trait in ("birthday", "enrolment_anniversary"):
        base = (
            member.birth_date if trait == "birthday" else member.enrolled_at.astimezone(tz).date()
        )
        if base is None:
            return None
        return _next_yearly(base, today)
    if trait == "expected_next_purchase":
        at = session.scalar(
            select(MemberTraits.expected_next_purchase_at).where(
                MemberTraits.member_id == member.id
            )
        )
        return at.astimezone(tz).date() if at else None
    first = session.scalar(
        select(func.min(Lot.expires_at))
        .join(Account, Account.id == Lot.account_id)
        .where(Account.member_id == member.id, Lot.remaining > 0, Lot.expires_at > now)
    )
    return first.astimezone(tz).date() if first else None


def _next_yearly(base: date, today: date) -> date:
    for year in (today.year, today.year + 1):
        try:
            day = base.replace(year=year)
        except ValueError:  # 29 February
            day = date(year, 3, 1)
        if day >= today:
            return day
    raise AssertionError("unreachable")
