"""Expiry and pending dates: calendar rules in the programme's time zone, across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fidelia.ledger.expiry import add_months, expiry_instant, pending_until
from fidelia.ledger.schemas import ExpiryPolicy, PendingPolicy

PARIS = ZoneInfo("Europe/Paris")


def test_end_of_month_in_paris_follows_summer_time() -> None:
    policy = ExpiryPolicy(kind="end_of_period", period="month", months=2)
    earned = datetime(2026, 1, 15, 12, tzinfo=UTC)
    # End of March 2026: midnight of 1 April in Paris is 22:00 UTC (summer time since 29 March).
    assert expiry_instant(policy, earned_at=earned, tz=PARIS) == datetime(
        2026, 3, 31, 22, tzinfo=UTC
    )
    policy = ExpiryPolicy(kind="end_of_period", period="month", months=0)
    assert expiry_instant(policy, earned_at=earned, tz=PARIS) == datetime(
        2026, 1, 31, 23, tzinfo=UTC
    )


def test_local_date_decides_the_month_not_utc() -> None:
    # 31 January 23:30 UTC is already 1 February in Paris: the end of February applies.
    earned = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    policy = ExpiryPolicy(kind="end_of_period", period="month", months=0)
    assert expiry_instant(policy, earned_at=earned, tz=PARIS) == datetime(
        2026, 2, 28, 23, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("quarter", datetime(2026, 6, 30, 22, tzinfo=UTC)),
        ("year", datetime(2026, 12, 31, 23, tzinfo=UTC)),
    ],
)
def test_end_of_quarter_and_year(period: str, expected: datetime) -> None:
    policy = ExpiryPolicy(kind="end_of_period", period=period, months=3)  # type: ignore[arg-type]
    assert expiry_instant(policy, earned_at=datetime(2026, 2, 10, tzinfo=UTC), tz=PARIS) == expected


def test_rolling_days_keep_the_wall_clock_across_dst() -> None:
    earned = datetime(2026, 3, 20, 9, tzinfo=UTC)  # 10:00 in Paris, winter time
    expires = expiry_instant(ExpiryPolicy(kind="rolling", days=10), earned_at=earned, tz=PARIS)
    assert expires == datetime(2026, 3, 30, 8, tzinfo=UTC)  # 10:00 in Paris, summer time


def test_rolling_months_clamp_to_month_end_and_fixed_date() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    policy = ExpiryPolicy(kind="fixed", date=date(2026, 12, 31))
    assert expiry_instant(policy, earned_at=datetime(2026, 5, 1, tzinfo=UTC), tz=PARIS) == datetime(
        2026, 12, 31, 23, tzinfo=UTC
    )
    assert (
        expiry_instant(ExpiryPolicy(), earned_at=datetime(2026, 5, 1, tzinfo=UTC), tz=PARIS) is None
    )


def test_pending_policies() -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    assert pending_until(PendingPolicy(kind="days", days=14), earned_at=now, now=now) == (
        True,
        now + timedelta(days=14),
    )
    assert pending_until(PendingPolicy(kind="manual"), earned_at=now, now=now) == (True, None)
    assert pending_until(PendingPolicy(), earned_at=now, now=now) == (False, None)


def test_incomplete_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ExpiryPolicy(kind="rolling")
    with pytest.raises(ValueError, match="period"):
        ExpiryPolicy(kind="end_of_period")
