"""The compact aggregates that keep the KPIs fast (migration 0024), and sales net of returns.

Given the small known data set of ``test_kpis``: the per-member activity bitmaps, the first
purchase after enrolment and the daily returns kept by incremental refreshes equal a rebuild
from scratch (also after the bitmaps are shifted); the sales net of returns equal plain Python;
a reader's ``fresh`` costs no refresh when nothing arrived.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text, update

from fidelia.analytics import aggregates, kpis
from fidelia.db import Database
from fidelia.models import AnalyticsState, Programme
from tests.analytics.test_kpis import PURCHASES, _expected, _load
from tests.fixtures.events import line, purchase, return_of, returned
from tests.fixtures.factories import Api

TABLES = {
    "analytics_daily_sales": "day, store, channel, member, orders, sales_cents, returns, "
    "refund_cents",
    "analytics_member_months": "member_id, month, orders, sales_cents",
    "analytics_member_activity": "member_id, enrolled_at, activated_at, months, multi",
}


def _rows(database: Database, programme: Programme) -> dict[str, list[tuple[Any, ...]]]:
    with database.transaction(readonly=True) as session:
        return {
            table: sorted(
                tuple(str(v) for v in row)
                for row in session.execute(
                    text(f"SELECT {columns} FROM {table} WHERE programme_id = :pid").bindparams(
                        aggregates.PID
                    ),
                    {"pid": programme.id},
                )
            )
            for table, columns in TABLES.items()
        }


def _refresh(database: Database, programme: Programme, now: datetime | None = None) -> bool:
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        return aggregates.refresh(session, programme=found, now=now).full


def _rebuild(database: Database, programme: Programme, now: datetime | None = None) -> None:
    with database.transaction() as session:
        session.execute(
            update(AnalyticsState)
            .where(AnalyticsState.programme_id == programme.id)
            .values(refreshed_to=None)
        )
    assert _refresh(database, programme, now)


def _more(api: Api, ids: dict[str, str]) -> None:
    """A purchase before enrolment, a second order of d's in March, two returns."""
    events = [
        purchase({"id": ids["d"]}, order_id="early", lines=[line("x", 1, "3.00")],
                 occurred_at=datetime(2025, 2, 27, 10, tzinfo=UTC)),
        purchase({"id": ids["d"]}, order_id="d-1", lines=[line("x", 1, "8.00")],
                 occurred_at=datetime(2025, 3, 2, 10, tzinfo=UTC)),
        purchase({"id": ids["d"]}, order_id="d-2", lines=[line("y", 2, "6.00")],
                 occurred_at=datetime(2025, 3, 20, 10, tzinfo=UTC)),
        return_of({"id": ids["a"]}, "o-0", [returned("sku", 1)],
                  occurred_at=datetime(2025, 2, 2, 10, tzinfo=UTC)),
        return_of({"id": ids["d"]}, "d-2", [returned("y", 1)],
                  occurred_at=datetime(2025, 3, 25, 10, tzinfo=UTC)),
        purchase({"id": ids["d"]}, order_id="d-3", total="36.50",
                 lines=[line("z", 3, "9.99", discount="2.97"), line("w", 1, "5.00")],
                 occurred_at=datetime(2025, 3, 21, 10, tzinfo=UTC)),
        return_of({"id": ids["d"]}, "d-3", [returned("z", 2)],
                  occurred_at=datetime(2025, 3, 26, 10, tzinfo=UTC)),
    ]  # fmt: skip
    events[3]["properties"]["refund_total"] = "30.00"
    events[5]["properties"]["shipping"] = "4.50"  # 3 x 9.99 - 2.97 + 5.00 + 4.50
    for body in events:
        answer = api.post("/events", json=body, scope="integration")
        assert answer.status_code == 201, answer.text


