"""Rewards fixtures: a programme with the default wallets, members with points in several
lots, a voucher pool and rewards of each kind, and readers of what the tests assert."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.ledger import operations
from fidelia.ledger.repository import find_member_account
from fidelia.ledger.verify import verify
from fidelia.ledger.wallets import ensure_default_wallets, find_wallet
from fidelia.models import MemberState, Programme, Reward, Voucher, VoucherPool
from fidelia.rewards import pools
from fidelia.rewards import service as catalogue
from fidelia.rewards.schemas import PoolIn, RewardIn
from tests.fixtures.factories import make_member

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def rewards_programme(database: Database, programme: Programme) -> Programme:
    """The test's programme with points, cashback and status wallets."""
    with database.transaction() as session:
        ensure_default_wallets(session, programme=programme)
    return programme


def earn(database: Database, programme: Programme, member_id: uuid.UUID, *lots: int) -> None:
    """Award one lot per amount (earned before T0), each expiring a day after the previous one
    and more than a year from now, so that API calls at the real time can spend them."""
    with database.transaction() as session:
        for i, amount in enumerate(lots):
            operations.award(
                session,
                programme=programme,
                member_id=member_id,
                wallet="points",
                amount=amount,
                idempotency_key=f"earn-{uuid.uuid4().hex}",
                expires_at=utcnow() + timedelta(days=400 + i),
                now=T0 - timedelta(days=1),
            )


@pytest.fixture
def new_member(database: Database, rewards_programme: Programme) -> Callable[..., uuid.UUID]:
    """``new_member(100, 200)``: a member holding lots of 100 and 200 points."""

    def make(*lots: int, **fields: Any) -> uuid.UUID:
        member_id = make_member(database, rewards_programme, **fields).id
        if lots:
            earn(database, rewards_programme, member_id, *lots)
        return member_id

    return make


def points(
    database: Database, programme: Programme, member_id: uuid.UUID, wallet: str = "points"
) -> int:
    """The member's available balance (minor units)."""
    with database.transaction(readonly=True) as session:
        found = find_wallet(session, programme=programme, code=wallet)
        assert found is not None
        account = find_member_account(session, wallet=found, member_id=member_id)
        return account.available if account else 0


def set_tier(
    database: Database, programme: Programme, member_id: uuid.UUID, tier: str | None, **state: Any
) -> None:
    with database.transaction() as session:
        session.merge(
            MemberState(
                member_id=member_id, programme_id=programme.id, state={"tier": tier, **state}
            )
        )


def stock(database: Database, reward_id: uuid.UUID) -> int | None:
    with database.transaction(readonly=True) as session:
        reward = session.get(Reward, reward_id)
        assert reward is not None
        return reward.stock


def vouchers_of(database: Database, programme: Programme) -> list[Voucher]:
    with database.transaction(readonly=True) as session:
        query = select(Voucher).where(Voucher.programme_id == programme.id).order_by(Voucher.code)
        return list(session.scalars(query))


def assert_verified(database: Database, programme: Programme) -> None:
    with database.transaction(readonly=True) as session:
        report = verify(session, programme_id=programme.id)
    assert report.ok, report.problems


def make_pool(database: Database, programme: Programme, **fields: Any) -> VoucherPool:
    data: dict[str, Any] = {
        "code": "ten-euros",
        "name": "10 € off",
        "pattern": "FID-XXXX-XXXX",
        "discount_type": "amount",
        "discount_value": Decimal(10),
        "validity_days": 90,
    }
    data.update(fields)
    with database.transaction() as session:
        return pools.create_pool(session, programme=programme, data=PoolIn(**data))


def make_reward(database: Database, programme: Programme, **fields: Any) -> Reward:
    data: dict[str, Any] = {"code": "gift", "kind": "product", "name": "A gift", "cost_points": 200}
    data.update(fields)
    with database.transaction() as session:
        return catalogue.create(session, programme=programme, data=RewardIn(**data))


@pytest.fixture
def voucher_reward(database: Database, rewards_programme: Programme) -> Reward:
    """The seed's reward: a 10 € voucher for 200 points."""
    make_pool(database, rewards_programme)
    return make_reward(
        database,
        rewards_programme,
        code="voucher-10",
        kind="voucher",
        name="10 € voucher",
        pool="ten-euros",
    )
