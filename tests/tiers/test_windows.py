"""Qualification windows with concrete dates: the membership anniversary, since joining, and the
rolling 12 months reviewed on the first of every month. Silver needs 300 € in the window (see
``conftest.document``); the programme's days are Paris days."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fidelia.db import Database
from fidelia.models import MemberTier
from tests.fixtures.events import return_of
from tests.fixtures.factories import Api
from tests.tiers.conftest import buy, document, enrol, requalify, send, tier_of

PARIS = ZoneInfo("Europe/Paris")


def midnight(day: date) -> datetime:
    """The UTC instant local ``day`` starts in Paris (when a review on that day is due)."""
    return datetime.combine(day, time(), tzinfo=PARIS).astimezone(UTC)


def tiers(api: Api, *members: str) -> list[str]:
    return [tier_of(api, m)["tier"] for m in members]


def history(api: Api, member_id: str) -> list[tuple[Any, Any, Any]]:
    rows = api.get(f"/members/{member_id}/tier/history", scope="read").json()
    return [(r["from_tier"], r["to_tier"], r["reason"]) for r in rows]


def first_days(start: date, end: date) -> list[date]:
    """The first of every month from ``start`` to ``end`` included."""
    days, day = [], start
    while day <= end:
        days.append(day)
        day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return days


def test_anniversary_window_upgrades_keeps_and_downgrades_on_the_membership_year(
    api: Api,
) -> None:
    """Both members joined on 10 April 2025: membership years start on 10 April (Paris)."""
    api.put("/programme/document", json=document(window="anniversary"))
    first_review = midnight(date(2026, 4, 10))  # 2026-04-09T22:00Z
    assert first_review == datetime(2026, 4, 9, 22, tzinfo=UTC)
    a = enrol(api, datetime(2025, 4, 10, 10, 0, tzinfo=UTC))
    b = enrol(api, datetime(2025, 4, 10, 10, 1, tzinfo=UTC))
    for member in (a, b):
        buy(api, member, "200.00", datetime(2025, 5, 1, 10, tzinfo=UTC))

    # 23:30 in Paris on 9 April: still year one, 200 + 150 = 350 €: Silver at once
    crossing = buy(api, a, "150.00", first_review - timedelta(minutes=30))
    assert [(e["from"], e["to"]) for e in crossing["effects"] if e["kind"] == "tier"] == [
        ("bronze", "silver")
    ]
    assert requalify(api, first_review - timedelta(seconds=1))["reviewed"] == 0
    first = requalify(api, first_review)
    assert (first["reviewed"], first["upgraded"], first["downgraded"]) == (2, 0, 0)
    # 00:30 in Paris on 10 April: year two, where b has only these 150 €
    buy(api, b, "150.00", first_review + timedelta(minutes=30))
    assert tiers(api, a, b) == ["silver", "bronze"]
    keep = tier_of(api, a)["keep"]
    assert datetime.fromisoformat(keep["review_at"]) == midnight(date(2027, 4, 10))
    assert keep["needed"] == {"spend": "300"}  # nothing yet in year two
    buy(api, b, "200.00", datetime(2026, 6, 1, 10, tzinfo=UTC))  # 350 € in year two: Silver
    assert tiers(api, a, b) == ["silver", "silver"]

    second = requalify(api, midnight(date(2027, 4, 10)))

    assert (second["reviewed"], second["downgraded"]) == (2, 1)
    assert tiers(api, a, b) == ["bronze", "silver"]  # a bought nothing in year two
    assert history(api, a) == [
        (None, "bronze", "joined"),
        ("bronze", "silver", "upgrade"),
        ("silver", "bronze", "requalify_down"),
    ]
    assert history(api, b)[-1] == ("bronze", "silver", "upgrade")


def test_since_joining_counts_the_whole_membership_and_is_never_reviewed(
    api: Api, database: Database
) -> None:
    api.put("/programme/document", json=document(window="since_joining"))
    member = enrol(api, datetime(2024, 3, 1, 10, tzinfo=UTC))
    buy(api, member, "200.00", datetime(2024, 3, 10, 10, tzinfo=UTC))
    assert tiers(api, member) == ["bronze"]

    # twenty months later: the lifetime total reaches 350 €, where a year window would not
    buy(api, member, "150.00", datetime(2025, 11, 20, 10, tzinfo=UTC))

    assert tiers(api, member) == ["silver"]
    with database.transaction(readonly=True) as session:
        row = session.get(MemberTier, uuid.UUID(member))
        assert row is not None
        assert row.review_at is None
    progress = tier_of(api, member)
    assert (progress["window_start"], progress["window_end"], progress["keep"]) == (
        None,
        None,
        None,
    )
    assert progress["metric"] == {"status_points": 35, "spend": "350.00", "purchases": 2}
    assert requalify(api, datetime(2030, 1, 1, tzinfo=UTC))["reviewed"] == 0
    assert tiers(api, member) == ["silver"]

    buy(api, member, "700.00", datetime(2026, 1, 5, 10, tzinfo=UTC), order="big")  # 1,050 €
    assert tiers(api, member) == ["gold"]
    # only a return moves a since-joining member down: back to 350 €, Silver
    send(api, return_of({"id": member}, "big", [{"sku": "sku", "quantity": 1}],
                        occurred_at=datetime(2026, 1, 20, 10, tzinfo=UTC)))  # fmt: skip
    assert tiers(api, member) == ["silver"]
    assert requalify(api, datetime(2031, 1, 1, tzinfo=UTC))["reviewed"] == 0
    assert [h[2] for h in history(api, member)] == ["joined", "upgrade", "upgrade", "return"]


def test_rolling_window_upgrade_counts_the_last_twelve_months_to_the_day(api: Api) -> None:
    api.put("/programme/document", json=document(window="rolling_12_months"))
    inside = enrol(api, datetime(2025, 1, 5, 10, tzinfo=UTC))
    outside = enrol(api, datetime(2025, 1, 6, 10, tzinfo=UTC))
    for member in (inside, outside):
        buy(api, member, "200.00", datetime(2025, 3, 15, 10, tzinfo=UTC))

    # on 14 March 2026 the window is 15 March 2025 - 14 March 2026: 350 €
    buy(api, inside, "150.00", datetime(2026, 3, 14, 10, tzinfo=UTC))
    # on 15 March 2026 it starts on 16 March 2025: the 200 € fell out, 150 € only
    buy(api, outside, "150.00", datetime(2026, 3, 15, 10, tzinfo=UTC))

    assert tiers(api, inside, outside) == ["silver", "bronze"]


def test_rolling_window_reviews_monthly_keep_then_downgrade_when_a_purchase_leaves_it(
    api: Api,
) -> None:
    """Silver on 31 March 2025 (320 €); the second member also spends 300 € on 1 December."""
    api.put("/programme/document", json=document(window="rolling_12_months"))
    lapsing = enrol(api, datetime(2025, 1, 5, 10, tzinfo=UTC))
    renewed = enrol(api, datetime(2025, 1, 6, 10, tzinfo=UTC))
    for member in (lapsing, renewed):
        buy(api, member, "320.00", datetime(2025, 3, 31, 10, tzinfo=UTC))
    assert tiers(api, lapsing, renewed) == ["silver", "silver"]
    assert tier_of(api, lapsing)["keep"]["review_at"] == "2025-03-31T22:00:00Z"

    for day in first_days(date(2025, 4, 1), date(2026, 3, 1)):  # reviews judge [day - 1 y, day)
        report = requalify(api, midnight(day))
        assert (report["reviewed"], report["downgraded"]) == (2, 0), day
        if day == date(2025, 12, 1):
            buy(api, renewed, "300.00", datetime(2025, 12, 1, 10, tzinfo=UTC))
    assert tiers(api, lapsing, renewed) == ["silver", "silver"]
    # the review of 1 April 2026 judges 1 April 2025 - 31 March 2026: the 320 € is out
    keep = tier_of(api, lapsing)["keep"]
    assert (keep["review_at"], keep["needed"]) == (
        "2026-03-31T22:00:00Z",
        {"spend": "300"},
    )
    assert requalify(api, midnight(date(2026, 4, 1)) - timedelta(seconds=1))["reviewed"] == 0

    april = requalify(api, midnight(date(2026, 4, 1)))

    assert (april["reviewed"], april["downgraded"]) == (2, 1)
    assert tiers(api, lapsing, renewed) == ["bronze", "silver"]
    for day in first_days(date(2026, 5, 1), date(2026, 12, 1)):  # still holds 1 December 2025
        assert requalify(api, midnight(day))["downgraded"] == 0, day
    assert tiers(api, renewed) == ["silver"]
    assert requalify(api, midnight(date(2027, 1, 1)))["downgraded"] == 1
    assert tiers(api, renewed) == ["bronze"]
    assert history(api, renewed) == [
        (None, "bronze", "joined"),
        ("bronze", "silver", "upgrade"),
        ("silver", "bronze", "requalify_down"),
    ]