def test_incremental_refreshes_equal_a_rebuild(
    api: Api, database: Database, programme: Programme
) -> None:
    ids = _load(api, database, programme)
    assert _refresh(database, programme)  # the first: a full build
    _more(api, ids)
    assert not _refresh(database, programme)  # incremental
    incremental = _rows(database, programme)
    _rebuild(database, programme)
    assert _rows(database, programme) == incremental
    activity = incremental["analytics_member_activity"]
    assert len(activity) == 4  # every member bought
    d = next(r for r in activity if r[0].replace("-", "") == ids["d"].replace("-", ""))
    assert d[2].startswith("2025-03-02")  # the purchase before enrolment does not activate


def test_the_bitmaps_shifted_by_a_later_refresh_equal_a_rebuild_then(
    api: Api, database: Database, programme: Programme
) -> None:
    ids = _load(api, database, programme)
    assert _refresh(database, programme)
    later = datetime.now(UTC) + timedelta(days=366 * 2)  # the base moves by two years
    _more(api, ids)
    assert not _refresh(database, programme, later)
    shifted = _rows(database, programme)
    _rebuild(database, programme, later)
    assert _rows(database, programme) == shifted
    with database.transaction(readonly=True) as session:
        base = session.scalar(
            select(AnalyticsState.mask_base).where(AnalyticsState.programme_id == programme.id)
        )
    assert base == aggregates.shift_month(later.date().replace(day=1), -aggregates.MASK_BACK)


def test_sales_net_of_returns_equal_an_independent_computation(
    api: Api, database: Database, programme: Programme
) -> None:
    ids = _load(api, database, programme)
    _more(api, ids)
    start, end = date(2025, 1, 1), date(2025, 3, 31)
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        h = kpis.compute(session, programme=found, start=start, end=end).headline
    expected = _expected(start, end)
    extra = [Decimal("3.00"), Decimal("8.00"), Decimal("12.00"), Decimal("36.50")]  # d's orders
    gross = expected["member_sales"] + sum(extra)
    orders = expected["member_orders"] + 4
    active = expected["active_members"] + 1
    # the first return's refund_total; the two others gave none: valued from their purchase,
    # each unit at its line's amount per unit (after the line's discount), shipping excluded
    one_y = Decimal("6.00")  # 1 of 2 y at 6.00
    two_z = 2 * (3 * Decimal("9.99") - Decimal("2.97")) / 3  # 2 of 3 z with 2.97 off the line
    refunds = Decimal("30.00") + one_y + two_z
    assert (h.member_sales, h.member_orders, h.active_members) == (gross, orders, active)
    assert h.repeat_members == expected["repeat_members"] + 1
    assert (h.member_returns, h.member_refunds) == (3, refunds)
    assert h.member_sales_net == gross - refunds
    assert h.basket_member_net == ((gross - refunds) / orders).quantize(Decimal("0.01"))
    assert h.spend_per_member_net == ((gross - refunds) / active).quantize(Decimal("0.01"))
    assert sum(1 for p in PURCHASES if p[0] == "a") == 4


def test_fresh_costs_no_refresh_when_nothing_arrived(
    api: Api, database: Database, programme: Programme
) -> None:
    ids = _load(api, database, programme)
    found = Programme(id=programme.id)
    assert aggregates.fresh(database, programme=found)  # never built: a refresh
    with database.transaction(readonly=True) as session:
        assert aggregates.up_to_date(session, programme=found)
        mark = aggregates.watermark(session, programme=found)
    assert not aggregates.fresh(database, programme=found)  # nothing new: no refresh
    with database.transaction(readonly=True) as session:
        assert aggregates.watermark(session, programme=found) == mark
    late = purchase({"id": ids["b"]}, order_id="late", lines=[line("x", 1, "8.00")],
                    occurred_at=datetime(2025, 3, 2, 10, tzinfo=UTC))  # fmt: skip
    assert api.post("/events", json=late, scope="integration").status_code == 201
    assert aggregates.fresh(database, programme=found)  # something arrived: a refresh
