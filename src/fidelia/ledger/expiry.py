"""When lots expire and become available; what expires soon.

Design note
-----------
Expiry and pending dates are computed once, when a lot is opened, and stored on the lot: a
later change of the wallet's policy never moves the dates of value already earned. Calendar
arithmetic (months, end of month/quarter/year, fixed dates) happens on the wall clock of the
programme's time zone and the result is converted to UTC, so "end of March" in Paris is
``2026-03-31T22:00Z`` (summer time) and "end of January" is ``2026-01-31T23:00Z``. An expiry
instant is exclusive: the lot is valid strictly before it.
"""

from __future__ import annotations

import calendar
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fidelia.ledger.schemas import ExpiryPolicy, PendingPolicy, Period
from fidelia.models import Account, Lot, Programme

PERIOD_MONTHS: dict[Period, int] = {"month": 1, "quarter": 3, "year": 12}


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months, clamped to the end of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def period_start_after(day: date, period: Period) -> date:
    """The first day of the period that follows the one containing ``day``."""
    size = PERIOD_MONTHS[period]
    first_month = (day.month - 1) // size * size + 1
    return add_months(date(day.year, first_month, 1), size)


def expiry_instant(policy: ExpiryPolicy, *, earned_at: datetime, tz: ZoneInfo) -> datetime | None:
    """The UTC instant at which value earned at ``earned_at`` expires, or None (never)."""
    local = earned_at.astimezone(tz)
    if policy.kind == "rolling":
        if policy.days is not None:
            return (local + timedelta(days=policy.days)).astimezone(UTC)
        moved = add_months(local.date(), policy.months or 0)
        return datetime.combine(moved, local.timetz()).astimezone(UTC)
    if policy.kind == "end_of_period":
        assert policy.period is not None
        reached = add_months(local.date(), policy.months or 0)
        return _local_midnight(period_start_after(reached, policy.period), tz)
    if policy.kind == "fixed":
        assert policy.date is not None
        return _local_midnight(policy.date + timedelta(days=1), tz)
    return None


def pending_until(
    policy: PendingPolicy, *, earned_at: datetime, now: datetime
) -> tuple[bool, datetime | None]:
    """``(is_pending, available_at)``; ``available_at`` is None for a manual release."""
    if policy.kind == "manual":
        return True, None
    if policy.kind == "days":
        available_at = earned_at + timedelta(days=policy.days or 0)
        return (available_at > now), available_at
    return False, None


def expiring_for_account(
    session: Session, *, account: Account, tz: ZoneInfo, now: datetime, days: int = 90
) -> list[tuple[date, int]]:
    """Amount (minor units) expiring on each local day of the next ``days`` days."""
    rows = session.execute(
        select(Lot.expires_at, func.sum(Lot.remaining))
        .where(
            Lot.account_id == account.id,
            Lot.remaining > 0,
            Lot.expires_at > now,
            Lot.expires_at <= now + timedelta(days=days),
        )
        .group_by(Lot.expires_at)
    )
    return _by_local_day(rows, tz)


def expiring_for_programme(
    session: Session,
    *,
    programme: Programme,
    wallet_id: uuid.UUID,
    now: datetime,
    days: int = 90,
) -> list[tuple[date, int]]:
    """Programme-wide amount (minor units) expiring on each local day of the next ``days``."""
    rows = session.execute(
        select(Lot.expires_at, func.sum(Lot.remaining))
        .where(
            Lot.programme_id == programme.id,
            Lot.wallet_id == wallet_id,
            Lot.remaining > 0,
            Lot.expires_at > now,
            Lot.expires_at <= now + timedelta(days=days),
        )
        .group_by(Lot.expires_at)
    )
    return _by_local_day(rows, ZoneInfo(programme.timezone))


def _by_local_day(rows: object, tz: ZoneInfo) -> list[tuple[date, int]]:
    """The last valid local day of each expiry instant (the day before the instant's midnight)."""
    totals: dict[date, int] = defaultdict(int)
    for expires_at, amount in rows:  # type: ignore[attr-defined]
        last_valid = (expires_at - timedelta(microseconds=1)).astimezone(tz).date()
        totals[last_valid] += int(amount)
    return sorted(totals.items())
