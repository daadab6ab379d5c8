"""What a redemption leaves behind besides points and vouchers, on SQLite and PostgreSQL: its
notices (written together, in the order things happened), the objects it hands back (the same
values as a fresh read of their rows) and the objects the caller's session held before."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from fidelia.db import Database
from fidelia.models import Base, Notification, Programme, Redemption, Reward
from fidelia.rewards import redemptions
from tests.rewards.conftest import T0, assert_verified, make_reward, stock

NewMember = Callable[..., uuid.UUID]


def notices_of(database: Database, member_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    with database.transaction(readonly=True) as session:
        query = (
            select(Notification.type, Notification.payload)
            .where(Notification.member_id == member_id)
            .order_by(Notification.seq)
        )
        return [(t, dict(p)) for t, p in session.execute(query)]


def columns(row: Base) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.c}


def test_a_voucher_redemption_notices_the_spend_the_voucher_then_the_redemption(
    database: Database, rewards_programme: Programme, new_member: NewMember, voucher_reward: Reward
) -> None:
    # given a member with 300 points
    p, m = rewards_programme, new_member(300)
    # when they redeem the 10 € voucher
    with database.transaction() as s:
        r = redemptions.redeem(s, programme=p, member_id=m, reward="voucher-10",
                               idempotency_key="k1", now=T0)  # fmt: skip
    # then three notices, in the order things happened, name the spend, the voucher, the redemption
    found = notices_of(database, m)
    assert [t for t, _ in found] == ["points.spent", "voucher.issued", "reward.redeemed"]
    spent, issued, redeemed = (payload for _, payload in found)
    assert (spent["points"], spent["transaction_id"]) == (200, str(r.spend_transaction_id))
    assert issued["source"] == "redemption"
    assert issued["source_id"] == str(r.id)
    assert redeemed == {"redemption_id": str(r.id), "reward": "voucher-10", "kind": "voucher",
                        "quantity": 1, "points": 200}  # fmt: skip


def test_a_cashback_redemption_notices_the_spend_before_the_credit(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p, m = rewards_programme, new_member(1000)
    make_reward(database, p, code="cash-5", kind="cashback", cost_points=500, value=Decimal(5))
    with database.transaction() as s:
        redemptions.redeem(s, programme=p, member_id=m, reward="cash-5", idempotency_key="k1",
                           now=T0)  # fmt: skip
    found = [(t, payload.get("wallet")) for t, payload in notices_of(database, m)]
    assert found[-3:] == [("points.spent", "points"), ("points.earned", "cashback"),
                          ("reward.redeemed", None)]  # fmt: skip
    assert_verified(database, p)


def test_the_redemption_handed_back_holds_what_its_row_holds(
    database: Database, rewards_programme: Programme, new_member: NewMember, voucher_reward: Reward
) -> None:
    p, m = rewards_programme, new_member(300)
    with database.transaction() as s:
        r = redemptions.redeem(s, programme=p, member_id=m, reward="voucher-10",
                               idempotency_key="k1", now=T0)  # fmt: skip
        handed = columns(r)
        assert r in s  # persistent in the caller's session: it can be changed and flushed
    with database.transaction(readonly=True) as s:
        fresh = s.get(Redemption, r.id)
        assert fresh is not None
        assert columns(fresh) == handed


def test_a_reward_the_session_held_sees_the_stock_taken(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    # given a reward with 3 in stock, loaded by the caller's session before the redemption
    p, m = rewards_programme, new_member(300)
    reward = make_reward(database, p, code="scarf", stock=3)
    with database.transaction() as s:
        held = s.get(Reward, reward.id)
        assert held is not None
        assert held.stock == 3
        # when the member redeems one, in that session
        redemptions.redeem(s, programme=p, member_id=m, reward="scarf", idempotency_key="k1",
                           now=T0)  # fmt: skip
        # then the object it held shows what is left, as the row does
        assert held.stock == 2
    assert stock(database, reward.id) == 2
