"""KPIs against an independent computation in Python over a small known data set.

Given four members enrolled on known days, purchases of members and of non-members on known
days, a redemption and an expiry; when the KPIs are asked for a period (whole months, then a
period with partial months at both ends); then every figure equals what plain Python computes
from the same data.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from fidelia.analytics import cohorts, kpis
from fidelia.db import Database
from fidelia.ledger import operations
from fidelia.ledger.balances import balance_as_of
from fidelia.models import Account, Lot, Programme, Wallet
from tests.fixtures.events import enrolment, line, purchase
from tests.fixtures.factories import Api

RULES: dict[str, Any] = {
    "rules": [
        {
            "id": "base",
            "name": "1 € = 1 point",
            "award": {"kind": "spend", "wallet": "points", "rate": 1, "rounding": "floor"},
        }
    ]
}

# member -> (enrolled at, channel, store)
MEMBERS = {
    "a": (datetime(2025, 1, 5, 9, tzinfo=UTC), "store", "s1"),
    "b": (datetime(2025, 1, 20, 9, tzinfo=UTC), "web", None),
    "c": (datetime(2025, 2, 10, 9, tzinfo=UTC), "store", "s2"),
    "d": (datetime(2025, 3, 1, 9, tzinfo=UTC), "store", "s1"),
}
# (member or None for a non-member, day, hour, amount in euros, store, channel)
PURCHASES = [
    ("a", date(2025, 1, 5), 10, "30.00", "s1", "store"),
    ("a", date(2025, 1, 25), 10, "12.50", "s1", "store"),
    ("a", date(2025, 3, 3), 10, "40.00", "s2", "store"),
    ("b", date(2025, 2, 28), 18, "99.99", None, "web"),
    ("c", date(2025, 2, 11), 12, "15.00", "s2", "store"),
    ("c", date(2025, 2, 15), 12, "25.00", "s2", "store"),
    ("c", date(2025, 3, 31), 23, "5.00", "s2", "store"),
    (None, date(2025, 1, 5), 11, "20.00", "s1", "store"),
    (None, date(2025, 2, 15), 11, "7.10", "s2", "store"),
    (None, date(2025, 3, 31), 22, "60.00", "s1", "store"),
    ("a", date(2025, 4, 2), 10, "10.00", "s1", "store"),  # after the period
]
GIFT_AT = datetime(2025, 1, 21, tzinfo=UTC)  # 7 points given to b, expired on 10 March


def _load(api: Api, database: Database, programme: Programme) -> dict[str, str]:
    assert api.put("/programme/document", json=RULES).status_code == 200
    ids: dict[str, str] = {}
    for name, (at, channel, store) in MEMBERS.items():
        body = enrolment(
            {"email": f"{name}-{programme.slug}@example.com"},
            occurred_at=at,
            channel=channel,
            **({"store": store} if store else {}),
        )
        answer = api.post("/events", json=body, scope="integration")
        assert answer.status_code == 201, answer.text
        ids[name] = answer.json()["member_id"]
    for i, (who, day, hour, amount, store, channel) in enumerate(PURCHASES):
        at = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
        ref = {"id": ids[who]} if who else {}
        body = purchase(
            ref,
            order_id=f"o-{i}",
            lines=[line("sku", 1, amount)],
            occurred_at=at,
            channel=channel,
            **({"store": store} if store else {}),
        )
        if who is None:
            del body["member"]
        answer = api.post("/events", json=body, scope="integration")
        assert answer.status_code == 201, answer.text
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        operations.spend(
            session, programme=found, member_id=uuid.UUID(ids["a"]), wallet="points", amount=20,
            idempotency_key="spend-a", occurred_at=datetime(2025, 3, 5, tzinfo=UTC),
            now=datetime(2025, 3, 5, tzinfo=UTC),
        )  # fmt: skip
        gift = operations.award(
            session, programme=found, member_id=uuid.UUID(ids["b"]), wallet="points", amount=7,
            idempotency_key="gift-b", occurred_at=GIFT_AT,
            expires_at=datetime(2025, 3, 10, tzinfo=UTC), source_type="adjustment",
            now=datetime(2025, 1, 21, tzinfo=UTC),
        )  # fmt: skip
        lot = session.scalars(select(Lot.id).where(Lot.transaction_id == gift.id)).one()
        expiry = datetime(2025, 3, 11, tzinfo=UTC)
        operations.expire_lot(session, programme=found, lot_id=lot, now=expiry)
    return ids


def _expected(start: date, end: date, activation_days: int = 30) -> dict[str, Any]:
    """The KPIs computed in plain Python from MEMBERS and PURCHASES."""
    lo = datetime(start.year, start.month, start.day, tzinfo=UTC)
    hi = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)

    def at(p: tuple[Any, ...]) -> datetime:
        return datetime(p[1].year, p[1].month, p[1].day, p[2], tzinfo=UTC)

    inside = [p for p in PURCHASES if lo <= at(p) < hi]
    mine = [p for p in inside if p[0]]
    anon = [p for p in inside if not p[0]]
    per_member = Counter(p[0] for p in mine)
    cents = sum(int(Decimal(p[3]) * 100) for p in mine)
    anon_cents = sum(int(Decimal(p[3]) * 100) for p in anon)
    enrolled = [m for m, (t, _, _) in MEMBERS.items() if lo <= t < hi]
    activated = [
        m
        for m in enrolled
        if any(
            p[0] == m and MEMBERS[m][0] <= at(p) < MEMBERS[m][0] + timedelta(days=activation_days)
            for p in PURCHASES
        )
    ]
    return {
        "enrolments": len(enrolled),
        "members_at_end": sum(1 for t, _, _ in MEMBERS.values() if t < hi),
        "active_members": len(per_member),
        "repeat_members": sum(1 for n in per_member.values() if n >= 2),
        "member_orders": len(mine),
        "member_sales": Decimal(cents) / 100,
        "non_member_orders": len(anon),
        "non_member_sales": Decimal(anon_cents) / 100,
        "frequency": round(len(mine) / len(per_member), 6),
        "spend_per_member": (Decimal(cents) / 100 / len(per_member)).quantize(Decimal("0.01")),
        "basket_member": (Decimal(cents) / 100 / len(mine)).quantize(Decimal("0.01")),
        "member_order_share": round(len(mine) / len(inside), 6),
        "enrolment_rate": round(len(enrolled) / (len(enrolled) + len(anon)), 6),
        "activated": len(activated),
        "points_issued": sum(int(Decimal(p[3])) for p in mine) + (7 if lo <= GIFT_AT < hi else 0),
    }


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2025, 1, 1), date(2025, 3, 31)),  # whole months: the activity bitmaps
        (date(2025, 1, 10), date(2025, 2, 20)),  # purchases outside its ends: member months
        (date(2025, 1, 5), date(2025, 3, 31)),  # partial, nothing outside: the bitmaps
    ],
)
def test_headline_kpis_equal_an_independent_computation(
    api: Api, database: Database, programme: Programme, start: date, end: date
) -> None:
    _load(api, database, programme)
    expected = _expected(start, end)
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        answer = kpis.compute(session, programme=found, start=start, end=end)
    h = answer.headline
    for name in (
        "enrolments", "members_at_end", "active_members", "repeat_members", "member_orders",
        "member_sales", "non_member_orders", "non_member_sales", "frequency",
        "spend_per_member", "basket_member", "member_order_share", "enrolment_rate",
    ):  # fmt: skip
        assert getattr(h, name) == expected[name], name
    assert h.activation.enrolled == expected["enrolments"]
    assert h.activation.activated == expected["activated"]
    points = next(w for w in answer.points if w.wallet == "points")
    assert points.issued == expected["points_issued"]
    assert sum(r.issued for r in points.by_rule) == points.issued


def test_the_points_economy_and_the_liability_agree_with_the_ledger(
    api: Api, database: Database, programme: Programme
) -> None:
    ids = _load(api, database, programme)
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        answer = kpis.compute(
            session, programme=found, start=date(2025, 1, 1), end=date(2025, 3, 31)
        )
        points = next(w for w in answer.points if w.wallet == "points")
        assert (points.redeemed, points.expired) == (20, 7)
        assert points.breakage_rate == round(7 / 27, 6)
        earned = sum(int(Decimal(p[3])) for p in PURCHASES if p[0] and p[1] < date(2025, 4, 1))
        assert points.outstanding_at_end == earned + 7 - 20 - 7
        assert points.liability_money == Decimal(points.outstanding_at_end) / 100
        assert points.cost_of_redemptions == Decimal("0.20")
        # the same as the ledger's own as-of balances, member by member
        wallet = session.scalars(
            select(Wallet).where(Wallet.programme_id == programme.id, Wallet.code == "points")
        ).one()
        accounts = session.scalars(
            select(Account).where(Account.wallet_id == wallet.id, Account.member_id.is_not(None))
        ).all()
        until = datetime(2025, 4, 1, tzinfo=UTC) - timedelta(microseconds=1)
        assert points.outstanding_at_end == sum(
            sum(balance_as_of(session, account=a, as_of=until)) for a in accounts
        )
        # and, today, the cached balances that `ledger verify` checks
        now_available, now_pending = kpis.outstanding(session, wallet, datetime.now(UTC))
        assert now_available + now_pending == sum(a.available + a.pending for a in accounts)
    assert len(ids) == 4


def test_sales_by_store_and_by_month_add_up_to_the_headline(
    api: Api, database: Database, programme: Programme
) -> None:
    _load(api, database, programme)
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        answer = kpis.compute(
            session, programme=found, start=date(2025, 1, 1), end=date(2025, 3, 31),
            grain="month", group_by="store",
        )  # fmt: skip
    by_store = {g.key: g for g in answer.groups}
    expected = Counter()
    for who, day, _h, amount, store, _c in PURCHASES:
        if day < date(2025, 4, 1):
            expected[(store or "", who is not None)] += int(Decimal(amount) * 100)
    for (store, member), cents in expected.items():
        got = by_store[store].member_sales if member else by_store[store].non_member_sales
        assert got == Decimal(cents) / 100
    assert by_store["s1"].enrolments == 2
    assert [r.bucket for r in answer.series] == [
        date(2025, 1, 1),
        date(2025, 2, 1),
        date(2025, 3, 1),
    ]
    assert [r.active_members for r in answer.series] == [1, 2, 2]
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        partial = kpis.compute(
            session, programme=found, start=date(2025, 1, 10), end=date(2025, 3, 15)
        )  # partial months at both ends: a (25 Jan); b, c (Feb); a (3 Mar)
    assert [r.active_members for r in partial.series] == [1, 2, 1]
    assert sum(r.member_orders for r in answer.series) == answer.headline.member_orders


def test_the_aggregates_follow_new_events_incrementally(
    api: Api, database: Database, programme: Programme
) -> None:
    ids = _load(api, database, programme)
    span = (date(2025, 1, 1), date(2025, 3, 31))
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        before = kpis.compute(session, programme=found, start=span[0], end=span[1]).headline
    late = purchase({"id": ids["d"]}, order_id="late", lines=[line("x", 1, "8.00")],
                    occurred_at=datetime(2025, 3, 2, 10, tzinfo=UTC))  # fmt: skip
    assert api.post("/events", json=late, scope="integration").status_code == 201
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        after = kpis.compute(session, programme=found, start=span[0], end=span[1]).headline
    assert after.member_orders == before.member_orders + 1
    assert after.active_members == before.active_members + 1
    assert after.member_sales == before.member_sales + Decimal("8.00")


def test_cohorts_equal_an_independent_computation(
    api: Api, database: Database, programme: Programme
) -> None:
    _load(api, database, programme)
    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        answer = cohorts.compute(
            session, programme=found, start=date(2025, 1, 1), end=date(2025, 12, 31)
        )
    expected: dict[date, dict[str, Any]] = {}
    for name, (at, _c, _s) in MEMBERS.items():
        cohort = date(at.year, at.month, 1)
        row = expected.setdefault(cohort, {"members": 0, "active": [0] * 12, "repeat": 0})
        row["members"] += 1
        months = {
            (p[1].year - at.year) * 12 + p[1].month - at.month for p in PURCHASES if p[0] == name
        }
        for k in months:
            if 1 <= k <= 12:
                row["active"][k - 1] += 1
        row["repeat"] += sum(1 for p in PURCHASES if p[0] == name) >= 2
    got = {
        c.cohort: {"members": c.members, "active": c.active, "repeat": c.repeat_members}
        for c in answer.cohorts
    }
    assert got == expected
    january = answer.cohorts[0]
    assert january.retention[:3] == [0.5, 0.5, 0.5]


def test_the_first_refresh_schedules_the_hourly_job_which_refreshes_and_reschedules(
    database: Database, programme: Programme
) -> None:
    from fidelia.analytics import aggregates
    from fidelia.analytics.jobs import REFRESH_JOB
    from fidelia.jobs import service as jobs
    from fidelia.models import AnalyticsState, Job

    with database.transaction() as session:
        found = session.get(Programme, programme.id)
        assert found is not None
        assert aggregates.refresh(session, programme=found).full
    mine = (Job.programme_id == programme.id, Job.kind == REFRESH_JOB)
    with database.transaction() as session:
        job = session.scalars(select(Job).where(*mine)).one()
        first = session.get(AnalyticsState, programme.id)
        assert first is not None
        before = first.refreshed_to
    ran = jobs.run_due(database, now=job.due_at + timedelta(seconds=1), programme_id=programme.id)
    assert ran >= 1
    with database.transaction(readonly=True) as session:
        state = session.get(AnalyticsState, programme.id)
        assert state is not None
        assert before is not None
        assert state.refreshed_to is not None
        assert state.refreshed_to > before
        assert len(session.scalars(select(Job).where(*mine)).all()) == 2  # the next hour's
