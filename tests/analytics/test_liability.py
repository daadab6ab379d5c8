"""Liability at a date, the redemption curve, the breakage forecast and the back-test.

Given three lots whose history is known (written in the docstring of each step), the curve,
the first months of the forecast and the actuals are the numbers worked out by hand here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from fidelia.analytics import liability
from fidelia.db import Database
from fidelia.errors import NotFound
from fidelia.ledger import operations
from fidelia.models import Lot, Member, Programme

D = datetime(2025, 6, 1, tzinfo=UTC)


def _history(
    database: Database, programme: Programme, member_factory: Callable[..., Member]
) -> None:
    a, b, c = member_factory(), member_factory(), member_factory()
    with database.transaction() as session:
        p = session.get(Programme, programme.id)
        assert p is not None

        def award(member: Member, amount: int, at: datetime, expires: datetime | None) -> None:
            operations.award(
                session, programme=p, member_id=member.id, wallet="points", amount=amount,
                idempotency_key=f"earn-{member.id}", occurred_at=at, expires_at=expires, now=at,
            )  # fmt: skip

        def spend(member: Member, amount: int, at: datetime) -> None:
            operations.spend(
                session, programme=p, member_id=member.id, wallet="points", amount=amount,
                idempotency_key=f"spend-{member.id}-{at.isoformat()}", occurred_at=at, now=at,
            )  # fmt: skip

        # A: 100 at D-100d expiring D+45d, 40 spent at age 0, 20 after D, the rest expires
        award(a, 100, D - timedelta(days=100), D + timedelta(days=45))
        spend(a, 40, D - timedelta(days=95))
        spend(a, 20, D + timedelta(days=10))
        # B: 100 at D-100d, never expiring, 10 spent at age 2
        award(b, 100, D - timedelta(days=100), None)
        spend(b, 10, D - timedelta(days=40))
        # C: 200 at D-10d, expiring after the horizon
        award(c, 200, D - timedelta(days=10), D + timedelta(days=400))
        lot = session.scalars(
            select(Lot.id).where(Lot.account_id.in_(
                select(Lot.account_id).where(Lot.programme_id == programme.id)
            ), Lot.expires_at == D + timedelta(days=45))
        ).one()  # fmt: skip
        operations.expire_lot(session, programme=p, lot_id=lot, now=D + timedelta(days=46))


def test_the_forecast_at_a_past_date_against_what_happened(
    database: Database, programme: Programme, member_factory: Callable[..., Member]
) -> None:
    _history(database, programme, member_factory)
    with database.transaction(readonly=True) as session:
        p = session.get(Programme, programme.id)
        assert p is not None
        answer = liability.forecast(session, programme=p, at=D, now=D + timedelta(days=90))
    assert (answer.outstanding, answer.available, answer.pending) == (350, 350, 0)
    assert answer.liability_money == Decimal("3.50")  # 1 point = 0.01
    # r(0) = 40/200, r(1) = 0/160, r(2) = 10/160 (C is too young to count)
    assert answer.redemption_curve == [0.2, 0.0, 0.0625]
    first, second, third = answer.forecast[:3]
    # month 1: A 60 x 0.0625 + B 90 x 0.0625 + C 200 x r(0)
    assert first.expected_redeemed == round(3.75 + 5.625 + 40)
    assert first.expected_expired == 0
    # month 2: A 56.25 x 0.0625, B 84.375 x 0.0625, C 160 x r(1) = 0; A's rest expires
    assert second.expected_redeemed == round(3.515625 + 5.2734375)
    assert second.expected_expired == round(56.25 - 3.515625)
    assert second.expected_outstanding == round(350 - 49.375 - 8.7890625 - 52.734375)
    # what happened: A spent 20 in month 1, its last 40 expired in month 2
    assert (first.actual_redeemed, first.actual_expired, first.actual_outstanding) == (20, 0, 330)
    assert (second.actual_redeemed, second.actual_expired, second.actual_outstanding) == (
        0, 40, 290,
    )  # fmt: skip
    assert third.actual_outstanding == 290
    assert answer.forecast[3].actual_outstanding is None  # not yet happened at `now`
    assert answer.backtest
    assert answer.expected_breakage >= second.expected_expired


def test_an_unknown_wallet_is_a_404(database: Database, programme: Programme) -> None:
    with database.transaction(readonly=True) as session:
        p = session.get(Programme, programme.id)
        assert p is not None
        with pytest.raises(NotFound):
            liability.forecast(session, programme=p, wallet="nope")
