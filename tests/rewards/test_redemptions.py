"""Redemptions given/when/then, on SQLite and PostgreSQL: points spent through the ledger,
the voucher or fulfilment created, and failures that change nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from fidelia.db import Database
from fidelia.errors import ValidationFailed
from fidelia.jobs import service as jobs
from fidelia.ledger.errors import InsufficientPoints
from fidelia.models import Entry, LedgerTransaction, Programme, Redemption, Reward, Voucher
from fidelia.rewards import donations, redemptions
from fidelia.rewards.errors import IdempotencyMismatch, InvalidState, NotRedeemable, OutOfStock
from tests.fixtures.factories import count_rows
from tests.rewards.conftest import (
    T0,
    assert_verified,
    make_reward,
    points,
    set_tier,
    stock,
    vouchers_of,
)

NewMember = Callable[..., uuid.UUID]


def redeem(
    database: Database,
    programme: Programme,
    member_id: uuid.UUID,
    reward: str,
    key: str = "k1",
    **kw: object,
) -> Redemption:
    with database.transaction() as session:
        return redemptions.redeem(
            session,
            programme=programme,
            member_id=member_id,
            reward=reward,
            idempotency_key=key,
            now=T0,
            **kw,
        )  # type: ignore[arg-type]


def snapshot(database: Database, programme: Programme) -> tuple[int, int, int]:
    return (
        count_rows(database, Redemption, Redemption.programme_id == programme.id),
        count_rows(database, Entry, Entry.programme_id == programme.id),
        count_rows(database, Voucher, Voucher.programme_id == programme.id),
    )


def test_redeeming_a_voucher_spends_points_across_lots_and_issues_a_code(
    database: Database, rewards_programme: Programme, new_member: NewMember, voucher_reward: Reward
) -> None:
    # given a member with 120 + 150 points in two lots
    p, m = rewards_programme, new_member(120, 150)
    # when they redeem the 10 € voucher for 200 points
    r = redeem(database, p, m, "voucher-10")
    # then 200 points are spent (the first lot whole, 80 of the second) and a code is issued
    assert r.status == "issued"
    assert r.points == 200
    assert points(database, p, m) == 70
    with database.transaction(readonly=True) as s:
        legs = sorted(
            e.amount
            for e in s.scalars(select(Entry).where(Entry.transaction_id == r.spend_transaction_id))
            if e.lot_id
        )
    assert legs == [-120, -80]
    (voucher,) = vouchers_of(database, p)
    assert voucher.member_id == m
    assert voucher.redemption_id == r.id
    assert voucher.status == "active"
    assert voucher.code.startswith("FID-")
    assert len(voucher.code) == 13
    assert voucher.valid_until == T0 + timedelta(days=90) == r.expires_at
    assert_verified(database, p)


def test_a_retried_redemption_returns_the_first_and_spends_once(
    database: Database, rewards_programme: Programme, new_member: NewMember, voucher_reward: Reward
) -> None:
    p, m = rewards_programme, new_member(500)
    first = redeem(database, p, m, "voucher-10", key="same")
    again = redeem(database, p, m, str(voucher_reward.id), key="same")
    assert again.id == first.id
    assert points(database, p, m) == 300
    assert len(vouchers_of(database, p)) == 1


def test_the_same_key_for_another_reward_is_409_and_changes_nothing(
    database: Database, rewards_programme: Programme, new_member: NewMember, voucher_reward: Reward
) -> None:
    p, m = rewards_programme, new_member(500)
    make_reward(database, p, code="mug", cost_points=50)
    redeem(database, p, m, "voucher-10", key="same")
    before = snapshot(database, p)
    with pytest.raises(IdempotencyMismatch):
        redeem(database, p, m, "mug", key="same")
    assert snapshot(database, p) == before
    assert points(database, p, m) == 300


def test_insufficient_points_is_409_and_changes_nothing(
    database: Database, rewards_programme: Programme, new_member: NewMember, voucher_reward: Reward
) -> None:
    p, m = rewards_programme, new_member(100, 99)
    before = snapshot(database, p)
    with pytest.raises(InsufficientPoints) as caught:
        redeem(database, p, m, "voucher-10")
    assert caught.value.status_code == 409
    assert snapshot(database, p) == before
    assert points(database, p, m) == 199


def test_out_of_stock_is_409_and_changes_nothing(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p = rewards_programme
    reward = make_reward(database, p, code="scarf", stock=1)
    first, second = new_member(300), new_member(300)
    redeem(database, p, first, "scarf")
    assert stock(database, reward.id) == 0
    before = snapshot(database, p)
    with pytest.raises(OutOfStock):
        redeem(database, p, second, "scarf", key="k2")
    assert snapshot(database, p) == before
    assert points(database, p, second) == 300
    assert stock(database, reward.id) == 0


def test_tier_price_window_tier_list_and_condition(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p = rewards_programme
    make_reward(
        database,
        p,
        code="lounge",
        kind="experience",
        cost_points=300,
        cost_by_tier={"silver": 150},
        eligible_tiers=["silver", "gold"],
        condition={"field": "state.purchases", "op": "gte", "value": 5},
    )
    bronze, silver, newcomer = new_member(1000), new_member(1000), new_member(1000)
    set_tier(database, p, bronze, "bronze", purchases=9)
    set_tier(database, p, silver, "silver", purchases=5)
    set_tier(database, p, newcomer, "silver", purchases=1)
    with pytest.raises(NotRedeemable) as caught:
        redeem(database, p, bronze, "lounge", key="b")
    assert caught.value.reasons == ["tier"]
    with pytest.raises(NotRedeemable) as caught:
        redeem(database, p, newcomer, "lounge", key="n")
    assert caught.value.reasons == ["condition"]
    assert redeem(database, p, silver, "lounge", key="s").points == 150
    assert (points(database, p, bronze), points(database, p, silver)) == (1000, 850)
    make_reward(database, p, code="later", available_from=T0 + timedelta(days=1))
    with pytest.raises(NotRedeemable) as caught:
        redeem(database, p, silver, "later", key="l")
    assert caught.value.reasons == ["not_available"]


def test_limit_per_member_and_first_n_members(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p = rewards_programme
    make_reward(
        database,
        p,
        code="preview",
        kind="early_access",
        cost_points=10,
        limit_per_member=2,
        first_n=2,
    )
    a, b, c = new_member(100), new_member(100), new_member(100)
    redeem(database, p, a, "preview", key="a1")
    redeem(database, p, a, "preview", key="a2")
    with pytest.raises(NotRedeemable) as caught:
        redeem(database, p, a, "preview", key="a3")
    assert caught.value.reasons == ["limit_reached"]
    redeem(database, p, b, "preview", key="b1")
    with pytest.raises(NotRedeemable) as caught:
        redeem(database, p, c, "preview", key="c1")
    assert caught.value.reasons == ["first_n_reached"]
    redeem(database, p, b, "preview", key="b2")  # a member among the first N may come back
    assert (points(database, p, a), points(database, p, b), points(database, p, c)) == (80, 80, 100)


def test_cancel_refunds_points_returns_stock_and_cancels_the_voucher(
    database: Database, rewards_programme: Programme, new_member: NewMember, voucher_reward: Reward
) -> None:
    p, m = rewards_programme, new_member(150, 150)
    with database.transaction() as s:
        s.get(Reward, voucher_reward.id).stock = 5  # type: ignore[union-attr]
    r = redeem(database, p, m, "voucher-10")
    assert (points(database, p, m), stock(database, voucher_reward.id)) == (100, 4)
    with database.transaction() as s:
        done = redemptions.cancel(
            s, programme=p, redemption_id=r.id, reason="changed mind", actor="desk", now=T0
        )
    assert done.status == "cancelled"
    assert done.cancel_reason == "changed mind"
    assert (points(database, p, m), stock(database, voucher_reward.id)) == (300, 5)
    with database.transaction(readonly=True) as s:
        refund = s.get(LedgerTransaction, done.refund_transaction_id)
        assert refund is not None
        assert refund.reverses_id == r.spend_transaction_id
    assert vouchers_of(database, p)[0].status == "cancelled"
    assert_verified(database, p)
    with pytest.raises(InvalidState), database.transaction() as s:
        redemptions.cancel(s, programme=p, redemption_id=r.id, reason="again", actor="desk", now=T0)
    assert points(database, p, m) == 300


def test_cashback_conversion_credits_the_cashback_wallet(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p, m = rewards_programme, new_member(1000)
    make_reward(database, p, code="cash-5", kind="cashback", cost_points=500, value=Decimal(5))
    r = redeem(database, p, m, "cash-5")
    assert r.status == "used"
    assert r.cashback_transaction_id is not None
    assert (points(database, p, m), points(database, p, m, "cashback")) == (500, 500)  # 5.00 €
    with pytest.raises(InvalidState), database.transaction() as s:
        redemptions.cancel(s, programme=p, redemption_id=r.id, reason="no", actor="desk", now=T0)
    assert_verified(database, p)


def test_donations_are_totalled_per_association(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p = rewards_programme
    make_reward(
        database,
        p,
        code="trees",
        kind="donation",
        cost_points=100,
        association="Forests Now",
        value=Decimal("1.50"),
    )
    make_reward(
        database,
        p,
        code="meals",
        kind="donation",
        cost_points=100,
        association="Food Bank",
        value=Decimal(1),
    )
    a, b = new_member(1000), new_member(1000)
    redeem(database, p, a, "trees", key="a", quantity=3)
    redeem(database, p, b, "trees", key="b")
    redeem(database, p, b, "meals", key="c")
    cancelled = redeem(database, p, a, "meals", key="d")
    with database.transaction() as s:
        redemptions.cancel(
            s, programme=p, redemption_id=cancelled.id, reason="x", actor="y", now=T0
        )
        redemptions.fulfil(
            s, programme=p, redemption_id=redemptions.by_key(s, p, "c").id, actor="ops", now=T0
        )  # type: ignore[union-attr]
    with database.transaction(readonly=True) as s:
        totals = {
            t.association: (t.donations, t.points, t.value)
            for t in donations.totals(s, programme=p)
        }
    assert totals == {
        "Food Bank": (1, 100, Decimal("1.00")),
        "Forests Now": (2, 400, Decimal("6.00")),
    }


def test_fulfilling_a_product_marks_it_used(
    database: Database, rewards_programme: Programme, new_member: NewMember, voucher_reward: Reward
) -> None:
    p, m = rewards_programme, new_member(1000)
    make_reward(database, p, code="tote")
    r = redeem(database, p, m, "tote", fulfilment={"address": "1 rue de la Paix"})
    with database.transaction() as s:
        done = redemptions.fulfil(
            s,
            programme=p,
            redemption_id=r.id,
            actor="warehouse",
            details={"tracking": "XY1"},
            now=T0,
        )
    assert done.status == "used"
    assert done.fulfilment["address"] == "1 rue de la Paix"
    assert done.fulfilment["fulfilled"]["tracking"] == "XY1"
    v = redeem(database, p, m, "voucher-10", key="v")
    with pytest.raises(InvalidState), database.transaction() as s:
        redemptions.fulfil(s, programme=p, redemption_id=v.id, actor="warehouse", now=T0)


def test_a_voucher_redemption_expires_with_its_voucher(
    database: Database, rewards_programme: Programme, new_member: NewMember, voucher_reward: Reward
) -> None:
    p, m = rewards_programme, new_member(500)
    r = redeem(database, p, m, "voucher-10")
    later = T0 + timedelta(days=91)
    with database.transaction() as s:
        job_ids = [
            j.id
            for j in jobs.list_jobs(s, kind="rewards.voucher_expire", limit=10_000)
            if j.programme_id == p.id
        ]
        assert len(job_ids) == 1
    jobs.run_due(database, now=later, programme_id=p.id)
    with database.transaction(readonly=True) as s:
        expired = s.get(Redemption, r.id)
        assert expired is not None
        assert expired.status == "expired"
        assert expired.refund_transaction_id is None  # an expired voucher is not refunded
    assert vouchers_of(database, p)[0].status == "expired"


def test_bad_input_changes_nothing(
    database: Database, rewards_programme: Programme, new_member: NewMember, voucher_reward: Reward
) -> None:
    p, m = rewards_programme, new_member(1000)
    before = snapshot(database, p)
    with pytest.raises(ValidationFailed):
        redeem(database, p, m, "voucher-10", quantity=2)
    with database.transaction() as s:
        archived = s.get(Reward, voucher_reward.id)
        assert archived is not None
        archived.archived = True
    with pytest.raises(NotRedeemable) as caught:
        redeem(database, p, m, "voucher-10", key="z")
    assert caught.value.reasons == ["not_available"]
    assert snapshot(database, p) == before
    assert points(database, p, m) == 1000
